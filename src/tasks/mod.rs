//! The tasks: one module per subcommand, each with one entry point,
//! `run(ctx: &mut Context, args: &XArgs) -> Result<TaskMetrics>`, and its
//! own typed details in the metrics. `run` here times whichever the
//! command names; `failed` makes the metrics of one that did not finish.

pub(crate) mod generate;
pub(crate) mod load;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod setup;
pub(crate) mod sql;
pub(crate) mod transform;
pub(crate) mod upload;
pub(crate) mod validate;

use std::time::Instant;

use anyhow::Result;

use crate::cli::TaskCommand;
use crate::context::Context;
use crate::exit::ExitCode;
use crate::metrics::{AirflowRun, Status, TaskMetrics};

/// Runs the task `command` names, and times it.
pub(crate) fn run(ctx: &mut Context, command: &TaskCommand) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let mut metrics = match command {
        TaskCommand::Generate(args) => generate::run(ctx, args),
        TaskCommand::Validate(args) => validate::run(ctx, args),
        TaskCommand::Upload(args) => upload::run(ctx, args),
        TaskCommand::Load(args) => load::run(ctx, args),
        TaskCommand::Transform(args) => transform::run(ctx, args),
        TaskCommand::Setup(args) => setup::run(ctx, args),
        TaskCommand::Sql(args) => sql::run(ctx, args),
        TaskCommand::Report(args) => report::run(ctx, args),
        TaskCommand::Run(args) => run::run(ctx, args),
    }?;
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    Ok(metrics)
}

/// The metrics of a task that did not finish, with the error on one line.
pub(crate) fn failed(
    command: &TaskCommand,
    airflow: &AirflowRun,
    code: ExitCode,
    error: String,
) -> TaskMetrics {
    let (dataset, ds) = command.target();
    let mut metrics = TaskMetrics::new(
        command.task(),
        dataset.map(str::to_string),
        ds.map(|d| d.to_string()),
        airflow,
    );
    metrics.status = match code {
        ExitCode::NothingToDo => Status::Skipped,
        _ => Status::Failed,
    };
    metrics.exit_code = code.code();
    metrics.error = Some(error);
    metrics
}
