//! DuckDB, embedded: one database file, RAW / STG / MART as schemas.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use duckdb::Connection;

use super::{Rows, Warehouse, date_literal, is_schema_object, raw_table};
use crate::catalog::Dataset;
use crate::dbt::Backend;
use crate::exit::{self, first_line};
use crate::metrics::LineageDataset;
use crate::storage::ObjectStore;

pub(super) struct DuckDbWarehouse {
    conn: Connection,
    /// The database file, absolute: the lineage namespace.
    path: PathBuf,
    /// Queries run with a thread more than this, inserts with this many:
    /// measured on 2 cores, transform's data tests take 2.87 s with 2
    /// threads and 2.11 s with 3, and inserting 5M sessions 2.87 s with 2
    /// and 3.04 s with 3.
    cores: usize,
}

impl DuckDbWarehouse {
    /// DuckDB lets one process write a database file at a time: tasks
    /// running in parallel wait up to `lock_timeout_s` for the lock.
    /// Its memory is capped at `memory_bytes` (it spills to a temp
    /// directory beside the file beyond that).
    pub(super) fn open(path: &str, lock_timeout_s: u64, memory_bytes: u64) -> Result<Self> {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                exit::config(format!(
                    "PIPELINE_WAREHOUSE_URL: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        if !path.exists() {
            create_atomically(&path)?;
        }
        let timeout = lock_timeout_s;
        let started = Instant::now();
        loop {
            match Connection::open(&path) {
                Ok(conn) => {
                    // Rows need no order inside a table (every query that cares
                    // says ORDER BY): inserts then write row groups in parallel
                    // straight to the file, and CHECKPOINT has nothing left to do
                    // (5M sessions: insert + checkpoint 8.8 s -> 4.0 s).
                    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                    let settings = format!(
                        "SET memory_limit = '{}MiB'; SET preserve_insertion_order = false; \
                         SET threads = {};",
                        (memory_bytes >> 20).max(256),
                        cores + 1
                    );
                    conn.execute_batch(&settings)
                        .map_err(|e| open_error(&path, e))?;
                    let path = std::path::absolute(&path).unwrap_or(path);
                    return Ok(Self { conn, path, cores });
                }
                Err(e) if e.to_string().contains("lock") => {
                    if started.elapsed() >= Duration::from_secs(timeout) {
                        return Err(exit::transient(format!(
                            "DuckDB {} is locked by another process after {timeout} s: {e}",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(open_error(&path, e)),
            }
        }
    }
}

/// Creates an empty database at `path` so that it appears whole or not at
/// all: DuckDB writes a new file's header in steps, and a task killed
/// between them would leave a file no later task can open. The database is
/// made beside it under a temp name, checkpointed, closed, and linked into
/// place; a concurrent creator's link wins and ours is dropped.
fn create_atomically(path: &std::path::Path) -> Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => std::path::Path::new("."),
    };
    let fail = |e: &dyn std::fmt::Display| {
        exit::transient(format!("cannot create DuckDB {}: {e}", path.display()))
    };
    let scratch = tempfile::Builder::new()
        .prefix(".warehouse-create-")
        .tempdir_in(dir)
        .map_err(|e| fail(&e))?;
    let fresh = scratch.path().join("new.duckdb");
    let conn = Connection::open(&fresh).map_err(|e| fail(&e))?;
    conn.execute_batch("CHECKPOINT").map_err(|e| fail(&e))?;
    drop(conn);
    std::fs::File::open(&fresh)
        .and_then(|f| f.sync_all())
        .map_err(|e| fail(&e))?;
    match std::fs::hard_link(&fresh, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(&e)),
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail(&e))
}

/// A file we may not open, or that is not a database, is configuration;
/// anything else (I/O trouble, memory) may pass, so it is transient.
fn open_error(path: &std::path::Path, err: duckdb::Error) -> anyhow::Error {
    let message = format!("cannot open DuckDB {}: {err}", path.display());
    let text = err.to_string();
    let permanent = [
        "Permission denied",
        "Read-only file system",
        "not a valid DuckDB database",
        "Is a directory",
    ]
    .iter()
    .any(|m| text.contains(m));
    if permanent {
        exit::config(format!("PIPELINE_WAREHOUSE_URL: {message}"))
    } else {
        exit::transient(message)
    }
}

impl Warehouse for DuckDbWarehouse {
    fn backend(&self) -> Backend {
        Backend::DuckDb
    }

    fn lineage(&self, relation: &str) -> LineageDataset {
        // DuckDB names a file's catalog after the file's stem.
        let catalog = self.path.file_stem().unwrap_or_default().to_string_lossy();
        LineageDataset {
            namespace: format!("duckdb://{}", self.path.display()),
            name: format!("{catalog}.{relation}").to_lowercase(),
        }
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn
            .execute_batch(sql)
            .with_context(|| format!("DuckDB: {}", first_line(sql)))
    }

    fn execute_bound(&mut self, sql: &str, params: &[&str]) -> Result<()> {
        self.conn
            .execute(sql, duckdb::params_from_iter(params))
            .map(drop)
            .with_context(|| format!("DuckDB: {}", first_line(sql)))
    }

    fn query(&mut self, sql: &str) -> Result<Rows> {
        let keyword = sql.split_whitespace().next().unwrap_or_default();
        let returns_rows = [
            "SELECT",
            "WITH",
            "FROM",
            "VALUES",
            "DESCRIBE",
            "SHOW",
            "SUMMARIZE",
        ]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k));
        if !returns_rows {
            // DML and DDL: the number of rows changed, as Snowflake answers.
            let changed = self
                .conn
                .execute(sql, [])
                .with_context(|| format!("DuckDB: {}", first_line(sql)))?;
            return Ok(vec![vec![Some(changed.to_string())]]);
        }
        // Text out of DuckDB itself: one conversion for every type.
        let text = format!("SELECT COLUMNS(*)::VARCHAR FROM (\n{sql}\n) AS q");
        let mut statement = self
            .conn
            .prepare(&text)
            .with_context(|| format!("DuckDB: {}", first_line(sql)))?;
        let rows = statement
            .query_map([], |row| {
                let width = row.as_ref().column_count();
                (0..width)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect()
            })?
            .collect::<Result<Rows, _>>()?;
        Ok(rows)
    }

    fn append_partition(
        &mut self,
        dataset: Dataset,
        ds: NaiveDate,
        lake: &dyn ObjectStore,
        key: &str,
    ) -> Result<()> {
        // DuckDB reads the Parquet itself: a local lake's in place, an S3
        // one's streamed to a temp file first (never held in memory).
        let (path, _download) = match lake.local_path(key) {
            Some(path) => (path, None),
            None => {
                let mut file = tempfile::Builder::new().suffix(".parquet").tempfile()?;
                lake.copy_to(key, &mut file)?
                    .ok_or_else(|| exit::nothing_to_do(format!("{} is gone", lake.url(key))))?;
                (file.path().to_path_buf(), Some(file))
            }
        };
        let path = path.display().to_string().replace('\'', "''");
        self.execute(&format!("SET threads = {}", self.cores))?;
        let inserted = self.execute(&format!(
            "INSERT INTO {table} BY NAME \
             SELECT *, {ds} AS DS, CAST(now() AS TIMESTAMP) AS LOADED_AT \
             FROM read_parquet('{path}', hive_partitioning = false)",
            table = raw_table(dataset),
            ds = date_literal(ds),
        ));
        // After a failed insert the transaction is aborted and refuses the
        // SET too: the insert's error is the one to report.
        let restored = self.execute(&format!("SET threads = {}", self.cores + 1));
        inserted.and(restored)
    }

    fn checkpoint(&mut self) -> Result<()> {
        self.execute("CHECKPOINT")
    }

    fn adapt_setup(&self, statement: &str) -> Option<String> {
        if !is_schema_object(statement) {
            return None;
        }
        let upper = statement.to_ascii_uppercase();
        // DuckDB has no clustering keys: its zone maps prune by the order
        // rows arrive in, which is already one ds at a time.
        let end = upper
            .rfind(") CLUSTER BY")
            .map_or(statement.len(), |at| at + 1);
        Some(statement[..end].to_string())
    }
}
