//! The slices validate leaves in the landing area for a ds, written and
//! checked against their record in stage_log (`metrics::Slices`).

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, Schema};

use crate::catalog::{Dataset, Zone};
use crate::context::Context;
use crate::formats::ParquetSink;
use crate::metrics::{SliceRecord, Slices, TaskMetrics};
use crate::storage::{ObjectStore, Staged, StagedFile};

/// A slice's Parquet written to a temporary file as batches are checked,
/// hashed as it is written, so that nothing holds it whole.
pub(super) struct SliceFile(ParquetSink<StagedFile>);

impl SliceFile {
    pub(super) fn new(schema: &Schema) -> Result<Self> {
        Ok(Self(ParquetSink::new(schema, StagedFile::new()?)?))
    }

    /// A slice of one frame's rows, finished.
    pub(super) fn of(frame: &DataFrame) -> Result<Staged> {
        let mut slice = Self::new(frame.schema())?;
        slice.push(frame.clone())?;
        slice.finish()
    }

    pub(super) fn push(&mut self, rows: DataFrame) -> Result<()> {
        self.0.push(rows)
    }

    pub(super) fn rows(&self) -> u64 {
        self.0.rows()
    }

    pub(super) fn finish(self) -> Result<Staged> {
        self.0.finish()?.finish()
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
    valid: Option<Staged>,
    quarantine: Option<Staged>,
) -> Result<Slices> {
    let mut slices = Slices::default();
    for (zone, name, parquet) in [
        (Zone::Valid, "valid", valid),
        (Zone::Quarantine, "quarantine", quarantine),
    ] {
        let key = dataset.object_key(zone, ds);
        let record = match parquet {
            Some(slice) => {
                slice.put(ctx.landing.as_ref(), &key)?;
                metrics.writes(name, ctx.landing.url(&key));
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
