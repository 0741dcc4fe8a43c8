//! Contracts are configuration: with PIPELINE_CONTRACTS a seventh dataset is
//! validated, published and loaded, a loosened rule changes what validate
//! quarantines, and a malformed contract is a configuration error naming
//! the file, the line and the field. No rebuild in between.

mod common;

use std::path::{Path, PathBuf};

use common::{DS, Pipeline, Run};

fn error_of(run: &Run) -> &str {
    run.metrics["error"].as_str().unwrap_or_default()
}

/// `validate DATASET` under `contracts`, tolerating `max_invalid_ratio`.
fn validate_with(p: &Pipeline, contracts: &Path, dataset: &str, max_invalid_ratio: &str) -> Run {
    let args = [
        "validate",
        dataset,
        "--ds",
        DS,
        "--max-invalid-ratio",
        max_invalid_ratio,
    ];
    run_with(p, contracts, &args)
}

/// The contracts of one test, in the pipeline's temp dir.
fn contracts(p: &Pipeline, name: &str, yaml: &str) -> PathBuf {
    let path = p.dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

fn run_with(p: &Pipeline, contracts: &Path, args: &[&str]) -> Run {
    common::finish(
        p.command(args)
            .env("PIPELINE_CONTRACTS", contracts)
            .output()
            .unwrap(),
    )
}

/// A seventh dataset's contract.
fn webinars() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/contracts/webinars.yml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_seventh_dataset_is_validated_published_and_loaded() {
    let p = Pipeline::new();
    let yaml = contracts(&p, "webinars.yml", &webinars());
    for d in common::datasets() {
        run_with(&p, &yaml, &["generate", d, "--ds", DS]);
    }
    let generate = run_with(&p, &yaml, &["generate", "webinars", "--ds", DS]);
    assert_eq!(generate.code, 2, "{}", generate.stdout);
    assert!(error_of(&generate).contains("no synthetic generator"));

    // Three rows: one clean, one with a campaign that does not exist, one
    // with a negative attendance.
    let raw = p
        .landing()
        .join(format!("raw-data/webinars/ds={DS}/webinars_{DS}.csv"));
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    std::fs::write(
        &raw,
        format!(
            "webinar_id,campaign_id,attendees,held_on\n\
             w1,cmp_001,40,{DS}\nw2,cmp_999,12,{DS}\nw3,cmp_002,-1,{DS}\n"
        ),
    )
    .unwrap();
    let validate = validate_with(&p, &yaml, "webinars", "0.9");
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    assert_eq!(validate.metrics["status"], "quarantined");
    assert_eq!(validate.metrics["rows_out"], 1);
    assert_eq!(validate.metrics["failed"]["foreign_key"], 1);
    assert_eq!(validate.metrics["failed"]["range"], 1);

    let upload = run_with(&p, &yaml, &["upload", "webinars", "--ds", DS]);
    assert_eq!(upload.metrics["status"], "uploaded", "{}", upload.stderr);
    let load = run_with(&p, &yaml, &["load", "webinars", "--ds", DS]);
    assert_eq!(load.metrics["status"], "loaded", "{}", load.stderr);
    let rows = run_with(
        &p,
        &yaml,
        &["sql", "SELECT WEBINAR_ID, ATTENDEES, DS FROM RAW.WEBINARS"],
    );
    assert_eq!(
        rows.stdout.lines().next(),
        Some(format!("w1\t40\t{DS}").as_str())
    );

    let describe = run_with(&p, &yaml, &["describe"]);
    let interface: serde_json::Value = serde_json::from_str(&describe.stdout).unwrap();
    let webinars = interface["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "webinars")
        .expect("describe lists the seventh dataset");
    assert_eq!(webinars["references"], serde_json::json!(["campaigns"]));

    // Without the contract the dataset is unknown: a usage error.
    let unknown = p.run(&["validate", "webinars", "--ds", DS]);
    assert_eq!(unknown.code, 2);
    assert!(error_of(&unknown).contains("the contracts declare"));
}

/// The forms contract with `form_type`'s accepted values gone.
fn loose_forms() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/contracts/forms_loose.yml")
}

/// A forms contract: `meta` after its format and key, `form_type`'s tests.
fn forms_contract(meta: &str, form_type_tests: &str) -> String {
    format!(
        "
version: 2
sources:
  - name: raw
    tables:
      - name: forms
        meta: {{format: jsonl, key: form_id{meta}}}
        columns:
          - name: form_id
            data_type: text
            data_tests: [not_null, unique]
          - name: form_type
            data_type: text
            data_tests: {form_type_tests}
"
    )
}

#[test]
fn a_loosened_rule_changes_what_validate_accepts() {
    let p = Pipeline::new();
    p.ok(&["generate", "forms", "--ds", DS], 0);
    let raw = p.raw_path("forms", "jsonl");
    std::fs::write(
        &raw,
        "{\"form_id\":\"form_001\",\"form_type\":\"Partner Portal\"}\n\
         {\"form_id\":\"form_002\",\"form_type\":\"contact_us\"}\n",
    )
    .unwrap();
    let strict = p.ok(
        &[
            "validate",
            "forms",
            "--ds",
            DS,
            "--max-invalid-ratio",
            "0.9",
        ],
        0,
    );
    assert_eq!(strict["failed"]["accepted_values"], 1);

    let loose = run_with(&p, &loose_forms(), &["validate", "forms", "--ds", DS]);
    assert_eq!(loose.code, 0, "{}", loose.stderr);
    assert_eq!(loose.metrics["status"], "validated");
    assert_eq!(loose.metrics["rows_out"], 2);
}

#[test]
fn a_column_added_to_a_contract_is_checked_and_loaded() {
    let p = Pipeline::new();
    let raw = p
        .landing()
        .join(format!("raw-data/campaigns/ds={DS}/campaigns_{DS}.jsonl"));
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    std::fs::write(
        &raw,
        "{\"campaign_id\":\"cmp_001\",\"campaign_name\":\"Spring\",\"channel\":\"Email\"}\n\
         {\"campaign_id\":\"cmp_002\",\"campaign_name\":\"Summer\",\"channel\":\"Billboard\"}\n",
    )
    .unwrap();
    // The embedded contract has no `channel`: the file is rejected.
    let before = p.run(&["validate", "campaigns", "--ds", DS]);
    assert_eq!(before.code, 65);
    assert!(
        error_of(&before).contains("extra=[channel]"),
        "{}",
        error_of(&before)
    );

    let yaml = contracts(
        &p,
        "campaigns.yml",
        "
version: 2
sources:
  - name: raw
    tables:
      - name: campaigns
        meta: {format: jsonl, key: campaign_id}
        columns:
          - name: campaign_id
            data_type: text
            data_tests: [not_null, unique]
          - name: campaign_name
            data_type: text
            data_tests: [not_null]
          - name: channel
            data_type: text
            data_tests:
              - not_null
              - matches_pattern: {pattern: '^(Paid Search|LinkedIn|Email)$'}
",
    );
    let after = validate_with(&p, &yaml, "campaigns", "0.5");
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert_eq!(after.metrics["failed"]["pattern"], 1);
    assert_eq!(after.metrics["rows_out"], 1);
    run_with(&p, &yaml, &["upload", "campaigns", "--ds", DS]);
    let load = run_with(&p, &yaml, &["load", "campaigns", "--ds", DS]);
    assert_eq!(load.metrics["status"], "loaded", "{}", load.stderr);
    let channel = run_with(&p, &yaml, &["sql", "SELECT CHANNEL FROM RAW.CAMPAIGNS"]);
    assert_eq!(channel.stdout.lines().next(), Some("Email"));

    let bad = contracts(
        &p,
        "bad.yml",
        &std::fs::read_to_string(&yaml)
            .unwrap()
            .replace("$'}", "('}"),
    );
    let run = run_with(&p, &bad, &["validate", "campaigns", "--ds", DS]);
    assert_eq!(run.code, 78);
    assert!(
        error_of(&run).contains("matches_pattern.pattern"),
        "{}",
        error_of(&run)
    );
}

#[test]
fn freshness_is_judged_in_the_declared_time_zone() {
    let p = Pipeline::new();
    let contract = |timezone: &str| {
        format!(
            "
version: 2
sources:
  - name: raw
    tables:
      - name: signups
        meta: {{format: csv, key: signup_id, date_column: signed_up_at, timezone: {timezone}}}
        columns:
          - name: signup_id
            data_type: text
            data_tests: [not_null, unique]
          - name: signed_up_at
            data_type: timestamp
            data_tests: [not_null]
"
        )
    };
    let raw = p
        .landing()
        .join(format!("raw-data/signups/ds={DS}/signups_{DS}.csv"));
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    // In Berlin (UTC+2 in May): 01:30 on the ds, 01:30 the day after, noon.
    std::fs::write(
        &raw,
        "signup_id,signed_up_at\n\
         a,2025-05-24T23:30:00Z\n\
         b,2025-05-25T23:30:00Z\n\
         c,2025-05-25T12:00:00+02:00\n",
    )
    .unwrap();
    let berlin = contracts(&p, "berlin.yml", &contract("Europe/Berlin"));
    let run = validate_with(&p, &berlin, "signups", "0.5");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.metrics["failed"]["freshness"], 1);
    assert_eq!(
        run.metrics["failures"][0]["rule"],
        "date in Europe/Berlin equals ds"
    );
    assert_eq!(
        run.metrics["failures"][0]["sample_keys"],
        serde_json::json!(["b"])
    );

    let utc = contracts(&p, "utc.yml", &contract("UTC"));
    let run = validate_with(&p, &utc, "signups", "0.5");
    assert_eq!(
        run.metrics["failures"][0]["sample_keys"],
        serde_json::json!(["a"])
    );

    let bad = contracts(&p, "bad.yml", &contract("Mars/Olympus"));
    let run = run_with(&p, &bad, &["validate", "signups", "--ds", DS]);
    assert_eq!(run.code, 78);
    assert!(
        error_of(&run).contains("meta.timezone"),
        "{}",
        error_of(&run)
    );
}

