//! The metrics JSON each task prints as its last stdout line (Airflow XCom).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::storage::write_file_atomically;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskMetrics {
    pub task: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ds: Option<String>,
    pub status: String,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Task-specific fields (upload objects, run's per-task metrics, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TaskMetrics {
    pub fn new(task: &str, dataset: Option<String>, ds: Option<String>) -> Self {
        let airflow = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        Self {
            task: task.to_string(),
            dataset,
            ds,
            dag_id: airflow("AIRFLOW_CTX_DAG_ID"),
            task_id: airflow("AIRFLOW_CTX_TASK_ID"),
            run_id: airflow("AIRFLOW_CTX_DAG_RUN_ID"),
            ..Self::default()
        }
    }

    /// Sums the failed counts of another set of checks into this one.
    pub fn add_failed(&mut self, check: &str, rows: u64) {
        *self.failed.entry(check.to_string()).or_default() += rows;
    }

    /// Records the time since `since` as `phase` and restarts the clock.
    pub fn lap(&mut self, phase: &str, since: &mut Instant) {
        let now = Instant::now();
        let ms = now.duration_since(*since).as_millis() as u64;
        *self.timings_ms.entry(phase.to_string()).or_default() += ms;
        *since = now;
    }

    /// Prints the one-line JSON on stdout and writes it to the XCom file.
    pub fn emit(&self, xcom_file: Option<&Path>) -> Result<()> {
        let line = crate::redact::scrub(&serde_json::to_string(self)?);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        if let Some(path) = xcom_file {
            write_file_atomically(path, &mut |file| Ok(file.write_all(line.as_bytes())?))
                .with_context(|| format!("PIPELINE_XCOM_FILE {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_omits_empty_fields() {
        let mut m = TaskMetrics::new(
            "validate",
            Some("contacts".into()),
            Some("2025-05-25".into()),
        );
        m.status = "quarantined".into();
        m.add_failed("unique", 2);
        m.add_failed("unique", 3);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["failed"]["unique"], 5);
        assert!(json.get("injected").is_none());
        assert!(json.get("error").is_none());
        let back: TaskMetrics = serde_json::from_value(json).unwrap();
        assert_eq!(back.failed["unique"], 5);
    }
}
