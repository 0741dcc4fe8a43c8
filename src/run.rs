//! `run --ds D` (or `--from D1 --to D2`): every task for every dataset, in
//! the DAG's order, in one process. The one-command local job.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use serde_json::json;

use crate::catalog::Dataset;
use crate::cli::RunCmd;
use crate::context::Context;
use crate::exit::{self, ExitCode};
use crate::metrics::TaskMetrics;
use crate::{generate, upload, validate};

#[derive(Clone, Copy)]
enum Step {
    Generate,
    Validate,
    Upload,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Generate => "generate",
            Step::Validate => "validate",
            Step::Upload => "upload",
        }
    }
}

pub fn run(ctx: &mut Context, cmd: &RunCmd) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let dates = cmd.dates().map_err(exit::usage)?;
    let steps = [Step::Generate, Step::Validate, Step::Upload];
    let total = dates.len() * steps.len() * Dataset::ALL.len();
    let show_progress = std::io::stderr().is_terminal();
    let mut done = Vec::with_capacity(total);

    for &ds in &dates {
        for step in steps {
            for dataset in Dataset::ALL {
                let started = Instant::now();
                let metrics = run_step(ctx, cmd, step, dataset, ds)?;
                if show_progress {
                    eprintln!(
                        "[{:>3}/{total}] {:<8} {:<16} {ds}  {:<17} {:>6.2}s",
                        done.len() + 1,
                        step.name(),
                        dataset.name(),
                        outcome(&metrics),
                        started.elapsed().as_secs_f64()
                    );
                }
                done.push(metrics);
            }
        }
    }

    print_summary(&dates, &done);
    let rejected = done.iter().filter(|m| m.status == "rejected").count();
    let mut metrics = TaskMetrics::new("run", None, Some(dates[0].to_string()));
    metrics.status = if rejected == 0 {
        "completed"
    } else {
        "completed_with_rejections"
    }
    .into();
    metrics.exit_code = if rejected == 0 {
        ExitCode::Success
    } else {
        ExitCode::DataRejected
    }
    .code();
    if rejected > 0 {
        metrics.error = Some(format!(
            "{rejected} file(s) rejected; see the quarantine area"
        ));
    }
    for m in done.iter().filter(|m| m.task == "validate") {
        metrics.rows_in += m.rows_in;
        metrics.rows_out += m.rows_out;
        metrics.invalid_rows += m.invalid_rows;
        metrics.has_failure_delta |= m.has_failure_delta;
        metrics
            .new_signatures
            .extend(m.new_signatures.iter().cloned());
        for (check, n) in &m.failed {
            metrics.add_failed(check, *n);
        }
    }
    for m in done.iter().filter(|m| m.task == "generate") {
        for (check, n) in &m.injected {
            *metrics.injected.entry(check.clone()).or_default() += n;
        }
    }
    let last = dates[dates.len() - 1];
    metrics
        .extra
        .insert("ds_to".into(), last.to_string().into());
    let tasks: Vec<_> = done
        .iter()
        .map(|m| {
            json!({
                "task": m.task, "dataset": m.dataset, "ds": m.ds, "status": m.status,
                "reused": m.reused, "rows_in": m.rows_in, "rows_out": m.rows_out,
                "invalid_rows": m.invalid_rows, "exit_code": m.exit_code,
                "duration_ms": m.duration_ms,
            })
        })
        .collect();
    metrics.extra.insert("tasks".into(), tasks.into());
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    Ok(metrics)
}

fn run_step(
    ctx: &mut Context,
    cmd: &RunCmd,
    step: Step,
    dataset: Dataset,
    ds: NaiveDate,
) -> Result<TaskMetrics> {
    match step {
        Step::Generate => generate::run(ctx, dataset, ds, &cmd.generate, cmd.force),
        Step::Validate => validate::run(ctx, dataset, ds, &cmd.validate, cmd.force),
        Step::Upload => upload::run(ctx, dataset, ds),
    }
}

fn outcome(m: &TaskMetrics) -> String {
    let mut s = m.status.clone();
    if m.reused {
        s.push_str(" (reused)");
    }
    s
}

/// A human table on stderr: one line per dataset and day.
fn print_summary(dates: &[NaiveDate], done: &[TaskMetrics]) {
    let find = |task: &str, dataset: Dataset, ds: &str| {
        done.iter().find(|m| {
            m.task == task
                && m.dataset.as_deref() == Some(dataset.name())
                && m.ds.as_deref() == Some(ds)
        })
    };
    let mut out = std::io::stderr().lock();
    let _ = writeln!(
        out,
        "\n{:<10}  {:<16} {:>10} {:>10} {:>11}  {:<12} {:<17} {:<16}",
        "ds", "dataset", "generated", "valid", "quarantined", "validation", "new failures", "lake"
    );
    for ds in dates {
        let ds = ds.to_string();
        for dataset in Dataset::ALL {
            let generated = find("generate", dataset, &ds).map_or(0, |m| m.rows_out);
            let validated = find("validate", dataset, &ds);
            let uploaded = find("upload", dataset, &ds);
            let _ = writeln!(
                out,
                "{:<10}  {:<16} {:>10} {:>10} {:>11}  {:<12} {:<17} {:<16}",
                ds,
                dataset.name(),
                generated,
                validated.map_or(0, |m| m.rows_out),
                validated.map_or(0, |m| m.invalid_rows),
                validated.map_or("-", |m| m.status.as_str()),
                validated.map_or(0, |m| m.new_signatures.len()),
                uploaded.map_or("-", |m| m.status.as_str()),
            );
        }
    }
}
