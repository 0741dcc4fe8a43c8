//! The two metadata databases behind the few operations `Metadata` needs.
//! Statements are written once, with `$N` placeholders (SQLite reads them
//! as `?N`); errors are mapped to exit codes here.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use rusqlite::ErrorCode;
use rusqlite::types::{ToSqlOutput, Value};

use crate::exit;

/// A statement parameter.
#[derive(Debug)]
pub enum Arg<'a> {
    Text(&'a str),
    Int(u64),
    MaybeText(Option<&'a str>),
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Text(s) | Arg::MaybeText(Some(s)) => ToSqlOutput::from(*s),
            Arg::Int(n) => ToSqlOutput::from(*n as i64),
            Arg::MaybeText(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::Text(s) => s.to_sql(ty, out),
            Arg::Int(n) => (*n as i64).to_sql(ty, out),
            Arg::MaybeText(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

pub enum Db {
    Sqlite(rusqlite::Connection),
    /// The client needs `&mut` for every call; tasks are single-threaded.
    Postgres(RefCell<postgres::Client>),
}

/// SQLite: lock contention and I/O trouble are transient; a file that
/// cannot be opened is a configuration problem; anything else is a bug.
fn sqlite_error(err: rusqlite::Error) -> anyhow::Error {
    let message = format!("metadata database: {err}");
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure) => {
            exit::transient(message)
        }
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            exit::config(format!("PIPELINE_METADATA_URL: {message}"))
        }
        _ => anyhow::Error::new(err).context("metadata database"),
    }
}

/// PostgreSQL: a lost or refused connection, a serialization failure or a
/// deadlock is transient; bad credentials or a missing database are
/// configuration. The message never holds the URL (it may hold a password).
fn postgres_error(err: postgres::Error) -> anyhow::Error {
    let message = format!("metadata database (PostgreSQL): {err}");
    let config_states = [
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        SqlState::INVALID_CATALOG_NAME,
        SqlState::INSUFFICIENT_PRIVILEGE,
    ];
    let transient_states = [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ];
    match err.code() {
        Some(state) if config_states.contains(state) => {
            exit::config(format!("PIPELINE_METADATA_URL: {message}"))
        }
        Some(state) if transient_states.contains(state) => exit::transient(message),
        None if err.is_closed() || io_failure(&err) => exit::transient(message),
        _ => anyhow::Error::new(err).context("metadata database (PostgreSQL)"),
    }
}

/// A refused, reset or timed-out connection.
fn io_failure(err: &postgres::Error) -> bool {
    std::error::Error::source(err).is_some_and(|e| e.is::<std::io::Error>())
}

impl Db {
    pub fn open_sqlite(path: &str) -> Result<Self> {
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
        let conn = rusqlite::Connection::open(path).map_err(sqlite_error)?;
        conn.busy_timeout(Duration::from_secs(60))
            .map_err(sqlite_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite_error)?;
        Ok(Db::Sqlite(conn))
    }

    /// Connects without TLS: reach a managed database through its in-cluster
    /// proxy (Cloud SQL Auth Proxy, RDS Proxy) or a private network.
    pub fn open_postgres(url: &str) -> Result<Self> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|_| exit::config("PIPELINE_METADATA_URL: not a valid postgres:// URL"))?;
        config.connect_timeout(Duration::from_secs(10));
        let client = config.connect(postgres::NoTls).map_err(postgres_error)?;
        Ok(Db::Postgres(RefCell::new(client)))
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64> {
        match self {
            Db::Sqlite(conn) => conn
                .execute(&sql.replace('$', "?"), rusqlite::params_from_iter(args))
                .map(|n| n as u64)
                .map_err(sqlite_error),
            Db::Postgres(client) => client
                .borrow_mut()
                .execute(sql, &params(args))
                .map_err(postgres_error),
        }
    }

    /// Runs statements without parameters (migrations, transaction control).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(conn) => conn.execute_batch(sql).map_err(sqlite_error),
            Db::Postgres(client) => client
                .borrow_mut()
                .batch_execute(sql)
                .map_err(postgres_error),
        }
    }

    /// The first row of a query whose columns are all text.
    pub fn query_texts(&self, sql: &str, args: &[Arg]) -> Result<Option<Vec<String>>> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare(&sql.replace('$', "?")).map_err(sqlite_error)?;
                let width = statement.column_count();
                let mut rows = statement
                    .query(rusqlite::params_from_iter(args))
                    .map_err(sqlite_error)?;
                let Some(row) = rows.next().map_err(sqlite_error)? else {
                    return Ok(None);
                };
                let texts = (0..width)
                    .map(|i| row.get::<_, String>(i))
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sqlite_error)?;
                Ok(Some(texts))
            }
            Db::Postgres(client) => {
                let row = client
                    .borrow_mut()
                    .query_opt(sql, &params(args))
                    .map_err(postgres_error)?;
                Ok(row.map(|row| (0..row.len()).map(|i| row.get::<_, String>(i)).collect()))
            }
        }
    }

    /// The single integer a query returns.
    pub fn count(&self, sql: &str) -> Result<u64> {
        let n: i64 = match self {
            Db::Sqlite(conn) => conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(sqlite_error)?,
            Db::Postgres(client) => client
                .borrow_mut()
                .query_one(sql, &[])
                .map_err(postgres_error)?
                .get(0),
        };
        Ok(n as u64)
    }

    /// Runs `work` in one write transaction, taken before any read so that
    /// concurrent tasks serialize: BEGIN IMMEDIATE on SQLite; on PostgreSQL
    /// a transaction-scoped advisory lock.
    pub fn in_transaction<T>(&self, work: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        match self {
            Db::Sqlite(_) => self.batch("BEGIN IMMEDIATE")?,
            Db::Postgres(_) => self.batch("BEGIN; SELECT pg_advisory_xact_lock(727274)")?,
        }
        match work(self) {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(err) => {
                let _ = self.batch("ROLLBACK");
                Err(err)
            }
        }
    }

    /// The applied migration: SQLite's user_version, or a one-row table.
    pub fn schema_version(&self) -> Result<usize> {
        let version = match self {
            Db::Sqlite(_) => self.count("PRAGMA user_version")?,
            Db::Postgres(_) => {
                self.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
                self.count("SELECT coalesce(max(version), 0) FROM schema_version")?
            }
        };
        Ok(version as usize)
    }

    pub fn set_schema_version(&self, version: usize) -> Result<()> {
        match self {
            Db::Sqlite(_) => self.batch(&format!("PRAGMA user_version = {version}")),
            Db::Postgres(_) => self.batch(&format!(
                "DELETE FROM schema_version; INSERT INTO schema_version VALUES ({version})"
            )),
        }
    }
}

fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}
