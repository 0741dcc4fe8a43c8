//! Pipeline metadata: stage_log, file_metadata, dq_checks, dq_signature.
//!
//! SQLite (`sqlite://PATH`, WAL and a busy timeout) for one machine, or
//! PostgreSQL (`postgres://...`) when tasks run in separate pods: the same
//! tables, statements and semantics, with a versioned schema on both, safe
//! for the six tasks of one DAG stage writing at once.

mod db;

use anyhow::Result;
use chrono::NaiveDate;

use crate::catalog::Dataset;
use crate::checks::CheckResult;
use crate::exit;
use db::{Arg, Db};

/// Schema migrations; version N is `MIGRATIONS[N - 1]`. Append, never edit:
/// a database at version N has run exactly the first N.
const MIGRATIONS: &[&str] = &[
    include_str!("../../sql/metadata/0001_pipeline_tables.sql"),
    include_str!("../../sql/metadata/0002_reported_run.sql"),
];

/// A failing pattern of (subject, ds) is new while no other ds has seen it
/// and no other Airflow run has reported it for this ds. So a retry of the
/// run that first saw it (same run id, a crash before the alert went out)
/// reports it again, and a later run of the same ds does not; without a
/// run id (the command line) every re-validation of the ds reports it.
fn new_signatures(db: &Db, subject: &str, ds: &str, run_id: Option<&str>) -> Result<Vec<String>> {
    db.query_column(
        "SELECT c.signature FROM dq_checks c
         WHERE c.dataset = $1 AND c.ds = $2 AND c.failed_rows > 0
           AND NOT EXISTS (SELECT 1 FROM dq_signature_occurrence o
                           WHERE o.signature = c.signature
                             AND (o.ds <> $2 OR o.reported_run <> $3))
         ORDER BY c.signature",
        &[Arg::Text(subject), Arg::Text(ds), Arg::MaybeText(run_id)],
    )
}

/// A stage that finished earlier: what it ran on and what it reported.
pub(crate) struct StageRecord {
    pub fingerprint: String,
    pub status: String,
    pub metrics: serde_json::Value,
}

/// A published object as recorded at upload time.
pub(crate) struct FileRecord {
    pub content_md5: String,
    pub bytes: u64,
}

pub(crate) struct Metadata {
    db: Db,
}

impl Metadata {
    /// Opens `sqlite://PATH` (created on first use) or `postgres://...` and
    /// brings its schema up to date.
    pub(crate) fn open(url: &str, timeout_s: u64) -> Result<Self> {
        let timeout = std::time::Duration::from_secs(timeout_s);
        let db = match url.split_once("://") {
            Some(("sqlite", path)) if !path.is_empty() => Db::open_sqlite(path, timeout)?,
            Some(("postgres" | "postgresql", _)) => Db::open_postgres(url, timeout)?,
            _ => {
                return Err(exit::config(
                    "PIPELINE_METADATA_URL: unsupported URL (expected sqlite://PATH or \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE)",
                ));
            }
        };
        let meta = Self { db };
        meta.migrate()?;
        Ok(meta)
    }

