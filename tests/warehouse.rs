//! load and transform on the embedded DuckDB warehouse, through the binary.

mod common;

use common::{DS, Pipeline, parquet_rows};
use serde_json::Value;

const MARTS: [(&str, &str); 6] = [
    ("campaigns", "MART.MART_CAMPAIGNS"),
    ("forms", "MART.MART_FORMS"),
    ("pages", "MART.MART_PAGES"),
    ("contacts", "MART.MART_CONTACTS"),
    ("form_fills", "MART.MART_FORM_FILLS"),
    ("website_activity", "MART.MART_WEBSITE_ACTIVITY"),
];

fn valid_rows(p: &Pipeline, dataset: &str, ds: &str) -> u64 {
    let path = p.lake().join(format!(
        "valid-data/{dataset}/ds={ds}/{dataset}_{ds}.parquet"
    ));
    parquet_rows(&path) as u64
}

fn number(metrics: &Value, field: &str) -> u64 {
    metrics[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {metrics}"))
}

fn transform_of(run: &Value, ds: &str) -> Value {
    run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "transform" && t["ds"] == ds)
        .cloned()
        .unwrap_or_else(|| panic!("no transform for {ds} in {run}"))
}

#[test]
fn run_ends_in_marts_holding_every_valid_row() {
    let p = Pipeline::new();
    let run = p.ok(&["run", "--ds", DS], 0);
    assert_eq!(transform_of(&run, DS)["status"], "transformed");

    for (dataset, mart) in MARTS {
        let valid = valid_rows(&p, dataset, DS);
        assert!(valid > 0, "{dataset} has valid rows");
        let raw = format!("RAW.{}", dataset.to_uppercase());
        assert_eq!(
            p.count(&format!("SELECT COUNT(*) FROM {raw}")),
            valid,
            "{raw}"
        );
        assert_eq!(
            p.count(&format!("SELECT COUNT(*) FROM {mart}")),
            valid,
            "{mart}"
        );
    }
    // The form type is joined into the form fills mart.
    let untyped = p.count("SELECT COUNT(*) FROM MART.MART_FORM_FILLS WHERE FORM_TYPE IS NULL");
    assert_eq!(untyped, 0);
    let days = p.sql("SELECT DISTINCT CAST(FILL_DATE AS VARCHAR), CAST(UPLOAD_DATE AS VARCHAR) FROM MART.MART_FORM_FILLS");
    assert_eq!(days, [[Some(DS.to_string()), Some(DS.to_string())]]);
}

#[test]
fn load_and_transform_again_change_nothing() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    let before = p.sql("SELECT DATASET, CAST(LOADED_AT AS VARCHAR) FROM RAW.LOAD_LOG ORDER BY 1");
    for dataset in common::datasets() {
        let load = p.ok(&["load", dataset, "--ds", DS], 0);
        assert_eq!(load["status"], "already_loaded", "{load}");
        assert_eq!(number(&load, "rows_out"), valid_rows(&p, dataset, DS));
    }
    let transform = p.ok(&["transform", "--ds", DS], 0);
    assert_eq!(number(&transform, "inserted"), 0, "{transform}");
    assert_eq!(number(&transform, "updated"), 0, "{transform}");
    assert_eq!(number(&transform, "tests_failed"), 0, "{transform}");
    let after = p.sql("SELECT DATASET, CAST(LOADED_AT AS VARCHAR) FROM RAW.LOAD_LOG ORDER BY 1");
    assert_eq!(before, after, "no partition was reloaded");
}

#[test]
fn a_failed_load_reports_why_and_loads_once_the_lake_is_repaired() {
    let p = Pipeline::new();
    for task in ["generate", "validate", "upload"] {
        p.ok(&[task, "pages", "--ds", DS], 0);
    }
    // Not Parquet: DuckDB's read fails inside load's transaction.
    let object = p.slice_path(&p.lake(), "valid-data", "pages");
    std::fs::write(&object, b"not parquet").unwrap();
    let failed = p.run(&["load", "pages", "--ds", DS]);
    assert_ne!(failed.code, 0, "{}", failed.stderr);
    let error = failed.metrics["error"].as_str().unwrap_or_default();
    assert!(error.contains("INSERT INTO RAW.PAGES"), "{error}");
    assert!(error.contains("pages_2025-05-25.parquet"), "{error}");
    assert!(!error.contains("aborted"), "{error}");
    p.ok(&["upload", "pages", "--ds", DS], 0);
    let load = p.ok(&["load", "pages", "--ds", DS], 0);
    assert_eq!(load["status"], "loaded", "{load}");
    assert_eq!(number(&load, "rows_out"), valid_rows(&p, "pages", DS));
}

