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
use crate::{generate, load, transform, upload, validate};

#[derive(Clone, Copy)]
enum Step {
    Generate,
    Validate,
    Upload,
    Load,
}

impl Step {
    const ALL: [Step; 4] = [Step::Generate, Step::Validate, Step::Upload, Step::Load];
}

pub fn run(ctx: &mut Context, cmd: &RunCmd) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let dates = cmd.dates().map_err(exit::usage)?;
    // Per ds: every step for every dataset, then one transform.
    let total = dates.len() * (Step::ALL.len() * Dataset::ALL.len() + 1);
    let show_progress = std::io::stderr().is_terminal();
    let mut done: Vec<TaskMetrics> = Vec::with_capacity(total);
    let progress = |done: &[TaskMetrics], started: Instant| {
        if let Some(m) = done.last().filter(|_| show_progress) {
            eprintln!(
                "[{:>3}/{total}] {:<9} {:<16} {}  {:<17} {:>6.2}s",
                done.len(),
                m.task,
                m.dataset.as_deref().unwrap_or("-"),
                m.ds.as_deref().unwrap_or("-"),
                outcome(m),
                started.elapsed().as_secs_f64()
            );
        }
    };

    for &ds in &dates {
        for step in Step::ALL {
            // As in the DAG: a rejected file stops load and transform for its ds.
            if matches!(step, Step::Load) && rejected_on(&done, ds) {
                break;
            }
            for dataset in Dataset::ALL {
                let started = Instant::now();
                done.push(run_step(ctx, cmd, step, dataset, ds)?);
                progress(&done, started);
            }
        }
        if !rejected_on(&done, ds) {
            let started = Instant::now();
            done.push(transform::run(ctx, ds)?);
            progress(&done, started);
        }
    }

    print_summary(&dates, &done);
    let rejected = done
        .iter()
        .filter(|m| m.exit_code == ExitCode::DataRejected.code())
        .count();
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
            "{rejected} task(s) rejected data (a file, or a failed SQL data test); \
             see the quarantine area and the transform metrics"
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
        Step::Load => load::run(ctx, dataset, ds),
    }
}

fn rejected_on(done: &[TaskMetrics], ds: NaiveDate) -> bool {
    let ds = ds.to_string();
    done.iter()
        .any(|m| m.task == "validate" && m.status == "rejected" && m.ds.as_deref() == Some(&ds))
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
        "\n{:<10}  {:<16} {:>10} {:>10} {:>11}  {:<12} {:<13} {:<16} {:<14}",
        "ds",
        "dataset",
        "generated",
        "valid",
        "quarantined",
        "validation",
        "new failures",
        "lake",
        "warehouse"
    );
    for ds in dates {
        let ds = ds.to_string();
        for dataset in Dataset::ALL {
            let generated = find("generate", dataset, &ds).map_or(0, |m| m.rows_out);
            let validated = find("validate", dataset, &ds);
            let uploaded = find("upload", dataset, &ds);
            let loaded = find("load", dataset, &ds);
            let _ = writeln!(
                out,
                "{:<10}  {:<16} {:>10} {:>10} {:>11}  {:<12} {:<13} {:<16} {:<14}",
                ds,
                dataset.name(),
                generated,
                validated.map_or(0, |m| m.rows_out),
                validated.map_or(0, |m| m.invalid_rows),
                validated.map_or("-", |m| m.status.as_str()),
                validated.map_or(0, |m| m.new_signatures.len()),
                uploaded.map_or("-", |m| m.status.as_str()),
                loaded.map_or("-", |m| m.status.as_str()),
            );
        }
        let transformed = done
            .iter()
            .find(|m| m.task == "transform" && m.ds.as_deref() == Some(ds.as_str()));
        let _ = match transformed {
            Some(m) => {
                let n = |k: &str| m.extra.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                writeln!(
                    out,
                    "{ds}  marts: {} rows inserted, {} updated; data tests: {} passed, {} warned, {} failed",
                    n("inserted"),
                    n("updated"),
                    n("tests_passed"),
                    n("tests_warned"),
                    n("tests_failed"),
                )
            }
            None => writeln!(out, "{ds}  marts: not built (a file was rejected)"),
        };
    }
}