    /// Brings the schema up to date. The usual case, a current schema, is
    /// one read without the write lock, so a task never queues behind
    /// another's transaction just to start.
    fn migrate(&self) -> Result<()> {
        if self.db.schema_version()? == MIGRATIONS.len() {
            return Ok(());
        }
        self.db.in_transaction(|db| {
            let version = db.schema_version()?;
            if version > MIGRATIONS.len() {
                return Err(exit::config(format!(
                    "PIPELINE_METADATA_URL: schema version {version} is newer than this binary ({})",
                    MIGRATIONS.len()
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
                db.batch(sql)?;
                db.set_schema_version(i + 1)?;
            }
            Ok(())
        })
    }

    #[cfg(test)]
    fn schema_version(&self) -> Result<usize> {
        self.db.schema_version()
    }

    pub(crate) fn stage(
        &self,
        dataset: &str,
        ds: NaiveDate,
        stage: &str,
    ) -> Result<Option<StageRecord>> {
        let ds = ds.to_string();
        let row = self.db.query_texts(
            "SELECT fingerprint, status, metrics FROM stage_log
             WHERE dataset = $1 AND ds = $2 AND stage = $3",
            &[Arg::Text(dataset), Arg::Text(&ds), Arg::Text(stage)],
        )?;
        Ok(row.map(|mut row| {
            let metrics = row.pop().unwrap_or_default();
            let status = row.pop().unwrap_or_default();
            let fingerprint = row.pop().unwrap_or_default();
            StageRecord {
                fingerprint,
                status,
                metrics: serde_json::from_str(&metrics).unwrap_or_default(),
            }
        }))
    }

    pub(crate) fn record_stage(
        &self,
        dataset: &str,
        ds: NaiveDate,
        stage: &str,
        record: &StageRecord,
        started_at: &str,
    ) -> Result<()> {
        let (ds, metrics, finished_at) = (ds.to_string(), record.metrics.to_string(), now());
        self.db.execute(
            "INSERT INTO stage_log
                 (dataset, ds, stage, status, fingerprint, metrics, started_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (dataset, ds, stage) DO UPDATE SET
                 status = excluded.status, fingerprint = excluded.fingerprint,
                 metrics = excluded.metrics, started_at = excluded.started_at,
                 finished_at = excluded.finished_at",
            &[
                Arg::Text(dataset),
                Arg::Text(&ds),
                Arg::Text(stage),
                Arg::Text(&record.status),
                Arg::Text(&record.fingerprint),
                Arg::Text(&metrics),
                Arg::Text(started_at),
                Arg::Text(&finished_at),
            ],
        )?;
        Ok(())
    }

    /// Replaces the ds's dq_checks of `subject` (a dataset, or `transform`
    /// for its data tests) and records failure signatures, and which
    /// Airflow run (`run_id`) first reported each for this ds.
    /// Returns the signatures that are new (see `new_signatures`).
    pub(crate) fn record_checks(
        &mut self,
        subject: &str,
        ds: NaiveDate,
        results: &[CheckResult],
        total_rows: u64,
        run_id: Option<&str>,
    ) -> Result<Vec<String>> {
        let at = now();
        let ds = ds.to_string();
        self.db.in_transaction(|db| {
            db.execute(
                "DELETE FROM dq_checks WHERE dataset = $1 AND ds = $2",
                &[Arg::Text(subject), Arg::Text(&ds)],
            )?;
            for result in results {
                let signature = result.signature(subject);
                db.execute(
                    "INSERT INTO dq_checks (dataset, ds, check_name, column_name, rule,
                                            failed_rows, total_rows, signature, checked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        Arg::Text(subject),
                        Arg::Text(&ds),
                        Arg::Text(result.check),
                        Arg::Text(&result.column),
                        Arg::Text(&result.rule),
                        Arg::Int(result.failed_rows),
                        Arg::Int(total_rows),
                        Arg::Text(&signature),
                        Arg::Text(&at),
                    ],
                )?;
                if result.failed_rows == 0 {
                    continue;
                }
                db.execute(
                    "INSERT INTO dq_signature (signature, dataset, check_name, column_name, rule,
                         first_seen_ds, last_seen_ds, first_seen_at, last_seen_at, occurrences)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $7, 0)
                     ON CONFLICT (signature) DO NOTHING",
                    &[
                        Arg::Text(&signature),
                        Arg::Text(subject),
                        Arg::Text(result.check),
                        Arg::Text(&result.column),
                        Arg::Text(&result.rule),
                        Arg::Text(&ds),
                        Arg::Text(&at),
                    ],
                )?;
                db.execute(
                    "INSERT INTO dq_signature_occurrence (signature, ds, failed_rows, reported_run)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (signature, ds) DO UPDATE SET failed_rows = excluded.failed_rows",
                    &[
                        Arg::Text(&signature),
                        Arg::Text(&ds),
                        Arg::Int(result.failed_rows),
                        Arg::MaybeText(run_id),
                    ],
                )?;
                db.execute(
                    "UPDATE dq_signature SET
                         occurrences = (SELECT count(*) FROM dq_signature_occurrence o
                                        WHERE o.signature = dq_signature.signature),
                         first_seen_ds = CASE WHEN $2 < first_seen_ds THEN $2 ELSE first_seen_ds END,
                         last_seen_ds = CASE WHEN $2 > last_seen_ds THEN $2 ELSE last_seen_ds END,
                         last_seen_at = $3
                     WHERE signature = $1",
                    &[Arg::Text(&signature), Arg::Text(&ds), Arg::Text(&at)],
                )?;
            }
            new_signatures(db, subject, &ds, run_id)
        })
    }

    /// The failure signatures of (dataset, ds) that are new to `run_id`.
    /// Every check of `dataset` recorded for the ds's from `from` to `to`,
    /// oldest first.
    pub(crate) fn check_history(
        &self,
        dataset: Dataset,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CheckDay>> {
        let (from, to) = (from.to_string(), to.to_string());
        let rows = self.db.query_column(
            "SELECT ds || '|' || check_name || '|' || column_name || '|'
                    || CAST(failed_rows AS TEXT) || '|' || CAST(total_rows AS TEXT)
             FROM dq_checks WHERE dataset = $1 AND ds >= $2 AND ds <= $3
             ORDER BY ds, check_name, column_name",
            &[Arg::Text(dataset.name()), Arg::Text(&from), Arg::Text(&to)],
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let mut parts = row.split('|');
                Some(CheckDay {
                    ds: parts.next()?.to_string(),
                    check: parts.next()?.to_string(),
                    column: parts.next()?.to_string(),
                    failed_rows: parts.next()?.parse().ok()?,
                    total_rows: parts.next()?.parse().ok()?,
                })
            })
            .collect())
    }