#[test]
fn consecutive_days_accumulate_in_the_fact_marts() {
    let p = Pipeline::new();
    let days = ["2025-05-24", "2025-05-25", "2025-05-26"];
    let run = p.ok(&["run", "--from", days[0], "--to", days[2]], 0);
    for (dataset, mart) in MARTS {
        let per_day: Vec<u64> = days.iter().map(|d| valid_rows(&p, dataset, d)).collect();
        let in_mart = p.count(&format!("SELECT COUNT(*) FROM {mart}"));
        if matches!(dataset, "campaigns" | "forms" | "pages") {
            // The same universe every day: merged, not appended.
            assert_eq!(in_mart, per_day[0], "{mart}");
        } else {
            assert_eq!(in_mart, per_day.iter().sum::<u64>(), "{mart}");
        }
    }
    // Day two and three insert only their own facts; the dimensions stay put.
    let second = transform_of(&run, days[1]);
    let expected: u64 = ["contacts", "form_fills", "website_activity"]
        .iter()
        .map(|d| valid_rows(&p, d, days[1]))
        .sum();
    assert_eq!(number(&second, "rows_out"), expected, "{second}");
}

#[test]
fn a_changed_source_row_is_updated_in_its_mart() {
    use polars::prelude::*;
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    let slice = p.slice_path(&p.lake(), "valid-data", "contacts");
    let frame = ParquetReader::new(std::fs::File::open(&slice).unwrap())
        .finish()
        .unwrap();
    let first_id = frame
        .column("contact_id")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    let mut frame = frame
        .lazy()
        .with_column(
            when(col("contact_id").eq(lit(first_id.clone())))
                .then(lit("changed@example.com"))
                .otherwise(col("email"))
                .alias("email"),
        )
        .collect()
        .unwrap();
    ParquetWriter::new(std::fs::File::create(&slice).unwrap())
        .finish(&mut frame)
        .unwrap();

    let load = p.ok(&["load", "contacts", "--ds", DS], 0);
    assert_eq!(load["status"], "loaded");
    assert_eq!(number(&load, "replaced_rows"), number(&load, "rows_out"));
    let transform = p.ok(&["transform", "--ds", DS], 0);
    assert_eq!(number(&transform, "inserted"), 0, "{transform}");
    assert_eq!(number(&transform, "updated"), 1, "{transform}");
    let email = p.sql(&format!(
        "SELECT EMAIL FROM MART.MART_CONTACTS WHERE CONTACT_ID = '{first_id}'"
    ));
    assert_eq!(email, [[Some("changed@example.com".to_string())]]);
}

