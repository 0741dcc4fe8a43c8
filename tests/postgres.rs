//! The metadata database on a real PostgreSQL server, started here on
//! 127.0.0.1 from Debian's `postgresql` package (`.ci/run` installs it;
//! PG_BIN_DIR picks another installation): the same semantics as SQLite.

mod common;

use std::process::Stdio;

use common::servers::{PG_PASSWORD as PASSWORD, PgServer};
use common::{DS, Pipeline, finish};

#[test]
fn a_rerun_on_postgres_metadata_reuses_everything_and_alerts_nothing() {
    let pg = PgServer::start();
    let p = Pipeline::new();
    // As Airflow runs it: each DAG run has its own id.
    let in_run = |run_id: &str, ds: &str| {
        let out = pg
            .pipeline_command(&p, &["run", "--ds", ds])
            .env("AIRFLOW_CTX_DAG_RUN_ID", run_id)
            .output()
            .unwrap();
        let run = finish(out);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.metrics
    };
    let first = in_run("run-1", DS);
    assert_eq!(first["has_failure_delta"], true, "defects are new");
    assert_eq!(pg.count("SELECT count(*) FROM stage_log"), 12);
    assert_eq!(pg.count("SELECT max(version) FROM schema_version"), 2);

    // A retry of the same DAG run (its first attempt killed before the
    // alert went out) reports the patterns again.
    let retry = in_run("run-1", DS);
    assert_eq!(retry["new_signatures"], first["new_signatures"]);

    let second = in_run("run-2", DS);
    assert_eq!(second["has_failure_delta"], false);
    for task in second["tasks"].as_array().unwrap() {
        match task["task"].as_str().unwrap() {
            "generate" | "validate" => assert_eq!(task["reused"], true, "{task}"),
            "upload" => assert_eq!(task["status"], "already_uploaded"),
            _ => {}
        }
    }
    assert_eq!(
        pg.count("SELECT count(*) FROM dq_signature WHERE occurrences <> 1"),
        0
    );
    assert_eq!(
        pg.count("SELECT count(DISTINCT object_key) FROM file_metadata"),
        pg.count("SELECT count(*) FROM file_metadata")
    );

    // The same patterns on the next day are not new.
    let next = in_run("run-3", "2025-05-26");
    assert_eq!(next["has_failure_delta"], false);
    assert!(pg.count("SELECT count(*) FROM dq_signature WHERE occurrences = 2") > 0);
    let spans = pg.count(
        "SELECT count(*) FROM dq_signature \
         WHERE first_seen_ds = '2025-05-25' AND last_seen_ds = '2025-05-26'",
    );
    assert!(spans > 0);
}

#[test]
fn six_validates_in_parallel_share_one_postgres_database() {
    let pg = PgServer::start();
    let p = Pipeline::new();
    for d in common::datasets() {
        pg.ok(&p, &["generate", d, "--ds", DS], 0);
    }
    let children: Vec<_> = common::datasets()
        .iter()
        .map(|d| {
            pg.pipeline_command(&p, &["validate", d, "--ds", DS])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut new_signatures = 0;
    for child in children {
        let run = finish(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{}", run.stderr);
        new_signatures += run.metrics["new_signatures"]
            .as_array()
            .map_or(0, |s| s.len());
    }
    assert_eq!(pg.count("SELECT count(DISTINCT dataset) FROM dq_checks"), 6);
    assert_eq!(
        pg.count("SELECT count(*) FROM stage_log WHERE stage = 'validate'"),
        6
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM dq_signature"),
        new_signatures as i64,
        "every signature was new exactly once"
    );
}

#[test]
fn a_missing_database_is_a_configuration_error_and_a_dead_server_is_transient() {
    let pg = PgServer::start();
    let p = Pipeline::new();
    let run = finish(
        p.command(&["generate", "forms", "--ds", DS])
            .env("PIPELINE_METADATA_URL", pg.url("no_such_database"))
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));

    let url = pg.url("postgres");
    drop(pg);
    let run = finish(
        p.command(&["generate", "forms", "--ds", DS])
            .env("PIPELINE_METADATA_URL", &url)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 75, "{}", run.stderr);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}
