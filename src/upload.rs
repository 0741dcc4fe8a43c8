//! `upload DATASET --ds D`: publish the valid and quarantine slices from the
//! landing area to the lake, idempotently.
//!
//! The lake object itself is the truth: an object whose size and MD5 match
//! the landing slice is left alone (`already_uploaded`), so a re-run in a
//! fresh pod with a fresh metadata database still writes nothing.

use std::io::Cursor;
use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::{ParquetReader, SerReader};
use serde_json::json;
use tracing::info;

use crate::catalog::{Dataset, Zone};
use crate::context::Context;
use crate::exit;
use crate::metadata::FileRecord;
use crate::metrics::TaskMetrics;
use crate::storage::md5_hex;

pub fn run(ctx: &Context, dataset: Dataset, ds: NaiveDate) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let mut metrics = TaskMetrics::new("upload", Some(dataset.to_string()), Some(ds.to_string()));
    let mut objects = Vec::new();
    let mut changed = 0;
    let mut found = 0;

    for zone in [Zone::Valid, Zone::Quarantine] {
        let key = dataset.object_key(zone, ds);
        let Some(bytes) = ctx.landing.get(&key)? else {
            // Mirror the landing area: a slice validation no longer produces
            // (say, the file is now rejected) must not linger in the lake.
            if ctx.lake.delete(&key)? {
                changed += 1;
                objects.push(json!({"zone": zone.prefix(), "key": key, "status": "removed"}));
            }
            continue;
        };
        found += 1;
        let file = FileRecord {
            content_md5: md5_hex(&bytes),
            bytes: bytes.len() as u64,
        };
        let in_lake = ctx.lake.stat(&key)?;
        let same = in_lake.is_some_and(|s| s.md5 == file.content_md5 && s.bytes == file.bytes);
        let status = if same {
            "already_uploaded"
        } else {
            ctx.lake.put_with_md5(&key, &bytes, &file.content_md5)?;
            changed += 1;
            "uploaded"
        };
        let rows = parquet_rows(&bytes);
        match zone {
            Zone::Valid => metrics.rows_out = rows,
            _ => metrics.invalid_rows = rows,
        }
        ctx.metadata
            .record_upload(&key, dataset, ds, zone.prefix(), &file, status)?;
        metrics
            .outputs
            .insert(zone.prefix().into(), ctx.lake.url(&key));
        objects.push(json!({
            "zone": zone.prefix(),
            "key": key,
            "status": status,
            "bytes": file.bytes,
            "md5": file.content_md5,
            "rows": rows,
        }));
        info!(%dataset, %ds, key, status, bytes = file.bytes, "published");
    }

    if found == 0 && changed == 0 {
        return Err(exit::nothing_to_do(format!(
            "nothing to publish for {dataset} {ds}: validate has not produced any slice"
        )));
    }
    metrics.rows_in = metrics.rows_out + metrics.invalid_rows;
    metrics.status = if changed == 0 {
        "already_uploaded"
    } else {
        "uploaded"
    }
    .into();
    metrics.extra.insert("objects".into(), objects.into());
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    Ok(metrics)
}

/// Row count from the Parquet footer; 0 for a slice that is not Parquet.
fn parquet_rows(bytes: &[u8]) -> u64 {
    ParquetReader::new(Cursor::new(bytes))
        .num_rows()
        .map_or(0, |n| n as u64)
}
