//! Snowflake through snowflake-connector-rs. Account, user and object names
//! come from SNOWFLAKE_* variables; password or key-pair auth. Lake files
//! are loaded with COPY INTO from the external stage over the lake.

use std::time::Duration;

use anyhow::{Result, anyhow};
use chrono::NaiveDate;
use snowflake_connector_rs::{
    AuthConfig, CellValue, Client, ClientConfig, DynamicRow, EndpointConfig, ErrorKind,
    KeyPairConfig, QueryConfig, Session, SessionConfig, Statement,
};

use super::{Rows, Warehouse, WarehouseSettings, date_literal, raw_table, sql_type};
use crate::catalog::Dataset;
use crate::dbt::Backend;
use crate::exit::{self, first_line};
use crate::metrics::LineageDataset;
use crate::runtime::runtime;
use crate::settings::SnowflakeSettings;
use crate::storage::ObjectStore;

/// The objects the pipeline works in, named by SNOWFLAKE_* variables.
pub(super) struct ObjectNames {
    pub database: String,
    pub warehouse: String,
    pub role: String,
    /// External stage over the lake bucket (SNOWFLAKE_STAGE).
    pub stage: String,
}

impl ObjectNames {
    pub(super) fn of(settings: &SnowflakeSettings) -> Result<Self> {
        let name = |var: &str, value: &Option<String>, default: &str| -> Result<String> {
            let value = value.clone().unwrap_or_else(|| default.to_string());
            let plain = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'));
            if plain {
                Ok(value)
            } else {
                Err(exit::config(format!(
                    "{var}: {value:?} is not a plain Snowflake identifier"
                )))
            }
        };
        Ok(Self {
            database: name("SNOWFLAKE_DATABASE", &settings.database, "MARKETING")?,
            warehouse: name("SNOWFLAKE_WAREHOUSE", &settings.warehouse, "PIPELINE_WH")?,
            role: name("SNOWFLAKE_ROLE", &settings.role, "PIPELINE_ROLE")?,
            stage: name("SNOWFLAKE_STAGE", &settings.stage, "RAW.LAKE_STAGE")?,
        })
    }
}

pub(super) struct SnowflakeWarehouse {
    session: Session,
    stage: String,
    /// `snowflake://ACCOUNT`, the lineage namespace.
    namespace: String,
    database: String,
}

fn required(var: &str, value: &Option<String>) -> Result<String> {
    value
        .clone()
        .ok_or_else(|| exit::config(format!("{var} is not set (needed for snowflake://)")))
}

/// Password, or a key pair from SNOWFLAKE_PRIVATE_KEY_PATH / _PRIVATE_KEY
/// with an optional SNOWFLAKE_PRIVATE_KEY_PASSPHRASE.
fn auth(settings: &SnowflakeSettings) -> Result<AuthConfig> {
    let pem = match &settings.private_key_path {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            exit::config(format!(
                "SNOWFLAKE_PRIVATE_KEY_PATH: cannot read {path:?}: {e}"
            ))
        })?),
        None => settings.private_key.as_ref().map(|key| key.0.clone()),
    };
    if let Some(pem) = pem {
        let key = match &settings.private_key_passphrase {
            Some(pass) => KeyPairConfig::from_encrypted_pem(pem, pass.0.clone()),
            None => KeyPairConfig::from_pem(pem),
        };
        return Ok(AuthConfig::key_pair(key));
    }
    match &settings.password {
        Some(password) => Ok(AuthConfig::password(password.0.clone())),
        None => Err(exit::config(
            "set SNOWFLAKE_PASSWORD, SNOWFLAKE_PRIVATE_KEY_PATH or SNOWFLAKE_PRIVATE_KEY for snowflake://",
        )),
    }
}

/// Connector errors by what Airflow should do about them. Messages come
/// from the server or the connector, never from our credentials.
fn classify(err: snowflake_connector_rs::Error, doing: &str) -> anyhow::Error {
    let message = format!("Snowflake: {doing}: {err}");
    match err.kind() {
        ErrorKind::Config | ErrorKind::Auth => exit::config(message),
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::SessionExpired => {
            exit::transient(message)
        }
        _ => anyhow!(message),
    }
}

