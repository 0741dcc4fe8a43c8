//! `transform --ds D`: `dbt build` of the project under sql/, natively. The
//! models (staging views of the ds, then incremental marts) and their
//! tests run in dbt's order; a failing test skips what is downstream of
//! it and exits 65, a warning does not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{Result, anyhow};
use tracing::{info, warn};

use crate::checks::CheckResult;
use crate::cli::TransformArgs;
use crate::context::Context;
use crate::dbt::materialize;
use crate::dbt::{
    Backend, BuildPlan, DataTest, Materialized, Model, NodeId, Project, Selector, Severity, Target,
};
use crate::exit::{self, ExitCode};
use crate::metrics::{
    Details, ModelOutcome, ModelRun, Status, Task, TaskMetrics, TestOutcome, TestRun,
    TransformDetails,
};
use crate::warehouse::{Warehouse, count, date_literal, in_transaction, project};

/// Offending rows kept per failing test, for the alert.
const SAMPLE_ROWS: usize = 5;

pub(crate) fn run(ctx: &mut Context, args: &TransformArgs) -> Result<TaskMetrics> {
    let ds = args.ds;
    let mut phase = Instant::now();
    let mut metrics = ctx.metrics(Task::Transform, None, Some(ds));
    let selector = Selector::parse(&args.select)?;
    let mut vars = BTreeMap::from([("ds".to_string(), serde_yaml::Value::from(ds.to_string()))]);
    if let Some(text) = &args.vars {
        let given: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(text)
            .map_err(|e| exit::usage(format!("--vars: not a YAML mapping: {e}")))?;
        vars.extend(given);
    }
    let files = project::dbt_files(ctx.dbt_project_dir.as_deref())?;
    let wh = ctx.warehouse.get()?;
    let backend = wh.backend();
    let target = Target {
        backend,
        schema: match backend {
            Backend::DuckDb => "main".into(),
            Backend::Snowflake => "PUBLIC".into(),
        },
        database: String::new(),
    };
    let project = Project::load(&files, target, vars, &ctx.dbt_env)?;
    let plan = BuildPlan::new(&project, &selector)?;
    metrics.lap("parse", &mut phase);
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

    for schema in project.schemas() {
        wh.execute(&format!("create schema if not exists {schema}"))?;
    }
    let mut build = Build {
        wh,
        project: &project,
        full_refresh: args.full_refresh,
        skipped: BTreeSet::new(),
        details: TransformDetails {
            warehouse: backend.name().into(),
            ..TransformDetails::default()
        },
    };
    for node in &plan.order {
        match node {
            NodeId::Source { source, table } => {
                let source = project
                    .source(source, table)
                    .expect("planned sources exist");
                metrics
                    .lineage
                    .inputs
                    .push(build.wh.lineage(&source.relation));
            }
            NodeId::Model(name) => {
                let model = project.model(name).expect("planned models exist");
                if build.model(model)? {
                    metrics
                        .lineage
                        .outputs
                        .push(build.wh.lineage(&model.relation));
                }
            }
            NodeId::Test(name) => {
                let test = project
                    .tests
                    .iter()
                    .find(|t| &t.name == name)
                    .expect("planned tests exist");
                if build.test(test)? {
                    build.skipped.extend(plan.downstream(node));
                }
            }
        }
    }
    metrics.lap("build", &mut phase);
    build.wh.checkpoint()?;
    metrics.lap("checkpoint", &mut phase);

    let mut details = build.details;
    // Failing and warning tests alert like failing checks, once per new pattern.
    let results: Vec<CheckResult> = details.tests.iter().map(data_test_result).collect();
    for (test, result) in details.tests.iter_mut().zip(&results) {
        test.signature = (result.failed_rows > 0).then(|| result.signature(TRANSFORM));
    }
    // A data test checks relations, not a file: it has no row total.
    metrics.new_signatures =
        ctx.metadata
            .record_checks(TRANSFORM, ds, &results, 0, ctx.airflow.run_id.as_deref())?;
    metrics.has_failure_delta = !metrics.new_signatures.is_empty();
    let failed: Vec<&TestRun> = details
        .tests
        .iter()
        .filter(|t| t.status == TestOutcome::Fail)
        .collect();
    for test in &failed {
        metrics.add_failed(&test.test, test.offending_rows);
    }
    if failed.is_empty() {
        metrics.status = Status::Transformed;
    } else {
        let names: Vec<&str> = failed.iter().map(|t| t.test.as_str()).collect();
        metrics.status = Status::TestsFailed;
        metrics.exit_code = ExitCode::DataRejected.code();
        metrics.error = Some(format!("data tests failed: {}", names.join(", ")));
    }
    metrics.rows_out = details.inserted + details.updated;
    metrics.details = Some(Details::Transform(details));
    Ok(metrics)
}

/// The dq_checks subject of the data tests (a dataset's is its name).
const TRANSFORM: &str = "transform";

/// A data test's outcome as dq_checks records it: its offending rows
/// when it failed or warned, else 0.
fn data_test_result(test: &TestRun) -> CheckResult {
    let failing = matches!(test.status, TestOutcome::Fail | TestOutcome::Warn);
    CheckResult {
        check: "data_test",
        // dq_checks keys a ds's checks by (check, column): the test's name.
        column: test.test.clone(),
        rule: String::new(),
        failed_rows: if failing { test.offending_rows } else { 0 },
    }
}

/// One `dbt build` in progress.
struct Build<'a> {
    wh: &'a mut dyn Warehouse,
    project: &'a Project,
    full_refresh: bool,
    /// Nodes downstream of a failed test.
    skipped: BTreeSet<NodeId>,
    details: TransformDetails,
}

