//! marketing-pipeline: one binary, one subcommand per Airflow task.
//!
//! This file only parses flags, sets up logging, runs the task and maps
//! its outcome to the metrics JSON and the exit code.

mod catalog;
mod cli;
mod context;
mod exit;
mod formats;
mod generate;
mod load;
mod metadata;
mod metrics;
mod query;
mod redact;
mod run;
mod runtime;
mod setup;
mod storage;
mod transform;
mod upload;
mod validate;
mod warehouse;

use std::io::IsTerminal;
use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::Result;
use clap::Parser;
use tracing::{error, warn};
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

use cli::{Cli, Command};
use context::Context;
use exit::ExitCode;
use metrics::TaskMetrics;

// Polars allocates and frees large buffers all the time; mimalloc reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` (mimalloc.h; not exported by
/// libmimalloc-sys).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Sets mimalloc's options before the first allocation, which reserves its
/// first arena: that happens before `main`, so this runs from `.init_array`.
/// - Large OS pages back Polars' big buffers with transparent huge pages
///   (THP "madvise"): faulting in 4 KiB pages one by one was a third of
///   validate's time.
/// - Arenas are committed as they fill, not eagerly: with huge pages an
///   eagerly committed arena is charged to RSS in 2 MiB steps wherever it
///   is touched (validate of 1M contacts peaked ~90 MB higher).
///
/// A `MIMALLOC_*` variable in the environment still overrides either.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
extern "C" fn configure_allocator() {
    // Eager commit first: reading a variable that is set allocates, and the
    // first allocation reserves the arena.
    for (option, value, variable) in [
        (
            MI_OPTION_ARENA_EAGER_COMMIT,
            0,
            "MIMALLOC_ARENA_EAGER_COMMIT",
        ),
        (
            libmimalloc_sys::mi_option_large_os_pages,
            1,
            "MIMALLOC_LARGE_OS_PAGES",
        ),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: runs before any thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = &cli.settings;
    redact::remember(&[
        &settings.landing_url,
        &settings.lake_url,
        &settings.metadata_url,
        &settings.warehouse_url,
    ]);
    init_logging(&cli.command);
    std::panic::set_hook(Box::new(|info| {
        if formats::panic_is_contained() {
            warn!(location = ?info.location(), "a file parser failed on malformed input; the file is rejected");
        } else {
            error!(panic = %info, "panic");
        }
    }));

    let metrics = match catch_unwind(AssertUnwindSafe(|| execute(&cli))) {
        Ok(Ok(metrics)) => metrics,
        Ok(Err(err)) => failed(&cli.command, exit::code_of(&err), exit::one_line(&err)),
        Err(_) => failed(
            &cli.command,
            ExitCode::Bug,
            "internal error (panic); see the log".into(),
        ),
    };
    if let Err(err) = metrics.emit(cli.settings.xcom_file.as_deref()) {
        error!(error = %exit::one_line(&err), "cannot write the metrics");
        return std::process::ExitCode::from(ExitCode::Transient.code() as u8);
    }
    std::process::ExitCode::from(metrics.exit_code as u8)
}

fn execute(cli: &Cli) -> Result<TaskMetrics> {
    let mut ctx = Context::open(&cli.settings)?;
    match &cli.command {
        Command::Generate(c) => {
            generate::run(&ctx, c.target.dataset, c.target.ds, &c.options, c.force)
        }
        Command::Validate(c) => {
            validate::run(&mut ctx, c.target.dataset, c.target.ds, &c.options, c.force)
        }
        Command::Upload(c) => upload::run(&ctx, c.target.dataset, c.target.ds),
        Command::Load(c) => load::run(&mut ctx, c.target.dataset, c.target.ds),
        Command::Transform(c) => transform::run(&mut ctx, c.ds),
        Command::Setup(c) => setup::run(&mut ctx, c.all),
        Command::Sql(c) => query::run(&mut ctx, c),
        Command::Run(c) => run::run(&mut ctx, c),
    }
}

/// The metrics of a task that did not finish, with the error on one line.
fn failed(command: &Command, code: ExitCode, message: String) -> TaskMetrics {
    let (task, target) = match command {
        Command::Generate(c) => ("generate", Some(&c.target)),
        Command::Validate(c) => ("validate", Some(&c.target)),
        Command::Upload(c) => ("upload", Some(&c.target)),
        Command::Load(c) => ("load", Some(&c.target)),
        Command::Transform(_) => ("transform", None),
        Command::Setup(_) => ("setup", None),
        Command::Sql(_) => ("sql", None),
        Command::Run(_) => ("run", None),
    };
    let mut metrics = TaskMetrics::new(
        task,
        target.map(|t| t.dataset.to_string()),
        target.map(|t| t.ds.to_string()),
    );
    match command {
        Command::Run(c) => metrics.ds = c.ds.or(c.from).map(|d| d.to_string()),
        Command::Transform(c) => metrics.ds = Some(c.ds.to_string()),
        _ => {}
    }
    metrics.status = match code {
        ExitCode::NothingToDo => "skipped",
        _ => "failed",
    }
    .into();
    metrics.exit_code = code.code();
    error!(task, exit_code = code.code(), error = %message, "task failed");
    metrics.error = Some(message);
    metrics
}

/// Bunyan JSON on stderr. An interactive `run` defaults to warnings only,
/// so its progress lines stay readable.
fn init_logging(command: &Command) {
    let interactive_run = matches!(command, Command::Run(_)) && std::io::stderr().is_terminal();
    let default = if interactive_run { "warn" } else { "info" };
    let filter =
        EnvFilter::try_from_env("PIPELINE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
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

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = redact::scrub(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
