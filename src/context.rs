//! What every task works against: the landing area, the lake, the
//! metadata database and the warehouse, opened once from the validated
//! settings (the warehouse on first use).

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use tracing::warn;

use crate::catalog::{Catalogue, Dataset};
use crate::cli::Limits;
use crate::exit;
use crate::metadata::{Metadata, StageRecord, now};
use crate::metrics::{AirflowRun, Task, TaskMetrics};
use crate::settings::{Memory, Settings};
use crate::storage::{self, ObjectStore};
use crate::warehouse::LazyWarehouse;

pub(crate) struct Context {
    pub catalogue: &'static Catalogue,
    pub landing: Box<dyn ObjectStore>,
    pub lake: Box<dyn ObjectStore>,
    pub metadata: Metadata,
    pub warehouse: LazyWarehouse,
    pub limits: Limits,
    pub memory: Memory,
    pub airflow: AirflowRun,
    /// The dbt project transform runs, when not the built-in one.
    pub dbt_project_dir: Option<std::path::PathBuf>,
    /// What the project's `env_var()` reads.
    pub dbt_env: crate::dbt::Env,
}

impl Context {
    pub(crate) fn open(settings: &Settings, catalogue: &'static Catalogue) -> Result<Self> {
        Ok(Self {
            catalogue,
            landing: storage::open(&settings.landing_url, "PIPELINE_LANDING_URL", &settings.s3)?,
            lake: storage::open(&settings.lake_url, "PIPELINE_LAKE_URL", &settings.s3)?,
            metadata: Metadata::open(&settings.metadata_url, settings.limits.metadata_timeout_s)?,
            warehouse: LazyWarehouse::new(settings),
            limits: settings.limits,
            memory: settings.memory,
            airflow: settings.airflow.clone(),
            dbt_project_dir: settings.dbt_project_dir.clone(),
            dbt_env: settings.dbt_env.clone(),
        })
    }

    /// The dataset of the contracts that `name` names; a usage error (2)
    /// listing them when none does.
    pub(crate) fn dataset(&self, name: &str) -> Result<Dataset> {
        self.catalogue.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.catalogue.datasets().iter().map(|d| d.name()).collect();
            exit::usage(format!(
                "unknown dataset {name:?}; the contracts declare: {}",
                known.join(", ")
            ))
        })
    }

    /// The metrics validate recorded in stage_log for `dataset` and `ds`,
    /// if it ran. A record this binary cannot read counts as none (upload
    /// then removes nothing), with a warning.
    pub(crate) fn validated(&self, dataset: Dataset, ds: NaiveDate) -> Result<Option<TaskMetrics>> {
        let Some(done) = self
            .metadata
            .stage(dataset.name(), ds, Task::Validate.name())?
        else {
            return Ok(None);
        };
        match serde_json::from_value(done.metrics) {
            Ok(metrics) => Ok(Some(metrics)),
            Err(e) => {
                warn!(%dataset, %ds, error = %e, "validate's stage_log record is unreadable; ignoring it");
                Ok(None)
            }
        }
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

/// The catalogue: the embedded contracts, replaced or extended by the
/// contracts `PIPELINE_CONTRACTS` names (a file, a folder of `.yml`/`.yaml`
/// files read in name order, or an `s3://` object). A contract that cannot
/// be read or is malformed is a configuration error naming it.
pub(crate) fn catalogue(settings: &Settings) -> Result<&'static Catalogue> {
    let files = match settings.contracts.as_deref() {
        None => Vec::new(),
        Some(location) => read_contracts(location, settings)?,
    };
    Catalogue::load(&files).map_err(|e| exit::config(format!("PIPELINE_CONTRACTS: {e}")))
}

fn read_contracts(location: &str, settings: &Settings) -> Result<Vec<(String, String)>> {
    let unreadable = |what: &str, e: &dyn std::fmt::Display| {
        exit::config(format!("PIPELINE_CONTRACTS: cannot read {what}: {e}"))
    };
    if location.starts_with("s3://") {
        let (folder, name) = location
            .rsplit_once('/')
            .filter(|(folder, name)| folder.len() > "s3://".len() && is_yaml(name))
            .ok_or_else(|| {
                exit::config(format!(
                    "PIPELINE_CONTRACTS: {location} is not an s3://BUCKET/KEY.yml object"
                ))
            })?;
        let store = storage::open(folder, "PIPELINE_CONTRACTS", &settings.s3)?;
        let bytes = store
            .get(name)?
            .ok_or_else(|| exit::config(format!("PIPELINE_CONTRACTS: no object {location}")))?;
        let text = String::from_utf8(bytes).map_err(|e| unreadable(location, &e))?;
        return Ok(vec![(location.to_string(), text)]);
    }
    let path = std::path::Path::new(location.strip_prefix("file://").unwrap_or(location));
    let mut paths = match std::fs::read_dir(path) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_yaml))
            .collect(),
        Err(_) => vec![path.to_path_buf()],
    };
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| unreadable(&p.display().to_string(), &e))?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yml") || name.ends_with(".yaml")
}
