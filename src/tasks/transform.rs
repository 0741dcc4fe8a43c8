//! `transform --ds D`: the SQL models of sql/models (staging tables for the
//! ds, then incremental MERGEs into the marts), in dependency order, then
//! the data tests of sql/tests. A failing test exits 65; a warning does not.

use std::time::Instant;

use anyhow::{Context as _, Result};
use tracing::{info, warn};

use crate::cli::TransformArgs;
use crate::context::Context;
use crate::exit::{self, ExitCode};
use crate::metrics::{
    Details, ModelRun, Status, Task, TaskMetrics, TestOutcome, TestRun, TransformDetails,
};
use crate::warehouse::project::{self, Layer, Severity};
use crate::warehouse::{count, date_literal};

/// Offending rows kept per failing test, for the alert.
const SAMPLE_ROWS: usize = 5;

pub(crate) fn run(ctx: &mut Context, args: &TransformArgs) -> Result<TaskMetrics> {
    let ds = args.ds;
    let mut phase = Instant::now();
    let mut metrics = ctx.metrics(Task::Transform, None, Some(ds));
    let wh = ctx.warehouse.get()?;
    let loaded = count(
        wh,
        &format!(
            "SELECT COUNT(*) FROM RAW.LOAD_LOG WHERE DS = {}",
            date_literal(ds)
        ),
    )?;
    if loaded == 0 {
        return Err(exit::nothing_to_do(format!(
            "nothing loaded for {ds}: run load first"
        )));
    }
    let ds_text = ds.to_string();
    let previous_ds = ds.pred_opt().unwrap_or(ds).to_string();
    let vars = [
        ("ds", ds_text.as_str()),
        ("previous_ds", previous_ds.as_str()),
    ];

    // Staging tables are this ds's scratch tables, named for it, so that
    // transforms of two ds's running at once (Snowflake allows it) never
    // read each other's; they are dropped once the marts are merged.
    let all_models = project::models()?;
    let scratch: Vec<(String, String)> = all_models
        .iter()
        .filter(|m| m.layer == Layer::Staging)
        .map(|m| {
            (
                m.target.clone(),
                format!("{}_{}", m.target, ds.format("%Y%m%d")),
            )
        })
        .collect();
    let for_this_ds = |sql: String| {
        scratch.iter().fold(sql, |sql, (name, table)| {
            project::rename_table(&sql, name, table)
        })
    };

    let mut models = Vec::new();
    let (mut inserted, mut updated) = (0, 0);
    for model in &all_models {
        let started = Instant::now();
        let statement = project::render(model.sql, &vars)
            .map(for_this_ds)
            .with_context(|| format!("sql/models: {}", model.name))?;
        let mut entry = ModelRun {
            model: model.name.clone(),
            target: model.target.clone(),
            rows: None,
            inserted: None,
            updated: None,
            duration_ms: 0,
        };
        match model.layer {
            Layer::Staging => {
                wh.execute(&statement)?;
                let rows = count(
                    wh,
                    &format!("SELECT COUNT(*) FROM {}", for_this_ds(model.target.clone())),
                )?;
                entry.rows = Some(rows);
            }
            Layer::Mart => {
                let changed = wh.merge(&statement, &model.target)?;
                inserted += changed.inserted;
                updated += changed.updated;
                entry.inserted = Some(changed.inserted);
                entry.updated = Some(changed.updated);
            }
        }
        entry.duration_ms = started.elapsed().as_millis() as u64;
        info!(model = model.name, target = model.target, "model built");
        models.push(entry);
    }
    for (_, table) in &scratch {
        wh.execute(&format!("DROP TABLE IF EXISTS {table}"))?;
    }
    metrics.lap("models", &mut phase);

    let mut tests = Vec::new();
    let (mut passed, mut warned, mut failed) = (0, 0, Vec::new());
    for test in project::tests() {
        let query = project::render(test.sql, &vars)
            .with_context(|| format!("sql/tests: {}", test.name))?;
        let offending = count(wh, &format!("SELECT COUNT(*) FROM (\n{query}\n) AS t"))?;
        let status = match (offending, test.severity) {
            (0, _) => {
                passed += 1;
                TestOutcome::Pass
            }
            (_, Severity::Warn) => {
                warned += 1;
                warn!(test = test.name, offending, "data test warns");
                TestOutcome::Warn
            }
            (_, Severity::Error) => {
                failed.push(test.name.clone());
                metrics.add_failed(&test.name, offending);
                warn!(test = test.name, offending, "data test fails");
                TestOutcome::Fail
            }
        };
        let sample = match offending {
            0 => None,
            _ => Some(wh.query(&format!(
                "SELECT * FROM (\n{query}\n) AS t LIMIT {SAMPLE_ROWS}"
            ))?),
        };
        tests.push(TestRun {
            test: test.name.clone(),
            offending_rows: offending,
            sample,
            status,
        });
    }
    metrics.lap("tests", &mut phase);

    metrics.rows_out = inserted + updated;
    metrics.details = Some(Details::Transform(TransformDetails {
        warehouse: wh.backend().into(),
        inserted,
        updated,
        tests_passed: passed,
        tests_warned: warned,
        tests_failed: failed.len() as u64,
        models,
        tests,
    }));
    if failed.is_empty() {
        metrics.status = Status::Transformed;
    } else {
        metrics.status = Status::TestsFailed;
        metrics.exit_code = ExitCode::DataRejected.code();
        metrics.error = Some(format!("data tests failed: {}", failed.join(", ")));
    }
    Ok(metrics)
}
