//! The two metadata databases behind the few operations `Metadata` needs.
//! Statements are written once, with `$N` placeholders (SQLite reads them
//! as `?N`); errors are mapped to exit codes here.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rusqlite::ErrorCode;
use rusqlite::types::{ToSqlOutput, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::exit;
use crate::runtime::runtime;

/// A statement parameter.
#[derive(Debug)]
pub(super) enum Arg<'a> {
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

pub(super) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Postgres),
}

/// A PostgreSQL connection whose every call has a deadline on this side
/// too: a server that accepts connections but never answers (paused, or
/// behind a stuck proxy) cannot hang a task, since the kernel keeps
/// acknowledging a paused server's packets and no TCP timeout fires.
pub(super) struct Postgres {
    client: tokio_postgres::Client,
    deadline: Duration,
    /// Set when a call timed out: the connection's state is unknown, so
    /// every later call fails fast instead of waiting out the deadline again.
    broken: Cell<bool>,
}

impl Postgres {
    fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        if self.broken.get() {
            return Err(exit::transient(
                "metadata database (PostgreSQL): the connection was abandoned after a timeout",
            ));
        }
        match within(self.deadline, call) {
            Some(result) => result.map_err(postgres_error),
            None => {
                self.broken.set(true);
                Err(timed_out(self.deadline))
            }
        }
    }
}

/// Runs one PostgreSQL future on the shared runtime; `None` when it has not
/// answered within `deadline`.
fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Option<Result<T, tokio_postgres::Error>> {
    runtime()
        .block_on(async { tokio::time::timeout(deadline, call).await })
        .ok()
}

fn timed_out(deadline: Duration) -> anyhow::Error {
    exit::transient(format!(
        "metadata database (PostgreSQL) did not answer within {} s (PIPELINE_METADATA_TIMEOUT_S)",
        deadline.as_secs()
    ))
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

/// PostgreSQL: a lost or refused connection, a serialization failure, a
/// deadlock or a lock or statement timeout is transient; bad credentials or
/// a missing database are configuration. The message never holds the URL
/// (it may hold a password).
fn postgres_error(err: tokio_postgres::Error) -> anyhow::Error {
    // The server's own words ("canceling statement due to lock timeout"),
    // or the client's with their cause ("error connecting to server:
    // Connection refused"); the bare error says only "db error".
    let detail = match (err.as_db_error(), std::error::Error::source(&err)) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(cause)) => format!("{err}: {cause}"),
        (None, None) => err.to_string(),
    };
    let message = format!("metadata database (PostgreSQL): {detail}");
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
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::QUERY_CANCELED,
        SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
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
fn io_failure(err: &tokio_postgres::Error) -> bool {
    std::error::Error::source(err).is_some_and(|e| e.is::<std::io::Error>())
}