/// Forms whose `form_type` accepted values carry `config`.
fn forms_with_config(config: &str) -> String {
    let tests = format!(
        "\n              - accepted_values:\n                  values: [contact_us, demo_request]\n                  config: {config}"
    );
    forms_contract("", &tests)
}

#[test]
fn severity_and_thresholds_decide_rows_and_files() {
    let p = Pipeline::new();
    p.ok(&["generate", "forms", "--ds", DS], 0);
    let rows: String = (1..=10)
        .map(|i| {
            let kind = if i <= 3 {
                "Partner Portal"
            } else {
                "contact_us"
            };
            format!("{{\"form_id\":\"form_{i:03}\",\"form_type\":\"{kind}\"}}\n")
        })
        .collect();
    std::fs::write(p.raw_path("forms", "jsonl"), rows).unwrap();

    // warn: the three rows are reported and kept.
    let warn = contracts(&p, "warn.yml", &forms_with_config("{severity: warn}"));
    let run = run_with(&p, &warn, &["validate", "forms", "--ds", DS]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.metrics["status"], "validated");
    assert_eq!(run.metrics["rows_out"], 10);
    assert_eq!(run.metrics["failed"]["accepted_values"], 3);
    assert_eq!(
        run.metrics["warnings"],
        serde_json::json!(["accepted_values:form_type"])
    );
    assert_eq!(run.metrics["failures"][0]["severity"], "warn");

    // error (the default) with a high max-invalid-ratio: quarantined.
    let error = contracts(&p, "error.yml", &forms_with_config("{warn_if: \"> 5\"}"));
    let run = validate_with(&p, &error, "forms", "0.5");
    assert_eq!(run.metrics["status"], "quarantined", "{}", run.stderr);
    assert_eq!(
        (
            run.metrics["rows_out"].as_u64(),
            run.metrics["invalid_rows"].as_u64()
        ),
        (Some(7), Some(3))
    );
    assert!(
        run.metrics.get("warnings").is_none(),
        "3 rows do not meet > 5"
    );

    // error_if on a share: 30% of the rows meet ">= 25%", the file is rejected.
    let strict = contracts(
        &p,
        "strict.yml",
        &forms_with_config("{error_if: \">= 25%\"}"),
    );
    let run = validate_with(&p, &strict, "forms", "0.9");
    assert_eq!(run.code, 65, "{}", run.stderr);
    let error = error_of(&run);
    assert!(
        error.contains("accepted_values:form_type error_if >= 25%"),
        "{error}"
    );
    assert_eq!(
        run.metrics["invalid_rows"], 10,
        "a rejected file is quarantined whole"
    );
}

