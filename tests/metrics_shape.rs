//! The metrics JSON is Airflow's interface: its shape is pinned, task by
//! task and outcome by outcome, in tests/fixtures/metrics_shapes.json.
//!
//! A shape keeps every key and replaces each value by its JSON type (the
//! values of `task`, `status` and `zone` are kept: they are enumerations);
//! an array becomes the set of its elements' shapes. A change to the metrics
//! is deliberate only when the fixture changes with it: rewrite it with
//! `UPDATE_METRICS_SHAPES=1 cargo test --test metrics_shape`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{DS, Pipeline};
use serde_json::{Value, json};

fn shape(value: &Value) -> Value {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => {
            let shapes: BTreeSet<String> = items.iter().map(|v| shape(v).to_string()).collect();
            Value::Array(
                shapes
                    .iter()
                    .map(|s| serde_json::from_str(s).unwrap())
                    .collect(),
            )
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    // Enumerations: their values are part of the interface.
                    ("task" | "status" | "zone", Value::String(_)) => (k.clone(), v.clone()),
                    _ => (k.clone(), shape(v)),
                })
                .collect(),
        ),
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics_shapes.json")
}

/// Every task, on every outcome a clean local run can reach.
fn observed() -> BTreeMap<String, Value> {
    let p = Pipeline::new();
    let mut seen = BTreeMap::new();
    let mut record = |name: String, args: &[&str], code: i32| {
        let mut cmd = p.command(args);
        cmd.env("AIRFLOW_CTX_DAG_ID", "marketing_pipeline")
            .env("AIRFLOW_CTX_TASK_ID", "a_task")
            .env("AIRFLOW_CTX_DAG_RUN_ID", "manual__1");
        let run = common::finish(cmd.output().unwrap());
        assert_eq!(run.code, code, "{args:?}\n{}", run.stderr);
        seen.insert(name, shape(&run.metrics));
    };

    record(
        "upload nothing_to_do".into(),
        &["upload", "contacts", "--ds", DS],
        99,
    );
    record(
        "validate nothing_to_do".into(),
        &["validate", "contacts", "--ds", DS],
        99,
    );
    record(
        "transform nothing_to_do".into(),
        &["transform", "--ds", DS],
        99,
    );
    for task in ["generate", "validate", "upload", "load"] {
        for dataset in common::datasets() {
            let args = [task, dataset, "--ds", DS];
            record(format!("{task} {dataset}"), &args, 0);
            record(format!("{task} {dataset} again"), &args, 0);
        }
    }
    record("transform".into(), &["transform", "--ds", DS], 0);
    record("report".into(), &["report", "--ds", DS], 0);
    record("setup".into(), &["setup"], 0);
    record(
        "sql".into(),
        &["sql", "SELECT 1 AS one; SELECT 2 AS two"],
        0,
    );
    record("run".into(), &["run", "--ds", "2025-05-26"], 0);

    std::fs::write(p.raw_path("contacts", "csv"), "not,the,columns\n1,2,3\n").unwrap();
    record(
        "validate rejected".into(),
        &["validate", "contacts", "--ds", DS],
        65,
    );
    record(
        "upload kept_previous_valid".into(),
        &["upload", "contacts", "--ds", DS],
        0,
    );
    seen
}

#[test]
fn every_task_prints_the_pinned_metrics_shape() {
    let observed = observed();
    let path = fixture();
    if std::env::var_os("UPDATE_METRICS_SHAPES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&json!(observed)).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
    }
    let pinned: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let names: BTreeSet<_> = pinned.keys().chain(observed.keys()).collect();
    let differ: Vec<String> = names
        .into_iter()
        .filter(|n| pinned.get(*n) != observed.get(*n))
        .map(|n| {
            format!(
                "{n}:\n  pinned:   {}\n  observed: {}",
                pinned.get(n).unwrap_or(&Value::Null),
                observed.get(n).unwrap_or(&Value::Null)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "metrics shapes changed:\n{}",
        differ.join("\n")
    );
}