impl Build<'_> {
    /// Builds a model; whether it was built (not skipped).
    fn model(&mut self, model: &Model) -> Result<bool> {
        let started = Instant::now();
        let mut run = ModelRun {
            model: model.name.clone(),
            target: model.relation.clone(),
            materialized: model.config.materialized.name().into(),
            status: ModelOutcome::Success,
            rows: None,
            inserted: None,
            updated: None,
            duration_ms: 0,
        };
        if self.skipped.contains(&NodeId::Model(model.name.clone())) {
            run.status = ModelOutcome::Skipped;
            self.details.skipped += 1;
            warn!(model = model.name, "model skipped: a test upstream failed");
            self.details.models.push(run);
            return Ok(false);
        }
        let backend = self.wh.backend();
        let relation = &model.relation;
        let existing = relation_kind(self.wh, relation)?;
        let wanted = match model.config.materialized {
            Materialized::View => RelationKind::View,
            Materialized::Table | Materialized::Incremental => RelationKind::Table,
        };
        // A relation of the other kind is dropped first, as dbt does.
        if let Some(kind) = existing.filter(|k| *k != wanted) {
            self.wh
                .execute(&format!("drop {} if exists {relation}", kind.sql()))?;
        }
        let incremental = model.config.materialized == Materialized::Incremental
            && existing == Some(RelationKind::Table)
            && !self.full_refresh;
        let sql = self.project.compile_model(model, incremental)?;
        match model.config.materialized {
            Materialized::View => {
                for statement in materialize::view(relation, &sql) {
                    self.wh.execute(&statement)?;
                }
            }
            _ if !incremental => {
                for statement in materialize::table(backend, relation, &sql, &model.config) {
                    self.wh.execute(&statement)?;
                }
                let rows = count(self.wh, &format!("select count(*) from {relation}"))?;
                run.rows = Some(rows);
                if model.config.materialized == Materialized::Incremental {
                    run.inserted = Some(rows);
                    run.updated = Some(0);
                }
            }
            _ => {
                let (temp, create) = materialize::staged(backend, model, &sql);
                self.wh.execute(&create)?;
                let columns: Vec<String> = self
                    .wh
                    .query(&materialize::columns_query(relation))?
                    .into_iter()
                    .filter_map(|row| row.into_iter().next().flatten())
                    .collect();
                let counts = self
                    .wh
                    .query(&materialize::change_counts(model, &temp, &columns))?;
                let number = |i: usize| -> Result<u64> {
                    counts
                        .first()
                        .and_then(|r| r.get(i).cloned().flatten())
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| {
                            anyhow!("{}: unreadable change counts {counts:?}", model.name)
                        })
                };
                let (new_keys, changed) = (number(0)?, number(1)?);
                let statements = materialize::apply(backend, model, &temp, &columns);
                match statements.as_slice() {
                    [one] => self.wh.execute(one)?,
                    _ => in_transaction(self.wh, |wh| {
                        statements.iter().try_for_each(|s| wh.execute(s))
                    })?,
                }
                self.wh
                    .execute(&materialize::drop_staged(backend, model, &temp))?;
                run.inserted = Some(new_keys);
                run.updated = Some(changed.saturating_sub(new_keys));
            }
        }
        self.details.inserted += run.inserted.unwrap_or(0);
        self.details.updated += run.updated.unwrap_or(0);
        run.duration_ms = started.elapsed().as_millis() as u64;
        info!(
            model = model.name,
            target = relation,
            incremental,
            "model built"
        );
        self.details.models.push(run);
        Ok(true)
    }

    /// Runs a test; whether it failed (and so skips what is downstream).
    fn test(&mut self, test: &DataTest) -> Result<bool> {
        let mut run = TestRun {
            test: test.name.clone(),
            offending_rows: 0,
            sample: None,
            status: TestOutcome::Skipped,
            signature: None,
        };
        if self.skipped.contains(&NodeId::Test(test.name.clone())) {
            self.details.skipped += 1;
            self.details.tests.push(run);
            return Ok(false);
        }
        let sql = self.project.compile_test(test)?;
        let result = self
            .wh
            .query(&materialize::test_query(&sql, &test.config))?;
        let row = result
            .first()
            .filter(|r| r.len() == 3)
            .ok_or_else(|| anyhow!("test {}: expected one row of three columns", test.name))?;
        let flag = |i: usize| {
            row[i]
                .as_deref()
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
        };
        let failures: u64 = row[0]
            .as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64);
        // dbt-core's rule (task/test.py): error wins over warn.
        run.status = if test.config.severity == Severity::Error && flag(2) {
            TestOutcome::Fail
        } else if flag(1) {
            TestOutcome::Warn
        } else {
            TestOutcome::Pass
        };
        match run.status {
            TestOutcome::Pass => self.details.tests_passed += 1,
            TestOutcome::Warn => {
                self.details.tests_warned += 1;
                warn!(test = test.name, failures, "data test warns");
            }
            _ => {
                self.details.tests_failed += 1;
                warn!(test = test.name, failures, "data test fails");
            }
        }
        if run.status != TestOutcome::Pass {
            run.offending_rows = failures;
            run.sample = Some(self.wh.query(&format!(
                "select * from (\n{sql}\n) as failing limit {SAMPLE_ROWS}"
            ))?);
        }
        let failed = run.status == TestOutcome::Fail;
        self.details.tests.push(run);
        Ok(failed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelationKind {
    Table,
    View,
}

impl RelationKind {
    fn sql(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::View => "view",
        }
    }
}

fn relation_kind(wh: &mut dyn Warehouse, relation: &str) -> Result<Option<RelationKind>> {
    let rows = wh.query(&materialize::kind_query(relation))?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .map(|kind| match kind.to_ascii_uppercase().contains("VIEW") {
            true => RelationKind::View,
            false => RelationKind::Table,
        }))
}