impl SnowflakeWarehouse {
    /// `endpoint` is empty for the account's own host, or `HOST[:PORT]`;
    /// `plain_http` is for emulators on 127.0.0.1.
    /// Statements run at most `timeout_s` on the server, which then
    /// cancels them; the client gives up a minute later. A lock is waited
    /// for at most a tenth of that, and a query whose client vanished (a
    /// killed pod) is aborted rather than left running.
    pub(super) fn open(
        endpoint: &str,
        plain_http: bool,
        settings: &WarehouseSettings,
    ) -> Result<Self> {
        let timeout_s = settings.timeout_s;
        let sf = &settings.snowflake;
        let names = ObjectNames::of(sf)?;
        let account = required("SNOWFLAKE_ACCOUNT", &sf.account)?;
        let namespace = format!("snowflake://{}", account.to_lowercase());
        let mut config =
            ClientConfig::new(required("SNOWFLAKE_USER", &sf.user)?, account, auth(sf)?)
                .with_query(
                    QueryConfig::new()
                        .with_query_response_timeout(Duration::from_secs(timeout_s + 60)),
                )
                .with_session(
                    SessionConfig::new()
                        .with_database(&names.database)
                        .with_warehouse(&names.warehouse)
                        .with_role(&names.role)
                        .with_session_parameter("AUTOCOMMIT", true.into())
                        .with_session_parameter(
                            "STATEMENT_TIMEOUT_IN_SECONDS",
                            (timeout_s as i64).into(),
                        )
                        .with_session_parameter(
                            "LOCK_TIMEOUT",
                            ((timeout_s / 10).max(1) as i64).into(),
                        )
                        .with_session_parameter("ABORT_DETACHED_QUERY", true.into()),
                );
        let endpoint = endpoint.trim_end_matches('/');
        if !endpoint.is_empty() {
            let scheme = if plain_http { "http" } else { "https" };
            let url = format!("{scheme}://{endpoint}");
            config = config.with_endpoint(EndpointConfig::custom_base_url(url.parse().map_err(
                |e| {
                    exit::config(format!(
                        "PIPELINE_WAREHOUSE_URL: bad host {endpoint:?}: {e}"
                    ))
                },
            )?));
        }
        let client = Client::new(config).map_err(|e| classify(e, "client setup"))?;
        let session = login(&client)?;
        Ok(Self {
            session,
            stage: names.stage,
            namespace,
            database: names.database,
        })
    }

    fn rows(&mut self, sql: &str, doing: &str) -> Result<Vec<DynamicRow>> {
        runtime()
            .block_on(async { self.session.query(sql.to_string()).await?.collect().await })
            .map_err(|e| classify(e, doing))
    }
}

/// Logs in, retrying network failures a few times before giving up (75).
fn login(client: &Client) -> Result<Session> {
    let mut attempt = 1;
    loop {
        match runtime().block_on(client.create_session()) {
            Ok(session) => return Ok(session),
            Err(e)
                if attempt < 4 && matches!(e.kind(), ErrorKind::Network | ErrorKind::Timeout) =>
            {
                std::thread::sleep(Duration::from_millis(500 << attempt));
                attempt += 1;
            }
            Err(e) => return Err(classify(e, "login")),
        }
    }
}

impl Warehouse for SnowflakeWarehouse {
    fn backend(&self) -> Backend {
        Backend::Snowflake
    }

    fn lineage(&self, relation: &str) -> LineageDataset {
        LineageDataset {
            namespace: self.namespace.clone(),
            name: format!("{}.{relation}", self.database).to_uppercase(),
        }
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.rows(sql, first_line(sql)).map(drop)
    }

    fn execute_bound(&mut self, sql: &str, params: &[&str]) -> Result<()> {
        let statement = params.iter().fold(
            Statement::new_positional(sql.to_string()),
            |statement, param| statement.bind(param.to_string()),
        );
        runtime()
            .block_on(async {
                self.session
                    .query(statement)
                    .await?
                    .collect::<Vec<_>>()
                    .await
            })
            .map(drop)
            .map_err(|e| classify(e, first_line(sql)))
    }

    fn query(&mut self, sql: &str) -> Result<Rows> {
        Ok(self
            .rows(sql, first_line(sql))?
            .into_iter()
            .map(|row| row.values().iter().cloned().map(text).collect())
            .collect())
    }

    fn append_partition(
        &mut self,
        dataset: Dataset,
        ds: NaiveDate,
        _lake: &dyn ObjectStore,
        key: &str,
    ) -> Result<()> {
        // The stage reads the lake itself. COPY names the one file, and
        // sets the partition columns as it loads, so that nothing else (a
        // load of another ds running at once) is ever touched.
        let (folder, file) = key.rsplit_once('/').unwrap_or(("", key));
        let columns: Vec<String> = dataset
            .columns()
            .iter()
            .map(|c| c.name.to_ascii_uppercase())
            .collect();
        let values: Vec<String> = dataset
            .columns()
            .iter()
            .map(|c| format!("$1:{}::{}", c.name, sql_type(c.ty)))
            .collect();
        self.execute(&format!(
            "COPY INTO {table} ({columns}, DS, LOADED_AT) \
             FROM (SELECT {values}, {ds}, CURRENT_TIMESTAMP() FROM @{stage}/{folder}/) \
             FILES = ('{file}') FILE_FORMAT = (TYPE = PARQUET) FORCE = TRUE",
            table = raw_table(dataset),
            columns = columns.join(", "),
            values = values.join(", "),
            ds = date_literal(ds),
            stage = self.stage,
        ))
    }

    fn adapt_setup(&self, statement: &str) -> Option<String> {
        Some(statement.to_string())
    }
}

/// A value as text; `None` for NULL.
fn text(value: CellValue) -> Option<String> {
    Some(match value {
        CellValue::Null => return None,
        CellValue::Boolean(b) => b.to_string(),
        CellValue::Integer(n) => n.to_string(),
        CellValue::Float(f) => f.to_string(),
        CellValue::Decimal(d) => d.raw().to_string(),
        CellValue::String(s) => s,
        CellValue::Date(d) => d.to_string(),
        CellValue::TimestampNtz(t) => t.to_string(),
        other => format!("{other:?}"),
    })
}
