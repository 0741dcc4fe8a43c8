//! `load DATASET --ds D`: the lake's valid slice into the warehouse's RAW
//! table, replacing that ds's partition in one transaction.
//!
//! RAW.LOAD_LOG in the warehouse itself remembers which file (by MD5) each
//! partition came from, so a re-run with an unchanged file does nothing,
//! even from a fresh pod with a fresh metadata database.

use anyhow::Result;
use chrono::NaiveDate;
use tracing::info;

use crate::catalog::{Dataset, Zone};
use crate::cli::LoadArgs;
use crate::context::Context;
use crate::digest::is_md5_hex;
use crate::exit;
use crate::metrics::{Details, LoadDetails, Status, Task, TaskMetrics};
use crate::storage::ObjectStore;
use crate::warehouse::{self, Warehouse, count, date_literal, raw_table};

pub(crate) fn run(ctx: &mut Context, args: &LoadArgs) -> Result<TaskMetrics> {
    let (dataset, ds) = (ctx.dataset(&args.target.dataset)?, args.target.ds);
    let mut metrics = ctx.metrics(Task::Load, Some(dataset), Some(ds));
    let key = dataset.object_key(Zone::Valid, ds);
    // Never an empty or foreign MD5: the store's word only when it is well
    // formed, the bytes' hash otherwise.
    let Some(md5) = ctx.lake.md5(&key)? else {
        return Err(exit::nothing_to_do(format!(
            "no valid slice of {dataset} for {ds} in the lake ({}): upload has not published one",
            ctx.lake.url(&key)
        )));
    };
    let wh = ctx.warehouse.get()?;
    let table = raw_table(dataset);
    wh.execute(&warehouse::raw_table_ddl(dataset))?;
    let loaded = wh.query(&format!(
        "SELECT CONTENT_MD5, ROWS_LOADED FROM RAW.LOAD_LOG WHERE {}",
        load_log_entry(dataset, ds)
    ))?;
    let same_file = loaded
        .first()
        .filter(|row| row.first().cloned().flatten().as_deref() == Some(md5.as_str()));
    let (status, rows, replaced) = match same_file {
        Some(row) => {
            let rows = row.get(1).cloned().flatten().and_then(|n| n.parse().ok());
            (Status::AlreadyLoaded, rows.unwrap_or(0), 0)
        }
        None => {
            let (rows, replaced) = warehouse::in_transaction(wh, |wh| {
                replace_partition(wh, dataset, ds, ctx.lake.as_ref(), &key, &md5)
            })?;
            (Status::Loaded, rows, replaced)
        }
    };
    let mut clock = std::time::Instant::now();
    wh.checkpoint()?;
    metrics.lap("checkpoint", &mut clock);
    info!(%dataset, %ds, table, %status, rows, replaced, "loaded");

    metrics.status = status;
    metrics.rows_in = rows;
    metrics.rows_out = rows;
    let source = ctx.lake.url(&key);
    metrics.reads(&source);
    metrics.lineage.outputs.push(wh.lineage(&table));
    metrics.outputs.insert("table".into(), table);
    metrics.outputs.insert("source".into(), source);
    metrics.details = Some(Details::Load(LoadDetails {
        warehouse: wh.backend().name().into(),
        replaced_rows: replaced,
        content_md5: md5,
    }));
    Ok(metrics)
}

/// Deletes the partition, appends the file and logs it; returns (rows
/// loaded, rows replaced).
fn replace_partition(
    wh: &mut dyn Warehouse,
    dataset: Dataset,
    ds: NaiveDate,
    lake: &dyn ObjectStore,
    key: &str,
    md5: &str,
) -> Result<(u64, u64)> {
    let table = raw_table(dataset);
    let in_partition = format!("DS = {}", date_literal(ds));
    let replaced = count(
        wh,
        &format!("SELECT COUNT(*) FROM {table} WHERE {in_partition}"),
    )?;
    wh.execute(&format!("DELETE FROM {table} WHERE {in_partition}"))?;
    wh.append_partition(dataset, ds, lake, key)?;
    let rows = count(
        wh,
        &format!("SELECT COUNT(*) FROM {table} WHERE {in_partition}"),
    )?;
    wh.execute(&format!(
        "DELETE FROM RAW.LOAD_LOG WHERE {}",
        load_log_entry(dataset, ds)
    ))?;
    debug_assert!(is_md5_hex(md5));
    wh.execute_bound(
        &format!(
            "INSERT INTO RAW.LOAD_LOG (DATASET, DS, CONTENT_MD5, ROWS_LOADED, LOADED_AT) \
             VALUES (?, {}, ?, {rows}, CURRENT_TIMESTAMP)",
            date_literal(ds)
        ),
        &[dataset.name(), md5],
    )?;
    Ok((rows, replaced))
}

/// The RAW.LOAD_LOG row of one partition.
fn load_log_entry(dataset: Dataset, ds: NaiveDate) -> String {
    format!("DATASET = '{dataset}' AND DS = {}", date_literal(ds))
}
