//! The metadata database on a real PostgreSQL server, started here on
//! 127.0.0.1 from Debian's `postgresql` package (`.ci/run` installs it;
//! PG_BIN_DIR picks another installation): the same semantics as SQLite.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{DATASETS, DS, Pipeline, finish};

const PASSWORD: &str = "metadata-password-not-to-be-printed";

struct PgServer {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .filter(|d| d.join("initdb").exists())
        .expect("PostgreSQL not found: `bash .ci/run` installs Debian's postgresql")
}

/// PostgreSQL refuses to run as root; as root, run it as the `postgres`
/// user (setpriv execs, so the child is the server itself).
fn server_command(program: &str) -> Command {
    let path = bin_dir().join(program);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
            .arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

impl PgServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let status = Command::new("chmod")
            .arg("777")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let initdb = server_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "pipeline", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = server_command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let server = Self {
            _dir: dir,
            port,
            child,
        };
        // Accepting connections can lag the port opening.
        while postgres::Client::connect(&server.url("postgres"), postgres::NoTls).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://pipeline:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }

    fn pipeline_command(&self, p: &Pipeline, args: &[&str]) -> Command {
        let mut cmd = p.command(args);
        cmd.env("PIPELINE_METADATA_URL", self.url("postgres"));
        cmd
    }

    fn ok(&self, p: &Pipeline, args: &[&str], code: i32) -> serde_json::Value {
        let run = finish(self.pipeline_command(p, args).output().unwrap());
        assert_eq!(run.code, code, "{args:?}\n{}", run.stderr);
        assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
        run.metrics
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_rerun_on_postgres_metadata_reuses_everything_and_alerts_nothing() {
    let pg = PgServer::start();
    let p = Pipeline::new();
    let first = pg.ok(&p, &["run", "--ds", DS], 0);
    assert_eq!(first["has_failure_delta"], true, "defects are new");
    assert_eq!(pg.count("SELECT count(*) FROM stage_log"), 12);
    assert_eq!(pg.count("SELECT max(version) FROM schema_version"), 1);

    let second = pg.ok(&p, &["run", "--ds", DS], 0);
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
    let next = pg.ok(&p, &["run", "--ds", "2025-05-26"], 0);
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
    for d in DATASETS {
        pg.ok(&p, &["generate", d, "--ds", DS], 0);
    }
    let children: Vec<_> = DATASETS
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
