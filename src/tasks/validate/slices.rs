//! The slices validate leaves in the landing area for a ds, written and
//! checked against their record in stage_log (`metrics::Slices`).

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, Schema};
use tempfile::TempPath;

use crate::catalog::{Dataset, Zone};
use crate::context::Context;
use crate::digest::Md5Writer;
use crate::formats::ParquetSink;
use crate::metrics::{SliceRecord, Slices, TaskMetrics};
use crate::storage::ObjectStore;

/// A slice's Parquet written to a temporary file as batches are checked,
/// hashed as it is written, so that nothing holds it whole.
pub(super) struct SliceFile {
    sink: ParquetSink<Md5Writer<BufWriter<File>>>,
    path: TempPath,
}

/// A slice written to its end, waiting to be put in the landing area.
pub(super) struct FinishedSlice {
    path: TempPath,
    md5: String,
    bytes: u64,
}

impl SliceFile {
    pub(super) fn new(schema: &Schema) -> Result<Self> {
        let (file, path) = tempfile::NamedTempFile::new()?.into_parts();
        let out = Md5Writer::new(BufWriter::with_capacity(1 << 20, file));
        Ok(Self {
            sink: ParquetSink::new(schema, out)?,
            path,
        })
    }

    /// A slice of one frame's rows, finished.
    pub(super) fn of(frame: &DataFrame) -> Result<FinishedSlice> {
        let mut slice = Self::new(frame.schema())?;
        slice.push(frame.clone())?;
        slice.finish()
    }

    pub(super) fn push(&mut self, rows: DataFrame) -> Result<()> {
        self.sink.push(rows)
    }

    pub(super) fn rows(&self) -> u64 {
        self.sink.rows()
    }

    pub(super) fn finish(self) -> Result<FinishedSlice> {
        let (mut out, md5, bytes) = self.sink.finish()?.finish();
        out.flush()?;
        Ok(FinishedSlice {
            path: self.path,
            md5,
            bytes,
        })
    }
}

/// Whether every recorded slice is in `store` as recorded, and no other.
pub(super) fn intact(
    slices: &Slices,
    store: &dyn ObjectStore,
    dataset: Dataset,
    ds: NaiveDate,
) -> Result<bool> {
    for zone in [Zone::Valid, Zone::Quarantine] {
        let key = dataset.object_key(zone, ds);
        let found = match slices.get(zone) {
            Some(slice) => store
                .stat(&key)?
                .is_some_and(|s| s.bytes == slice.bytes && s.md5.as_ref() == Some(&slice.md5)),
            None => !store.exists(&key)?,
        };
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes each slice's Parquet and names it in the outputs, or removes a
/// stale one from an earlier validation; returns what it wrote.
pub(super) fn write(
    ctx: &Context,
    metrics: &mut TaskMetrics,
    dataset: Dataset,
    ds: NaiveDate,
    valid: Option<FinishedSlice>,
    quarantine: Option<FinishedSlice>,
) -> Result<Slices> {
    let mut slices = Slices::default();
    for (zone, name, parquet) in [
        (Zone::Valid, "valid", valid),
        (Zone::Quarantine, "quarantine", quarantine),
    ] {
        let key = dataset.object_key(zone, ds);
        let record = match parquet {
            Some(slice) => {
                ctx.landing.put_file(&key, &slice.path, &slice.md5)?;
                metrics.outputs.insert(name.into(), ctx.landing.url(&key));
                Some(SliceRecord {
                    key,
                    bytes: slice.bytes,
                    md5: slice.md5,
                })
            }
            None => {
                ctx.landing.delete(&key)?;
                None
            }
        };
        slices.set(zone, record);
    }
    Ok(slices)
}