/// Forms with a volume band against the previous ds.
fn forms_with_volume(volume: &str) -> String {
    forms_contract(&format!(", volume: {volume}"), "[]")
}

#[test]
fn volume_is_reconciled_with_the_previous_ds() {
    let p = Pipeline::new();
    let write = |ds: &str, rows: usize| {
        let path = p
            .landing()
            .join(format!("raw-data/forms/ds={ds}/forms_{ds}.jsonl"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let lines: String = (0..rows)
            .map(|i| format!("{{\"form_id\":\"f{i}\",\"form_type\":\"contact_us\"}}\n"))
            .collect();
        std::fs::write(path, lines).unwrap();
    };
    write("2025-05-25", 10);
    write("2025-05-26", 5);
    let warn = contracts(&p, "warn.yml", &forms_with_volume("{min_ratio: 1}"));
    let first = run_with(&p, &warn, &["validate", "forms", "--ds", "2025-05-25"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.metrics.get("volume").is_none(),
        "no previous ds to compare with"
    );

    let second = run_with(&p, &warn, &["validate", "forms", "--ds", "2025-05-26"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let volume = &second.metrics["volume"];
    assert_eq!(
        (volume["previous_rows"].as_u64(), volume["rows"].as_u64()),
        (Some(10), Some(5))
    );
    assert_eq!(volume["within"], false);
    assert_eq!(volume["expected"], "at least 1x of the previous ds");
    assert_eq!(second.metrics["warnings"], serde_json::json!(["volume"]));
    assert_eq!(second.metrics["rows_out"], 5, "a warning keeps the rows");

    let error = contracts(
        &p,
        "error.yml",
        &forms_with_volume("{min_ratio: 0.8, max_ratio: 2, severity: error}"),
    );
    let rejected = run_with(&p, &error, &["validate", "forms", "--ds", "2025-05-26"]);
    assert_eq!(rejected.code, 65, "{}", rejected.stderr);
    let message = error_of(&rejected);
    assert!(
        message.contains("volume 5 rows, expected 0.8x to 2x of the previous ds"),
        "{message}"
    );
    assert_eq!(rejected.metrics["failed"]["volume"], 1);

    write("2025-05-26", 12);
    let within = run_with(&p, &error, &["validate", "forms", "--ds", "2025-05-26"]);
    assert_eq!(within.code, 0, "{}", within.stderr);
    assert_eq!(within.metrics["volume"]["within"], true);
}

#[test]
fn a_malformed_contract_is_a_configuration_error_naming_file_line_and_field() {
    let p = Pipeline::new();
    let yaml = contracts(
        &p,
        "broken.yml",
        &webinars().replace("data_type: integer", "data_type: int"),
    );
    let run = run_with(&p, &yaml, &["validate", "contacts", "--ds", DS]);
    assert_eq!(run.code, 78, "{}", run.stderr);
    let error = error_of(&run);
    assert!(error.contains("broken.yml"), "{error}");
    assert!(
        error.contains("line 20") && error.contains("data_type"),
        "{error}"
    );

    let missing = p.dir.path().join("no-such-contracts.yml");
    let run = run_with(&p, &missing, &["validate", "contacts", "--ds", DS]);
    assert_eq!(run.code, 78);
    assert!(error_of(&run).contains("PIPELINE_CONTRACTS"));
}
