//! Command line: flags and their environment variables, parsed once into
//! validated values (`settings` adds the variables that are not flags).

use std::path::PathBuf;
use std::sync::LazyLock;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::catalog::is_plain_name;
use crate::exit::ExitCode;
use crate::metrics::Task;

/// `--help`'s epilogue: the exit codes, from `ExitCode` itself.
static AFTER_HELP: LazyLock<String> = LazyLock::new(|| {
    let codes: Vec<String> = ExitCode::ALL
        .iter()
        .map(|c| {
            format!(
                "  {:>2}  {} ({})",
                c.code(),
                c.meaning(),
                c.airflow().verb()
            )
        })
        .collect();
    format!("Exit codes:\n{}\n\n{OUTPUT}", codes.join("\n"))
});

const OUTPUT: &str = "\
Every task prints one JSON metrics object as its last stdout line (also written
to $PIPELINE_XCOM_FILE when set) and logs bunyan JSON on stderr (level from
PIPELINE_LOG, default info). Neither ever holds a secret: URL passwords show as
*** and --help shows variable names, never their values.";

#[derive(Parser, Debug)]
#[command(
    name = "marketing-pipeline",
    version,
    about = "ELT pipeline for marketing data: one subcommand per Airflow task",
    after_help = AFTER_HELP.as_str()
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub settings: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where data and metadata live; the same flags work for every task.
#[derive(Args, Debug, Clone)]
pub(crate) struct GlobalArgs {
    /// Raw, valid and quarantine files written by generate and validate.
    #[arg(
        long,
        env = "PIPELINE_LANDING_URL",
        hide_env_values = true,
        default_value = "file://./data/landing",
        global = true
    )]
    pub landing_url: String,
    /// The lake that upload publishes valid and quarantine slices to.
    #[arg(
        long,
        env = "PIPELINE_LAKE_URL",
        hide_env_values = true,
        default_value = "file://./data/lake",
        global = true
    )]
    pub lake_url: String,
    /// stage_log, file_metadata, dq_checks and dq_signature.
    #[arg(
        long,
        env = "PIPELINE_METADATA_URL",
        hide_env_values = true,
        default_value = "sqlite://./data/metadata.db",
        global = true
    )]
    pub metadata_url: String,
    /// Where load and transform build RAW, STG and MART tables:
    /// duckdb://PATH or snowflake:// (SNOWFLAKE_* variables; see README).
    #[arg(
        long,
        env = "PIPELINE_WAREHOUSE_URL",
        hide_env_values = true,
        default_value = "duckdb://./data/warehouse.duckdb",
        global = true
    )]
    pub warehouse_url: String,
    /// Also write the metrics JSON here (KubernetesPodOperator XCom sidecar).
    #[arg(
        long,
        env = "PIPELINE_XCOM_FILE",
        hide_env_values = true,
        global = true
    )]
    pub xcom_file: Option<PathBuf>,
    /// Data contracts that replace or extend the embedded ones (dbt sources
    /// YAML): a file, a folder of .yml files, or an s3:// object.
    #[arg(
        long,
        env = "PIPELINE_CONTRACTS",
        hide_env_values = true,
        global = true
    )]
    pub contracts: Option<String>,
    /// The dbt project transform runs: a folder holding dbt_project.yml.
    /// By default the project built into the binary (sql/ of its source).
    #[arg(
        long,
        env = "PIPELINE_DBT_PROJECT_DIR",
        hide_env_values = true,
        global = true,
        value_name = "DIR"
    )]
    pub dbt_project_dir: Option<PathBuf>,
    #[command(flatten)]
    pub limits: Limits,
}

impl GlobalArgs {
    /// The URLs, whose passwords must never be printed.
    pub(crate) fn urls(&self) -> [&str; 4] {
        [
            &self.landing_url,
            &self.lake_url,
            &self.metadata_url,
            &self.warehouse_url,
        ]
    }
}

