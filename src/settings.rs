//! Settings: the global flags and every environment variable the binary
//! reads, resolved and validated once at startup, then passed down.
//! Nothing else reads the environment (the AWS SDK reads its own standard
//! chain: credentials, region, endpoint).

use std::fmt;

use anyhow::Result;

use crate::cli::{GlobalArgs, Limits};
use crate::exit;
use crate::metrics::AirflowRun;

pub(crate) struct Settings {
    pub landing_url: String,
    pub lake_url: String,
    pub metadata_url: String,
    pub warehouse_url: String,
    pub limits: Limits,
    /// The memory a task may use, and where that figure came from.
    pub memory: Memory,
    /// `PIPELINE_CONTRACTS`: contracts replacing or extending the embedded ones.
    pub contracts: Option<String>,
    /// `PIPELINE_DBT_PROJECT_DIR`: a dbt project replacing the built-in one.
    pub dbt_project_dir: Option<std::path::PathBuf>,
    /// What the dbt project's `env_var()` reads: the environment without
    /// the credentials above.
    pub dbt_env: crate::dbt::Env,
    pub s3: S3Tuning,
    /// Seconds a task waits for another process's lock on the DuckDB file.
    pub duckdb_lock_timeout_s: u64,
    pub snowflake: SnowflakeSettings,
    pub airflow: AirflowRun,
    /// `PIPELINE_LOG`, a tracing filter such as `debug` or `info,polars=warn`.
    pub log_filter: Option<String>,
    /// Credentials the AWS SDK reads itself, known here only to be masked.
    pub aws_secrets: Vec<Secret>,
}

/// The memory a task may use: `--memory-limit`, else the cgroup's limit,
/// else the machine's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Memory {
    pub limit_bytes: u64,
    pub source: &'static str,
}

impl Memory {
    fn resolve(flag: Option<u64>) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let cgroup = [
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]
        .into_iter()
        .filter_map(read)
        // "max" (v2) or a page-rounded i64::MAX (v1) mean no limit.
        .find_map(|text| text.trim().parse::<u64>().ok().filter(|n| *n < 1 << 60));
        let physical = read("/proc/meminfo").and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
        match (flag, cgroup, physical) {
            (Some(bytes), _, _) => Self::new(bytes, "--memory-limit"),
            (None, Some(bytes), _) => Self::new(bytes, "cgroup"),
            (None, None, Some(bytes)) => Self::new(bytes, "physical memory"),
            (None, None, None) => Self::new(4 << 30, "default"),
        }
    }

    fn new(limit_bytes: u64, source: &'static str) -> Self {
        Self {
            limit_bytes,
            source,
        }
    }

    /// Bytes of a raw file read and checked at a time: a batch takes about
    /// eight times its size while it is checked and encoded, and up to
    /// three are in flight, so a 32nd of the limit leaves room for the key
    /// sets; more than 64 MiB gains
    /// nothing (two cores are busy with one batch), and below 1 MiB the
    /// per-batch overhead dominates.
    pub(crate) fn batch_bytes(&self) -> usize {
        (self.limit_bytes / 32).clamp(1 << 20, 64 << 20) as usize
    }
}

/// S3 upload tuning, per deployment (`PIPELINE_S3_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct S3Tuning {
    /// Objects up to this size go up in one PUT.
    pub multipart_threshold_bytes: usize,
    /// At least S3's minimum of 5 MiB.
    pub part_size_bytes: usize,
    pub parallel_parts: usize,
    pub max_attempts: u32,
}

impl S3Tuning {
    pub(crate) const DEFAULT: Self = Self {
        multipart_threshold_bytes: 16 * MIB,
        part_size_bytes: 16 * MIB,
        parallel_parts: 8,
        max_attempts: 4,
    };
}

/// The `SNOWFLAKE_*` variables, read whatever the warehouse; checked when a
/// Snowflake warehouse is opened, so that tasks which never open one do
/// not need them.
#[derive(Clone, Debug, Default)]
pub(crate) struct SnowflakeSettings {
    pub account: Option<String>,
    pub user: Option<String>,
    pub database: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
    pub stage: Option<String>,
    pub password: Option<Secret>,
    pub private_key_path: Option<String>,
    pub private_key: Option<Secret>,
    pub private_key_passphrase: Option<Secret>,
}

/// A credential: its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

const AWS_SECRETS: &[&str] = &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// Variables holding credentials, which `env_var()` may not read (dbt
/// keeps `DBT_ENV_SECRET_*` out of SQL the same way).
fn is_secret(name: &str) -> bool {
    AWS_SECRETS.contains(&name)
        || name.starts_with("DBT_ENV_SECRET")
        || matches!(
            name,
            "SNOWFLAKE_PASSWORD" | "SNOWFLAKE_PRIVATE_KEY" | "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"
        )
}

