//! `setup [--all]`: create the warehouse objects of sql/snowflake/setup.sql.

use anyhow::Result;

use crate::cli::SetupArgs;
use crate::context::Context;
use crate::metrics::{Details, SetupDetails, Status, Task, TaskMetrics};

pub(crate) fn run(ctx: &mut Context, args: &SetupArgs) -> Result<TaskMetrics> {
    let mut metrics = ctx.metrics(Task::Setup, None, None);
    let statements = ctx.warehouse.setup(args.all)?;
    metrics.status = Status::SetUp;
    metrics.details = Some(Details::Setup(SetupDetails {
        warehouse: ctx.warehouse.get()?.backend().name().into(),
        statements,
    }));
    Ok(metrics)
}
