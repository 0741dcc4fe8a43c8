//! What every task works against: the landing area, the lake, the
//! metadata database and the warehouse, opened once from the validated
//! settings (the warehouse on first use).

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use tracing::warn;

use crate::catalog::Dataset;
use crate::cli::{Limits, Settings};
use crate::metadata::{Metadata, StageRecord};
use crate::metrics::TaskMetrics;
use crate::storage::{self, ObjectStore};
use crate::warehouse::LazyWarehouse;

pub struct Context {
    pub landing: Box<dyn ObjectStore>,
    pub lake: Box<dyn ObjectStore>,
    pub metadata: Metadata,
    pub warehouse: LazyWarehouse,
    pub limits: Limits,
}

impl Context {
    pub fn open(settings: &Settings) -> Result<Self> {
        Ok(Self {
            landing: storage::open(&settings.landing_url, "PIPELINE_LANDING_URL")?,
            lake: storage::open(&settings.lake_url, "PIPELINE_LAKE_URL")?,
            metadata: Metadata::open(&settings.metadata_url, settings.limits.metadata_timeout_s)?,
            warehouse: LazyWarehouse::new(
                &settings.warehouse_url,
                &settings.lake_url,
                settings.limits.warehouse_timeout_s,
            ),
            limits: settings.limits,
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

    /// The metrics of an earlier run on the same input, marked reused, when
    /// `outputs_intact` confirms that what it wrote is still there as it
    /// wrote it; `None` means the work must be done (again).
    pub fn reusable(
        &self,
        ctx: &Context,
        outputs_intact: impl FnOnce(&TaskMetrics) -> Result<bool>,
    ) -> Result<Option<TaskMetrics>> {
        let done = ctx
            .metadata
            .stage(self.dataset.name(), self.ds, self.name)?;
        let Some(done) = done.filter(|d| d.fingerprint == self.fingerprint) else {
            return Ok(None);
        };
        let mut metrics: TaskMetrics = serde_json::from_value(done.metrics)?;
        if !outputs_intact(&metrics)? {
            warn!(
                dataset = %self.dataset, ds = %self.ds, stage = self.name,
                "the outputs recorded in stage_log are gone or changed; redoing the stage"
            );
            return Ok(None);
        }
        // The run asking now, not the one that did the work.
        let now = self.metrics();
        (metrics.dag_id, metrics.task_id, metrics.run_id) = (now.dag_id, now.task_id, now.run_id);
        metrics.reused = true;
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