const MIB: usize = 1024 * 1024;

impl Settings {
    pub(crate) fn resolve(args: &GlobalArgs) -> Result<Self> {
        let mut settings = Self::from_env(args, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })?;
        settings.dbt_env = std::env::vars()
            .filter(|(name, _)| !is_secret(name))
            .collect();
        Ok(settings)
    }

    /// `resolve` with the environment as `var`, so tests need not set
    /// process-wide variables.
    fn from_env(args: &GlobalArgs, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let positive = |name: &str, default: usize| -> Result<usize> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        exit::config(format!("{name}: {v:?} is not a positive whole number"))
                    }),
            }
        };
        let secret = |name: &str| var(name).map(Secret);
        Ok(Self {
            landing_url: args.landing_url.clone(),
            lake_url: args.lake_url.clone(),
            metadata_url: args.metadata_url.clone(),
            warehouse_url: args.warehouse_url.clone(),
            limits: args.limits,
            memory: Memory::resolve(args.limits.memory_limit),
            contracts: args.contracts.clone(),
            dbt_project_dir: args.dbt_project_dir.clone(),
            dbt_env: crate::dbt::Env::new(),
            s3: {
                let d = S3Tuning::DEFAULT;
                let mib = |name: &str, default: usize| {
                    Ok::<_, anyhow::Error>(positive(name, default / MIB)? * MIB)
                };
                S3Tuning {
                    multipart_threshold_bytes: mib(
                        "PIPELINE_S3_MULTIPART_THRESHOLD_MB",
                        d.multipart_threshold_bytes,
                    )?,
                    // S3's smallest part.
                    part_size_bytes: mib("PIPELINE_S3_PART_SIZE_MB", d.part_size_bytes)?
                        .max(5 * MIB),
                    parallel_parts: positive("PIPELINE_S3_PARALLEL_PARTS", d.parallel_parts)?,
                    max_attempts: positive("PIPELINE_S3_MAX_ATTEMPTS", d.max_attempts as usize)?
                        as u32,
                }
            },
            duckdb_lock_timeout_s: positive("PIPELINE_DUCKDB_LOCK_TIMEOUT_S", 300)? as u64,
            snowflake: SnowflakeSettings {
                account: var("SNOWFLAKE_ACCOUNT"),
                user: var("SNOWFLAKE_USER"),
                database: var("SNOWFLAKE_DATABASE"),
                warehouse: var("SNOWFLAKE_WAREHOUSE"),
                role: var("SNOWFLAKE_ROLE"),
                stage: var("SNOWFLAKE_STAGE"),
                password: secret("SNOWFLAKE_PASSWORD"),
                private_key_path: var("SNOWFLAKE_PRIVATE_KEY_PATH"),
                private_key: secret("SNOWFLAKE_PRIVATE_KEY"),
                private_key_passphrase: secret("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
            },
            airflow: AirflowRun {
                dag_id: var("AIRFLOW_CTX_DAG_ID"),
                task_id: var("AIRFLOW_CTX_TASK_ID"),
                run_id: var("AIRFLOW_CTX_DAG_RUN_ID"),
            },
            log_filter: var("PIPELINE_LOG"),
            aws_secrets: AWS_SECRETS.iter().filter_map(|n| secret(n)).collect(),
        })
    }

    /// Every credential value this process knows of, for masking.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        let sf = &self.snowflake;
        [&sf.password, &sf.private_key, &sf.private_key_passphrase]
            .into_iter()
            .flatten()
            .chain(&self.aws_secrets)
            .map(|s| s.0.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn args() -> GlobalArgs {
        Cli::try_parse_from(["marketing-pipeline", "setup"])
            .unwrap()
            .settings
    }

    #[test]
    fn defaults_apply_when_unset() {
        let s = Settings::from_env(&args(), |_| None).unwrap();
        assert_eq!(s.s3.part_size_bytes, 16 * MIB);
        assert_eq!(s.duckdb_lock_timeout_s, 300);
        assert_eq!(s.airflow, AirflowRun::default());
    }

    #[test]
    fn bad_tuning_is_a_configuration_error_naming_the_variable() {
        let err = Settings::from_env(&args(), |n| {
            (n == "PIPELINE_S3_PARALLEL_PARTS").then(|| "0".to_string())
        })
        .err()
        .unwrap();
        assert_eq!(exit::code_of(&err), exit::ExitCode::Config);
        assert!(err.to_string().contains("PIPELINE_S3_PARALLEL_PARTS"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Settings::from_env(&args(), |n| {
            (n == "SNOWFLAKE_PASSWORD").then(|| "hunter2-long".to_string())
        })
        .unwrap();
        assert!(!format!("{:?}", s.snowflake).contains("hunter2"));
        assert!(s.secret_values().contains(&"hunter2-long".to_string()));
    }
}
