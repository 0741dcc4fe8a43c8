//! `run --ds D` (or `--from D1 --to D2`): every task for every dataset, in
//! the DAG's order, in one process. The one-command local job.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use chrono::NaiveDate;

use crate::catalog::Dataset;
use crate::cli::{
    GenerateArgs, LoadArgs, ReportArgs, RunArgs, Target, TaskCommand, TransformArgs, UploadArgs,
    ValidateArgs,
};
use crate::context::Context;
use crate::exit::{self, ExitCode};
use crate::metrics::{Details, RunDetails, Status, Task, TaskMetrics, TaskSummary};
use crate::synth::Builtin;
use crate::tasks;

/// The per-dataset tasks, in DAG order.
const STEPS: [Task; 4] = [Task::Generate, Task::Validate, Task::Upload, Task::Load];

pub(crate) fn run(ctx: &mut Context, args: &RunArgs) -> Result<TaskMetrics> {
    let dates = args.dates().map_err(exit::usage)?;
    // Per ds: every step for every dataset, then one transform.
    let catalogue = ctx.catalogue;
    let datasets = catalogue.datasets();
    let total = dates.len() * (STEPS.len() * datasets.len() + 1);
    let show_progress = std::io::stderr().is_terminal();
    let mut done: Vec<TaskMetrics> = Vec::with_capacity(total);
    let step = |ctx: &mut Context, done: &mut Vec<TaskMetrics>, command| -> Result<()> {
        // As in the DAG, a task with nothing to do (a dataset whose file has
        // not arrived) is skipped; anything else stops the run.
        let m = match tasks::run(ctx, &command) {
            Err(e) if exit::code_of(&e) == ExitCode::NothingToDo => tasks::failed(
                &command,
                &ctx.airflow,
                ExitCode::NothingToDo,
                exit::one_line(&e),
            ),
            outcome => outcome?,
        };
        if show_progress {
            eprintln!(
                "[{:>3}/{total}] {:<9} {:<16} {}  {:<17} {:>6.2}s",
                done.len() + 1,
                m.task,
                m.dataset.as_deref().unwrap_or("-"),
                m.ds.as_deref().unwrap_or("-"),
                outcome(&m),
                m.duration_ms as f64 / 1000.0
            );
        }
        done.push(m);
        Ok(())
    };

    for &ds in &dates {
        for task in STEPS {
            // As in the DAG: a rejected file stops load and transform for its ds.
            if task == Task::Load && rejected_on(&done, ds) {
                break;
            }
            for &dataset in datasets {
                // Datasets without a generator arrive in the landing area.
                if task == Task::Generate && Builtin::of(dataset).is_none() {
                    continue;
                }
                let target = Target {
                    dataset: dataset.name().to_string(),
                    ds,
                };
                step(ctx, &mut done, step_command(args, task, target))?;
            }
        }
        if !rejected_on(&done, ds) {
            step(
                ctx,
                &mut done,
                TaskCommand::Transform(TransformArgs::all(ds)),
            )?;
        }
        let report = ReportArgs { ds, days: 30 };
        step(ctx, &mut done, TaskCommand::Report(report))?;
    }

    print_summary(datasets, &dates, &done);
    let rejected = done
        .iter()
        .filter(|m| m.exit_code == ExitCode::DataRejected.code())
        .count();
    let mut metrics = ctx.metrics(Task::Run, None, Some(dates[0]));
    metrics.status = match rejected {
        0 => Status::Completed,
        _ => Status::CompletedWithRejections,
    };
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
    for m in done.iter().filter(|m| m.task == Task::Validate) {
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
    for m in done.iter().filter(|m| m.task == Task::Generate) {
        for (check, n) in &m.injected {
            *metrics.injected.entry(check.clone()).or_default() += n;
        }
    }
    let tasks = done
        .iter()
        .map(|m| TaskSummary {
            task: m.task,
            dataset: m.dataset.clone(),
            ds: m.ds.clone(),
            status: m.status,
            reused: m.reused,
            rows_in: m.rows_in,
            rows_out: m.rows_out,
            invalid_rows: m.invalid_rows,
            exit_code: m.exit_code,
            duration_ms: m.duration_ms,
        })
        .collect();
    metrics.details = Some(Details::Run(RunDetails {
        ds_to: dates[dates.len() - 1].to_string(),
        tasks,
    }));
    Ok(metrics)
}

/// The command of one per-dataset step.
fn step_command(args: &RunArgs, step: Task, target: Target) -> TaskCommand {
    let force = args.force;
    match step {
        Task::Generate => TaskCommand::Generate(GenerateArgs {
            target,
            options: args.generate,
            force,
        }),
        Task::Validate => TaskCommand::Validate(ValidateArgs {
            target,
            options: args.validate,
            force,
        }),
        Task::Upload => TaskCommand::Upload(UploadArgs { target }),
        _ => TaskCommand::Load(LoadArgs { target }),
    }
}

fn rejected_on(done: &[TaskMetrics], ds: NaiveDate) -> bool {
    let ds = ds.to_string();
    done.iter().any(|m| {
        m.task == Task::Validate && m.status == Status::Rejected && m.ds.as_deref() == Some(&ds)
    })
}

fn outcome(m: &TaskMetrics) -> String {
    let mut s = m.status.to_string();
    if m.reused {
        s.push_str(" (reused)");
    }
    s
}

/// A human table on stderr: one line per dataset and day.
fn print_summary(datasets: &[Dataset], dates: &[NaiveDate], done: &[TaskMetrics]) {
    let find = |task: Task, dataset: Dataset, ds: &str| {
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
        for &dataset in datasets {
            let generated = find(Task::Generate, dataset, &ds).map_or(0, |m| m.rows_out);
            let validated = find(Task::Validate, dataset, &ds);
            let uploaded = find(Task::Upload, dataset, &ds);
            let loaded = find(Task::Load, dataset, &ds);
            let _ = writeln!(
                out,
                "{:<10}  {:<16} {:>10} {:>10} {:>11}  {:<12} {:<13} {:<16} {:<14}",
                ds,
                dataset.name(),
                generated,
                validated.map_or(0, |m| m.rows_out),
                validated.map_or(0, |m| m.invalid_rows),
                validated.map_or("-", |m| m.status.name()),
                validated.map_or(0, |m| m.new_signatures.len()),
                uploaded.map_or("-", |m| m.status.name()),
                loaded.map_or("-", |m| m.status.name()),
            );
        }
        let transformed = done
            .iter()
            .find(|m| m.task == Task::Transform && m.ds.as_deref() == Some(ds.as_str()));
        let _ = match transformed.and_then(|m| m.details.as_ref()) {
            Some(Details::Transform(t)) => writeln!(
                out,
                "{ds}  marts: {} rows inserted, {} updated; data tests: {} passed, {} warned, {} failed",
                t.inserted, t.updated, t.tests_passed, t.tests_warned, t.tests_failed,
            ),
            _ => writeln!(out, "{ds}  marts: not built (a file was rejected)"),
        };
        let report = done
            .iter()
            .find(|m| m.task == Task::Report && m.ds.as_deref() == Some(ds.as_str()))
            .and_then(|m| m.outputs.get("report"));
        if let Some(url) = report {
            let _ = writeln!(out, "{ds}  data-quality report: {url}");
        }
    }
}
