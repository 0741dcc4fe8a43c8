//! `upload DATASET --ds D`: publish the valid and quarantine slices from the
//! landing area to the lake, idempotently.
//!
//! The lake object itself is the truth: an object whose size and MD5 match
//! the landing slice is left alone (`already_uploaded`), so a re-run in a
//! fresh pod with a fresh metadata database still writes nothing.
//!
//! A lake object is removed only when validate positively recorded that its
//! slice no longer exists, never because the landing area lacks it: a
//! quarantine slice goes when a re-validation found no invalid row; a valid
//! slice never goes (a rejected re-delivery keeps the day's last good data,
//! in the lake and in the warehouse alike, and says so).

use std::io::Cursor;
use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::{ParquetReader, SerReader};
use serde_json::json;
use tracing::{info, warn};

use crate::catalog::{Dataset, Zone};
use crate::context::Context;
use crate::exit;
use crate::metadata::FileRecord;
use crate::metrics::TaskMetrics;
use crate::storage::md5_hex;
use crate::validate::Slices;

pub fn run(ctx: &Context, dataset: Dataset, ds: NaiveDate) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let mut metrics = TaskMetrics::new("upload", Some(dataset.to_string()), Some(ds.to_string()));
    // What validate positively recorded for this ds. Without a record (a
    // fresh metadata database) upload publishes what it finds and removes
    // nothing.
    let validated = ctx
        .metadata
        .stage(dataset.name(), ds, "validate")?
        .and_then(|done| serde_json::from_value::<TaskMetrics>(done.metrics).ok())
        .and_then(|m| Slices::of(&m));
    let mut objects = Vec::new();
    let mut changed = 0;
    let mut found = 0;

    for zone in [Zone::Valid, Zone::Quarantine] {
        let key = dataset.object_key(zone, ds);
        let recorded = validated.as_ref().map(|slices| slices.get(zone));
        let Some(bytes) = ctx.landing.get(&key)? else {
            match recorded {
                // Validate wrote this slice, and it is gone from the landing
                // area: publish nothing, remove nothing.
                Some(Some(slice)) => {
                    if ctx.lake.md5(&key)?.as_deref() != Some(slice.md5.as_str()) {
                        return Err(exit::nothing_to_do(format!(
                            "{dataset} {ds}: the {} slice validate wrote ({}) is missing from the \
                             landing area and the lake does not hold it; re-run validate",
                            zone.prefix(),
                            ctx.landing.url(&key)
                        )));
                    }
                    found += 1;
                    objects.push(
                        json!({"zone": zone.prefix(), "key": key, "status": "already_uploaded"}),
                    );
                }
                // A rejected file: the lake keeps the valid slice published
                // before, which is what the warehouse holds.
                Some(None) if zone == Zone::Valid && ctx.lake.exists(&key)? => {
                    warn!(%dataset, %ds, key, "file rejected; the lake keeps the valid slice published before");
                    metrics
                        .extra
                        .insert("kept_previous_valid".into(), true.into());
                    objects.push(
                        json!({"zone": zone.prefix(), "key": key, "status": "kept_previous"}),
                    );
                }
                // Validate found no invalid row: an old quarantine slice goes.
                Some(None) if zone == Zone::Quarantine && ctx.lake.delete(&key)? => {
                    changed += 1;
                    objects.push(json!({"zone": zone.prefix(), "key": key, "status": "removed"}));
                }
                // Nothing recorded, or nothing to change.
                _ => {}
            }
            continue;
        };
        found += 1;
        let file = FileRecord {
            content_md5: md5_hex(&bytes),
            bytes: bytes.len() as u64,
        };
        let in_lake = ctx.lake.stat(&key)?;
        let same = in_lake.is_some_and(|s| {
            s.md5.as_deref() == Some(file.content_md5.as_str()) && s.bytes == file.bytes
        });
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
