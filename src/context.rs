//! What every task works against: the landing area, the lake, the
//! metadata database and the warehouse, opened once from the validated
//! settings (the warehouse on first use).

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;

use crate::catalog::Dataset;
use crate::cli::Settings;
use crate::metadata::{Metadata, StageRecord};
use crate::metrics::TaskMetrics;
use crate::storage::{self, ObjectStore};
use crate::warehouse::LazyWarehouse;

pub struct Context {
    pub landing: Box<dyn ObjectStore>,
    pub lake: Box<dyn ObjectStore>,
    pub metadata: Metadata,
    pub warehouse: LazyWarehouse,
}

impl Context {
    pub fn open(settings: &Settings) -> Result<Self> {
        Ok(Self {
            landing: storage::open(&settings.landing_url, "PIPELINE_LANDING_URL")?,
            lake: storage::open(&settings.lake_url, "PIPELINE_LAKE_URL")?,
            metadata: Metadata::open(&settings.metadata_url)?,
            warehouse: LazyWarehouse::new(&settings.warehouse_url, &settings.lake_url),
        })
    }
}

/// A run of one stage (generate, validate) for one file, with its
/// stage_log bookkeeping: work already done for the same input is reused.
pub struct Stage {
    pub name: &'static str,
    pub dataset: Dataset,
    pub ds: NaiveDate,
    /// What the output depends on: parameters, input hash, rules version.
    pub fingerprint: String,
    clock: Instant,
    started_at: String,
}

impl Stage {
    pub fn start(name: &'static str, dataset: Dataset, ds: NaiveDate, fingerprint: String) -> Self {
        Self {
            name,
            dataset,
            ds,
            fingerprint,
            clock: Instant::now(),
            started_at: now(),
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    pub fn metrics(&self) -> TaskMetrics {
        TaskMetrics::new(
            self.name,
            Some(self.dataset.to_string()),
            Some(self.ds.to_string()),
        )
    }

    /// The metrics of an earlier run on the same input, marked reused: no
    /// new work, so nothing new to alert on.
    pub fn reusable(&self, ctx: &Context) -> Result<Option<TaskMetrics>> {
        let done = ctx
            .metadata
            .stage(self.dataset.name(), self.ds, self.name)?;
        let Some(done) = done.filter(|d| d.fingerprint == self.fingerprint) else {
            return Ok(None);
        };
        let mut metrics: TaskMetrics = serde_json::from_value(done.metrics)?;
        metrics.reused = true;
        metrics.has_failure_delta = false;
        metrics.new_signatures.clear();
        metrics.duration_ms = self.elapsed_ms();
        Ok(Some(metrics))
    }

    /// Records the finished stage in stage_log.
    pub fn complete(&self, ctx: &Context, metrics: &mut TaskMetrics) -> Result<()> {
        metrics.duration_ms = self.elapsed_ms();
        let record = StageRecord {
            fingerprint: self.fingerprint.clone(),
            status: metrics.status.clone(),
            metrics: serde_json::to_value(&*metrics)?,
        };
        ctx.metadata.record_stage(
            self.dataset.name(),
            self.ds,
            self.name,
            &record,
            &self.started_at,
        )
    }
}

/// Wall-clock now in RFC 3339, for stage_log.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
