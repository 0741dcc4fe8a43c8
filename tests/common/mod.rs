//! Helpers for tests that run the built binary against a temp directory.
#![allow(dead_code)]

pub mod servers;
pub mod state;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use marketing_pipeline::catalog::Catalogue;
use serde_json::Value;

/// Every dataset, in the catalogue's order (the order the DAG generates them).
pub fn datasets() -> Vec<&'static str> {
    Catalogue::embedded()
        .datasets()
        .iter()
        .map(|d| d.name())
        .collect()
}

/// The fixed universes the facts reference.
pub fn dimensions() -> Vec<&'static str> {
    Catalogue::embedded()
        .datasets()
        .iter()
        .filter(|d| !d.is_fact())
        .map(|d| d.name())
        .collect()
}
pub const DS: &str = "2025-05-25";

/// A pipeline whose landing area, lake and metadata live in a temp dir.
pub struct Pipeline {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub metrics: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Pipeline {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn landing(&self) -> PathBuf {
        self.dir.path().join("landing")
    }

    pub fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    pub fn metadata_db(&self) -> PathBuf {
        self.dir.path().join("metadata.db")
    }

    pub fn warehouse_db(&self) -> PathBuf {
        self.dir.path().join("warehouse.duckdb")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_marketing-pipeline"));
        cmd.args(args)
            .env(
                "PIPELINE_LANDING_URL",
                format!("file://{}", self.landing().display()),
            )
            .env(
                "PIPELINE_LAKE_URL",
                format!("file://{}", self.lake().display()),
            )
            .env(
                "PIPELINE_METADATA_URL",
                format!("sqlite://{}", self.metadata_db().display()),
            )
            .env(
                "PIPELINE_WAREHOUSE_URL",
                format!("duckdb://{}", self.warehouse_db().display()),
            )
            .env("SCALE_FACTOR", "0.02")
            .env("PIPELINE_DEFECT_RATE", "0.03")
            .env_remove("PIPELINE_XCOM_FILE")
            .env_remove("PIPELINE_SEED")
            .env_remove("PIPELINE_MAX_INVALID_RATIO");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args).output().unwrap())
    }

    /// Runs and asserts the exit code.
    pub fn ok(&self, args: &[&str], code: i32) -> Value {
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "{args:?}\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.metrics
    }

    /// One query through the binary's `sql` command; rows as text.
    pub fn sql(&self, query: &str) -> Vec<Vec<Option<String>>> {
        let metrics = self.ok(&["sql", query], 0);
        serde_json::from_value(metrics["rows"].clone()).unwrap()
    }

    /// The single number a `SELECT COUNT(*) ...` returns.
    pub fn count(&self, query: &str) -> u64 {
        let rows = self.sql(query);
        rows[0][0].as_deref().unwrap().parse().unwrap()
    }

    pub fn raw_path(&self, dataset: &str, ext: &str) -> PathBuf {
        self.landing()
            .join(format!("raw-data/{dataset}/ds={DS}/{dataset}_{DS}.{ext}"))
    }

    pub fn slice_path(&self, root: &Path, zone: &str, dataset: &str) -> PathBuf {
        root.join(format!("{zone}/{dataset}/ds={DS}/{dataset}_{DS}.parquet"))
    }

    pub fn generate_all(&self) {
        for d in datasets() {
            self.ok(&["generate", d, "--ds", DS], 0);
        }
    }
}

pub fn finish(out: Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let metrics = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        metrics,
        stdout,
        stderr,
    }
}

pub fn parquet_rows(path: &Path) -> usize {
    use polars::prelude::*;
    let file = std::fs::File::open(path).unwrap();
    ParquetReader::new(file).finish().unwrap().height()
}

/// Every file under `root` with its modification time and content.
pub fn snapshot(root: &Path) -> Vec<(PathBuf, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = entry.metadata().unwrap().modified().unwrap();
                out.push((path.clone(), modified, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
