//! The Snowflake code path against a Snowflake wire-protocol emulator:
//! fakesnow's server, wrapped by tests/snowflake_emulator.py so that the
//! Rust connector can read its answers. `.ci/run` installs fakesnow into a
//! virtualenv and sets FAKESNOW_PYTHON; the test starts the emulator on
//! 127.0.0.1 and stops it.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{DATASETS, DS, Pipeline, Run, finish, parquet_rows};

const PASSWORD: &str = "emulator-password-not-to-be-printed";

struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    fn start() -> Self {
        let python = std::env::var_os("FAKESNOW_PYTHON")
            .map(PathBuf::from)
            .expect("FAKESNOW_PYTHON not set: `bash .ci/run` installs fakesnow and sets it");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snowflake_emulator.py");
        let child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Snowflake emulator");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the Snowflake emulator did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }

    fn run(&self, p: &Pipeline, args: &[&str]) -> Run {
        let mut cmd = p.command(args);
        cmd.env(
            "PIPELINE_WAREHOUSE_URL",
            format!("snowflake+http://127.0.0.1:{}", self.port),
        )
        .env("SNOWFLAKE_ACCOUNT", "emulated")
        .env("SNOWFLAKE_USER", "pipeline")
        .env("SNOWFLAKE_PASSWORD", PASSWORD)
        .env("SNOWFLAKE_DATABASE", "MARKETING_TEST");
        let run = finish(cmd.output().unwrap());
        assert!(
            !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
            "the password was printed"
        );
        run
    }

    fn ok(&self, p: &Pipeline, args: &[&str], code: i32) -> serde_json::Value {
        let run = self.run(p, args);
        assert_eq!(
            run.code, code,
            "{args:?}\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.metrics
    }

    fn count(&self, p: &Pipeline, query: &str) -> u64 {
        let metrics = self.ok(p, &["sql", query], 0);
        metrics["rows"][0][0]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {metrics}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn setup_load_models_and_tests_run_through_the_snowflake_emulator() {
    let emulator = Emulator::start();
    let p = Pipeline::new();

    let setup = emulator.ok(&p, &["setup", "--all"], 0);
    assert_eq!(setup["warehouse"], "snowflake");
    assert!(setup["statements"].as_u64().unwrap() >= 20, "{setup}");

    let run = emulator.ok(&p, &["run", "--ds", DS], 0);
    let transform = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "transform")
        .cloned()
        .unwrap();
    assert_eq!(transform["status"], "transformed", "{run}");

    for dataset in DATASETS {
        let valid = parquet_rows(&p.slice_path(&p.lake(), "valid-data", dataset)) as u64;
        let upper = dataset.to_uppercase();
        let raw = emulator.count(&p, &format!("SELECT COUNT(*) FROM RAW.{upper}"));
        assert_eq!(raw, valid, "RAW.{upper} loaded by COPY INTO from the stage");
        let mart = emulator.count(&p, &format!("SELECT COUNT(*) FROM MART.MART_{upper}"));
        assert_eq!(mart, valid, "MART.MART_{upper}");
        let load = emulator.ok(&p, &["load", dataset, "--ds", DS], 0);
        assert_eq!(load["status"], "already_loaded", "{load}");
    }
    let partitioned = emulator.count(
        &p,
        &format!("SELECT COUNT(*) FROM RAW.CONTACTS WHERE DS = CAST('{DS}' AS DATE)"),
    );
    assert!(partitioned > 0, "DS is set on the loaded rows");

    let again = emulator.ok(&p, &["transform", "--ds", DS], 0);
    assert_eq!(again["inserted"], 0, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
    assert_eq!(again["tests_passed"], 9, "{again}");

    emulator.ok(
        &p,
        &[
            "sql",
            "INSERT INTO MART.MART_CONTACTS SELECT * FROM MART.MART_CONTACTS LIMIT 1",
        ],
        0,
    );
    let failed = emulator.ok(&p, &["transform", "--ds", DS], 65);
    assert_eq!(failed["tests_failed"], 1, "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("mart_contacts_key"),
        "{failed}"
    );
}

#[test]
fn missing_snowflake_settings_are_configuration_errors() {
    let p = Pipeline::new();
    let run = finish(
        p.command(&["transform", "--ds", DS])
            .env("PIPELINE_WAREHOUSE_URL", "snowflake://")
            .env_remove("SNOWFLAKE_ACCOUNT")
            .env("SNOWFLAKE_USER", "pipeline")
            .env("SNOWFLAKE_PASSWORD", PASSWORD)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(
        run.metrics["error"]
            .as_str()
            .unwrap()
            .contains("SNOWFLAKE_ACCOUNT")
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}
