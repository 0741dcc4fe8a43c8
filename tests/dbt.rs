//! sql/ is a real dbt project, and `transform` builds it as dbt does:
//! dbt-core with dbt-duckdb (pinned in tests/dbt.requirements.txt, which
//! .ci/run installs and names in DBT_BIN) and the binary build copies of
//! the same warehouse over three days, a changed source row and planted
//! violations, to the same marts and the same test outcomes. dbt also
//! parses the project for Snowflake and generates its docs, and sqlfluff
//! (SQLFLUFF_BIN) lints it for both dialects.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Pipeline;
use serde_json::Value;

const DAYS: [&str; 3] = ["2025-05-24", "2025-05-25", "2025-05-26"];
const MARTS: [&str; 6] = [
    "mart_campaigns",
    "mart_forms",
    "mart_pages",
    "mart_contacts",
    "mart_form_fills",
    "mart_website_activity",
];

fn tool(var: &str) -> PathBuf {
    PathBuf::from(std::env::var(var).unwrap_or_else(|_| {
        panic!("{var}: the tool from the venv .ci/run installs (tests/dbt.requirements.txt)")
    }))
}

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql")
}

/// Status of every model and test, by dbt's node name.
type Outcomes = BTreeMap<String, String>;

/// A dbt command on the project, with its output kept out of the clone.
fn dbt(p: &Pipeline, args: &[&str], warehouse: &Path) -> (bool, String, PathBuf) {
    dbt_in(p, &project_dir(), args, warehouse)
}

fn dbt_in(
    p: &Pipeline,
    project: &Path,
    args: &[&str],
    warehouse: &Path,
) -> (bool, String, PathBuf) {
    let scratch = p.dir.path().join(format!(
        "dbt-{}",
        args.join("-").replace(['{', '}', ' ', ':'], "")
    ));
    let profiles = scratch.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(
        project_dir().join("profiles.yml"),
        profiles.join("profiles.yml"),
    )
    .unwrap();
    let target = scratch.join("target");
    let out = Command::new(tool("DBT_BIN"))
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .arg("--profiles-dir")
        .arg(&profiles)
        .arg("--target-path")
        .arg(&target)
        .arg("--log-path")
        .arg(scratch.join("logs"))
        .env("PIPELINE_DUCKDB_PATH", warehouse)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("SNOWFLAKE_ACCOUNT", "example-account")
        .env("SNOWFLAKE_USER", "pipeline")
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), log, target)
}

