//! Regression tests for the data-loss and retry defects of the reliability
//! review: each reproduces the original report on the embedded defaults.

mod common;

use common::{DS, Pipeline, parquet_rows};

fn lake_valid(p: &Pipeline, dataset: &str) -> std::path::PathBuf {
    p.slice_path(&p.lake(), "valid-data", dataset)
}

#[test]
fn a_lost_landing_slice_is_rebuilt_and_never_deletes_the_lake_copy() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    let published = std::fs::read(lake_valid(&p, "contacts")).unwrap();
    std::fs::remove_dir_all(p.landing().join("valid-data/contacts")).unwrap();

    // Upload first: the slice validate recorded is gone from the landing
    // area, the lake holds it with the recorded MD5, so nothing moves.
    let upload = p.ok(&["upload", "contacts", "--ds", DS], 0);
    assert_eq!(upload["status"], "already_uploaded", "{upload}");
    assert_eq!(
        std::fs::read(lake_valid(&p, "contacts")).unwrap(),
        published
    );

    // Reuse checks the recorded outputs: they are gone, so validate redoes
    // its work and writes the same slice again.
    let validate = p.ok(&["validate", "contacts", "--ds", DS], 0);
    assert_eq!(validate["reused"], false, "{validate}");
    let rebuilt = p.slice_path(&p.landing(), "valid-data", "contacts");
    assert_eq!(std::fs::read(rebuilt).unwrap(), published);
    let again = p.ok(&["validate", "contacts", "--ds", DS], 0);
    assert_eq!(again["reused"], true);
    let upload = p.ok(&["upload", "contacts", "--ds", DS], 0);
    assert_eq!(upload["status"], "already_uploaded");
    assert_eq!(
        std::fs::read(lake_valid(&p, "contacts")).unwrap(),
        published
    );
}

#[test]
fn a_changed_slice_is_not_reused() {
    let p = Pipeline::new();
    p.generate_all();
    p.ok(&["validate", "pages", "--ds", DS], 0);
    let slice = p.slice_path(&p.landing(), "valid-data", "pages");
    std::fs::write(&slice, b"not the slice validate wrote").unwrap();
    let m = p.ok(&["validate", "pages", "--ds", DS], 0);
    assert_eq!(m["reused"], false);
    assert_eq!(parquet_rows(&slice), 50);
}

#[test]
fn a_slice_missing_everywhere_is_not_deleted_but_reported() {
    let p = Pipeline::new();
    p.generate_all();
    p.ok(&["validate", "contacts", "--ds", DS], 0);
    std::fs::remove_file(p.slice_path(&p.landing(), "valid-data", "contacts")).unwrap();
    let run = p.run(&["upload", "contacts", "--ds", DS]);
    assert_eq!(run.code, 99, "{}", run.stdout);
    assert!(
        run.metrics["error"]
            .as_str()
            .unwrap()
            .contains("re-run validate"),
        "{}",
        run.metrics
    );
}

#[test]
fn a_rejected_redelivery_keeps_the_published_day_in_lake_and_warehouse() {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    let published = std::fs::read(lake_valid(&p, "pages")).unwrap();
    let loaded = p.count("SELECT COUNT(*) FROM RAW.PAGES");
    assert_eq!(loaded, 50);

    std::fs::write(p.raw_path("pages", "jsonl"), b"not json\n").unwrap();
    let validate = p.ok(&["validate", "pages", "--ds", DS], 65);
    assert_eq!(validate["status"], "rejected");
    let upload = p.ok(&["upload", "pages", "--ds", DS], 0);
    assert_eq!(upload["kept_previous_valid"], true, "{upload}");
    assert_eq!(std::fs::read(lake_valid(&p, "pages")).unwrap(), published);
    assert!(
        p.slice_path(&p.lake(), "quarantine-data", "pages").exists(),
        "the rejected file is published to the quarantine zone"
    );
    // The warehouse still holds the day that the lake still holds.
    let load = p.ok(&["load", "pages", "--ds", DS], 0);
    assert_eq!(load["status"], "already_loaded");
    assert_eq!(p.count("SELECT COUNT(*) FROM RAW.PAGES"), loaded);
}

#[test]
fn a_clean_revalidation_removes_the_old_quarantine_slice_from_the_lake() {
    let p = Pipeline::new();
    p.generate_all();
    for d in ["campaigns", "forms", "pages", "contacts"] {
        p.ok(&["validate", d, "--ds", DS], 0);
    }
    p.ok(&["upload", "contacts", "--ds", DS], 0);
    let lake_quarantine = p.slice_path(&p.lake(), "quarantine-data", "contacts");
    assert!(lake_quarantine.exists());
    p.ok(
        &[
            "generate",
            "contacts",
            "--ds",
            DS,
            "--defect-rate",
            "0",
            "--force",
        ],
        0,
    );
    let clean = p.ok(&["validate", "contacts", "--ds", DS], 0);
    assert_eq!(clean["status"], "validated");
    let upload = p.ok(&["upload", "contacts", "--ds", DS], 0);
    assert!(!lake_quarantine.exists(), "{upload}");
}

