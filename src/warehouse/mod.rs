//! The warehouse behind one small interface, chosen by
//! PIPELINE_WAREHOUSE_URL: `duckdb://PATH` (embedded, the default) or
//! `snowflake://` (credentials from SNOWFLAKE_* variables).
//!
//! Both run the same SQL: the dbt project of sql/ compiled for them
//! (`dbt::materialize`); only loading a lake file into RAW differs.

mod duckdb;
pub(crate) mod project;
mod snowflake;

use anyhow::Result;
use chrono::NaiveDate;

use crate::catalog::{ColumnType, Dataset};
use crate::exit;
use crate::metrics::LineageDataset;
use crate::settings::{Settings, SnowflakeSettings};
use crate::storage::ObjectStore;

/// Result rows with every value as text (`None` for NULL).
pub(crate) type Rows = Vec<Vec<Option<String>>>;

pub(crate) trait Warehouse {
    /// The dbt target the warehouse is.
    fn backend(&self) -> crate::dbt::Backend;
    /// Runs one statement whose result is not needed.
    fn execute(&mut self, sql: &str) -> Result<()>;
    /// Runs one statement with `?` placeholders bound to `params`, for
    /// values that come from outside the program.
    fn execute_bound(&mut self, sql: &str, params: &[&str]) -> Result<()>;
    /// Runs one query and returns its rows as text.
    fn query(&mut self, sql: &str) -> Result<Rows>;
    /// Appends the lake's valid slice for (dataset, ds) to its RAW table,
    /// with DS and LOADED_AT set; runs inside the caller's transaction.
    fn append_partition(
        &mut self,
        dataset: Dataset,
        ds: NaiveDate,
        lake: &dyn ObjectStore,
        key: &str,
    ) -> Result<()>;
    /// A relation (`SCHEMA.TABLE`) as OpenLineage names it.
    fn lineage(&self, relation: &str) -> LineageDataset;
    /// Whether a setup statement applies to this backend, and in what form.
    fn adapt_setup(&self, statement: &str) -> Option<String>;
    /// Makes what the task wrote durable in the warehouse's own files now,
    /// inside the task's time, rather than when the connection closes.
    fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How to reach the warehouse: everything `open` needs from the settings.
#[derive(Clone, Debug)]
pub(crate) struct WarehouseSettings {
    pub url: String,
    pub lake_url: String,
    pub timeout_s: u64,
    pub duckdb_lock_timeout_s: u64,
    /// What the embedded DuckDB may use: half the task's memory limit.
    pub duckdb_memory_bytes: u64,
    pub snowflake: SnowflakeSettings,
}

impl WarehouseSettings {
    pub(crate) fn of(settings: &Settings) -> Self {
        Self {
            url: settings.warehouse_url.clone(),
            lake_url: settings.lake_url.clone(),
            timeout_s: settings.limits.warehouse_timeout_s,
            duckdb_lock_timeout_s: settings.duckdb_lock_timeout_s,
            duckdb_memory_bytes: settings.memory.limit_bytes / 2,
            snowflake: settings.snowflake.clone(),
        }
    }
}

/// Opens the warehouse a URL names: `duckdb://PATH`, `snowflake://` (the
/// account's host), `snowflake://HOST[:PORT]`, or `snowflake+http://HOST:PORT`
/// for an emulator.
pub(crate) fn open(settings: &WarehouseSettings) -> Result<Box<dyn Warehouse>> {
    let url = &settings.url;
    match url.split_once("://") {
        Some(("duckdb", path)) if !path.is_empty() => Ok(Box::new(duckdb::DuckDbWarehouse::open(
            path,
            settings.duckdb_lock_timeout_s,
            settings.duckdb_memory_bytes,
        )?)),
        Some(("snowflake", host)) => Ok(Box::new(snowflake::SnowflakeWarehouse::open(
            host, false, settings,
        )?)),
        Some(("snowflake+http", host)) if !host.is_empty() => Ok(Box::new(
            snowflake::SnowflakeWarehouse::open(host, true, settings)?,
        )),
        _ => Err(exit::config(format!(
            "PIPELINE_WAREHOUSE_URL: unsupported warehouse URL {url:?} \
             (expected duckdb://PATH, snowflake://[HOST[:PORT]] or snowflake+http://HOST:PORT)"
        ))),
    }
}

/// The warehouse of a task, opened on first use (only load, transform,
/// setup and sql need one) with its schemas and tables in place.
pub(crate) struct LazyWarehouse {
    settings: WarehouseSettings,
    opened: Option<Box<dyn Warehouse>>,
}

impl LazyWarehouse {
    pub(crate) fn new(settings: &Settings) -> Self {
        Self {
            settings: WarehouseSettings::of(settings),
            opened: None,
        }
    }

    pub(crate) fn get(&mut self) -> Result<&mut dyn Warehouse> {
        if self.opened.is_none() {
            self.setup(false)?;
        }
        Ok(self.opened.as_deref_mut().expect("opened by setup"))
    }

