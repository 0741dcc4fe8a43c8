//! Real servers the tests start on 127.0.0.1 and stop when dropped: a
//! PostgreSQL for the postgres:// metadata database (Debian's `postgresql`
//! package, which `.ci/run` installs; PG_BIN_DIR picks another installation),
//! an s3s-fs S3 server for s3:// areas (`.ci/run` installs it; S3S_FS_BIN
//! picks another binary) and a Snowflake emulator for snowflake+http://
//! (fakesnow in the virtualenv FAKESNOW_PYTHON names).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Pipeline, Run, finish};

/// The metadata user's password: it must never be printed.
pub const PG_PASSWORD: &str = "metadata-password-not-to-be-printed";

/// A free TCP port on 127.0.0.1 (the listener is closed again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server in a temp directory, user `pipeline`, trust auth.
pub struct PgServer {
    _dir: tempfile::TempDir,
    pub port: u16,
    pub child: Child,
}

pub fn pg_bin_dir() -> PathBuf {
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
fn pg_server_command(program: &str) -> Command {
    let path = pg_bin_dir().join(program);
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

/// `postgres` serving `dir/data` on 127.0.0.1:`port`, socket in `dir`.
fn spawn_postmaster(dir: &Path, port: u16) -> Child {
    pg_server_command("postgres")
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(dir)
        .args(["-c", "fsync=off", "-c", "max_connections=50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `kill ARGS...`; a process already gone is not an error here.
fn signal(args: &[&str]) {
    let _ = Command::new("kill").args(args).status();
}

/// Sends `sig` (`-STOP`, `-CONT`, `-KILL`) to the children of `pid`.
fn signal_children(sig: &str, pid: &str) {
    let _ = Command::new("pkill").args([sig, "-P", pid]).status();
}

impl PgServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let status = Command::new("chmod")
            .arg("777")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let initdb = pg_server_command("initdb")
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
        let port = free_port();
        let child = spawn_postmaster(dir.path(), port);
        let server = Self {
            _dir: dir,
            port,
            child,
        };
        server.wait_ready();
        server
    }

    /// Waits until the server accepts connections (the port opens first).
    fn wait_ready(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        while postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Freezes the postmaster and every backend (SIGSTOP): the port still
    /// accepts connections, nothing answers. `unpause` thaws them.
    pub fn pause(&self) {
        let pid = self.pid().to_string();
        signal(&["-STOP", &pid]);
        signal_children("-STOP", &pid);
    }

    /// Undoes `pause` (SIGCONT).
    pub fn unpause(&self) {
        let pid = self.pid().to_string();
        signal_children("-CONT", &pid);
        signal(&["-CONT", &pid]);
    }

    /// Kills the postmaster and its children at once (SIGKILL), as a
    /// crashed machine would; `restart` brings the same database back.
    pub fn crash(&mut self) {
        let pid = self.pid().to_string();
        signal(&["-STOP", &pid]);
        signal_children("-KILL", &pid);
        self.kill();
    }

    /// Starts the server again on the same port and data (after `crash`).
    pub fn restart(&mut self) {
        self.kill();
        let started = Instant::now();
        loop {
            self.child = spawn_postmaster(self._dir.path(), self.port);
            std::thread::sleep(Duration::from_millis(500));
            // Refuses to start while a killed backend still holds shared memory.
            match self.child.try_wait().unwrap() {
                None => break,
                Some(_) => assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "PostgreSQL did not restart"
                ),
            }
        }
        self.wait_ready();
    }

    /// The postmaster's process id (for SIGSTOP/SIGCONT/SIGKILL tests).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://pipeline:{PG_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }

    /// A command of `p` with its metadata in this server's `postgres` database.
    pub fn pipeline_command(&self, p: &Pipeline, args: &[&str]) -> Command {
        let mut cmd = p.command(args);
        cmd.env("PIPELINE_METADATA_URL", self.url("postgres"));
        cmd
    }

    /// Runs and asserts the exit code, and that the password was not printed.
    pub fn ok(&self, p: &Pipeline, args: &[&str], code: i32) -> serde_json::Value {
        let run = finish(self.pipeline_command(p, args).output().unwrap());
        assert_eq!(run.code, code, "{args:?}\n{}", run.stderr);
        assert!(!run.stdout.contains(PG_PASSWORD) && !run.stderr.contains(PG_PASSWORD));
        run.metrics
    }

    /// Stops the server now (SIGKILL); dropping it afterwards is harmless.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const S3_ACCESS_KEY: &str = "pipeline-test-key";
pub const S3_SECRET_KEY: &str = "s3cr3t-value-never-printed-4242";

/// An s3s-fs process serving `root` (one directory per bucket: `landing`
/// and `lake`; objects are plain files under root/bucket/key).
pub struct S3Server {
    pub root: tempfile::TempDir,
    pub port: u16,
    pub child: Option<Child>,
}

pub fn s3_server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("S3S_FS_BIN") {
        return bin.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    found.expect("s3s-fs not found: `bash .ci/run` installs it, or set S3S_FS_BIN")
}

impl S3Server {
    pub fn start() -> Self {
        let mut server = Self {
            root: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        };
        for bucket in ["landing", "lake"] {
            std::fs::create_dir(server.root.path().join(bucket)).unwrap();
        }
        server.resume();
        server
    }

    /// Starts the server (again) on the same port and root.
    pub fn resume(&mut self) {
        let child = Command::new(s3_server_binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL); `resume` starts it again.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The directory holding a bucket's objects.
    pub fn bucket(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The directory holding the landing area (`s3://landing/marketing`).
    pub fn landing_dir(&self) -> PathBuf {
        self.bucket("landing").join("marketing")
    }

    /// The directory holding the lake (`s3://lake`).
    pub fn lake_dir(&self) -> PathBuf {
        self.bucket("lake")
    }

    /// The server's root directory.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// A command of `pipeline` with both areas on this server.
    pub fn command(&self, pipeline: &Pipeline, args: &[&str]) -> Command {
        let mut cmd = pipeline.command(args);
        cmd.env("PIPELINE_LANDING_URL", "s3://landing/marketing")
            .env("PIPELINE_LAKE_URL", "s3://lake")
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            )
            .env("PIPELINE_S3_MAX_ATTEMPTS", "2")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        cmd
    }

    pub fn run(&self, pipeline: &Pipeline, args: &[&str]) -> Run {
        finish(self.command(pipeline, args).output().unwrap())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Snowflake password the emulator is given: it must never be printed.
pub const SNOWFLAKE_PASSWORD: &str = "emulator-password-not-to-be-printed";

/// A Snowflake wire-protocol emulator: fakesnow's server, wrapped by
/// tests/snowflake_emulator.py so that the Rust connector can read its
/// answers. `.ci/run` installs fakesnow into a virtualenv and sets
/// FAKESNOW_PYTHON. Its database lives in memory: a restart empties it.
pub struct SnowflakeEmulator {
    pub child: Option<Child>,
    pub port: u16,
}

impl SnowflakeEmulator {
    pub fn start() -> Self {
        let mut emulator = Self {
            child: None,
            port: free_port(),
        };
        emulator.resume();
        emulator
    }

    /// Starts the emulator (again) on the same port.
    pub fn resume(&mut self) {
        let python = std::env::var_os("FAKESNOW_PYTHON")
            .map(PathBuf::from)
            .expect("FAKESNOW_PYTHON not set: `bash .ci/run` installs fakesnow and sets it");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snowflake_emulator.py");
        let child = Command::new(python)
            .arg(script)
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Snowflake emulator");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the Snowflake emulator did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the emulator (SIGKILL); `resume` starts an empty one.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A command of `p` with its warehouse on this emulator.
    pub fn command(&self, p: &Pipeline, args: &[&str]) -> Command {
        let mut cmd = p.command(args);
        cmd.env(
            "PIPELINE_WAREHOUSE_URL",
            format!("snowflake+http://127.0.0.1:{}", self.port),
        )
        .env("SNOWFLAKE_ACCOUNT", "emulated")
        .env("SNOWFLAKE_USER", "pipeline")
        .env("SNOWFLAKE_PASSWORD", SNOWFLAKE_PASSWORD)
        .env("SNOWFLAKE_DATABASE", "MARKETING_TEST");
        cmd
    }

    /// Runs, and asserts that the password was not printed.
    pub fn run(&self, p: &Pipeline, args: &[&str]) -> Run {
        let run = finish(self.command(p, args).output().unwrap());
        assert!(
            !run.stdout.contains(SNOWFLAKE_PASSWORD) && !run.stderr.contains(SNOWFLAKE_PASSWORD),
            "the password was printed"
        );
        run
    }

    /// Runs and asserts the exit code.
    pub fn ok(&self, p: &Pipeline, args: &[&str], code: i32) -> serde_json::Value {
        let run = self.run(p, args);
        assert_eq!(
            run.code, code,
            "{args:?}\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.metrics
    }

    /// The single number a `SELECT COUNT(*) ...` returns.
    pub fn count(&self, p: &Pipeline, query: &str) -> u64 {
        let metrics = self.ok(p, &["sql", query], 0);
        metrics["rows"][0][0]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {metrics}"))
            .parse()
            .unwrap()
    }
}

impl Drop for SnowflakeEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}
