//! The metrics JSON each task prints as its last stdout line (Airflow XCom):
//! the tasks, their statuses, the fields every task has, and each task's
//! own details, typed.

mod details;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use details::*;

/// The Airflow task instance a task runs for, from the `AIRFLOW_CTX_*`
/// variables Airflow sets; echoed in the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AirflowRun {
    pub dag_id: Option<String>,
    pub task_id: Option<String>,
    pub run_id: Option<String>,
}

/// The binary's tasks: one subcommand, one Airflow task type each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Generate,
    Validate,
    Upload,
    Load,
    Transform,
    Setup,
    Sql,
    Report,
    Run,
}

impl Task {
    pub const ALL: [Task; 9] = [
        Task::Generate,
        Task::Validate,
        Task::Upload,
        Task::Load,
        Task::Transform,
        Task::Setup,
        Task::Sql,
        Task::Report,
        Task::Run,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::Generate => "generate",
            Task::Validate => "validate",
            Task::Upload => "upload",
            Task::Load => "load",
            Task::Transform => "transform",
            Task::Setup => "setup",
            Task::Sql => "sql",
            Task::Report => "report",
            Task::Run => "run",
        }
    }

    /// Whether the task runs once per dataset (`TASK DATASET --ds D`).
    pub fn per_dataset(self) -> bool {
        matches!(
            self,
            Task::Generate | Task::Validate | Task::Upload | Task::Load
        )
    }

    /// The statuses a finished task reports (exit 0, or 65 for a rejection
    /// it records); a task that did not finish reports `Status::FAILURES`.
    pub fn statuses(self) -> &'static [Status] {
        use Status::*;
        match self {
            Task::Generate => &[Generated],
            Task::Validate => &[Validated, Quarantined, Rejected],
            Task::Upload => &[Uploaded, AlreadyUploaded],
            Task::Load => &[Loaded, AlreadyLoaded],
            Task::Transform => &[Transformed, TestsFailed],
            Task::Setup => &[SetUp],
            Task::Sql => &[Queried],
            Task::Report => &[Reported],
            Task::Run => &[Completed, CompletedWithRejections],
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A task's outcome, as `status` in the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The task stopped on an error (any exit code but 0, 65 and 99).
    #[default]
    Failed,
    /// Nothing to do, or its input is absent (exit 99).
    Skipped,
    Generated,
    /// Every row passed.
    Validated,
    /// Some rows failed and went to the quarantine slice.
    Quarantined,
    /// The whole file was rejected (exit 65).
    Rejected,
    Uploaded,
    AlreadyUploaded,
    Loaded,
    AlreadyLoaded,
    Transformed,
    /// The marts were built and an error-severity data test failed (exit 65).
    TestsFailed,
    SetUp,
    Queried,
    Reported,
    Completed,
    /// `run` finished, and at least one task rejected data (exit 65).
    CompletedWithRejections,
}

impl Status {
    /// What a task that did not finish reports.
    pub const FAILURES: [Status; 2] = [Status::Failed, Status::Skipped];

    pub fn name(self) -> &'static str {
        use Status::*;
        match self {
            Failed => "failed",
            Skipped => "skipped",
            Generated => "generated",
            Validated => "validated",
            Quarantined => "quarantined",
            Rejected => "rejected",
            Uploaded => "uploaded",
            AlreadyUploaded => "already_uploaded",
            Loaded => "loaded",
            AlreadyLoaded => "already_loaded",
            Transformed => "transformed",
            TestsFailed => "tests_failed",
            SetUp => "set_up",
            Queried => "queried",
            Reported => "reported",
            Completed => "completed",
            CompletedWithRejections => "completed_with_rejections",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A task's inputs and outputs, for OpenLineage (the DAG passes them on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub inputs: Vec<LineageDataset>,
    pub outputs: Vec<LineageDataset>,
}

impl Lineage {
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty()
    }
}

/// A dataset as OpenLineage's naming spec names it: `s3://BUCKET` and the
/// key, `file` and the path, a warehouse's namespace and `SCHEMA.TABLE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageDataset {
    pub namespace: String,
    pub name: String,
}

