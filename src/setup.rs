//! `setup [--all]`: create the warehouse objects of sql/snowflake/setup.sql.

use std::time::Instant;

use anyhow::Result;

use crate::context::Context;
use crate::metrics::TaskMetrics;

pub fn run(ctx: &mut Context, everything: bool) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let mut metrics = TaskMetrics::new("setup", None, None);
    let statements = ctx.warehouse.setup(everything)?;
    metrics.status = "set_up".into();
    let wh = ctx.warehouse.get()?;
    metrics
        .extra
        .insert("warehouse".into(), wh.backend().into());
    metrics.extra.insert("statements".into(), statements.into());
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    Ok(metrics)
}
