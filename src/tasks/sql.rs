//! `sql QUERY` / `sql --file FILE`: SQL on the warehouse. The last
//! statement's rows go to stdout tab-separated (NULL as an empty field) and
//! into the metrics JSON as `rows`; every statement's time is in
//! `statements`.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use crate::cli::SqlArgs;
use crate::context::Context;
use crate::exit;
use crate::metrics::{Details, SqlDetails, StatementRun, Status, Task, TaskMetrics};
use crate::warehouse::project;

pub(crate) fn run(ctx: &mut Context, args: &SqlArgs) -> Result<TaskMetrics> {
    let mut metrics = ctx.metrics(Task::Sql, None, None);
    let script = match (&args.query, &args.file) {
        (Some(query), None) => query.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| exit::usage(format!("cannot read {}: {e}", path.display())))?,
        _ => return Err(exit::usage("give a query or --file, not both")),
    };
    let wh = ctx.warehouse.get()?;
    let mut rows = Vec::new();
    let mut statements = Vec::new();
    for sql in project::statements(&script) {
        let started = Instant::now();
        rows = wh.query(&sql)?;
        statements.push(StatementRun {
            sql,
            rows: rows.len(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
    }
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let fields: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("")).collect();
        writeln!(out, "{}", fields.join("\t"))?;
    }
    metrics.status = Status::Queried;
    metrics.rows_out = rows.len() as u64;
    metrics.details = Some(Details::Sql(SqlDetails {
        warehouse: wh.backend().name().into(),
        rows,
        statements,
    }));
    Ok(metrics)
}