#[test]
fn validate_is_redone_when_a_referenced_file_changes() {
    let p = Pipeline::new();
    p.generate_all();
    for d in ["campaigns", "forms", "contacts"] {
        p.ok(&["validate", d, "--ds", DS], 0);
    }
    let first = p.ok(&["validate", "form_fills", "--ds", DS], 0);
    p.ok(
        &["generate", "contacts", "--ds", DS, "--seed", "7", "--force"],
        0,
    );
    let again = p.ok(
        &[
            "validate",
            "form_fills",
            "--ds",
            DS,
            "--max-invalid-ratio",
            "1",
        ],
        0,
    );
    assert_eq!(again["reused"], false, "{again}");
    // Every contact the fills reference is gone now.
    assert!(
        again["failed"]["foreign_key"].as_u64().unwrap()
            > first["failed"]["foreign_key"].as_u64().unwrap_or(0),
        "{again}"
    );
}

#[test]
fn a_new_pattern_is_reported_again_when_its_ds_is_revalidated() {
    let p = Pipeline::new();
    p.generate_all();
    let first = p.ok(&["validate", "contacts", "--ds", DS], 0);
    assert_eq!(first["has_failure_delta"], true);
    // A retry after a kill, reused or forced, still reports the patterns.
    let reused = p.ok(&["validate", "contacts", "--ds", DS], 0);
    assert_eq!(reused["reused"], true);
    assert_eq!(reused["new_signatures"], first["new_signatures"]);
    let forced = p.ok(&["validate", "contacts", "--ds", DS, "--force"], 0);
    assert_eq!(forced["new_signatures"], first["new_signatures"]);
    // Another ds with the same patterns: known.
    let next = "2025-05-26";
    p.ok(&["generate", "contacts", "--ds", next], 0);
    let other = p.ok(&["validate", "contacts", "--ds", next], 0);
    assert_eq!(other["has_failure_delta"], false, "{other}");
}

#[test]
fn no_temp_file_is_left_and_dead_writers_leftovers_are_cleaned() {
    let p = Pipeline::new();
    p.generate_all();
    let dir = p.landing().join(format!("raw-data/pages/ds={DS}"));
    let leftover = dir.join(format!(".pages_{DS}.jsonl.abc123.tmp"));
    std::fs::write(&leftover, b"half a file").unwrap();
    p.ok(&["generate", "pages", "--ds", DS, "--force"], 0);
    assert!(!leftover.exists());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [format!("pages_{DS}.jsonl")]);
}

#[test]
fn oversized_and_out_of_range_inputs_get_their_documented_codes() {
    let p = Pipeline::new();
    p.generate_all();
    let run = p.run(&["run", "--from", "0001-01-01", "--to", "9999-12-31"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = p.run(&["run", "--from", "1990-01-01", "--to", "2025-12-31"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("over the limit"), "{}", run.stderr);
    let run = p.run(&[
        "validate",
        "contacts",
        "--ds",
        DS,
        "--max-file-bytes",
        "1000",
    ]);
    assert_eq!(run.code, 65, "{}", run.stdout);
    let error = run.metrics["error"].as_str().unwrap();
    assert!(error.contains(&format!("contacts_{DS}.csv")), "{error}");
    assert!(error.contains("PIPELINE_MAX_FILE_BYTES"), "{error}");
}

/// An object whose MD5 metadata is SQL: `load` must neither trust it nor
/// paste it into a statement.
#[test]
fn object_metadata_never_reaches_sql() {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use common::servers::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server};

    let server = S3Server::start();
    let p = Pipeline::new();
    for d in common::dimensions() {
        for task in ["generate", "validate", "upload"] {
            let run = server.run(&p, &[task, d, "--ds", DS]);
            assert_eq!(run.code, 0, "{task} {d}: {}", run.stdout);
        }
    }
    let key = format!("valid-data/pages/ds={DS}/pages_{DS}.parquet");
    let hostile = "x',0,now()); DROP SCHEMA MART CASCADE; --";
    let bytes = std::fs::read(server.lake_dir().join(&key)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{}", server.port))
            .credentials_provider(Credentials::new(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
                None,
                None,
                "test",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
            .put_object()
            .bucket("lake")
            .key(&key)
            .metadata("content-md5", hostile)
            .body(bytes.clone().into())
            .send()
            .await
            .unwrap();
    });
    let load = server.run(&p, &["load", "pages", "--ds", DS]);
    assert_eq!(load.code, 0, "{}", load.stdout);
    let md5 = format!("{:x}", md5::compute(&bytes));
    assert_eq!(load.metrics["content_md5"], md5.as_str());
    let logged = server.run(
        &p,
        &["sql", "SELECT CONTENT_MD5, ROWS_LOADED FROM RAW.LOAD_LOG"],
    );
    assert_eq!(
        logged.metrics["rows"],
        serde_json::json!([[md5, "50"]]),
        "{}",
        logged.stdout
    );
    let schemas = server.run(
        &p,
        &[
            "sql",
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'MART'",
        ],
    );
    assert_eq!(schemas.metrics["rows"], serde_json::json!([["1"]]));
}