impl Db {
    pub(super) fn open_sqlite(path: &str, timeout: Duration) -> Result<Self> {
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
        conn.busy_timeout(timeout).map_err(sqlite_error)?;
        // Switching a new file to WAL needs it alone: SQLite answers a
        // second process doing the same at once with "locked" at once,
        // without its busy handler, so wait here as the handler would.
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) && started.elapsed() < timeout =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(sqlite_error(e)),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite_error)?;
        Ok(Db::Sqlite(conn))
    }

    /// Connects without TLS: reach a managed database through its in-cluster
    /// proxy (Cloud SQL Auth Proxy, RDS Proxy) or a private network. Every
    /// call is bounded by `timeout`: on the server as lock, statement and
    /// idle-in-transaction timeouts, here as a deadline a little longer, so
    /// that the server's own error usually arrives first.
    pub(super) fn open_postgres(url: &str, timeout: Duration) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| exit::config("PIPELINE_METADATA_URL: not a valid postgres:// URL"))?;
        let ms = timeout.as_millis();
        config
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .options(format!(
                "-c lock_timeout={ms} -c statement_timeout={ms} \
                 -c idle_in_transaction_session_timeout={ms}"
            ));
        let deadline = timeout + Duration::from_secs(5);
        let (client, connection) = within(deadline, config.connect(tokio_postgres::NoTls))
            .ok_or_else(|| timed_out(deadline))?
            .map_err(postgres_error)?;
        // The connection ends with the client; its error, if any, reaches
        // the next call.
        runtime().spawn(connection);
        Ok(Db::Postgres(Postgres {
            client,
            deadline,
            broken: Cell::new(false),
        }))
    }

    /// Runs one statement; the number of rows it changed.
    pub(super) fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64> {
        match self {
            Db::Sqlite(conn) => conn
                .execute(&sql.replace('$', "?"), rusqlite::params_from_iter(args))
                .map(|n| n as u64)
                .map_err(sqlite_error),
            Db::Postgres(pg) => pg.call(pg.client.execute(sql, &params(args))),
        }
    }

    /// Runs statements without parameters (migrations, transaction control).
    pub(super) fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(conn) => conn.execute_batch(sql).map_err(sqlite_error),
            Db::Postgres(pg) => pg.call(pg.client.batch_execute(sql)),
        }
    }

    /// The first row of a query whose columns are all text.
    pub(super) fn query_texts(&self, sql: &str, args: &[Arg]) -> Result<Option<Vec<String>>> {
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
            Db::Postgres(pg) => {
                let row = pg.call(pg.client.query_opt(sql, &params(args)))?;
                Ok(row.map(|row| (0..row.len()).map(|i| row.get::<_, String>(i)).collect()))
            }
        }
    }

    /// The first column of every row of a text query.
    pub(super) fn query_column(&self, sql: &str, args: &[Arg]) -> Result<Vec<String>> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare(&sql.replace('$', "?")).map_err(sqlite_error)?;
                statement
                    .query_map(rusqlite::params_from_iter(args), |row| row.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(sqlite_error)
            }
            Db::Postgres(pg) => {
                let rows = pg.call(pg.client.query(sql, &params(args)))?;
                Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect())
            }
        }
    }

    /// The single integer a query returns.
    pub(super) fn count(&self, sql: &str, args: &[Arg]) -> Result<u64> {
        let n: i64 = match self {
            Db::Sqlite(conn) => conn
                .query_row(
                    &sql.replace('$', "?"),
                    rusqlite::params_from_iter(args),
                    |r| r.get(0),
                )
                .map_err(sqlite_error)?,
            Db::Postgres(pg) => pg.call(pg.client.query_one(sql, &params(args)))?.get(0),
        };
        Ok(n as u64)
    }

    /// Runs `work` in one write transaction, taken before any read so that
    /// concurrent tasks serialize: BEGIN IMMEDIATE on SQLite; on PostgreSQL
    /// a transaction-scoped advisory lock.
    pub(super) fn in_transaction<T>(&self, work: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
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

    /// The applied migration: SQLite's user_version, or a one-row table
    /// (0 before it exists). Reads only, so it takes no lock.
    pub(super) fn schema_version(&self) -> Result<usize> {
        let version = match self {
            Db::Sqlite(_) => self.count("PRAGMA user_version", &[])?,
            Db::Postgres(_) => {
                let exists = self.count(
                    "SELECT count(*) FROM pg_tables
                     WHERE tablename = 'schema_version' AND schemaname = current_schema()",
                    &[],
                )?;
                if exists == 0 {
                    0
                } else {
                    self.count("SELECT coalesce(max(version), 0) FROM schema_version", &[])?
                }
            }
        };
        Ok(version as usize)
    }

    pub(super) fn set_schema_version(&self, version: usize) -> Result<()> {
        match self {
            Db::Sqlite(_) => self.batch(&format!("PRAGMA user_version = {version}")),
            Db::Postgres(_) => self.batch(&format!(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
                 DELETE FROM schema_version; INSERT INTO schema_version VALUES ({version})"
            )),
        }
    }
}

fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}
