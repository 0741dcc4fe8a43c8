//! Pipeline metadata: stage_log, file_metadata, dq_checks, dq_signature.
//!
//! SQLite (`sqlite://PATH`) with a versioned schema, WAL and a busy timeout,
//! so the six tasks of one DAG stage can write at once.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use chrono::NaiveDate;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::catalog::Dataset;
use crate::context::now;
use crate::exit;

/// Schema migrations; version N is `MIGRATIONS[N - 1]`. Append, never edit.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE stage_log (
    dataset      TEXT NOT NULL,
    ds           TEXT NOT NULL,
    stage        TEXT NOT NULL,
    status       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    PRIMARY KEY (dataset, ds, stage)
);
CREATE TABLE file_metadata (
    object_key        TEXT PRIMARY KEY,
    dataset           TEXT NOT NULL,
    ds                TEXT NOT NULL,
    zone              TEXT NOT NULL,
    content_md5       TEXT NOT NULL,
    bytes             INTEGER NOT NULL,
    status            TEXT NOT NULL,
    first_uploaded_at TEXT NOT NULL,
    last_uploaded_at  TEXT NOT NULL,
    last_checked_at   TEXT NOT NULL
);
CREATE TABLE dq_checks (
    dataset      TEXT NOT NULL,
    ds           TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    column_name  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    failed_rows  INTEGER NOT NULL,
    total_rows   INTEGER NOT NULL,
    signature    TEXT NOT NULL,
    checked_at   TEXT NOT NULL,
    PRIMARY KEY (dataset, ds, check_name, column_name)
);
CREATE TABLE dq_signature (
    signature      TEXT PRIMARY KEY,
    dataset        TEXT NOT NULL,
    check_name     TEXT NOT NULL,
    column_name    TEXT NOT NULL,
    rule           TEXT NOT NULL,
    first_seen_ds  TEXT NOT NULL,
    last_seen_ds   TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    occurrences    INTEGER NOT NULL
);
CREATE TABLE dq_signature_occurrence (
    signature  TEXT NOT NULL REFERENCES dq_signature (signature),
    ds         TEXT NOT NULL,
    failed_rows INTEGER NOT NULL,
    PRIMARY KEY (signature, ds)
);
"#];

/// One data-quality check's outcome for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub check: &'static str,
    pub column: String,
    pub rule: String,
    pub failed_rows: u64,
}

impl CheckResult {
    /// MD5 of the failure pattern: what failed, never how often or when.
    pub fn signature(&self, dataset: Dataset) -> String {
        crate::storage::md5_hex(
            format!("{dataset}|{}|{}|{}", self.check, self.column, self.rule).as_bytes(),
        )
    }
}

/// A stage that finished earlier: what it ran on and what it reported.
pub struct StageRecord {
    pub fingerprint: String,
    pub status: String,
    pub metrics: serde_json::Value,
}

/// A published object as recorded at upload time.
pub struct FileRecord {
    pub content_md5: String,
    pub bytes: u64,
}

pub struct Metadata {
    conn: Connection,
}

/// Lock contention and I/O trouble are transient; a file that cannot be
/// opened is a configuration problem; anything else is a bug.
fn db_error(err: rusqlite::Error) -> anyhow::Error {
    let code = err.sqlite_error_code();
    let message = format!("metadata database: {err}");
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure) => {
            exit::transient(message)
        }
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            exit::config(format!("PIPELINE_METADATA_URL: {message}"))
        }
        _ => anyhow::Error::new(err).context("metadata database"),
    }
}

