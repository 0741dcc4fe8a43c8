//! Secrets (issue 11): distinctive values in every credential variable and
//! URL never appear in `--help`, stdout, stderr (debug logs), the XCom file
//! or the metrics error, whatever fails; a `user:password@` in a URL is
//! shown as `user:***@`. Every dependency points at a closed port, so the
//! tasks fail; they must fail with a documented exit code.
//! SECRETS_VERBOSE=1 prints every task's exit code and error.

mod common;

use std::path::Path;

use common::{DS, Pipeline, Run};

const PG_PASSWORD: &str = "Secret1PgPassw0rdQz";
const AWS_SECRET: &str = "Secret2AwsSecretKeyQz";
const AWS_TOKEN: &str = "Secret3AwsSessionTokenQz";
const SF_PASSWORD: &str = "Secret4SnowflakePasswordQz";
const SF_PASSPHRASE: &str = "Secret5KeyPassphraseQz";
const WAREHOUSE_URL_PASSWORD: &str = "Secret6WarehouseUrlQz";
const SF_PRIVATE_KEY_BODY: &str = "Secret7PrivateKeyBodyQz";
const LAKE_URL_PASSWORD: &str = "Secret8LakeUrlQz";

const SECRETS: [&str; 8] = [
    PG_PASSWORD,
    AWS_SECRET,
    AWS_TOKEN,
    SF_PASSWORD,
    SF_PASSPHRASE,
    WAREHOUSE_URL_PASSWORD,
    SF_PRIVATE_KEY_BODY,
    LAKE_URL_PASSWORD,
];

const SUBCOMMANDS: [&str; 8] = [
    "generate",
    "validate",
    "upload",
    "load",
    "transform",
    "setup",
    "sql",
    "run",
];

/// Exit codes of the contract (README, `--help`); 1 is a bug.
const DOCUMENTED: [i32; 6] = [0, 2, 65, 75, 78, 99];

fn task_args(task: &str) -> Vec<&'static str> {
    match task {
        "generate" => vec!["generate", "campaigns", "--ds", DS],
        "validate" => vec!["validate", "campaigns", "--ds", DS],
        "upload" => vec!["upload", "campaigns", "--ds", DS],
        "load" => vec!["load", "campaigns", "--ds", DS],
        "transform" => vec!["transform", "--ds", DS],
        "setup" => vec!["setup"],
        "sql" => vec!["sql", "SELECT 1"],
        "run" => vec!["run", "--ds", DS],
        other => panic!("unknown task {other}"),
    }
}

fn metadata_url() -> String {
    format!("postgres://user:{PG_PASSWORD}@127.0.0.1:1/db")
}