/// Each planted violation must make its test, and only its test, report it.
#[test]
fn every_sql_test_passes_on_clean_data_and_catches_its_violation() {
    let p = Pipeline::new();
    let run = p.ok(&["run", "--ds", DS], 0);
    let clean = transform_of(&run, DS);
    assert_eq!(clean["status"], "transformed", "{clean}");

    let tests = |p: &Pipeline, code: i32| -> Value { p.ok(&["transform", "--ds", DS], code) };
    let clean = tests(&p, 0);
    let names: Vec<String> = clean["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["status"], "pass", "{t}");
            t["test"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        names.len() > 90,
        "contract, key and relationship tests: {names:?}"
    );

    let fails = |p: &Pipeline, plant: &str, test: &str| {
        p.sql(plant);
        let metrics = tests(p, 65);
        assert_eq!(metrics["status"], "tests_failed");
        let failing: Vec<&str> = metrics["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == "fail")
            .map(|t| t["test"].as_str().unwrap())
            .collect();
        assert_eq!(failing, [test], "after {plant}");
        assert!(metrics["error"].as_str().unwrap().contains(test));
    };
    for (dataset, mart) in MARTS {
        let key = marketing_pipeline::catalog::Dataset::named(dataset).key();
        let test = format!(
            "unique_{}_{key}",
            mart.trim_start_matches("MART.").to_lowercase()
        );
        fails(
            &p,
            &format!("INSERT INTO {mart} SELECT * FROM {mart} LIMIT 1"),
            &test,
        );
        p.sql(&format!(
            "DELETE FROM {mart} WHERE rowid = (SELECT MAX(rowid) FROM {mart})"
        ));
        tests(&p, 0);
    }
    // Rows that today's staging does not hold, so the MERGE cannot mend them.
    fails(
        &p,
        "INSERT INTO MART.MART_FORM_FILLS SELECT * REPLACE ('planted' AS FILL_ID, \
         'no-such-contact' AS CONTACT_ID) FROM MART.MART_FORM_FILLS LIMIT 1",
        "relationships_mart_form_fills_contact_id__contact_id__ref_mart_contacts_",
    );
    p.sql("DELETE FROM MART.MART_FORM_FILLS WHERE FILL_ID = 'planted'");
    fails(
        &p,
        "INSERT INTO MART.MART_WEBSITE_ACTIVITY SELECT * REPLACE ('planted' AS SESSION_ID, \
         'no-such-page' AS PAGE_ID) FROM MART.MART_WEBSITE_ACTIVITY LIMIT 1",
        "relationships_mart_website_activity_page_id__page_id__ref_mart_pages_",
    );

    // The row-count budget only warns: yesterday had far more form fills.
    let budget = Pipeline::new();
    budget.ok(&["run", "--ds", DS], 0);
    budget.sql(
        "INSERT INTO MART.MART_FORM_FILLS SELECT f.* REPLACE (f.FILL_ID || '-' || r.range AS FILL_ID, \
         f.FILL_DATE - 1 AS FILL_DATE) FROM MART.MART_FORM_FILLS AS f, range(3) AS r",
    );
    let warned = budget.ok(&["transform", "--ds", DS], 0);
    assert_eq!(number(&warned, "tests_warned"), 1, "{warned}");
    assert_eq!(number(&warned, "tests_failed"), 0, "{warned}");
}

#[test]
fn a_rejected_file_keeps_its_day_out_of_the_warehouse() {
    let p = Pipeline::new();
    let run = p.ok(&["run", "--ds", DS, "--max-invalid-ratio", "0.001"], 65);
    assert_eq!(run["status"], "completed_with_rejections");
    let tasks = run["tasks"].as_array().unwrap();
    let rejected = tasks
        .iter()
        .find(|t| t["task"] == "validate" && t["status"] == "rejected")
        .and_then(|t| t["dataset"].as_str())
        .unwrap_or_else(|| panic!("nothing rejected: {run}"));
    assert!(
        !tasks
            .iter()
            .any(|t| t["task"] == "load" || t["task"] == "transform"),
        "{run}"
    );
    assert!(!p.warehouse_db().exists(), "the warehouse was never opened");
    // Asked directly, load of a rejected dataset has nothing to load.
    let load = p.ok(&["load", rejected, "--ds", DS], 99);
    assert_eq!(load["status"], "skipped");
}

#[test]
fn six_loads_in_parallel_wait_for_the_duckdb_lock() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    p.sql("DELETE FROM RAW.LOAD_LOG");
    let children: Vec<_> = common::datasets()
        .iter()
        .map(|d| {
            p.command(&["load", d, "--ds", DS])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (dataset, child) in common::datasets().iter().zip(children) {
        let run = common::finish(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{dataset}: {}", run.stderr);
        assert_eq!(run.metrics["status"], "loaded", "{dataset}");
        assert_eq!(
            number(&run.metrics, "rows_out"),
            valid_rows(&p, dataset, DS)
        );
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM RAW.LOAD_LOG"), 6);
}

/// A failing data test alerts like a failing check: its pattern is new to the
/// Airflow run that first sees it (and to that run's retry), and known to any
/// later run of the ds.
#[test]
fn a_failing_data_test_is_a_new_failure_pattern_once() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    p.sql("INSERT INTO MART.MART_CONTACTS SELECT * FROM MART.MART_CONTACTS LIMIT 1");
    let transform_in = |run_id: &str| -> Value {
        let out = p
            .command(&["transform", "--ds", DS])
            .env("AIRFLOW_CTX_DAG_RUN_ID", run_id)
            .output()
            .unwrap();
        let run = common::finish(out);
        assert_eq!(run.code, 65, "{}", run.stderr);
        run.metrics
    };
    let first = transform_in("run-1");
    assert_eq!(first["has_failure_delta"], true, "{first}");
    let failing: Vec<&Value> = first["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "fail")
        .collect();
    let [test] = failing.as_slice() else {
        panic!("one failing test: {first}")
    };
    assert_eq!(
        first["new_signatures"],
        serde_json::json!([test["signature"]])
    );
    assert!(
        first["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == "pass")
            .all(|t| t.get("signature").is_none())
    );
    let retry = transform_in("run-1");
    assert_eq!(retry["new_signatures"], first["new_signatures"], "{retry}");
    let later = transform_in("run-2");
    assert_eq!(later["has_failure_delta"], false, "{later}");
    assert!(later.get("new_signatures").is_none(), "{later}");
}
