//! Command line: flags and env settings, parsed once into validated values.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::catalog::Dataset;

const EXIT_CODES: &str = "\
Exit codes:
   0  done; the outcome (including quarantined failures) is in the metrics JSON
   2  usage error
  65  data rejected: unreadable file, schema mismatch, failure rate over
      tolerance, failed SQL data test
  75  transient infrastructure error after retries (Airflow retries)
  78  configuration error: missing or invalid setting
  99  nothing to do / upstream absent (Airflow skips)
   1  anything else: a bug

Every task prints one JSON metrics object as its last stdout line (also written
to $PIPELINE_XCOM_FILE when set) and logs bunyan JSON on stderr (level from
PIPELINE_LOG, default info).";

#[derive(Parser, Debug)]
#[command(
    name = "marketing-pipeline",
    version,
    about = "ELT pipeline for marketing data: one subcommand per Airflow task",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

/// Where data and metadata live; the same flags work for every task.
#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// Raw, valid and quarantine files written by generate and validate.
    #[arg(
        long,
        env = "PIPELINE_LANDING_URL",
        default_value = "file://./data/landing",
        global = true
    )]
    pub landing_url: String,
    /// The lake that upload publishes valid and quarantine slices to.
    #[arg(
        long,
        env = "PIPELINE_LAKE_URL",
        default_value = "file://./data/lake",
        global = true
    )]
    pub lake_url: String,
    /// stage_log, file_metadata, dq_checks and dq_signature.
    #[arg(
        long,
        env = "PIPELINE_METADATA_URL",
        default_value = "sqlite://./data/metadata.db",
        global = true
    )]
    pub metadata_url: String,
    /// Where load and transform build RAW, STG and MART tables:
    /// duckdb://PATH or snowflake:// (SNOWFLAKE_* variables; see README).
    #[arg(
        long,
        env = "PIPELINE_WAREHOUSE_URL",
        default_value = "duckdb://./data/warehouse.duckdb",
        global = true
    )]
    pub warehouse_url: String,
    /// Also write the metrics JSON here (KubernetesPodOperator XCom sidecar).
    #[arg(long, env = "PIPELINE_XCOM_FILE", global = true)]
    pub xcom_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write synthetic data for one dataset to raw-data/ in the landing area.
    Generate(GenerateCmd),
    /// Check one raw file; split it into valid-data/ and quarantine-data/.
    Validate(ValidateCmd),
    /// Publish one dataset's valid and quarantine slices to the lake.
    Upload(UploadCmd),
    /// Load one dataset's valid slice from the lake into its RAW table.
    Load(LoadCmd),
    /// Build staging and mart tables for one ds, then run the SQL data tests.
    Transform(TransformCmd),
    /// Create the warehouse objects of sql/snowflake/setup.sql.
    Setup(SetupCmd),
    /// Run SQL on the warehouse and print the last statement's rows (tab-separated).
    Sql(SqlCmd),
    /// Every task for every dataset, in DAG order, for one ds or a range.
    Run(RunCmd),
}

#[derive(Args, Debug)]
pub struct Target {
    /// One of: campaigns, forms, pages, contacts, form_fills, website_activity.
    #[arg(value_enum)]
    pub dataset: Dataset,
    /// The logical date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_ds)]
    pub ds: NaiveDate,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct GenerateOptions {
    /// Random seed; the same seed, ds and scale factor give identical files.
    #[arg(long, env = "PIPELINE_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Multiplies the 10k contacts / 20k form fills / 50k sessions of scale 1.
    #[arg(long, env = "SCALE_FACTOR", default_value_t = 1.0, value_parser = parse_scale_factor)]
    pub scale_factor: f64,
    /// Fraction of fact rows given one known defect; 0 gives clean data.
    #[arg(long, env = "PIPELINE_DEFECT_RATE", default_value_t = 0.01, value_parser = parse_fraction)]
    pub defect_rate: f64,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct ValidateOptions {
    /// Reject the file (exit 65) when more than this fraction of rows is invalid.
    #[arg(long, env = "PIPELINE_MAX_INVALID_RATIO", default_value_t = 0.05, value_parser = parse_fraction)]
    pub max_invalid_ratio: f64,
}

#[derive(Args, Debug)]
pub struct GenerateCmd {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub options: GenerateOptions,
    /// Regenerate even if stage_log says this file is complete.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ValidateCmd {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub options: ValidateOptions,
    /// Revalidate even if this exact file was validated already.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct UploadCmd {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct LoadCmd {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct TransformCmd {
    /// The logical date, YYYY-MM-DD.
    #[arg(long, value_parser = parse_ds)]
    pub ds: NaiveDate,
}

#[derive(Args, Debug)]
pub struct SetupCmd {
    /// Also the account-level objects (role, warehouse, grants, stage) on
    /// Snowflake; needs an administrator's role. Without it only schemas and
    /// tables, which load and transform also create on their own.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct SqlCmd {
    /// The SQL, for example "SELECT COUNT(*) FROM MART.MART_CONTACTS";
    /// several statements may be separated by `;`.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub query: Option<String>,
    /// Read the SQL from this file instead.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunCmd {
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

impl RunCmd {
    /// The dates to run, oldest first.
    pub fn dates(&self) -> Result<Vec<NaiveDate>, String> {
        let (from, to) = match (self.ds, self.from, self.to) {
            (Some(ds), _, _) => (ds, ds),
            (None, Some(from), Some(to)) => (from, to),
            _ => return Err("give --ds, or --from and --to".into()),
        };
        if to < from {
            return Err(format!("--to {to} is before --from {from}"));
        }
        Ok(from.iter_days().take_while(|d| *d <= to).collect())
    }
}

/// A calendar date in exactly `YYYY-MM-DD` form (so it is safe in paths).
pub fn parse_ds(s: &str) -> Result<NaiveDate, String> {
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
}

/// A tuning setting read from the environment: a positive whole number, or
/// `default` when unset. `for_setting` names what it tunes, for the error.
pub fn positive_env(name: &str, default: usize, for_setting: &str) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                crate::exit::config(format!(
                    "{name}: {v:?} is not a positive whole number ({for_setting})"
                ))
            }),
        Err(_) => Ok(default),
    }
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

    #[test]
    fn run_dates_cover_the_range_inclusively() {
        let cli = Cli::try_parse_from([
            "marketing-pipeline",
            "run",
            "--from",
            "2025-05-30",
            "--to",
            "2025-06-02",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("parsed as {:?}", cli.command)
        };
        assert_eq!(run.dates().unwrap().len(), 4);
    }

    #[test]
    fn fractions_and_scale_factors_are_bounded() {
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("NaN").is_err());
        assert!(parse_scale_factor("0").is_err());
        assert!(parse_scale_factor("0.01").is_ok());
    }
}
