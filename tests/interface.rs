//! The Airflow package reads the interface from a committed copy of
//! `marketing-pipeline describe`; this fails when the copy and the binary
//! disagree. Rewrite the copy with
//! `UPDATE_INTERFACE=1 cargo test --test interface`.

mod common;

use std::path::PathBuf;

use marketing_pipeline::catalog::Catalogue;
use marketing_pipeline::exit::ExitCode;
use marketing_pipeline::metrics::Task;
use serde_json::Value;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("airflow/dags/marketing_pipeline_tasks/interface.json")
}

fn describe() -> String {
    let p = common::Pipeline::new();
    let run = p.run(&["describe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

#[test]
fn the_committed_interface_is_what_the_binary_describes() {
    let printed = describe();
    if std::env::var_os("UPDATE_INTERFACE").is_some() {
        std::fs::write(committed(), &printed).unwrap();
    }
    let copy = std::fs::read_to_string(committed()).unwrap();
    assert!(
        copy == printed,
        "{} differs from `marketing-pipeline describe`; rewrite it with \
         UPDATE_INTERFACE=1 cargo test --test interface",
        committed().display()
    );
}

#[test]
fn describe_lists_every_task_exit_code_and_dataset() {
    let interface: Value = serde_json::from_str(&describe()).unwrap();
    let names = |field: &str, key: &str| -> Vec<String> {
        interface[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[key].to_string().trim_matches('"').to_string())
            .collect()
    };
    let tasks: Vec<String> = Task::ALL.iter().map(|t| t.name().to_string()).collect();
    assert_eq!(names("tasks", "name"), tasks);
    let codes: Vec<String> = ExitCode::ALL.iter().map(|c| c.code().to_string()).collect();
    assert_eq!(names("exit_codes", "code"), codes);
    let datasets: Vec<String> = Catalogue::embedded()
        .datasets()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    assert_eq!(names("datasets", "name"), datasets);
    // What Airflow does with each code is the contract exit_codes.py reads.
    let action = |code: i64| {
        interface["exit_codes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["code"] == code)
            .map(|e| e["airflow"].as_str().unwrap().to_string())
    };
    assert_eq!(action(99).as_deref(), Some("skip"));
    assert_eq!(action(65).as_deref(), Some("fail"));
    assert_eq!(action(75).as_deref(), Some("retry"));
}

#[test]
fn describe_needs_no_storage_and_prints_no_metrics() {
    let p = common::Pipeline::new();
    let run = p
        .command(&["describe"])
        .env("PIPELINE_LAKE_URL", "ftp://nowhere")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert!(!p.dir.path().join("landing").exists());
    let interface: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(interface.get("exit_code").is_none());
}