/// Credentials that every variant carries.
fn credentials() -> Vec<(&'static str, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "AKIDPIPELINETEST"),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("AWS_SESSION_TOKEN", AWS_TOKEN),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
        ("PIPELINE_S3_MAX_ATTEMPTS", "2"),
        ("SNOWFLAKE_ACCOUNT", "acme-test"),
        ("SNOWFLAKE_USER", "pipeline_user"),
        ("SNOWFLAKE_PASSWORD", SF_PASSWORD),
        ("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", SF_PASSPHRASE),
        ("PIPELINE_LOG", "debug"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// One way of configuring the pipeline with secrets, and which tasks must
/// fail (75 or 78) under it; the others need only a documented code.
struct Variant {
    name: &'static str,
    env: Vec<(&'static str, String)>,
    remove: Vec<&'static str>,
    must_fail: &'static [&'static str],
    /// Publish campaigns to the local lake first (with the default
    /// settings), so that load reaches the warehouse.
    prepare_lake: bool,
}

fn variants() -> Vec<Variant> {
    let s3 = |v: &mut Vec<(&'static str, String)>| {
        v.push(("PIPELINE_LANDING_URL", "s3://landing-bucket/raw".into()));
        v.push(("PIPELINE_LAKE_URL", "s3://lake-bucket/lake".into()));
    };
    let snowflake = |v: &mut Vec<(&'static str, String)>| {
        v.push((
            "PIPELINE_WAREHOUSE_URL",
            "snowflake+http://127.0.0.1:1".into(),
        ));
    };
    let mut everything = credentials();
    s3(&mut everything);
    snowflake(&mut everything);
    everything.push(("PIPELINE_METADATA_URL", metadata_url()));

    let mut object_store = credentials();
    s3(&mut object_store);
    snowflake(&mut object_store);

    let mut warehouse_url = credentials();
    warehouse_url.push((
        "PIPELINE_WAREHOUSE_URL",
        format!("snowflake+http://user:{WAREHOUSE_URL_PASSWORD}@127.0.0.1:1"),
    ));

    let mut key_pair = credentials();
    snowflake(&mut key_pair);
    key_pair.push((
        "SNOWFLAKE_PRIVATE_KEY",
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{SF_PRIVATE_KEY_BODY}AAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ),
    ));

    let mut bad_metadata_url = credentials();
    bad_metadata_url.push((
        "PIPELINE_METADATA_URL",
        format!("postgres://user:{PG_PASSWORD}@127.0.0.1:notaport/db"),
    ));

    let mut bad_lake_url = credentials();
    bad_lake_url.push((
        "PIPELINE_LAKE_URL",
        format!("s3://user:{LAKE_URL_PASSWORD}@lake-bucket/lake"),
    ));

    let mut bad_warehouse_url = credentials();
    bad_warehouse_url.push((
        "PIPELINE_WAREHOUSE_URL",
        format!("mssql://user:{WAREHOUSE_URL_PASSWORD}@127.0.0.1:1/db"),
    ));

    vec![
        Variant {
            name: "every dependency closed",
            env: everything,
            remove: vec![],
            must_fail: &SUBCOMMANDS,
            prepare_lake: false,
        },
        Variant {
            name: "S3 closed, local metadata",
            env: object_store,
            remove: vec![],
            must_fail: &["generate", "validate", "setup", "sql", "run"],
            prepare_lake: false,
        },
        Variant {
            name: "password in the warehouse URL",
            env: warehouse_url,
            remove: vec![],
            must_fail: &["load", "setup", "sql", "run"],
            prepare_lake: true,
        },
        Variant {
            name: "Snowflake key pair with a passphrase",
            env: key_pair,
            remove: vec!["SNOWFLAKE_PASSWORD"],
            must_fail: &["load", "setup", "sql"],
            prepare_lake: true,
        },
        Variant {
            name: "malformed metadata URL",
            env: bad_metadata_url,
            remove: vec![],
            must_fail: &SUBCOMMANDS,
            prepare_lake: false,
        },
        Variant {
            name: "password in the lake URL",
            env: bad_lake_url,
            remove: vec![],
            must_fail: &SUBCOMMANDS,
            prepare_lake: false,
        },
        Variant {
            name: "unsupported warehouse URL with a password",
            env: bad_warehouse_url,
            remove: vec![],
            must_fail: &["setup", "sql"],
            prepare_lake: false,
        },
    ]
}

/// A `user:PASSWORD@` left in `text`, if any.
fn unredacted_userinfo(text: &str) -> Option<String> {
    for (i, _) in text.match_indices("user:") {
        let rest = &text[i + "user:".len()..];
        let Some(at) = rest.find('@') else { continue };
        let password = &rest[..at];
        let plausible = !password.is_empty()
            && !password.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '\\'));
        if plausible && password != "***" {
            return Some(text[i..i + "user:".len() + at + 1].to_string());
        }
    }
    None
}

/// Every problem with one output: a secret in it, or an unredacted URL.
fn leaks(what: &str, text: &str) -> Vec<String> {
    let mut out: Vec<String> = SECRETS
        .iter()
        .filter(|s| text.contains(*s))
        .map(|s| format!("{what} contains the secret {s:?}"))
        .collect();
    if let Some(userinfo) = unredacted_userinfo(text) {
        out.push(format!("{what} shows {userinfo:?} unredacted"));
    }
    out
}

