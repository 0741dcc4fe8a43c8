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

use std::fs::File;

use anyhow::Result;
use polars::prelude::{ParquetReader, SerReader};
use tracing::{info, warn};

use crate::catalog::Zone;
use crate::cli::UploadArgs;
use crate::context::Context;
use crate::exit;
use crate::metadata::FileRecord;
use crate::metrics::{
    Details, ObjectStatus, PublishedObject, SliceContent, Slices, Status, Task, TaskMetrics,
    UploadDetails,
};
use crate::storage::{ObjectStat, Snapshot};

pub(crate) fn run(ctx: &mut Context, args: &UploadArgs) -> Result<TaskMetrics> {
    let ctx = &*ctx;
    let (dataset, ds) = (ctx.dataset(&args.target.dataset)?, args.target.ds);
    let mut metrics = ctx.metrics(Task::Upload, Some(dataset), Some(ds));
    // What validate positively recorded for this ds. Without a record (a
    // fresh metadata database) upload publishes what it finds and removes
    // nothing.
    let validated = ctx.validated(dataset, ds)?;
    let validated = validated.as_ref().and_then(Slices::of);
    let mut kept_previous_valid = false;
    let mut objects = Vec::new();
    let mut changed = 0;
    let mut found = 0;

    for zone in [Zone::Valid, Zone::Quarantine] {
        let key = dataset.object_key(zone, ds);
        let recorded = validated.as_ref().map(|slices| slices.get(zone));
        // One version of the slice, compared, counted and published (a
        // re-validation may replace it meanwhile), streamed, not held.
        let Some(slice) = ctx.landing.snapshot(&key)? else {
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
                    objects.push(PublishedObject::bare(
                        zone,
                        key,
                        ObjectStatus::AlreadyUploaded,
                    ));
                }
                // A rejected file: the lake keeps the valid slice published
                // before, which is what the warehouse holds.
                Some(None) if zone == Zone::Valid && ctx.lake.exists(&key)? => {
                    warn!(%dataset, %ds, key, "file rejected; the lake keeps the valid slice published before");
                    kept_previous_valid = true;
                    objects.push(PublishedObject::bare(zone, key, ObjectStatus::KeptPrevious));
                }
                // Validate found no invalid row: an old quarantine slice goes.
                Some(None) if zone == Zone::Quarantine && ctx.lake.delete(&key)? => {
                    changed += 1;
                    objects.push(PublishedObject::bare(zone, key, ObjectStatus::Removed));
                }
                // Nothing recorded, or nothing to change.
                _ => {}
            }
            continue;
        };
        found += 1;
        // The snapshot is hashed only to compare it with a lake object of
        // its size; otherwise while it is sent, expected to be what
        // validate recorded.
        let same = match ctx.lake.stat(&key)? {
            Some(ObjectStat {
                bytes,
                md5: Some(md5),
            }) if bytes == slice.bytes => md5 == slice.md5()?,
            _ => false,
        };
        let status = if same {
            ObjectStatus::AlreadyUploaded
        } else {
            let expected = recorded.flatten().map(|r| r.md5.as_str());
            slice.put(ctx.lake.as_ref(), &key, expected)?;
            changed += 1;
            ObjectStatus::Uploaded
        };
        let file = FileRecord {
            content_md5: slice.md5()?.to_string(),
            bytes: slice.bytes,
        };
        let rows = parquet_rows(&slice);
        match zone {
            Zone::Valid => metrics.rows_out = rows,
            _ => metrics.invalid_rows = rows,
        }
        ctx.metadata
            .record_upload(&key, dataset, ds, zone.prefix(), &file, status.name())?;
        metrics.reads(&ctx.landing.url(&key));
        metrics.writes(zone.prefix(), ctx.lake.url(&key));
        info!(%dataset, %ds, key, status = status.name(), bytes = file.bytes, "published");
        objects.push(PublishedObject {
            content: Some(SliceContent {
                bytes: file.bytes,
                md5: file.content_md5,
                rows,
            }),
            ..PublishedObject::bare(zone, key, status)
        });
    }

    if found == 0 && changed == 0 {
        return Err(exit::nothing_to_do(format!(
            "nothing to publish for {dataset} {ds}: validate has not produced any slice"
        )));
    }
    metrics.rows_in = metrics.rows_out + metrics.invalid_rows;
    metrics.status = match changed {
        0 => Status::AlreadyUploaded,
        _ => Status::Uploaded,
    };
    metrics.details = Some(Details::Upload(UploadDetails {
        objects,
        kept_previous_valid,
    }));
    Ok(metrics)
}

/// Row count from the Parquet footer; 0 for a slice that is not Parquet.
fn parquet_rows(slice: &Snapshot) -> u64 {
    (File::open(&slice.path).ok())
        .and_then(|file| ParquetReader::new(file).num_rows().ok())
        .map_or(0, |n| n as u64)
}
