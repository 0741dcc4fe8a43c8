//! The program: parse the command line, resolve the settings, set up
//! logging, run the task and map its outcome to the metrics JSON and the
//! exit code.

use std::io::{IsTerminal, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use anyhow::{Context as _, Result};
use clap::Parser;
use tracing::{error, warn};
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::cli::{Cli, Command, TaskCommand};
use crate::context::{self, Context};
use crate::exit::{self, ExitCode};
use crate::metrics::{AirflowRun, TaskMetrics};
use crate::settings::Settings;
use crate::storage::write_file_atomically;
use crate::{describe, formats, redact, tasks};

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.settings);
    let command = match &cli.command {
        Command::Describe => return describe(settings),
        Command::Task(command) => command,
    };
    let mut secrets = settings
        .as_ref()
        .map(Settings::secret_values)
        .unwrap_or_default();
    secrets.extend(
        cli.settings
            .urls()
            .iter()
            .filter_map(|url| redact::url_password(url)),
    );
    redact::remember(secrets);
    let log_filter = settings.as_ref().ok().and_then(|s| s.log_filter.clone());
    init_logging(command, log_filter);
    std::panic::set_hook(Box::new(|info| {
        if formats::panic_is_contained() {
            warn!(location = ?info.location(), "a file parser failed on malformed input; the file is rejected");
        } else {
            error!(panic = %info, "panic");
        }
    }));

    let airflow = settings
        .as_ref()
        .map(|s| s.airflow.clone())
        .unwrap_or_default();
    let outcome = settings.and_then(|settings| {
        catch_unwind(AssertUnwindSafe(|| execute(&settings, command)))
            .unwrap_or_else(|_| Err(exit::bug("internal error (panic); see the log")))
    });
    let metrics = outcome.unwrap_or_else(|err| failed(command, &airflow, &err));
    if let Err(err) = emit(&metrics, cli.settings.xcom_file.as_deref()) {
        error!(error = %exit::one_line(&err), "cannot write the metrics");
        return std::process::ExitCode::from(ExitCode::Transient.code() as u8);
    }
    std::process::ExitCode::from(metrics.exit_code as u8)
}

/// Prints the metrics as one JSON line on stdout and writes them to the
/// XCom file.
fn emit(metrics: &TaskMetrics, xcom_file: Option<&Path>) -> Result<()> {
    let line = redact::scrub(&serde_json::to_string(metrics)?);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    if let Some(path) = xcom_file {
        write_file_atomically(path, &mut |file| Ok(file.write_all(line.as_bytes())?))
            .with_context(|| format!("PIPELINE_XCOM_FILE {}", path.display()))?;
    }
    Ok(())
}

fn execute(settings: &Settings, command: &TaskCommand) -> Result<TaskMetrics> {
    let catalogue = context::catalogue(settings)?;
    let mut ctx = Context::open(settings, catalogue)?;
    tasks::run(&mut ctx, command)
}

/// Prints the interface, with the datasets of the contracts in effect.
fn describe(settings: Result<Settings>) -> std::process::ExitCode {
    match settings.and_then(|s| context::catalogue(&s)) {
        Ok(catalogue) => {
            print!("{}", describe::to_json(catalogue));
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("marketing-pipeline describe: {}", exit::one_line(&err));
            std::process::ExitCode::from(exit::code_of(&err).code() as u8)
        }
    }
}

fn failed(command: &TaskCommand, airflow: &AirflowRun, err: &anyhow::Error) -> TaskMetrics {
    let (code, message) = (exit::code_of(err), exit::one_line(err));
    error!(task = %command.task(), exit_code = code.code(), error = %message, "task failed");
    tasks::failed(command, airflow, code, message)
}

/// Bunyan JSON on stderr. An interactive `run` defaults to warnings only,
/// so its progress lines stay readable.
fn init_logging(command: &TaskCommand, filter: Option<String>) {
    let interactive_run = matches!(command, TaskCommand::Run(_)) && std::io::stderr().is_terminal();
    let default = if interactive_run { "warn" } else { "info" };
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let subscriber = Registry::default()
        .with(filter)
        .with(JsonStorageLayer)
        .with(BunyanFormattingLayer::new(
            "marketing-pipeline".into(),
            || ScrubbedStderr,
        ));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// stderr, with secrets masked. The bunyan layer writes each record in one
/// call, so a secret is never split across two writes.
struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = redact::scrub(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