/// Bounds on what one task reads, so that a hostile or broken file is
/// rejected (exit 65) instead of exhausting a pod's memory.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest raw file validate reads, in bytes (default 256 GiB). Files
    /// are read in batches, so this bounds the time one file may take, not
    /// memory.
    #[arg(long, env = "PIPELINE_MAX_FILE_BYTES", hide_env_values = true, default_value_t = 256 << 30, value_parser = parse_positive, global = true)]
    pub max_file_bytes: u64,
    /// Memory a task may use, which sizes the batches a file is read in:
    /// bytes, or with a unit (512MiB, 2GiB, 4G). By default the cgroup's
    /// limit (a pod's `resources.limits.memory`), else the machine's memory.
    #[arg(long, env = "PIPELINE_MEMORY_LIMIT", hide_env_values = true, value_parser = parse_bytes, global = true, value_name = "BYTES")]
    pub memory_limit: Option<u64>,
    /// Largest uncompressed size a Parquet file may declare, in bytes (default 8 GiB).
    #[arg(long, env = "PIPELINE_MAX_DECOMPRESSED_BYTES", hide_env_values = true, default_value_t = DEFAULT_MAX_DECOMPRESSED_BYTES, value_parser = parse_positive, global = true)]
    pub max_decompressed_bytes: u64,
    /// Seconds a metadata database call may take before the task gives up
    /// (exit 75); also the server-side lock and statement timeouts.
    #[arg(long, env = "PIPELINE_METADATA_TIMEOUT_S", hide_env_values = true, default_value_t = 60, value_parser = parse_positive, global = true)]
    pub metadata_timeout_s: u64,
    /// Seconds one warehouse statement may run (Snowflake's
    /// STATEMENT_TIMEOUT_IN_SECONDS; the client waits a minute longer).
    #[arg(long, env = "PIPELINE_WAREHOUSE_TIMEOUT_S", hide_env_values = true, default_value_t = 3600, value_parser = parse_positive, global = true)]
    pub warehouse_timeout_s: u64,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    #[command(flatten)]
    Task(TaskCommand),
    /// Print the interface as JSON (tasks, statuses, exit codes and what
    /// Airflow does with each, datasets); the Airflow package reads a
    /// committed copy. Touches no storage.
    Describe,
}

/// The subcommands that run a task and print its metrics.
#[derive(Subcommand, Debug)]
pub(crate) enum TaskCommand {
    /// Write synthetic data for one dataset to raw-data/ in the landing area.
    Generate(GenerateArgs),
    /// Check one raw file; split it into valid-data/ and quarantine-data/.
    Validate(ValidateArgs),
    /// Publish one dataset's valid and quarantine slices to the lake.
    Upload(UploadArgs),
    /// Load one dataset's valid slice from the lake into its RAW table.
    Load(LoadArgs),
    /// Build staging and mart tables for one ds, then run the SQL data tests.
    Transform(TransformArgs),
    /// Create the warehouse objects of sql/snowflake/setup.sql.
    Setup(SetupArgs),
    /// Run SQL on the warehouse and print the last statement's rows (tab-separated).
    Sql(SqlArgs),
    /// Write the data-quality report of one ds (HTML) to the lake.
    Report(ReportArgs),
    /// Every task for every dataset, in DAG order, for one ds or a range.
    Run(RunArgs),
}

impl TaskCommand {
    pub(crate) fn task(&self) -> Task {
        match self {
            TaskCommand::Generate(_) => Task::Generate,
            TaskCommand::Validate(_) => Task::Validate,
            TaskCommand::Upload(_) => Task::Upload,
            TaskCommand::Load(_) => Task::Load,
            TaskCommand::Transform(_) => Task::Transform,
            TaskCommand::Setup(_) => Task::Setup,
            TaskCommand::Sql(_) => Task::Sql,
            TaskCommand::Report(_) => Task::Report,
            TaskCommand::Run(_) => Task::Run,
        }
    }

