//! The s3:// backend against a real S3-compatible server (s3s-fs) started
//! here on 127.0.0.1. `.ci/run` installs it; set S3S_FS_BIN to use another.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::servers::{S3_SECRET_KEY as SECRET_KEY, S3Server};
use common::{DS, Pipeline, finish, snapshot};

/// Object files under a bucket directory (s3s-fs keeps its bookkeeping in
/// dot-files at the root), keyed by path relative to `root`.
fn objects(root: &Path) -> Vec<(PathBuf, std::time::SystemTime, Vec<u8>)> {
    if !root.exists() {
        return Vec::new();
    }
    snapshot(root)
        .into_iter()
        .map(|(p, t, b)| (p.strip_prefix(root).unwrap().to_path_buf(), t, b))
        .collect()
}

/// Every object's bytes, but none of the report's, since it names
/// the lake it is in (file:// here, s3:// there).
fn contents(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    objects(root)
        .into_iter()
        .map(|(p, _, b)| match p.starts_with("reports") {
            true => (p, Vec::new()),
            false => (p, b),
        })
        .collect()
}

#[test]
fn run_on_s3_publishes_the_same_lake_as_on_files_and_a_rerun_puts_nothing() {
    let server = S3Server::start();
    let on_files = Pipeline::new();
    on_files.ok(&["run", "--ds", DS], 0);

    let on_s3 = Pipeline::new();
    let first = server.run(&on_s3, &["run", "--ds", DS]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        !on_s3.landing().exists() && !on_s3.lake().exists(),
        "nothing written locally"
    );

    let lake = contents(&server.bucket("lake"));
    assert_eq!(lake, contents(&on_files.lake()), "same keys, same bytes");
    assert_eq!(
        lake.len(),
        common::datasets().len() + 3 + 1,
        "6 valid slices, 3 quarantines, the report"
    );
    let landing = server.bucket("landing").join("marketing");
    assert_eq!(contents(&landing), contents(&on_files.landing()));

    let before = (objects(&landing), objects(&server.bucket("lake")));
    let second = server.run(&on_s3, &["run", "--ds", DS]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(before, (objects(&landing), objects(&server.bucket("lake"))));
    for task in second.metrics["tasks"].as_array().unwrap() {
        if task["task"] == "upload" {
            assert_eq!(task["status"], "already_uploaded");
        }
    }

    // Idempotency survives a fresh pod: a new metadata database, same lake.
    let fresh = Pipeline::new();
    for d in common::datasets() {
        let run = server.run(&fresh, &["upload", d, "--ds", DS]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.metrics["status"], "already_uploaded", "{d}");
    }
    assert_eq!(before.1, objects(&server.bucket("lake")));
}

/// Puts `bytes` in the local landing area as the pages valid slice, so that
/// `upload pages` publishes them to the S3 lake.
fn stage_big_slice(pipeline: &Pipeline, bytes: &[u8]) -> PathBuf {
    let path = pipeline.slice_path(&pipeline.landing(), "valid-data", "pages");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn upload_to_s3_lake(server: &S3Server, pipeline: &Pipeline, extra: &[(&str, &str)]) -> Child {
    let mut cmd = server.command(pipeline, &["upload", "pages", "--ds", DS]);
    cmd.env(
        "PIPELINE_LANDING_URL",
        format!("file://{}", pipeline.landing().display()),
    );
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// 105 MB of bytes that do not compress, deterministically.
fn big_payload() -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..105 * 1024 * 1024 / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

fn lake_object(server: &S3Server) -> PathBuf {
    server
        .bucket("lake")
        .join(format!("valid-data/pages/ds={DS}/pages_{DS}.parquet"))
}

/// Whether s3s-fs holds a multipart upload that was started and neither
/// completed nor aborted (it keeps one as a `.upload_id-*` file).
fn multipart_upload_open(server: &S3Server) -> bool {
    std::fs::read_dir(server.root_dir()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".upload_id-")
    })
}

#[test]
fn a_multipart_object_round_trips_and_an_interrupted_upload_leaves_nothing() {
    let mut server = S3Server::start();
    let pipeline = Pipeline::new();
    let payload = big_payload();
    stage_big_slice(&pipeline, &payload);

    // Server down before the upload: transient, and nothing written.
    server.stop();
    let run = finish(
        upload_to_s3_lake(&server, &pipeline, &[])
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(run.code, 75, "{}", run.stderr);
    server.resume();
    assert!(!lake_object(&server).exists());

    // Server killed during a multipart upload of small sequential parts.
    let slow = [
        ("PIPELINE_S3_PART_SIZE_MB", "5"),
        ("PIPELINE_S3_PARALLEL_PARTS", "1"),
    ];
    let child = upload_to_s3_lake(&server, &pipeline, &slow);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !multipart_upload_open(&server) {
        assert!(Instant::now() < deadline, "no part ever reached the server");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop();
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 75, "{}", run.stderr);
    assert!(!lake_object(&server).exists(), "no partial object");

    // After a restart the same command completes, byte for byte.
    server.resume();
    let run = finish(
        upload_to_s3_lake(&server, &pipeline, &[])
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.metrics["status"], "uploaded");
    assert!(std::fs::read(lake_object(&server)).unwrap() == payload);

    // Its MD5 metadata makes the next run a no-op, though a multipart ETag is not an MD5.
    let run = finish(
        upload_to_s3_lake(&server, &pipeline, &[])
            .wait_with_output()
            .unwrap(),
    );
    assert_eq!(run.metrics["status"], "already_uploaded", "{}", run.stderr);
}

#[test]
fn a_large_slice_is_hashed_while_it_is_sent_and_committed_only_under_its_own_md5() {
    let server = S3Server::start();
    let pipeline = Pipeline::new();
    let at_scale = |args: &[&str]| {
        let mut cmd = pipeline.command(args);
        cmd.env("SCALE_FACTOR", "1");
        let run = finish(cmd.output().unwrap());
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    };
    for d in ["campaigns", "pages", "contacts", "website_activity"] {
        at_scale(&["generate", d, "--ds", DS]);
    }
    at_scale(&["validate", "website_activity", "--ds", DS]);
    let slice = pipeline.slice_path(&pipeline.landing(), "valid-data", "website_activity");
    let key = format!("valid-data/website_activity/ds={DS}/website_activity_{DS}.parquet");
    let upload = || {
        let mut cmd = server.command(&pipeline, &["upload", "website_activity", "--ds", DS]);
        cmd.env(
            "PIPELINE_LANDING_URL",
            format!("file://{}", pipeline.landing().display()),
        )
        .env("PIPELINE_S3_MULTIPART_THRESHOLD_MB", "1");
        finish(cmd.output().unwrap())
    };
    let published_md5 = |run: &common::Run| {
        let objects = run.metrics["objects"].as_array().unwrap();
        let valid = objects.iter().find(|o| o["key"] == key.as_str()).unwrap();
        valid["md5"].as_str().unwrap().to_string()
    };
    let lake = server.lake_dir().join(&key);

    // The slice validate recorded: sent in parts while it is hashed.
    let bytes = std::fs::read(&slice).unwrap();
    assert!(
        bytes.len() > 1 << 20,
        "{} bytes: not multipart",
        bytes.len()
    );
    let run = upload();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.metrics["status"], "uploaded");
    let md5 = format!("{:x}", md5::compute(&bytes));
    assert_eq!(published_md5(&run), md5);
    assert!(std::fs::read(&lake).unwrap() == bytes);
    // Stored under its own MD5: the next upload finds it there.
    assert_eq!(upload().metrics["status"], "already_uploaded");

    // A slice that is not what validate recorded: the upload under the
    // recorded MD5 is aborted and the content sent again under its own.
    // (Of another size, or the lake object's size would make it hashed
    // first to compare.)
    let replaced: Vec<u8> = bytes.iter().rev().chain(b"more").copied().collect();
    std::fs::write(&slice, &replaced).unwrap();
    let run = upload();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("not the one validate recorded"),
        "{}",
        run.stderr
    );
    let md5 = format!("{:x}", md5::compute(&replaced));
    assert_eq!(published_md5(&run), md5);
    assert!(std::fs::read(&lake).unwrap() == replaced);
    // Stored under its own MD5: the next upload finds it there.
    assert_eq!(upload().metrics["status"], "already_uploaded");
    assert!(
        !multipart_upload_open(&server),
        "the aborted multipart upload is gone"
    );
}