impl LineageDataset {
    /// The dataset of an object store URL (`s3://bucket/key`, `file:///path`).
    pub fn of_url(url: &str) -> Self {
        let (namespace, name) = match url.split_once("://") {
            Some(("file", path)) => ("file".to_string(), path.to_string()),
            Some((scheme, rest)) => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                (format!("{scheme}://{bucket}"), key.to_string())
            }
            None => ("file".to_string(), url.to_string()),
        };
        Self { namespace, name }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskMetrics {
    pub task: Task,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ds: Option<String>,
    pub status: Status,
    pub rows_in: u64,
    pub rows_out: u64,
    pub invalid_rows: u64,
    /// Defects injected by generate, by the check that must catch them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub injected: BTreeMap<String, u64>,
    /// Rows failing each check (a row may fail several).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, u64>,
    #[serde(default)]
    pub has_failure_delta: bool,
    /// The stage was already complete for this input: nothing was rewritten.
    #[serde(default)]
    pub reused: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_signatures: Vec<String>,
    pub duration_ms: u64,
    /// Milliseconds spent per phase (read, parse, check, write, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timings_ms: BTreeMap<String, u64>,
    /// Output name (raw, valid, quarantine, ...) to URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    /// What the task read and wrote, named as OpenLineage names datasets.
    #[serde(default, skip_serializing_if = "Lineage::is_empty")]
    pub lineage: Lineage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The task's own fields; none for a task that did not finish.
    #[serde(flatten)]
    pub details: Option<Details>,
}

impl TaskMetrics {
    pub fn new(
        task: Task,
        dataset: Option<String>,
        ds: Option<String>,
        airflow: &AirflowRun,
    ) -> Self {
        Self {
            task,
            dataset,
            ds,
            dag_id: airflow.dag_id.clone(),
            task_id: airflow.task_id.clone(),
            run_id: airflow.run_id.clone(),
            ..Self::default()
        }
    }

    /// Sums the failed counts of another set of checks into this one.
    pub fn add_failed(&mut self, check: &str, rows: u64) {
        *self.failed.entry(check.to_string()).or_default() += rows;
    }

    /// Records an object the task read, by its store URL.
    pub fn reads(&mut self, url: &str) {
        self.lineage.inputs.push(LineageDataset::of_url(url));
    }

    /// Records an object the task wrote, by its store URL, as an output.
    pub fn writes(&mut self, name: &str, url: String) {
        self.lineage.outputs.push(LineageDataset::of_url(&url));
        self.outputs.insert(name.into(), url);
    }

    /// Records the time since `since` as `phase` and restarts the clock.
    pub fn lap(&mut self, phase: &str, since: &mut Instant) {
        let now = Instant::now();
        let ms = now.duration_since(*since).as_millis() as u64;
        *self.timings_ms.entry(phase.to_string()).or_default() += ms;
        *since = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_omits_empty_fields() {
        let mut m = TaskMetrics::new(
            Task::Validate,
            Some("contacts".into()),
            Some("2025-05-25".into()),
            &AirflowRun::default(),
        );
        m.status = Status::Quarantined;
        m.add_failed("unique", 2);
        m.add_failed("unique", 3);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["failed"]["unique"], 5);
        assert_eq!(json["status"], "quarantined");
        assert!(json.get("injected").is_none());
        assert!(json.get("error").is_none());
        let back: TaskMetrics = serde_json::from_value(json).unwrap();
        assert_eq!(back.failed["unique"], 5);
        assert!(back.details.is_none());
    }

    #[test]
    fn lineage_names_follow_the_openlineage_naming_spec() {
        let s3 = LineageDataset::of_url("s3://lake/valid-data/contacts/ds=2025-05-25/part.parquet");
        assert_eq!(s3.namespace, "s3://lake");
        assert_eq!(s3.name, "valid-data/contacts/ds=2025-05-25/part.parquet");
        let file = LineageDataset::of_url("file:///data/lake/x.parquet");
        assert_eq!(
            (file.namespace.as_str(), file.name.as_str()),
            ("file", "/data/lake/x.parquet")
        );
    }

    #[test]
    fn status_names_are_their_serde_names() {
        for task in Task::ALL {
            assert_eq!(serde_json::to_value(task).unwrap(), task.name());
            for status in task.statuses().iter().chain(&Status::FAILURES) {
                assert_eq!(serde_json::to_value(status).unwrap(), status.name());
            }
        }
    }
}