    /// The dataset and logical date the command names, for the metrics of
    /// a task that did not finish.
    pub(crate) fn target(&self) -> (Option<&str>, Option<NaiveDate>) {
        match self {
            TaskCommand::Generate(GenerateArgs { target, .. })
            | TaskCommand::Validate(ValidateArgs { target, .. })
            | TaskCommand::Upload(UploadArgs { target })
            | TaskCommand::Load(LoadArgs { target }) => (Some(&target.dataset), Some(target.ds)),
            TaskCommand::Transform(args) => (None, Some(args.ds)),
            TaskCommand::Report(args) => (None, Some(args.ds)),
            TaskCommand::Run(args) => (None, args.ds.or(args.from)),
            TaskCommand::Setup(_) | TaskCommand::Sql(_) => (None, None),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct Target {
    /// A dataset of the contracts (`describe` lists them).
    #[arg(value_parser = dataset_name)]
    pub dataset: String,
    /// The logical date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_ds)]
    pub ds: NaiveDate,
}

#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct GenerateOptions {
    /// Random seed; the same seed, ds and scale factor give identical files.
    #[arg(
        long,
        env = "PIPELINE_SEED",
        hide_env_values = true,
        default_value_t = 42
    )]
    pub seed: u64,
    /// Multiplies the 10k contacts / 20k form fills / 50k sessions of scale 1.
    #[arg(long, env = "SCALE_FACTOR", hide_env_values = true, default_value_t = 1.0, value_parser = parse_scale_factor)]
    pub scale_factor: f64,
    /// Fraction of fact rows given one known defect; 0 gives clean data.
    #[arg(long, env = "PIPELINE_DEFECT_RATE", hide_env_values = true, default_value_t = 0.01, value_parser = parse_fraction)]
    pub defect_rate: f64,
}

#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct ValidateOptions {
    /// Reject the file (exit 65) when more than this fraction of rows is invalid.
    #[arg(long, env = "PIPELINE_MAX_INVALID_RATIO", hide_env_values = true, default_value_t = 0.05, value_parser = parse_fraction)]
    pub max_invalid_ratio: f64,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub options: GenerateOptions,
    /// Regenerate even if stage_log says this file is complete.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub options: ValidateOptions,
    /// Revalidate even if this exact file was validated already.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct UploadArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct TransformArgs {
    /// The logical date, YYYY-MM-DD: the project's var `ds`.
    #[arg(long, value_parser = parse_ds)]
    pub ds: NaiveDate,
    /// Models to build, as dbt's --select: names, with + for ancestors
    /// (+name) or descendants (name+); their tests run with them.
    #[arg(long, short = 's', num_args = 1.., value_name = "MODEL")]
    pub select: Vec<String>,
    /// Rebuild incremental models from scratch instead of merging.
    #[arg(long)]
    pub full_refresh: bool,
    /// More project vars, as dbt's --vars: a YAML mapping ('{key: value}').
    #[arg(long, value_name = "YAML")]
    pub vars: Option<String>,
}

impl TransformArgs {
    /// The whole built-in project for `ds`, as `run` builds it.
    pub(crate) fn all(ds: NaiveDate) -> Self {
        Self {
            ds,
            select: Vec::new(),
            full_refresh: false,
            vars: None,
        }
    }
}

#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct ReportArgs {
    /// The logical date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_ds)]
    pub ds: NaiveDate,
    /// Days of check history the trend charts show.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
}

#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct SetupArgs {
    /// Also the account-level objects (role, warehouse, grants, stage) on
    /// Snowflake; needs an administrator's role. Without it only schemas and
    /// tables, which load and transform also create on their own.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub(crate) struct SqlArgs {
    /// The SQL, for example "SELECT COUNT(*) FROM MART.MART_CONTACTS";
    /// several statements may be separated by `;`.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub query: Option<String>,
    /// Read the SQL from this file instead.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// One logical date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_ds, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    pub ds: Option<NaiveDate>,
    /// First date of a backfill (inclusive).
    #[arg(long, value_parser = parse_ds, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last date of a backfill (inclusive).
    #[arg(long, value_parser = parse_ds, requires = "from")]
    pub to: Option<NaiveDate>,
    #[command(flatten)]
    pub generate: GenerateOptions,
    #[command(flatten)]
    pub validate: ValidateOptions,
    /// Redo stages that stage_log says are complete.
    #[arg(long)]
    pub force: bool,
}

