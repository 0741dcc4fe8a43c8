//! The Snowflake code path against a Snowflake wire-protocol emulator:
//! fakesnow's server, wrapped by tests/snowflake_emulator.py so that the
//! Rust connector can read its answers. `.ci/run` installs fakesnow into a
//! virtualenv and sets FAKESNOW_PYTHON; the test starts the emulator on
//! 127.0.0.1 and stops it.

mod common;

use common::servers::{SNOWFLAKE_PASSWORD as PASSWORD, SnowflakeEmulator};
use common::{DS, Pipeline, finish, parquet_rows};

#[test]
fn setup_load_models_and_tests_run_through_the_snowflake_emulator() {
    let emulator = SnowflakeEmulator::start();
    let p = Pipeline::new();

    let setup = emulator.ok(&p, &["setup", "--all"], 0);
    assert_eq!(setup["warehouse"], "snowflake");
    assert!(setup["statements"].as_u64().unwrap() >= 14, "{setup}");

    let run = emulator.ok(&p, &["run", "--ds", DS], 0);
    let transform = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "transform")
        .cloned()
        .unwrap();
    assert_eq!(transform["status"], "transformed", "{run}");

    for dataset in common::datasets() {
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
    assert_eq!(again["tests_failed"], 0, "{again}");
    assert!(again["tests_passed"].as_u64().unwrap() > 50, "{again}");

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
            .contains("unique_mart_contacts_contact_id"),
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
