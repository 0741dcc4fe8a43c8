//! `sql QUERY` / `sql --file FILE`: SQL on the warehouse. The last
//! statement's rows go to stdout tab-separated (NULL as an empty field) and
//! into the metrics JSON as `rows`; every statement's time is in
//! `statements`.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::cli::SqlCmd;
use crate::context::Context;
use crate::exit;
use crate::metrics::TaskMetrics;
use crate::warehouse::sql;

pub fn run(ctx: &mut Context, cmd: &SqlCmd) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let mut metrics = TaskMetrics::new("sql", None, None);
    let script = match (&cmd.query, &cmd.file) {
        (Some(query), None) => query.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| exit::usage(format!("cannot read {}: {e}", path.display())))?,
        _ => return Err(exit::usage("give a query or --file, not both")),
    };
    let wh = ctx.warehouse.get()?;
    let mut rows = Vec::new();
    let mut timings = Vec::new();
    for statement in sql::statements(&script) {
        let started = Instant::now();
        rows = wh.query(&statement)?;
        timings.push(json!({
            "sql": statement,
            "rows": rows.len(),
            "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        }));
    }
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let fields: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("")).collect();
        writeln!(out, "{}", fields.join("\t"))?;
    }
    metrics.status = "queried".into();
    metrics.rows_out = rows.len() as u64;
    metrics
        .extra
        .insert("warehouse".into(), wh.backend().into());
    metrics
        .extra
        .insert("rows".into(), serde_json::to_value(&rows)?);
    metrics.extra.insert("statements".into(), timings.into());
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    Ok(metrics)
}
