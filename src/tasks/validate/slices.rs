//! The slices validate leaves in the landing area for a ds, written and
//! checked against their record in stage_log (`metrics::Slices`).

use anyhow::Result;
use chrono::NaiveDate;

use crate::catalog::{Dataset, Zone};
use crate::context::Context;
use crate::digest::md5_hex;
use crate::metrics::{SliceRecord, Slices, TaskMetrics};
use crate::storage::ObjectStore;

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
    valid: Option<Vec<u8>>,
    quarantine: Option<Vec<u8>>,
) -> Result<Slices> {
    let mut slices = Slices::default();
    for (zone, name, parquet) in [
        (Zone::Valid, "valid", valid),
        (Zone::Quarantine, "quarantine", quarantine),
    ] {
        let key = dataset.object_key(zone, ds);
        let record = match parquet {
            Some(bytes) => {
                let md5 = md5_hex(&bytes);
                ctx.landing.put_with_md5(&key, &bytes, &md5)?;
                metrics.outputs.insert(name.into(), ctx.landing.url(&key));
                Some(SliceRecord {
                    key,
                    bytes: bytes.len() as u64,
                    md5,
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
