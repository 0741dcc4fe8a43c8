//! End-to-end behaviour of the built binary on the embedded defaults.

mod common;

use std::collections::BTreeMap;

use common::{DS, Pipeline, parquet_rows, snapshot};
use serde_json::Value;

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn generation_is_deterministic_byte_for_byte() {
    let (a, b, c) = (Pipeline::new(), Pipeline::new(), Pipeline::new());
    for d in common::datasets() {
        a.ok(&["generate", d, "--ds", DS, "--seed", "11"], 0);
        b.ok(&["generate", d, "--ds", DS, "--seed", "11"], 0);
        c.ok(&["generate", d, "--ds", DS, "--seed", "12"], 0);
    }
    let files = |p: &Pipeline| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        snapshot(&p.landing())
            .into_iter()
            .map(|(path, _, bytes)| (path.strip_prefix(p.landing()).unwrap().to_path_buf(), bytes))
            .collect()
    };
    assert_eq!(files(&a).len(), 6);
    assert_eq!(files(&a), files(&b), "same seed, ds and scale factor");
    let differ = files(&a)
        .iter()
        .zip(files(&c))
        .filter(|(x, y)| x.1 != y.1)
        .count();
    assert_eq!(differ, 3, "another seed changes the three fact files only");
}

#[test]
fn scale_factor_sizes_the_facts_linearly() {
    let p = Pipeline::new();
    let rows = |d: &str, sf: &str| {
        p.ok(
            &["generate", d, "--ds", DS, "--scale-factor", sf, "--force"],
            0,
        )["rows_out"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("contacts", "0.1"), 1_000);
    assert_eq!(rows("contacts", "0.2"), 2_000);
    assert_eq!(rows("form_fills", "0.1"), 2_000);
    assert_eq!(rows("website_activity", "0.1"), 5_000);
    assert_eq!(rows("campaigns", "0.1"), rows("campaigns", "3"));
}

#[test]
fn injected_defects_equal_detected_failures_and_every_row_is_accounted_for() {
    let p = Pipeline::new();
    let mut injected_total = 0;
    let mut generated = BTreeMap::new();
    for d in common::datasets() {
        let m = p.ok(&["generate", d, "--ds", DS, "--defect-rate", "0.05"], 0);
        injected_total += counts(&m["injected"]).values().sum::<u64>();
        generated.insert(d, m);
    }
    assert!(injected_total > 0);
    for d in common::datasets() {
        let m = p.ok(
            &["validate", d, "--ds", DS, "--max-invalid-ratio", "0.2"],
            0,
        );
        assert_eq!(
            counts(&generated[d]["injected"]),
            counts(&m["failed"]),
            "{d}: injected vs detected"
        );
        let rows_in = m["rows_in"].as_u64().unwrap();
        assert_eq!(rows_in, generated[d]["rows_out"].as_u64().unwrap(), "{d}");
        let valid = parquet_rows(&p.slice_path(&p.landing(), "valid-data", d));
        let quarantine_path = p.slice_path(&p.landing(), "quarantine-data", d);
        let quarantined = if quarantine_path.exists() {
            parquet_rows(&quarantine_path)
        } else {
            0
        };
        assert_eq!(
            rows_in as usize,
            valid + quarantined,
            "{d}: rows_in = valid + quarantined"
        );
        assert_eq!(m["rows_out"].as_u64().unwrap() as usize, valid);
        assert_eq!(m["invalid_rows"].as_u64().unwrap() as usize, quarantined);
        let expected_status = if quarantined == 0 {
            "validated"
        } else {
            "quarantined"
        };
        assert_eq!(m["status"], expected_status);
    }
}

#[test]
fn quarantined_rows_keep_their_values_and_name_their_checks() {
    use polars::prelude::*;
    let p = Pipeline::new();
    p.generate_all();
    p.ok(&["validate", "contacts", "--ds", DS], 0);
    let file =
        std::fs::File::open(p.slice_path(&p.landing(), "quarantine-data", "contacts")).unwrap();
    let q = ParquetReader::new(file).finish().unwrap();
    assert_eq!(q.width(), 12, "11 source columns and failed_checks");
    let reasons: Vec<&str> = q
        .column("failed_checks")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(reasons.iter().all(|r| !r.is_empty()));
    assert!(reasons.contains(&"email_format:email"), "{reasons:?}");
    assert!(reasons.contains(&"not_null:contact_id"), "{reasons:?}");
}

#[test]
fn run_builds_the_layout_and_a_rerun_changes_nothing() {
    let p = Pipeline::new();
    let first = p.ok(&["run", "--ds", DS], 0);
    assert_eq!(first["status"], "completed");
    // generate, validate, upload and load per dataset, then one transform
    // and one report.
    assert_eq!(first["tasks"].as_array().unwrap().len(), 26);
    assert!(
        first["has_failure_delta"].as_bool().unwrap(),
        "defects are new on a fresh install"
    );
    for d in common::datasets() {
        for zone in ["valid-data", "quarantine-data"] {
            let landing = p.slice_path(&p.landing(), zone, d);
            let lake = p.slice_path(&p.lake(), zone, d);
            assert_eq!(landing.exists(), lake.exists(), "{zone}/{d}");
            if landing.exists() {
                assert_eq!(
                    std::fs::read(landing).unwrap(),
                    std::fs::read(lake).unwrap()
                );
            }
        }
        assert!(p.slice_path(&p.lake(), "valid-data", d).exists(), "{d}");
    }

    let before = (snapshot(&p.landing()), snapshot(&p.lake()));
    let second = p.ok(&["run", "--ds", DS], 0);
    assert_eq!(
        before,
        (snapshot(&p.landing()), snapshot(&p.lake())),
        "nothing rewritten"
    );
    // Still new: no other ds has seen these patterns, and a rerun of the
    // same ds (as a retry after a crash) must not lose the alert.
    assert_eq!(second["has_failure_delta"], true);
    assert_eq!(second["new_signatures"], first["new_signatures"]);
    for task in second["tasks"].as_array().unwrap() {
        match task["task"].as_str().unwrap() {
            "upload" => assert_eq!(task["status"], "already_uploaded"),
            "load" => assert_eq!(task["status"], "already_loaded"),
            "transform" => assert_eq!(task["rows_out"], 0, "no mart row changed: {task}"),
            _ => assert_eq!(task["reused"], true, "{task}"),
        }
    }
    let sums = |m: &Value| {
        (
            m["rows_in"].clone(),
            m["rows_out"].clone(),
            m["invalid_rows"].clone(),
        )
    };
    assert_eq!(sums(&first), sums(&second));

    let conn = rusqlite::Connection::open(p.metadata_db()).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM stage_log"), 12);
    assert!(count("SELECT count(*) FROM file_metadata") >= 6);
    assert_eq!(
        count("SELECT count(*) FROM dq_signature WHERE occurrences <> 1"),
        0
    );
}

#[test]
fn a_known_failure_pattern_does_not_alert_again_on_another_day() {
    let p = Pipeline::new();
    let first = p.ok(&["run", "--ds", "2025-05-24"], 0);
    assert!(first["has_failure_delta"].as_bool().unwrap());
    let next = p.ok(&["run", "--ds", "2025-05-25"], 0);
    assert_eq!(
        next["has_failure_delta"], false,
        "same patterns, other counts and dates"
    );
    let conn = rusqlite::Connection::open(p.metadata_db()).unwrap();
    let twice: i64 = conn
        .query_row(
            "SELECT count(*) FROM dq_signature WHERE occurrences = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(twice > 0);
}

#[test]
fn a_backfill_runs_every_day_in_the_range() {
    let p = Pipeline::new();
    let m = p.ok(
        &[
            "run",
            "--from",
            "2025-05-23",
            "--to",
            "2025-05-25",
            "--defect-rate",
            "0",
        ],
        0,
    );
    assert_eq!(m["tasks"].as_array().unwrap().len(), 3 * 26);
    assert_eq!(m["invalid_rows"], 0);
    assert_eq!(m["ds_to"], "2025-05-25");
}

#[test]
fn six_validates_in_parallel_share_one_sqlite_file() {
    let p = Pipeline::new();
    p.generate_all();
    let children: Vec<_> = common::datasets()
        .iter()
        .map(|d| p.command(&["validate", d, "--ds", DS]).spawn().unwrap())
        .collect();
    for child in children {
        let run = common::finish(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let conn = rusqlite::Connection::open(p.metadata_db()).unwrap();
    let datasets: i64 = conn
        .query_row("SELECT count(DISTINCT dataset) FROM dq_checks", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(datasets, 6);
    let stages: i64 = conn
        .query_row(
            "SELECT count(*) FROM stage_log WHERE stage = 'validate'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stages, 6);
}

#[test]
fn too_many_invalid_rows_reject_the_file_and_quarantine_all_of_it() {
    let p = Pipeline::new();
    p.generate_all();
    p.ok(
        &[
            "generate",
            "contacts",
            "--ds",
            DS,
            "--defect-rate",
            "0.3",
            "--force",
        ],
        0,
    );
    let m = p.ok(
        &[
            "validate",
            "contacts",
            "--ds",
            DS,
            "--max-invalid-ratio",
            "0.1",
        ],
        65,
    );
    assert_eq!(m["status"], "rejected");
    assert_eq!(m["rows_out"], 0);
    assert_eq!(m["invalid_rows"], m["rows_in"]);
    assert!(
        !p.slice_path(&p.landing(), "valid-data", "contacts")
            .exists()
    );
    let quarantine = p.slice_path(&p.landing(), "quarantine-data", "contacts");
    assert_eq!(
        parquet_rows(&quarantine) as u64,
        m["rows_in"].as_u64().unwrap()
    );
    // The same file and tolerance give the same verdict without redoing work.
    let again = p.ok(
        &[
            "validate",
            "contacts",
            "--ds",
            DS,
            "--max-invalid-ratio",
            "0.1",
        ],
        65,
    );
    assert_eq!(again["reused"], true);
}

#[test]
fn upload_is_idempotent_and_repairs_a_changed_lake_object() {
    let p = Pipeline::new();
    p.generate_all();
    p.ok(&["validate", "pages", "--ds", DS], 0);
    let first = p.ok(&["upload", "pages", "--ds", DS], 0);
    assert_eq!(first["status"], "uploaded");
    let lake_file = p.slice_path(&p.lake(), "valid-data", "pages");
    let before = snapshot(&p.lake());
    let second = p.ok(&["upload", "pages", "--ds", DS], 0);
    assert_eq!(second["status"], "already_uploaded");
    assert_eq!(before, snapshot(&p.lake()));
    std::fs::write(&lake_file, b"tampered").unwrap();
    let third = p.ok(&["upload", "pages", "--ds", DS], 0);
    assert_eq!(third["status"], "uploaded");
    assert_eq!(parquet_rows(&lake_file), 50);
}

#[test]
fn metrics_go_to_the_xcom_file_with_airflow_context() {
    let p = Pipeline::new();
    let xcom = p.dir.path().join("xcom/return.json");
    let out = p
        .command(&["generate", "forms", "--ds", DS])
        .env("PIPELINE_XCOM_FILE", &xcom)
        .env("AIRFLOW_CTX_DAG_ID", "marketing_pipeline")
        .env("AIRFLOW_CTX_TASK_ID", "generate.forms")
        .env("AIRFLOW_CTX_DAG_RUN_ID", "manual__2025-05-25")
        .output()
        .unwrap();
    let run = common::finish(out);
    assert_eq!(run.code, 0);
    let written: Value = serde_json::from_slice(&std::fs::read(&xcom).unwrap()).unwrap();
    assert_eq!(written, run.metrics);
    assert_eq!(written["dag_id"], "marketing_pipeline");
    assert_eq!(written["task_id"], "generate.forms");
    assert_eq!(written["run_id"], "manual__2025-05-25");
    assert_eq!(written["rows_out"], 8);
    // stderr is bunyan JSON, one object per line.
    for line in run.stderr.lines() {
        let log: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(log["name"], "marketing-pipeline");
    }
}