/// `dbt build` for a ds; the outcome of each node from run_results.json.
fn dbt_build(p: &Pipeline, project: &Path, warehouse: &Path, ds: &str) -> Outcomes {
    let vars = format!("{{ds: {ds}}}");
    let args = ["build", "--target", "duckdb", "--vars", &vars];
    let (_, log, target) = dbt_in(p, project, &args, warehouse);
    let results = std::fs::read_to_string(target.join("run_results.json"))
        .unwrap_or_else(|e| panic!("dbt build wrote no run_results.json ({e}):\n{log}"));
    let results: Value = serde_json::from_str(&results).unwrap();
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap();
            let name = id.split('.').nth(2).unwrap().to_string();
            (name, r["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// `transform` for a ds on `warehouse`; its metrics and node outcomes.
fn native_build(p: &Pipeline, project: &Path, warehouse: &Path, ds: &str) -> (Value, Outcomes) {
    let run = common::finish(
        p.command(&["transform", "--ds", ds])
            .env(
                "PIPELINE_WAREHOUSE_URL",
                format!("duckdb://{}", warehouse.display()),
            )
            .env("PIPELINE_DBT_PROJECT_DIR", project)
            .output()
            .unwrap(),
    );
    assert!(
        matches!(run.code, 0 | 65),
        "transform --ds {ds}: exit {}\n{}",
        run.code,
        run.stderr
    );
    let m = &run.metrics;
    let mut outcomes = Outcomes::new();
    for model in m["models"].as_array().unwrap() {
        outcomes.insert(
            model["model"].as_str().unwrap().into(),
            model["status"].as_str().unwrap().into(),
        );
    }
    for test in m["tests"].as_array().unwrap() {
        outcomes.insert(
            test["test"].as_str().unwrap().into(),
            test["status"].as_str().unwrap().into(),
        );
    }
    (run.metrics, outcomes)
}

fn sql_on(p: &Pipeline, warehouse: &Path, query: &str) {
    let run = common::finish(
        p.command(&["sql", query])
            .env(
                "PIPELINE_WAREHOUSE_URL",
                format!("duckdb://{}", warehouse.display()),
            )
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{query}: {}", run.stderr);
}

/// Generates, validates and publishes a ds, and loads it into both warehouses.
fn deliver(p: &Pipeline, ds: &str, warehouses: &[&Path]) {
    for dataset in common::datasets() {
        p.ok(&["generate", dataset, "--ds", ds], 0);
        p.ok(&["validate", dataset, "--ds", ds], 0);
        p.ok(&["upload", dataset, "--ds", ds], 0);
        for warehouse in warehouses {
            let run = common::finish(
                p.command(&["load", dataset, "--ds", ds])
                    .env(
                        "PIPELINE_WAREHOUSE_URL",
                        format!("duckdb://{}", warehouse.display()),
                    )
                    .output()
                    .unwrap(),
            );
            assert_eq!(run.code, 0, "load {dataset} {ds}: {}", run.stderr);
        }
    }
}

/// Rows of each mart in one warehouse and not the other, both ways,
/// counting duplicates (EXCEPT ALL).
fn mart_differences(a: &Path, b: &Path) -> Vec<String> {
    differences_in(a, b, &MARTS)
}

fn differences_in(a: &Path, b: &Path, marts: &[&str]) -> Vec<String> {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS a (READ_ONLY); ATTACH '{}' AS b (READ_ONLY);",
        a.display(),
        b.display()
    ))
    .unwrap();
    let mut differences = Vec::new();
    for mart in marts {
        for (x, y) in [("a", "b"), ("b", "a")] {
            let n: i64 = conn
                .query_row(
                    &format!(
                        "SELECT COUNT(*) FROM (SELECT * FROM {x}.MART.{mart} EXCEPT ALL SELECT * FROM {y}.MART.{mart})"
                    ),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if n != 0 {
                differences.push(format!("{mart}: {n} rows only in {x}"));
            }
        }
    }
    differences
}

fn copy(from: &Path, to: &Path) -> PathBuf {
    std::fs::copy(from, to).unwrap();
    to.to_path_buf()
}

#[test]
fn dbt_core_and_transform_build_the_same_marts_and_test_outcomes() {
    let p = Pipeline::new();
    let native = p.warehouse_db();
    let reference = p.dir.path().join("dbt.duckdb");
    let both = [native.as_path(), reference.as_path()];

    for (day, ds) in DAYS[..2].iter().enumerate() {
        deliver(&p, ds, &both);
        if day == 1 {
            // A source row that changes from one day to the next.
            for warehouse in both {
                sql_on(
                    &p,
                    warehouse,
                    &format!(
                        "UPDATE RAW.CAMPAIGNS SET CAMPAIGN_NAME = 'Renamed campaign' \
                         WHERE DS = '{ds}' AND CAMPAIGN_ID = (SELECT MIN(CAMPAIGN_ID) FROM RAW.CAMPAIGNS)"
                    ),
                );
            }
        }
        let expected = dbt_build(&p, &project_dir(), &reference, ds);
        let (metrics, outcomes) = native_build(&p, &project_dir(), &native, ds);
        assert_eq!(outcomes, expected, "{ds}: node outcomes differ from dbt's");
        assert!(
            expected.values().all(|s| s == "success" || s == "pass"),
            "{expected:?}"
        );
        assert_eq!(
            mart_differences(&native, &reference),
            Vec::<String>::new(),
            "{ds}"
        );
        if day == 1 {
            let campaigns = metrics["models"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["model"] == "mart_campaigns")
                .unwrap();
            assert_eq!(campaigns["updated"], 1, "the renamed campaign: {campaigns}");
            assert_eq!(campaigns["inserted"], 0, "{campaigns}");
        }
    }
    let renamed = p
        .count("SELECT COUNT(*) FROM MART.MART_CAMPAIGNS WHERE CAMPAIGN_NAME = 'Renamed campaign'");
    assert_eq!(renamed, 1, "the changed source row reached the mart");

    // The third day: clean, then with each violation planted in RAW, on
    // copies of both warehouses.
    let ds = DAYS[2];
    deliver(&p, ds, &both);
    let scenarios: [(&str, &str, &str, &str); 4] = [
        ("clean", "SELECT 1", "", "pass"),
        (
            "duplicate_contact",
            "INSERT INTO RAW.CONTACTS SELECT * FROM RAW.CONTACTS WHERE DS = '{ds}' LIMIT 1",
            "source_unique_raw_contacts_contact_id",
            "fail",
        ),
        (
            "missing_campaign_name",
            "UPDATE RAW.CAMPAIGNS SET CAMPAIGN_NAME = NULL WHERE DS = '{ds}' \
             AND CAMPAIGN_ID = (SELECT MIN(CAMPAIGN_ID) FROM RAW.CAMPAIGNS)",
            "source_not_null_raw_campaigns_campaign_name",
            "fail",
        ),
        (
            "few_form_fills",
            "DELETE FROM RAW.FORM_FILLS WHERE DS = '{ds}' AND FILL_ID > '3'",
            "form_fills_row_count_budget",
            "warn",
        ),
    ];
    for (scenario, plant, test, status) in scenarios {
        let native = copy(
            &native,
            &p.dir.path().join(format!("{scenario}-native.duckdb")),
        );
        let reference = copy(
            &reference,
            &p.dir.path().join(format!("{scenario}-dbt.duckdb")),
        );
        for warehouse in [&native, &reference] {
            sql_on(&p, warehouse, &plant.replace("{ds}", ds));
        }
        let expected = dbt_build(&p, &project_dir(), &reference, ds);
        let (metrics, outcomes) = native_build(&p, &project_dir(), &native, ds);
        assert_eq!(
            outcomes, expected,
            "{scenario}: node outcomes differ from dbt's"
        );
        assert_eq!(
            mart_differences(&native, &reference),
            Vec::<String>::new(),
            "{scenario}"
        );
        if !test.is_empty() {
            assert_eq!(expected[test], status, "{scenario}: {test}");
        }
        let skipped = expected.values().filter(|s| *s == "skipped").count();
        match status {
            "fail" => {
                assert!(
                    skipped > 0,
                    "{scenario}: a failing test skips what is downstream"
                );
                assert_eq!(metrics["exit_code"], 65, "{scenario}");
            }
            _ => {
                assert_eq!(skipped, 0, "{scenario}");
                assert_eq!(metrics["exit_code"], 0, "{scenario}");
            }
        }
    }
}

#[test]
fn dbt_parses_for_snowflake_and_documents_the_duckdb_build() {
    let p = Pipeline::new();
    let vars = "{ds: 2025-05-25}";
    let (ok, log, _) = dbt(
        &p,
        &["parse", "--target", "snowflake", "--vars", vars],
        &p.warehouse_db(),
    );
    assert!(ok, "dbt parse --target snowflake:\n{log}");

    p.ok(&["run", "--ds", common::DS], 0);
    let (ok, log, target) = dbt(
        &p,
        &["docs", "generate", "--target", "duckdb", "--vars", vars],
        &p.warehouse_db(),
    );
    assert!(ok, "dbt docs generate:\n{log}");
    let catalog: Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("catalog.json")).unwrap())
            .unwrap();
    let nodes = catalog["nodes"].as_object().unwrap();
    assert!(
        nodes.contains_key("model.marketing_pipeline.mart_contacts"),
        "the docs catalogue describes the marts the binary built: {:?}",
        nodes.keys().collect::<Vec<_>>()
    );
}

#[test]
fn sqlfluff_lints_the_project_clean_for_both_dialects() {
    for dialect in ["duckdb", "snowflake"] {
        let out = Command::new(tool("SQLFLUFF_BIN"))
            .args(["lint", "--dialect", dialect, "models", "macros", "tests"])
            .current_dir(project_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sqlfluff lint --dialect {dialect}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A model a user might add: form fills per campaign, as a table.
const CAMPAIGN_FILLS: (&str, &str) = (
    "models/marts/mart_campaign_fills.sql",
    "{{ config(materialized='table') }}\n\
     select campaign_id, count(*) as fills\n\
     from {{ ref('mart_form_fills') }}\n\
     group by campaign_id\n",
);

/// A copy of the project in a folder of the test, for `--dbt-project-dir`.
fn project_copy(p: &Pipeline) -> PathBuf {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap();
            if name == "target" || name == "logs" {
                continue;
            }
            if path.is_dir() {
                copy_dir(&path, &to.join(name));
            } else {
                std::fs::copy(&path, to.join(name)).unwrap();
            }
        }
    }
    let to = p.dir.path().join("project");
    copy_dir(&project_dir(), &to);
    to
}

fn transform_in(p: &Pipeline, project: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["transform", "--ds", common::DS];
    args.extend_from_slice(extra);
    common::finish(
        p.command(&args)
            .env("PIPELINE_DBT_PROJECT_DIR", project)
            .output()
            .unwrap(),
    )
}

#[test]
fn a_model_added_to_a_project_folder_is_built_without_rebuilding() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", common::DS], 0);
    let project = project_copy(&p);
    std::fs::write(project.join(CAMPAIGN_FILLS.0), CAMPAIGN_FILLS.1).unwrap();
    let run = transform_in(&p, &project, &["--select", "mart_campaign_fills"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let models: Vec<&str> = run.metrics["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["mart_campaign_fills"]);
    let fills = p.count("SELECT SUM(FILLS) FROM MART.MART_CAMPAIGN_FILLS");
    assert_eq!(fills, p.count("SELECT COUNT(*) FROM MART.MART_FORM_FILLS"));
}

#[test]
fn select_takes_model_names_with_graph_operators() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", common::DS], 0);
    let models_of = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["transform", "--ds", common::DS];
        all.extend_from_slice(args);
        let m = p.ok(&all, 0);
        let mut names: Vec<String> = m["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(models_of(&["--select", "mart_contacts"]), ["mart_contacts"]);
    assert_eq!(
        models_of(&["--select", "+mart_form_fills"]),
        [
            "mart_form_fills",
            "mart_forms",
            "stg_form_fills",
            "stg_forms"
        ]
    );
    assert_eq!(
        models_of(&["-s", "stg_forms+", "stg_pages"]),
        ["mart_form_fills", "mart_forms", "stg_forms", "stg_pages"]
    );
    // Tests follow what they test.
    let m = p.ok(
        &["transform", "--ds", common::DS, "--select", "mart_pages"],
        0,
    );
    let tests: Vec<&str> = m["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["test"].as_str().unwrap())
        .collect();
    assert!(tests.contains(&"unique_mart_pages_page_id"), "{tests:?}");
    assert!(tests.iter().all(|t| t.contains("mart_pages")), "{tests:?}");

    let bad = p.run(&[
        "transform",
        "--ds",
        common::DS,
        "--select",
        "path:models/marts",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let unknown = p.run(&["transform", "--ds", common::DS, "--select", "mart_nothing"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.metrics["error"]
            .as_str()
            .unwrap()
            .contains("mart_nothing")
    );
}

/// What the runner does not support fails when the project is loaded
/// (78), naming the file and the construct, before anything is built.
#[test]
fn unsupported_dbt_constructs_fail_clearly_at_parse_time() {
    let p = Pipeline::new();
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        (
            "models/marts/mart_ephemeral.sql",
            "{{ config(materialized='ephemeral') }}\nselect 1 as x\n",
            "materialized=ephemeral",
            &["models/marts/mart_ephemeral.sql"],
        ),
        (
            "models/marts/mart_dispatch.sql",
            "select 1 as x\nfrom {{ adapter.dispatch('x')() }}\n",
            "dispatch",
            &["models/marts/mart_dispatch.sql:2", "native runner supports"],
        ),
        (
            "models/marts/mart_missing.sql",
            "select * from {{ ref('mart_nowhere') }}\n",
            "mart_nowhere",
            &["models/marts/mart_missing.sql:1"],
        ),
        (
            "dbt_project.yml",
            "name: marketing_pipeline\nprofile: marketing_pipeline\non-run-start: [\"select 1\"]\n",
            "on-run-start",
            &["dbt_project.yml"],
        ),
    ];
    for (file, text, construct, mentions) in cases {
        let project = project_copy(&p);
        std::fs::write(project.join(file), text).unwrap();
        let run = transform_in(&p, &project, &[]);
        assert_eq!(run.code, 78, "{file}: {}", run.stderr);
        let error = run.metrics["error"].as_str().unwrap();
        assert!(!error.contains('\n'), "one line: {error}");
        for text in mentions.iter().chain([&construct]) {
            assert!(error.contains(text), "{file}: {text:?} in {error}");
        }
        std::fs::remove_dir_all(&project).unwrap();
    }
}

/// The materializations the project itself does not use, against dbt too:
/// a table, and an incremental delete+insert, over two days.
#[test]
fn tables_and_delete_insert_match_dbt_too() {
    let p = Pipeline::new();
    let project = project_copy(&p);
    std::fs::write(project.join(CAMPAIGN_FILLS.0), CAMPAIGN_FILLS.1).unwrap();
    std::fs::write(
        project.join("models/marts/mart_daily_contacts.sql"),
        "{{ config(incremental_strategy='delete+insert', unique_key='signup_day') }}\n\
         select signup_day, count(*) as contacts, max(upload_date) as upload_date\n\
         from {{ ref('stg_contacts') }}\n\
         group by signup_day\n",
    )
    .unwrap();
    let native = p.warehouse_db();
    let reference = p.dir.path().join("dbt.duckdb");
    for ds in &DAYS[..2] {
        deliver(&p, ds, &[native.as_path(), reference.as_path()]);
        let expected = dbt_build(&p, &project, &reference, ds);
        let (metrics, outcomes) = native_build(&p, &project, &native, ds);
        assert_eq!(outcomes, expected, "{ds}");
        let mut marts = MARTS.to_vec();
        marts.extend(["mart_campaign_fills", "mart_daily_contacts"]);
        assert_eq!(
            differences_in(&native, &reference, &marts),
            Vec::<String>::new(),
            "{ds}"
        );
        let daily = metrics["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["model"] == "mart_daily_contacts")
            .unwrap();
        assert_eq!(daily["materialized"], "incremental", "{daily}");
    }
    let days = p.count("SELECT COUNT(DISTINCT SIGNUP_DAY) FROM MART.MART_DAILY_CONTACTS");
    assert_eq!(days, 2, "one row per signup day, merged by delete+insert");
}
