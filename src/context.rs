//! What every task works against: the landing area, the lake, the
//! metadata database and the warehouse, opened once from the validated
//! settings (the warehouse on first use).

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use tracing::warn;

use crate::catalog::Dataset;
use crate::cli::Limits;
use crate::metadata::{Metadata, StageRecord, now};
use crate::metrics::{AirflowRun, Task, TaskMetrics};
use crate::settings::Settings;
use crate::storage::{self, ObjectStore};
use crate::warehouse::LazyWarehouse;

pub(crate) struct Context {
    pub landing: Box<dyn ObjectStore>,
    pub lake: Box<dyn ObjectStore>,
    pub metadata: Metadata,
    pub warehouse: LazyWarehouse,
    pub limits: Limits,
    pub airflow: AirflowRun,
}

impl Context {
    pub(crate) fn open(settings: &Settings) -> Result<Self> {
        Ok(Self {
            landing: storage::open(&settings.landing_url, "PIPELINE_LANDING_URL", &settings.s3)?,
            lake: storage::open(&settings.lake_url, "PIPELINE_LAKE_URL", &settings.s3)?,
            metadata: Metadata::open(&settings.metadata_url, settings.limits.metadata_timeout_s)?,
            warehouse: LazyWarehouse::new(settings),
            limits: settings.limits,
            airflow: settings.airflow.clone(),
        })
    }

    /// The metrics of a task starting now, for `dataset` and `ds` where it
    /// has them.
    pub(crate) fn metrics(
        &self,
        task: Task,
        dataset: Option<Dataset>,
        ds: Option<NaiveDate>,
    ) -> TaskMetrics {
        TaskMetrics::new(
            task,
            dataset.map(|d| d.to_string()),
            ds.map(|d| d.to_string()),
            &self.airflow,
        )
    }
}

/// A run of one stage (generate, validate) for one file, with its
/// stage_log bookkeeping: work already done for the same input is reused.
pub(crate) struct Stage {
    pub task: Task,
    pub dataset: Dataset,
    pub ds: NaiveDate,
    /// What the output depends on: parameters, input hash, rules version.
    pub fingerprint: String,
    clock: Instant,
    started_at: String,
}

impl Stage {
    pub(crate) fn start(task: Task, dataset: Dataset, ds: NaiveDate, fingerprint: String) -> Self {
        Self {
            task,
            dataset,
            ds,
            fingerprint,
            clock: Instant::now(),
            started_at: now(),
        }
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    pub(crate) fn metrics(&self, ctx: &Context) -> TaskMetrics {
        ctx.metrics(self.task, Some(self.dataset), Some(self.ds))
    }

    /// The metrics of an earlier run on the same input, marked reused, when
    /// `outputs_intact` confirms that what it wrote is still there as it
    /// wrote it; `None` means the work must be done (again).
    pub(crate) fn reusable(
        &self,
        ctx: &Context,
        outputs_intact: impl FnOnce(&TaskMetrics) -> Result<bool>,
    ) -> Result<Option<TaskMetrics>> {
        let done = ctx
            .metadata
            .stage(self.dataset.name(), self.ds, self.task.name())?;
        let Some(done) = done.filter(|d| d.fingerprint == self.fingerprint) else {
            return Ok(None);
        };
        let mut metrics: TaskMetrics = serde_json::from_value(done.metrics)?;
        if !outputs_intact(&metrics)? {
            warn!(
                dataset = %self.dataset, ds = %self.ds, stage = %self.task,
                "the outputs recorded in stage_log are gone or changed; redoing the stage"
            );
            return Ok(None);
        }
        // The run asking now, not the one that did the work.
        let run = ctx.airflow.clone();
        (metrics.dag_id, metrics.task_id, metrics.run_id) = (run.dag_id, run.task_id, run.run_id);
        metrics.reused = true;
        Ok(Some(metrics))
    }

    /// Records the finished stage in stage_log.
    pub(crate) fn complete(&self, ctx: &Context, metrics: &mut TaskMetrics) -> Result<()> {
        metrics.duration_ms = self.elapsed_ms();
        let record = StageRecord {
            fingerprint: self.fingerprint.clone(),
            status: metrics.status.name().to_string(),
            metrics: serde_json::to_value(&*metrics)?,
        };
        ctx.metadata.record_stage(
            self.dataset.name(),
            self.ds,
            self.task.name(),
            &record,
            &self.started_at,
        )
    }
}
