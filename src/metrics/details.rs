//! Each task's own fields in its metrics, typed: the part of the metrics
//! JSON that differs by task. Together with `TaskMetrics` this is the
//! whole shape Airflow reads (pinned by tests/metrics_shape.rs).

use serde::{Deserialize, Serialize};

use super::{Status, Task, TaskMetrics};
use crate::catalog::{Severity, Zone};
use crate::checks::split::FailureSummary;

/// Each task's own fields, flattened into its metrics. Untagged: the
/// metrics' `task` says which; each variant has a field no earlier one has.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Details {
    Validate(ValidateDetails),
    Generate(GenerateDetails),
    Upload(UploadDetails),
    Load(LoadDetails),
    Transform(TransformDetails),
    Setup(SetupDetails),
    Sql(SqlDetails),
    Report(ReportDetails),
    Run(RunDetails),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportDetails {
    /// Size of the HTML page written (`outputs.report` is its URL).
    pub report_bytes: u64,
    /// The datasets it covers: those validated for the ds.
    pub datasets: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenerateDetails {
    /// Size of the raw file written.
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidateDetails {
    /// What an alert shows per failing check; absent for a file rejected
    /// before its rows were checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<FailureSummary>>,
    pub slices: Slices,
    /// Checks whose `warn_if` the file met (or `warn` checks with failing
    /// rows): the alert's warnings, the rows kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The row count against the previous ds's, when the contract
    /// declares a volume band and the previous ds was validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeCheck>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeCheck {
    pub previous_ds: String,
    pub previous_rows: u64,
    pub rows: u64,
    /// The band, as the contract declares it ("0.5x to 2x of the previous ds").
    pub expected: String,
    pub within: bool,
    pub severity: Severity,
}

/// Each slice validate wrote, or `None` where it positively wrote none (no
/// valid slice for a rejected file, no quarantine slice for a clean one).
/// Recorded in stage_log, so that reuse can check the slices are still
/// there and upload knows what to publish and what to remove.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slices {
    pub valid: Option<SliceRecord>,
    pub quarantine: Option<SliceRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceRecord {
    pub key: String,
    pub bytes: u64,
    pub md5: String,
}

impl Slices {
    /// The slices a validate run recorded, if it recorded them.
    pub fn of(metrics: &TaskMetrics) -> Option<&Self> {
        match &metrics.details {
            Some(Details::Validate(details)) => Some(&details.slices),
            _ => None,
        }
    }

    pub fn get(&self, zone: Zone) -> Option<&SliceRecord> {
        match zone {
            Zone::Valid => self.valid.as_ref(),
            _ => self.quarantine.as_ref(),
        }
    }

    pub fn set(&mut self, zone: Zone, record: Option<SliceRecord>) {
        match zone {
            Zone::Valid => self.valid = record,
            _ => self.quarantine = record,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadDetails {
    pub objects: Vec<PublishedObject>,
    /// A rejected file: the lake keeps the valid slice published before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept_previous_valid: bool,
}

/// What upload did with one slice.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishedObject {
    pub zone: String,
    pub key: String,
    pub status: ObjectStatus,
    /// Size, MD5 and rows of a slice found in the landing area.
    #[serde(flatten)]
    pub content: Option<SliceContent>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SliceContent {
    pub bytes: u64,
    pub md5: String,
    pub rows: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectStatus {
    Uploaded,
    AlreadyUploaded,
    /// The valid slice of a rejected file's ds, left in the lake.
    KeptPrevious,
    /// An old quarantine slice of a ds that now has no invalid row.
    Removed,
}

impl ObjectStatus {
    pub fn name(self) -> &'static str {
        match self {
            ObjectStatus::Uploaded => "uploaded",
            ObjectStatus::AlreadyUploaded => "already_uploaded",
            ObjectStatus::KeptPrevious => "kept_previous",
            ObjectStatus::Removed => "removed",
        }
    }
}

impl PublishedObject {
    pub fn bare(zone: Zone, key: String, status: ObjectStatus) -> Self {
        Self {
            zone: zone.prefix().to_string(),
            key,
            status,
            content: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadDetails {
    /// `duckdb` or `snowflake`.
    pub warehouse: String,
    /// Rows of the partition the load replaced.
    pub replaced_rows: u64,
    /// MD5 of the lake file the partition now holds.
    pub content_md5: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TransformDetails {
    pub warehouse: String,
    /// Rows the incremental models inserted, and existing rows whose
    /// values they changed.
    pub inserted: u64,
    pub updated: u64,
    pub tests_passed: u64,
    pub tests_warned: u64,
    pub tests_failed: u64,
    /// Models and tests not run because a test upstream failed.
    pub skipped: u64,
    pub models: Vec<ModelRun>,
    pub tests: Vec<TestRun>,
}

/// One model of the dbt project: a table's rows, or an incremental run's
/// inserts and updates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRun {
    pub model: String,
    /// The relation it builds, `SCHEMA.name`.
    pub target: String,
    /// `view`, `table` or `incremental`.
    pub materialized: String,
    pub status: ModelOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestRun {
    pub test: String,
    pub offending_rows: u64,
    /// A few offending rows, for the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Vec<Vec<Option<String>>>>,
    pub status: TestOutcome,
    /// The failure pattern's MD5, when it failed or warned (dq_signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    Pass,
    Warn,
    Fail,
    /// Not run: a test upstream failed (dbt build's skip).
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelOutcome {
    Success,
    /// Not built: a test upstream failed (dbt build's skip).
    Skipped,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupDetails {
    pub warehouse: String,
    /// Statements of setup.sql run on this backend.
    pub statements: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SqlDetails {
    pub warehouse: String,
    /// The last statement's rows, every value as text.
    pub rows: Vec<Vec<Option<String>>>,
    pub statements: Vec<StatementRun>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatementRun {
    pub sql: String,
    pub rows: usize,
    pub duration_ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunDetails {
    /// The last date run (`ds` is the first).
    pub ds_to: String,
    /// Every task run, in order.
    pub tasks: Vec<TaskSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSummary {
    pub task: Task,
    pub dataset: Option<String>,
    pub ds: Option<String>,
    pub status: Status,
    pub reused: bool,
    pub rows_in: u64,
    pub rows_out: u64,
    pub invalid_rows: u64,
    pub exit_code: i32,
    pub duration_ms: u64,
}