    /// Opens the warehouse if needed and runs setup.sql, the account-level
    /// objects included with `everything`; the number of statements run.
    pub(crate) fn setup(&mut self, everything: bool) -> Result<usize> {
        if self.opened.is_none() {
            self.opened = Some(open(&self.settings)?);
        }
        let wh = self.opened.as_deref_mut().expect("opened above");
        setup(wh, &self.settings, everything)
    }
}

/// Creates the schemas and tables (all of setup.sql with `everything`, the
/// account-level objects included; otherwise only CREATE SCHEMA / TABLE).
/// Every statement is idempotent.
fn setup(wh: &mut dyn Warehouse, settings: &WarehouseSettings, everything: bool) -> Result<usize> {
    let names = snowflake::ObjectNames::of(&settings.snowflake)?;
    let stage_url = stage_url(&settings.lake_url)?;
    let script = project::render(
        project::file(project::SETUP),
        &[
            ("database", &names.database),
            ("warehouse", &names.warehouse),
            ("role", &names.role),
            ("stage", &names.stage),
            ("lake_url", &stage_url),
        ],
    )?;
    let mut ran = 0;
    for statement in project::statements(&script) {
        if !(everything || is_schema_object(&statement)) {
            continue;
        }
        if let Some(statement) = wh.adapt_setup(&statement) {
            wh.execute(&statement)?;
            ran += 1;
        }
    }
    Ok(ran)
}

/// A CREATE SCHEMA or CREATE TABLE statement: what every backend runs.
fn is_schema_object(statement: &str) -> bool {
    let upper = statement.to_ascii_uppercase();
    upper.starts_with("CREATE SCHEMA") || upper.starts_with("CREATE TABLE")
}

/// The stage URL for a lake URL: absolute, ending in `/`.
fn stage_url(lake_url: &str) -> Result<String> {
    let url = match lake_url.strip_prefix("file://") {
        Some(path) => {
            let absolute = std::path::absolute(path).map_err(|e| {
                exit::config(format!("PIPELINE_LAKE_URL: cannot resolve {path:?}: {e}"))
            })?;
            format!("file://{}", absolute.display())
        }
        None => lake_url.to_string(),
    };
    Ok(if url.ends_with('/') { url } else { url + "/" })
}

/// The RAW table of a dataset, as named in SQL.
pub(crate) fn raw_table(dataset: Dataset) -> String {
    format!("RAW.{}", dataset.name().to_ascii_uppercase())
}

/// The SQL type of a column, on both backends.
fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "VARCHAR",
        ColumnType::Bool => "BOOLEAN",
        ColumnType::Int => "BIGINT",
        ColumnType::Float => "DOUBLE",
        ColumnType::Date => "DATE",
        ColumnType::Timestamp => "TIMESTAMP",
    }
}

/// DDL for a dataset's RAW table, from the catalogue: its columns, plus the
/// ds partition it was loaded for and when.
pub(crate) fn raw_table_ddl(dataset: Dataset) -> String {
    let columns: Vec<String> = dataset
        .columns()
        .iter()
        .map(|c| format!("{} {}", c.name.to_ascii_uppercase(), sql_type(c.ty)))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, DS DATE, LOADED_AT TIMESTAMP)",
        raw_table(dataset),
        columns.join(", ")
    )
}

/// A `DATE` literal both backends accept.
pub(crate) fn date_literal(ds: NaiveDate) -> String {
    format!("CAST('{ds}' AS DATE)")
}

/// Runs `work` in one transaction: committed if it succeeds, rolled back
/// (best effort, the original error wins) if not.
pub(crate) fn in_transaction<T>(
    wh: &mut dyn Warehouse,
    work: impl FnOnce(&mut dyn Warehouse) -> Result<T>,
) -> Result<T> {
    wh.execute("BEGIN")?;
    match work(wh) {
        Ok(value) => {
            wh.execute("COMMIT")?;
            Ok(value)
        }
        Err(err) => {
            let _ = wh.execute("ROLLBACK");
            Err(err)
        }
    }
}

/// The single number a `SELECT COUNT(*) ...` returns.
pub(crate) fn count(wh: &mut dyn Warehouse, sql: &str) -> Result<u64> {
    let rows = wh.query(sql)?;
    let value = rows.first().and_then(|r| r.first()).cloned().flatten();
    value
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("expected one count from {sql:?}, got {rows:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tables_follow_the_catalogue() {
        let ddl = raw_table_ddl(Dataset::named("website_activity"));
        assert!(
            ddl.starts_with("CREATE TABLE IF NOT EXISTS RAW.WEBSITE_ACTIVITY (SESSION_ID VARCHAR,")
        );
        assert!(ddl.contains("PAGES_VIEWED BIGINT, BOUNCE BOOLEAN"));
        assert!(ddl.ends_with("DS DATE, LOADED_AT TIMESTAMP)"));
    }

    #[test]
    fn stage_urls_are_absolute_directories() {
        assert_eq!(stage_url("s3://lake/prefix").unwrap(), "s3://lake/prefix/");
        let local = stage_url("file://./data/lake").unwrap();
        assert!(
            local.starts_with("file:///") && local.ends_with("/data/lake/"),
            "{local}"
        );
    }

    #[test]
    fn unsupported_urls_are_config_errors() {
        for url in ["postgres://x", "duckdb://", "warehouse.duckdb"] {
            let settings = WarehouseSettings {
                url: url.into(),
                lake_url: "file://lake".into(),
                timeout_s: 60,
                duckdb_lock_timeout_s: 1,
                duckdb_memory_bytes: 1 << 30,
                snowflake: SnowflakeSettings::default(),
            };
            let err = open(&settings).err().unwrap();
            assert_eq!(exit::code_of(&err), exit::ExitCode::Config, "{url}");
        }
    }
}
