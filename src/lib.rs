//! marketing-pipeline: ELT for marketing data, one subcommand per Airflow
//! task. The modules follow the data flow:
//!
//! - settings, resolved once: `cli` (flags and their variables) and
//!   `settings` (every other variable);
//! - the core, which does no I/O: `catalog` (what each dataset is),
//!   `synth` (synthetic rows), `checks` (checks and the valid/quarantine
//!   split), `formats` (file formats), `digest`;
//! - adapters: `storage` (landing area and lake), `metadata` (stage_log and
//!   data-quality history), `warehouse` (DuckDB, Snowflake, the SQL project);
//! - `tasks`: one module per subcommand, each run against a `context::Context`;
//! - what a task reports: `metrics` and `exit`, published by `describe`;
//! - `app`: the program `main` runs.

#![warn(unreachable_pub)]

// The library's interface: the program, and the vocabulary tests and
// tools share with it. Everything else is the crate's own.
pub mod app;
pub mod catalog;
pub mod exit;
pub mod metrics;

mod checks;
mod cli;
mod context;
mod dbt;
mod describe;
mod digest;
mod formats;
mod metadata;
mod redact;
mod runtime;
mod settings;
mod storage;
mod synth;
mod tasks;
mod warehouse;
