//! `transform --ds D`: the SQL models of sql/models (staging tables for the
//! ds, then incremental MERGEs into the marts), in dependency order, then
//! the data tests of sql/tests. A failing test exits 65; a warning does not.

use std::time::Instant;

use anyhow::{Context as _, Result};
use chrono::NaiveDate;
use serde_json::json;
use tracing::{info, warn};

use crate::context::Context;
use crate::exit::{self, ExitCode};
use crate::metrics::TaskMetrics;
use crate::warehouse::sql::{self, Layer, Severity};
use crate::warehouse::{count, date_literal};

/// Offending rows kept per failing test, for the alert.
const SAMPLE_ROWS: usize = 5;

pub fn run(ctx: &mut Context, ds: NaiveDate) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let mut phase = clock;
    let mut metrics = TaskMetrics::new("transform", None, Some(ds.to_string()));
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
    let all_models = sql::models()?;
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
            sql::rename_table(&sql, name, table)
        })
    };

    let mut models = Vec::new();
    let (mut inserted, mut updated) = (0, 0);
    for model in &all_models {
        let started = Instant::now();
        let statement = sql::render(model.sql, &vars)
            .map(for_this_ds)
            .with_context(|| format!("sql/models: {}", model.name))?;
        let mut entry = json!({"model": model.name, "target": model.target});
        match model.layer {
            Layer::Staging => {
                wh.execute(&statement)?;
                let rows = count(
                    wh,
                    &format!("SELECT COUNT(*) FROM {}", for_this_ds(model.target.clone())),
                )?;
                entry["rows"] = rows.into();
            }
            Layer::Mart => {
                let changed = wh.merge(&statement, &model.target)?;
                inserted += changed.inserted;
                updated += changed.updated;
                entry["inserted"] = changed.inserted.into();
                entry["updated"] = changed.updated.into();
            }
        }
        entry["duration_ms"] = (started.elapsed().as_millis() as u64).into();
        info!(model = model.name, target = model.target, "model built");
        models.push(entry);
    }
    for (_, table) in &scratch {
        wh.execute(&format!("DROP TABLE IF EXISTS {table}"))?;
    }
    metrics.lap("models", &mut phase);

    let mut tests = Vec::new();
    let (mut passed, mut warned, mut failed) = (0, 0, Vec::new());
    for test in sql::tests() {
        let query =
            sql::render(test.sql, &vars).with_context(|| format!("sql/tests: {}", test.name))?;
        let offending = count(wh, &format!("SELECT COUNT(*) FROM (\n{query}\n) AS t"))?;
        let mut entry = json!({"test": test.name, "offending_rows": offending});
        let outcome = match (offending, test.severity) {
            (0, _) => {
                passed += 1;
                "pass"
            }
            (_, Severity::Warn) => {
                warned += 1;
                warn!(test = test.name, offending, "data test warns");
                "warn"
            }
            (_, Severity::Error) => {
                failed.push(test.name.clone());
                metrics.add_failed(&test.name, offending);
                warn!(test = test.name, offending, "data test fails");
                "fail"
            }
        };
        if offending > 0 {
            let sample = wh.query(&format!(
                "SELECT * FROM (\n{query}\n) AS t LIMIT {SAMPLE_ROWS}"
            ))?;
            entry["sample"] = json!(sample);
        }
        entry["status"] = outcome.into();
        tests.push(entry);
    }
    metrics.lap("tests", &mut phase);

    metrics.rows_out = inserted + updated;
    let extra = &mut metrics.extra;
    extra.insert("warehouse".into(), wh.backend().into());
    extra.insert("inserted".into(), inserted.into());
    extra.insert("updated".into(), updated.into());
    extra.insert("tests_passed".into(), passed.into());
    extra.insert("tests_warned".into(), warned.into());
    extra.insert("tests_failed".into(), failed.len().into());
    extra.insert("models".into(), models.into());
    extra.insert("tests".into(), tests.into());
    if failed.is_empty() {
        metrics.status = "transformed".into();
    } else {
        metrics.status = "tests_failed".into();
        metrics.exit_code = ExitCode::DataRejected.code();
        metrics.error = Some(format!("data tests failed: {}", failed.join(", ")));
    }
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    Ok(metrics)
}