fn assert_secret_hidden(run: &common::Run, xcom: &Path) {
    let xcom = std::fs::read_to_string(xcom).unwrap_or_default();
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("xcom", &xcom),
    ] {
        assert!(!text.contains(SECRET_KEY), "secret in {what}");
        assert!(!text.contains("wrong-secret"), "secret in {what}");
    }
}

#[test]
fn bad_credentials_and_a_missing_bucket_are_configuration_errors() {
    let server = S3Server::start();
    let pipeline = Pipeline::new();
    let xcom = pipeline.dir.path().join("return.json");

    let run = finish(
        server
            .command(&pipeline, &["generate", "forms", "--ds", DS])
            .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-9999")
            .env("PIPELINE_XCOM_FILE", &xcom)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(
        run.metrics["error"]
            .as_str()
            .unwrap()
            .contains("PIPELINE_LANDING_URL")
    );
    assert_secret_hidden(&run, &xcom);

    let ok = finish(
        server
            .command(&pipeline, &["generate", "forms", "--ds", DS])
            .env("PIPELINE_XCOM_FILE", &xcom)
            .output()
            .unwrap(),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_secret_hidden(&ok, &xcom);

    server.run(&pipeline, &["validate", "forms", "--ds", DS]);
    let run = finish(
        server
            .command(&pipeline, &["upload", "forms", "--ds", DS])
            .env("PIPELINE_LAKE_URL", "s3://no-such-bucket/lake")
            .env("PIPELINE_XCOM_FILE", &xcom)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 78, "{}", run.stderr);
    let error = run.metrics["error"].as_str().unwrap();
    assert!(
        error.contains("PIPELINE_LAKE_URL") && error.contains("does not exist"),
        "{error}"
    );
    assert_secret_hidden(&run, &xcom);
}