    pub(crate) fn new_signatures(
        &self,
        subject: &str,
        ds: NaiveDate,
        run_id: Option<&str>,
    ) -> Result<Vec<String>> {
        new_signatures(&self.db, subject, &ds.to_string(), run_id)
    }

    /// Records the state of a lake object after an upload check; `status`
    /// says what happened (`uploaded`, `already_uploaded`, `removed`).
    pub(crate) fn record_upload(
        &self,
        object_key: &str,
        dataset: Dataset,
        ds: NaiveDate,
        zone: &str,
        file: &FileRecord,
        status: &str,
    ) -> Result<()> {
        let (at, ds) = (now(), ds.to_string());
        // Only a real upload moves last_uploaded_at.
        let uploaded_at = (status == "uploaded").then_some(at.as_str());
        self.db.execute(
            "INSERT INTO file_metadata (object_key, dataset, ds, zone, content_md5, bytes,
                 status, first_uploaded_at, last_uploaded_at, last_checked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)
             ON CONFLICT (object_key) DO UPDATE SET
                 content_md5 = excluded.content_md5, bytes = excluded.bytes,
                 status = excluded.status,
                 last_uploaded_at = coalesce($9, file_metadata.last_uploaded_at),
                 last_checked_at = excluded.last_checked_at",
            &[
                Arg::Text(object_key),
                Arg::Text(dataset.name()),
                Arg::Text(&ds),
                Arg::Text(zone),
                Arg::Text(&file.content_md5),
                Arg::Int(file.bytes),
                Arg::Text(status),
                Arg::Text(&at),
                Arg::MaybeText(uploaded_at),
            ],
        )?;
        Ok(())
    }

    /// One number from a query, for tests and checks.
    #[cfg(test)]
    fn count(&self, sql: &str) -> Result<u64> {
        self.db.count(sql, &[])
    }
}

/// One check's outcome on one ds, from dq_checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckDay {
    pub ds: String,
    pub check: String,
    pub column: String,
    pub failed_rows: u64,
    pub total_rows: u64,
}

/// Wall-clock now in RFC 3339, as the tables record it.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
        let meta = Metadata::open(&url, 60).unwrap();
        (dir, meta)
    }

    #[test]
    fn migrations_are_applied_once() {
        let (dir, meta) = open_temp();
        assert_eq!(meta.schema_version().unwrap(), MIGRATIONS.len());
        drop(meta);
        let url = format!("sqlite://{}/meta/metadata.db", dir.path().display());
        let again = Metadata::open(&url, 60).unwrap();
        assert_eq!(again.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn a_signature_is_new_for_its_ds_until_another_ds_sees_it() {
        let (_dir, mut meta) = open_temp();
        let contacts = "contacts";
        let new = |meta: &mut Metadata, day, rows| {
            meta.record_checks(contacts, ds(day), &[failing(rows)], 10, None)
                .unwrap()
                .len()
        };
        assert_eq!(new(&mut meta, 25, 3), 1);
        assert_eq!(
            new(&mut meta, 25, 3),
            1,
            "a retry of the same ds alerts again"
        );
        assert_eq!(
            meta.new_signatures(contacts, ds(25), None).unwrap().len(),
            1
        );
        assert_eq!(new(&mut meta, 26, 9), 0, "another ds: known");
        assert_eq!(
            new(&mut meta, 25, 3),
            0,
            "known once another ds has seen it"
        );
        let occurrences = meta.count("SELECT occurrences FROM dq_signature").unwrap();
        assert_eq!(occurrences, 2, "one occurrence per ds, re-runs not counted");
        // A passing check leaves no signature.
        let other = CheckResult {
            column: "contact_id".into(),
            ..failing(0)
        };
        assert!(
            meta.record_checks(contacts, ds(27), &[other], 10, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_retry_of_the_same_airflow_run_reports_again_and_a_later_run_does_not() {
        let (_dir, mut meta) = open_temp();
        let contacts = "contacts";
        let first = meta
            .record_checks(contacts, ds(25), &[failing(3)], 10, Some("run-1"))
            .unwrap();
        assert_eq!(first.len(), 1);
        let retry = meta
            .new_signatures(contacts, ds(25), Some("run-1"))
            .unwrap();
        assert_eq!(retry, first, "the retry of the run that crashed");
        let later = meta
            .record_checks(contacts, ds(25), &[failing(3)], 10, Some("run-2"))
            .unwrap();
        assert!(later.is_empty(), "another run of the same ds");
    }

    #[test]
    fn unsupported_url_is_a_config_error() {
        let err = Metadata::open("mysql://x", 60).err().unwrap();
        assert_eq!(exit::code_of(&err), exit::ExitCode::Config);
    }
}