impl Metadata {
    /// Opens `sqlite://PATH` (created on first use) and migrates it.
    pub fn open(url: &str) -> Result<Self> {
        let path = match url.split_once("://") {
            Some(("sqlite", path)) if !path.is_empty() => path,
            _ => {
                return Err(exit::config(format!(
                    "PIPELINE_METADATA_URL: unsupported URL {url:?} (expected sqlite://PATH)"
                )));
            }
        };
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                exit::config(format!(
                    "PIPELINE_METADATA_URL: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let conn = Connection::open(path).map_err(db_error)?;
        conn.busy_timeout(Duration::from_secs(60))
            .map_err(db_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_error)?;
        let mut meta = Self { conn };
        meta.migrate()?;
        Ok(meta)
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let version: usize = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_error)?;
        if version > MIGRATIONS.len() {
            return Err(exit::config(format!(
                "PIPELINE_METADATA_URL: schema version {version} is newer than this binary ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql).map_err(db_error)?;
            tx.pragma_update(None, "user_version", i + 1)
                .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)
    }

    #[cfg(test)]
    fn schema_version(&self) -> Result<usize> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_error)
    }

    pub fn stage(&self, dataset: &str, ds: NaiveDate, stage: &str) -> Result<Option<StageRecord>> {
        self.conn
            .query_row(
                "SELECT fingerprint, status, metrics FROM stage_log
                 WHERE dataset = ?1 AND ds = ?2 AND stage = ?3",
                params![dataset, ds.to_string(), stage],
                |r| {
                    let metrics: String = r.get(2)?;
                    Ok(StageRecord {
                        fingerprint: r.get(0)?,
                        status: r.get(1)?,
                        metrics: serde_json::from_str(&metrics).unwrap_or_default(),
                    })
                },
            )
            .optional()
            .map_err(db_error)
    }

    pub fn record_stage(
        &self,
        dataset: &str,
        ds: NaiveDate,
        stage: &str,
        record: &StageRecord,
        started_at: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO stage_log
                     (dataset, ds, stage, status, fingerprint, metrics, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (dataset, ds, stage) DO UPDATE SET
                     status = excluded.status, fingerprint = excluded.fingerprint,
                     metrics = excluded.metrics, started_at = excluded.started_at,
                     finished_at = excluded.finished_at",
                params![
                    dataset,
                    ds.to_string(),
                    stage,
                    record.status,
                    record.fingerprint,
                    record.metrics.to_string(),
                    started_at,
                    now()
                ],
            )
            .map_err(db_error)?;
        Ok(())
    }

    /// Replaces the file's dq_checks and records failure signatures.
    /// Returns the signatures seen for the first time.
    pub fn record_checks(
        &mut self,
        dataset: Dataset,
        ds: NaiveDate,
        results: &[CheckResult],
        total_rows: u64,
    ) -> Result<Vec<String>> {
        let at = now();
        let ds = ds.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        tx.execute(
            "DELETE FROM dq_checks WHERE dataset = ?1 AND ds = ?2",
            params![dataset.name(), ds],
        )
        .map_err(db_error)?;
        let mut new_signatures = Vec::new();
        for result in results {
            let signature = result.signature(dataset);
            tx.execute(
                "INSERT INTO dq_checks (dataset, ds, check_name, column_name, rule,
                                        failed_rows, total_rows, signature, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    dataset.name(),
                    ds,
                    result.check,
                    result.column,
                    result.rule,
                    result.failed_rows,
                    total_rows,
                    signature,
                    at
                ],
            )
            .map_err(db_error)?;
            if result.failed_rows == 0 {
                continue;
            }
            let inserted = tx
                .execute(
                    "INSERT INTO dq_signature (signature, dataset, check_name, column_name, rule,
                         first_seen_ds, last_seen_ds, first_seen_at, last_seen_at, occurrences)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7, 0)
                     ON CONFLICT (signature) DO NOTHING",
                    params![
                        signature,
                        dataset.name(),
                        result.check,
                        result.column,
                        result.rule,
                        ds,
                        at
                    ],
                )
                .map_err(db_error)?;
            if inserted == 1 {
                new_signatures.push(signature.clone());
            }
            tx.execute(
                "INSERT INTO dq_signature_occurrence (signature, ds, failed_rows)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (signature, ds) DO UPDATE SET failed_rows = excluded.failed_rows",
                params![signature, ds, result.failed_rows],
            )
            .map_err(db_error)?;
            tx.execute(
                "UPDATE dq_signature SET
                     occurrences = (SELECT count(*) FROM dq_signature_occurrence o
                                    WHERE o.signature = dq_signature.signature),
                     first_seen_ds = min(first_seen_ds, ?2),
                     last_seen_ds = max(last_seen_ds, ?2),
                     last_seen_at = ?3
                 WHERE signature = ?1",
                params![signature, ds, at],
            )
            .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        Ok(new_signatures)
    }