#[test]
fn help_never_shows_secret_values() {
    let p = Pipeline::new();
    let mut helps: Vec<Vec<&str>> = vec![vec!["--help"], vec!["-h"]];
    for task in SUBCOMMANDS {
        helps.push(vec![task, "--help"]);
        helps.push(vec![task, "-h"]);
    }
    let mut failures = Vec::new();
    for variant in variants() {
        for args in &helps {
            let mut cmd = p.command(args);
            cmd.envs(variant.env.iter().map(|(k, v)| (k, v)));
            let run = common::finish(cmd.output().unwrap());
            let at = format!("[{}] {args:?}", variant.name);
            if run.code != 0 {
                failures.push(format!("{at}: exit {}", run.code));
            }
            for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                failures.extend(leaks(what, text).into_iter().map(|l| format!("{at}: {l}")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "secrets in --help:\n{}",
        failures.join("\n")
    );
}

struct Outcome {
    variant: &'static str,
    task: &'static str,
    run: Run,
    xcom: Option<String>,
}

fn run_task(variant: &Variant, task: &'static str) -> Outcome {
    let p = Pipeline::new();
    if variant.prepare_lake {
        for step in ["generate", "validate", "upload"] {
            p.ok(&[step, "campaigns", "--ds", DS], 0);
        }
    }
    let xcom = p.dir.path().join("xcom").join("return.json");
    let mut cmd = p.command(&task_args(task));
    cmd.envs(variant.env.iter().map(|(k, v)| (k, v)))
        .env("PIPELINE_XCOM_FILE", &xcom);
    for key in &variant.remove {
        cmd.env_remove(key);
    }
    let run = common::finish(cmd.output().unwrap());
    Outcome {
        variant: variant.name,
        task,
        run,
        xcom: read_if_exists(&xcom),
    }
}

fn read_if_exists(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn check(outcome: &Outcome, must_fail: bool) -> Vec<String> {
    let Outcome {
        variant,
        task,
        run,
        xcom,
    } = outcome;
    let error = run.metrics["error"].as_str().unwrap_or_default();
    let mut problems = Vec::new();
    let expected: &[i32] = if must_fail { &[75, 78] } else { &DOCUMENTED };
    if !expected.contains(&run.code) {
        problems.push(format!(
            "exit {}, expected one of {expected:?}; error {error:?}",
            run.code
        ));
    }
    if run.stderr.contains("panicked") || run.stderr.contains("\"panic\"") {
        problems.push("panicked".into());
    }
    if !run.metrics.is_object() {
        problems.push("no metrics line on stdout".into());
    }
    if error.contains('\n') {
        problems.push(format!("error is not one line: {error:?}"));
    }
    // Where the metadata URL is named, it is named redacted.
    for (i, _) in error.match_indices("postgres://user") {
        if !error[i..].starts_with("postgres://user:***@") {
            problems.push(format!("metadata URL not redacted in {error:?}"));
        }
    }
    match xcom {
        Some(xcom) => problems.extend(leaks("the XCom file", xcom)),
        None => problems.push("no XCom file written".into()),
    }
    problems.extend(leaks("stdout", &run.stdout));
    problems.extend(leaks("stderr", &run.stderr));
    problems.extend(leaks("the metrics error", error));
    problems
        .into_iter()
        .map(|p| format!("[{variant}] {task}: {p}"))
        .collect()
}

#[test]
fn failing_tasks_never_print_secrets() {
    let variants = variants();
    let jobs: Vec<(&Variant, &'static str)> = variants
        .iter()
        .flat_map(|v| SUBCOMMANDS.iter().map(move |t| (v, *t)))
        .collect();
    // Most of the time is spent waiting for retries against closed ports:
    // run several at once.
    let mut outcomes = Vec::new();
    for batch in jobs.chunks(8) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&(v, t)| scope.spawn(move || (v.must_fail.contains(&t), run_task(v, t))))
                .collect();
            outcomes.extend(handles.into_iter().map(|h| h.join().unwrap()));
        });
    }
    if std::env::var_os("SECRETS_VERBOSE").is_some() {
        for (_, o) in &outcomes {
            eprintln!(
                "[{}] {}: exit {} error {}",
                o.variant, o.task, o.run.code, o.run.metrics["error"]
            );
        }
    }
    let failures: Vec<String> = outcomes
        .iter()
        .flat_map(|(must_fail, outcome)| check(outcome, *must_fail))
        .collect();
    assert!(
        failures.is_empty(),
        "{} problems in {} task runs:\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}

#[test]
fn the_leak_detector_finds_leaks() {
    assert_eq!(
        leaks("x", &format!("postgres://user:{PG_PASSWORD}@h/db")).len(),
        2
    );
    assert!(leaks("x", "postgres://user:***@h/db, USER:PASSWORD@HOST").is_empty());
    assert!(unredacted_userinfo("snowflake+http://user:hunter2@h").is_some());
}