impl RunArgs {
    /// The dates to run, oldest first.
    pub(crate) fn dates(&self) -> Result<Vec<NaiveDate>, String> {
        let (from, to) = match (self.ds, self.from, self.to) {
            (Some(ds), _, _) => (ds, ds),
            (None, Some(from), Some(to)) => (from, to),
            _ => return Err("give --ds, or --from and --to".into()),
        };
        if to < from {
            return Err(format!("--to {to} is before --from {from}"));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_RUN_DAYS {
            return Err(format!(
                "--from {from} --to {to} spans {days} days, over the limit of {MAX_RUN_DAYS}; \
                 backfill in smaller ranges"
            ));
        }
        Ok(from.iter_days().take_while(|d| *d <= to).collect())
    }
}

pub(crate) const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 8 << 30;

/// The longest range one `run` backfills: ten years.
const MAX_RUN_DAYS: i64 = 3660;

/// Logical dates a task accepts: timestamps of these days fit every
/// backend's types with room to spare.
const FIRST_DS: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
const LAST_DS: NaiveDate = NaiveDate::from_ymd_opt(2199, 12, 31).expect("a valid date");

/// A calendar date in exactly `YYYY-MM-DD` form (so it is safe in paths),
/// between 1970-01-01 and 2199-12-31.
pub(crate) fn parse_ds(s: &str) -> Result<NaiveDate, String> {
    let well_formed = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    well_formed
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{s:?} is not a date in YYYY-MM-DD form"))
        .and_then(|ds| {
            (FIRST_DS..=LAST_DS)
                .contains(&ds)
                .then_some(ds)
                .ok_or_else(|| format!("{ds} is outside {FIRST_DS} to {LAST_DS}"))
        })
}

fn parse_positive(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?} is not a positive whole number"))
}

/// A size in bytes: a whole number with an optional unit (K, M, G, T as
/// powers of 1024, with or without `iB`/`B`).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "{s:?} is not a size (expected bytes, or a number with K, M, G or T)"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{s:?} is not a positive size"))
}

/// A dataset's name: a plain identifier (it becomes a path segment and a
/// table name); whether the contracts declare it is checked once they are
/// read.
fn dataset_name(s: &str) -> Result<String, String> {
    is_plain_name(s)
        .then(|| s.to_string())
        .ok_or_else(|| format!("{s:?} is not a dataset name (lowercase letters, digits and _)"))
}

fn parse_scale_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 10_000.0 => Ok(v),
        _ => Err(format!("{s:?} is not a scale factor in (0, 10000]")),
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ds_must_be_a_real_date_in_iso_form() {
        assert!(parse_ds("2025-05-25").is_ok());
        for bad in [
            "../x",
            "2025-5-25",
            "2025-02-30",
            "20250525",
            "2025-05-25/..",
            "",
        ] {
            assert!(parse_ds(bad).is_err(), "{bad}");
        }
    }

    fn run_from_to(from: &str, to: &str) -> RunArgs {
        let args = ["marketing-pipeline", "run", "--from", from, "--to", to];
        match Cli::try_parse_from(args).unwrap().command {
            Command::Task(TaskCommand::Run(run)) => run,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn run_dates_cover_the_range_inclusively() {
        assert_eq!(
            run_from_to("2025-05-30", "2025-06-02")
                .dates()
                .unwrap()
                .len(),
            4
        );
        let too_long = run_from_to("1970-01-01", "2199-12-31").dates();
        assert!(too_long.unwrap_err().contains("over the limit"));
    }

    #[test]
    fn dates_outside_the_supported_range_are_usage_errors() {
        for bad in ["0001-01-01", "1969-12-31", "2200-01-01", "9999-12-31"] {
            assert!(parse_ds(bad).is_err(), "{bad}");
        }
        assert!(parse_ds("1970-01-01").is_ok());
        assert!(parse_ds("2199-12-31").is_ok());
    }

    #[test]
    fn help_never_shows_environment_values() {
        let root = Cli::command();
        let mut commands = vec![&root];
        commands.extend(root.get_subcommands());
        for command in commands {
            for arg in command.get_arguments().filter(|a| a.get_env().is_some()) {
                assert!(
                    arg.is_hide_env_values_set(),
                    "{} --{}: its environment value would be printed by --help",
                    command.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn fractions_and_scale_factors_are_bounded() {
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("NaN").is_err());
        assert!(parse_scale_factor("0").is_err());
        assert!(parse_scale_factor("0.01").is_ok());
    }
}