    /// Records the state of a lake object after an upload check; `status`
    /// says what happened (`uploaded`, `already_uploaded`, `removed`).
    pub fn record_upload(
        &self,
        object_key: &str,
        dataset: Dataset,
        ds: NaiveDate,
        zone: &str,
        file: &FileRecord,
        status: &str,
    ) -> Result<()> {
        let at = now();
        let touched = if status == "uploaded" {
            Some(&at)
        } else {
            None
        };
        self.conn
            .execute(
                "INSERT INTO file_metadata (object_key, dataset, ds, zone, content_md5, bytes,
                     status, first_uploaded_at, last_uploaded_at, last_checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8)
                 ON CONFLICT (object_key) DO UPDATE SET
                     content_md5 = excluded.content_md5, bytes = excluded.bytes,
                     status = excluded.status,
                     last_uploaded_at = coalesce(?9, last_uploaded_at),
                     last_checked_at = excluded.last_checked_at",
                params![
                    object_key,
                    dataset.name(),
                    ds.to_string(),
                    zone,
                    file.content_md5,
                    file.bytes,
                    status,
                    at,
                    touched
                ],
            )
            .map_err(db_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 5, d).unwrap()
    }

    fn failing(rows: u64) -> CheckResult {
        CheckResult {
            check: "email_format",
            column: "email".into(),
            rule: "email".into(),
            failed_rows: rows,
        }
    }

    fn open_temp() -> (tempfile::TempDir, Metadata) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/meta/metadata.db", dir.path().display());
        let meta = Metadata::open(&url).unwrap();
        (dir, meta)
    }

    #[test]
    fn migrations_are_applied_once() {
        let (dir, meta) = open_temp();
        assert_eq!(meta.schema_version().unwrap(), MIGRATIONS.len());
        drop(meta);
        let url = format!("sqlite://{}/meta/metadata.db", dir.path().display());
        let again = Metadata::open(&url).unwrap();
        assert_eq!(again.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn a_signature_is_new_once_whatever_the_counts_or_dates() {
        let (_dir, mut meta) = open_temp();
        let contacts = Dataset::Contacts;
        assert_eq!(
            meta.record_checks(contacts, ds(25), &[failing(3)], 10)
                .unwrap()
                .len(),
            1
        );
        assert!(
            meta.record_checks(contacts, ds(25), &[failing(3)], 10)
                .unwrap()
                .is_empty()
        );
        assert!(
            meta.record_checks(contacts, ds(26), &[failing(9)], 10)
                .unwrap()
                .is_empty()
        );
        let occurrences: i64 = meta
            .conn
            .query_row("SELECT occurrences FROM dq_signature", [], |r| r.get(0))
            .unwrap();
        assert_eq!(occurrences, 2, "one occurrence per ds, re-runs not counted");
        // A passing check leaves no signature.
        let other = CheckResult {
            column: "contact_id".into(),
            ..failing(0)
        };
        assert!(
            meta.record_checks(contacts, ds(27), &[other], 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unsupported_url_is_a_config_error() {
        let err = Metadata::open("mysql://x").err().unwrap();
        assert_eq!(exit::code_of(&err), exit::ExitCode::Config);
    }
}
