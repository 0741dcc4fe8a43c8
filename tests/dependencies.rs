//! Dependencies down or hung: the S3 server, PostgreSQL and the Snowflake
//! emulator stopped before or during a task, and a PostgreSQL that accepts
//! connections but never answers (its processes paused with SIGSTOP, or the
//! metadata advisory lock held by another open transaction). Every task must
//! give up within a bounded time with exit 75 (Airflow retries it) and a
//! one-line `error` naming what was unreachable, and a re-run after recovery
//! must reach the same result as a clean run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::servers::{
    PG_PASSWORD, PgServer, S3_SECRET_KEY, S3Server, SNOWFLAKE_PASSWORD, SnowflakeEmulator,
};
use common::state::{Locations, capture, files, temp_files};
use common::{DS, Pipeline, Run, finish, parquet_rows};

/// PIPELINE_METADATA_TIMEOUT_S for every task here.
const METADATA_TIMEOUT_S: u64 = 10;
/// The longest a task may take to give up on a dependency.
const LIMIT: Duration = Duration::from_secs(90);
/// The longest a task may wait on a PostgreSQL that does not answer: "about
/// PIPELINE_METADATA_TIMEOUT_S" (one deadline, with room for a slow start).
const METADATA_LIMIT: Duration = Duration::from_secs(3 * METADATA_TIMEOUT_S);
/// A task still running this long after the fault is killed and reported as hung.
const HUNG: Duration = Duration::from_secs(150);
/// The advisory lock every metadata write transaction takes (src/metadata/db.rs).
const METADATA_LOCK: i64 = 727274;

/// A task started in the background, its output going to files (a pipe
/// could fill up and stall it while the test waits).
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn spawn(mut cmd: Command, p: &Pipeline, tag: &str) -> Running {
    let logs = p.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let stdout = logs.join(format!("{tag}.stdout"));
    let stderr = logs.join(format!("{tag}.stderr"));
    let child = cmd
        .env(
            "PIPELINE_METADATA_TIMEOUT_S",
            METADATA_TIMEOUT_S.to_string(),
        )
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Running {
        child,
        stdout,
        stderr,
    }
}

impl Running {
    /// Waits until `ready` holds while the task is still running.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the task ended ({status}) before {what}\n{}",
                    tail(&std::fs::read_to_string(&self.stderr).unwrap_or_default())
                );
            }
            assert!(Instant::now() < deadline, "never {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the task to end (killing it once it has hung for `HUNG`
    /// since `since`, which shows as exit code -1); the run and the time it
    /// took from `since`.
    fn finish(mut self, since: Instant) -> (Run, Duration) {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if since.elapsed() > HUNG {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = since.elapsed();
        let run = finish(Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap(),
            stderr: std::fs::read(&self.stderr).unwrap(),
        });
        (run, elapsed)
    }
}

/// Runs a task that starts with its dependency already down.
fn timed(cmd: Command, p: &Pipeline, tag: &str) -> (Run, Duration) {
    let started = Instant::now();
    spawn(cmd, p, tag).finish(started)
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(3000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

/// Exit 75 within `LIMIT`, one line of `error` holding every one of `names`
/// (ignoring case; `a|b` for either), and no credential printed.
fn assert_gave_up(what: &str, run: &Run, elapsed: Duration, names: &[&str]) {
    eprintln!(
        "{what}: exit {} after {:.1} s, error: {}",
        run.code,
        elapsed.as_secs_f64(),
        run.metrics["error"]
    );
    assert_eq!(
        run.code,
        75,
        "{what}: exit code after {elapsed:?} (-1: killed as hung after {HUNG:?})\n\
         metrics: {}\nstderr: {}",
        run.metrics,
        tail(&run.stderr)
    );
    assert!(elapsed < LIMIT, "{what}: gave up only after {elapsed:?}");
    let error = run.metrics["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error in the metrics: {}", run.metrics));
    assert!(!error.contains('\n'), "{what}: not one line: {error:?}");
    let lower = error.to_lowercase();
    for name in names {
        assert!(
            name.split('|').any(|n| lower.contains(&n.to_lowercase())),
            "{what}: {error:?} does not say what failed ({name:?})"
        );
    }
    for secret in [PG_PASSWORD, S3_SECRET_KEY, SNOWFLAKE_PASSWORD] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{what}: a secret was printed"
        );
    }
}

fn assert_answered_in_time(what: &str, elapsed: Duration) {
    assert!(
        elapsed < METADATA_LIMIT,
        "{what}: gave up after {elapsed:?}, not within about \
         PIPELINE_METADATA_TIMEOUT_S={METADATA_TIMEOUT_S}"
    );
}

fn assert_ok(what: &str, run: &Run) {
    assert_eq!(
        run.code,
        0,
        "{what}\nmetrics: {}\nstderr: {}",
        run.metrics,
        tail(&run.stderr)
    );
}

/// What an uninterrupted `run` on local files, SQLite and DuckDB leaves.
fn clean_run() -> Pipeline {
    let p = Pipeline::new();
    p.ok(&["run", "--ds", DS], 0);
    p
}

/// The state at `got` equals the clean run's on files and SQLite (but for
/// what only s3s-fs and PostgreSQL keep: object metadata files and the
/// schema_version table), and no temp file is left.
fn assert_converged(what: &str, got: Locations, clean: &Pipeline) {
    let mut state = capture(&got);
    state.parts.remove("s3-metadata");
    state.parts.remove("metadata schema_version");
    let diff = state.diff(&capture(Locations::local(clean)), 5);
    assert!(
        diff.is_empty(),
        "{what}: not the clean run's state:\n{}",
        diff.join("\n")
    );
    assert_eq!(
        temp_files(&got),
        Vec::<PathBuf>::new(),
        "{what}: temp files"
    );
}

fn has_files(dir: &Path) -> bool {
    !files(dir).is_empty()
}

/// stage_log rows, or 0 while the table does not exist yet.
fn stage_rows(client: &mut postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM stage_log", &[])
        .map_or(0, |row| row.get(0))
}

/// Thaws a paused PostgreSQL when dropped, also when an assertion fails:
/// a stopped backend would outlive the test.
struct Paused<'a>(&'a PgServer);

impl<'a> Paused<'a> {
    fn new(pg: &'a PgServer) -> Self {
        pg.pause();
        Self(pg)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.unpause();
    }
}

// ---- S3 ----

#[test]
fn upload_to_a_stopped_s3_server_exits_75_and_the_retry_publishes_the_slice() {
    let mut server = S3Server::start();
    let p = Pipeline::new();
    let clean = Pipeline::new();
    for pipeline in [&p, &clean] {
        pipeline.ok(&["generate", "forms", "--ds", DS], 0);
        pipeline.ok(&["validate", "forms", "--ds", DS], 0);
    }
    clean.ok(&["upload", "forms", "--ds", DS], 0);
    let upload = |server: &S3Server| {
        let mut cmd = server.command(&p, &["upload", "forms", "--ds", DS]);
        cmd.env(
            "PIPELINE_LANDING_URL",
            format!("file://{}", p.landing().display()),
        );
        cmd
    };

    server.stop();
    let (run, elapsed) = timed(upload(&server), &p, "upload-s3-down");
    assert_gave_up("upload, S3 stopped", &run, elapsed, &["s3://lake"]);
    assert!(!has_files(&server.lake_dir()), "nothing published");

    server.resume();
    let (run, _) = timed(upload(&server), &p, "upload-s3-back");
    assert_ok("upload after the restart", &run);
    assert_eq!(run.metrics["status"], "uploaded", "{}", run.metrics);
    let mut at = Locations::local(&p).on_s3(&server);
    at.landing = p.landing();
    assert_converged("after the retry", at, &clean);
    let (run, _) = timed(upload(&server), &p, "upload-s3-again");
    assert_eq!(run.metrics["status"], "already_uploaded", "{}", run.metrics);
}

#[test]
fn an_s3_server_stopped_during_a_run_fails_it_with_75_and_the_rerun_converges() {
    let mut server = S3Server::start();
    let p = Pipeline::new();
    let mut running = spawn(server.command(&p, &["run", "--ds", DS]), &p, "run-s3");
    let lake = server.lake_dir();
    running.wait_until("the first upload reached the lake", || has_files(&lake));
    server.stop();
    let stopped = Instant::now();
    let (run, elapsed) = running.finish(stopped);
    assert_gave_up("run, S3 stopped during upload", &run, elapsed, &["s3://"]);

    server.resume();
    let (run, _) = timed(server.command(&p, &["run", "--ds", DS]), &p, "run-s3-again");
    assert_ok("run after the restart", &run);
    assert_converged(
        "after the re-run",
        Locations::local(&p).on_s3(&server),
        &clean_run(),
    );
}

// ---- PostgreSQL ----

#[test]
fn a_stopped_postgres_fails_tasks_with_75_and_the_rerun_converges() {
    let mut pg = PgServer::start();
    let p = Pipeline::new();

    // Down before the task starts: the connection is refused.
    pg.crash();
    let (run, elapsed) = timed(
        pg.pipeline_command(&p, &["generate", "forms", "--ds", DS]),
        &p,
        "generate-pg-down",
    );
    assert_gave_up(
        "generate, PostgreSQL stopped",
        &run,
        elapsed,
        &["metadata", "postgresql"],
    );
    pg.restart();

    // Killed while a run is in progress: the connection is lost.
    let mut running = spawn(pg.pipeline_command(&p, &["run", "--ds", DS]), &p, "run-pg");
    let mut client = pg.client();
    running.wait_until("a stage was recorded", || stage_rows(&mut client) > 0);
    drop(client);
    pg.crash();
    let stopped = Instant::now();
    let (run, elapsed) = running.finish(stopped);
    assert_gave_up(
        "run, PostgreSQL killed",
        &run,
        elapsed,
        &["metadata", "postgresql"],
    );

    pg.restart();
    let (run, _) = timed(
        pg.pipeline_command(&p, &["run", "--ds", DS]),
        &p,
        "run-pg-again",
    );
    assert_ok("run after the restart", &run);
    let at = Locations::local(&p).on_postgres(&pg.url("postgres"));
    assert_converged("after the re-run", at, &clean_run());
}

#[test]
fn a_paused_postgres_fails_tasks_with_75_within_the_metadata_timeout() {
    let pg = PgServer::start();
    let p = Pipeline::new();
    pg.ok(&p, &["generate", "forms", "--ds", DS], 0);

    // Paused before the task starts: connections are accepted, never answered.
    {
        let _paused = Paused::new(&pg);
        let (run, elapsed) = timed(
            pg.pipeline_command(&p, &["generate", "campaigns", "--ds", DS]),
            &p,
            "generate-pg-paused",
        );
        assert_gave_up(
            "generate, PostgreSQL paused",
            &run,
            elapsed,
            &["metadata", "postgresql"],
        );
        assert_answered_in_time("generate, PostgreSQL paused", elapsed);
    }

    // Paused while a run is in progress.
    let mut running = spawn(pg.pipeline_command(&p, &["run", "--ds", DS]), &p, "run-pg");
    let mut client = pg.client();
    let recorded = stage_rows(&mut client);
    running.wait_until("a stage was recorded", || {
        stage_rows(&mut client) > recorded
    });
    drop(client);
    {
        let _paused = Paused::new(&pg);
        let paused = Instant::now();
        let (run, elapsed) = running.finish(paused);
        assert_gave_up(
            "run, PostgreSQL paused",
            &run,
            elapsed,
            &["metadata", "postgresql"],
        );
        assert_answered_in_time("run, PostgreSQL paused", elapsed);
    }

    let (run, _) = timed(
        pg.pipeline_command(&p, &["run", "--ds", DS]),
        &p,
        "run-pg-again",
    );
    assert_ok("run after the server was thawed", &run);
    let at = Locations::local(&p).on_postgres(&pg.url("postgres"));
    assert_converged("after the re-run", at, &clean_run());
}

#[test]
fn a_held_metadata_lock_fails_writers_with_75_and_they_succeed_once_it_is_released() {
    let pg = PgServer::start();
    let p = Pipeline::new();
    let clean = Pipeline::new();
    pg.ok(&p, &["generate", "forms", "--ds", DS], 0);
    clean.ok(&["generate", "forms", "--ds", DS], 0);
    clean.ok(&["validate", "forms", "--ds", DS], 0);
    clean.ok(&["sql", "SELECT 1"], 0);

    // Another session holds the lock in a transaction it never ends.
    let mut holder = pg.client();
    let mut lock = holder.transaction().unwrap();
    lock.execute("SELECT pg_advisory_xact_lock($1)", &[&METADATA_LOCK])
        .unwrap();

    // The schema is current: a task that writes no metadata needs no lock.
    let (run, elapsed) = timed(
        pg.pipeline_command(&p, &["sql", "SELECT 1"]),
        &p,
        "sql-locked",
    );
    eprintln!(
        "sql, lock held: exit {} after {:.1} s, error: {}",
        run.code,
        elapsed.as_secs_f64(),
        run.metrics["error"]
    );
    assert_ok("sql while the lock is held (no migration to run)", &run);

    // validate records its checks in a locked transaction.
    let (run, elapsed) = timed(
        pg.pipeline_command(&p, &["validate", "forms", "--ds", DS]),
        &p,
        "validate-locked",
    );
    assert_gave_up(
        "validate, lock held",
        &run,
        elapsed,
        &["metadata", "postgresql", "lock|timeout"],
    );
    assert_answered_in_time("validate, lock held", elapsed);

    lock.rollback().unwrap();
    let (run, _) = timed(
        pg.pipeline_command(&p, &["validate", "forms", "--ds", DS]),
        &p,
        "validate-released",
    );
    assert_ok("validate after the lock was released", &run);
    let at = Locations::local(&p).on_postgres(&pg.url("postgres"));
    assert_converged("after the release", at, &clean);
}

// ---- Snowflake ----

#[test]
fn load_into_a_stopped_snowflake_exits_75_and_the_retry_loads_the_slice() {
    let mut emulator = SnowflakeEmulator::start();
    let p = Pipeline::new();
    emulator.ok(&p, &["setup", "--all"], 0);
    for task in ["generate", "validate", "upload"] {
        p.ok(&[task, "forms", "--ds", DS], 0);
    }

    emulator.stop();
    let (run, elapsed) = timed(
        emulator.command(&p, &["load", "forms", "--ds", DS]),
        &p,
        "load-snowflake-down",
    );
    assert_gave_up("load, Snowflake stopped", &run, elapsed, &["Snowflake"]);

    // The emulator keeps its database in memory: it comes back empty.
    emulator.resume();
    emulator.ok(&p, &["setup", "--all"], 0);
    let load = emulator.ok(&p, &["load", "forms", "--ds", DS], 0);
    assert_eq!(load["status"], "loaded", "{load}");
    let valid = parquet_rows(&p.slice_path(&p.lake(), "valid-data", "forms")) as u64;
    assert_eq!(emulator.count(&p, "SELECT COUNT(*) FROM RAW.FORMS"), valid);
    let again = emulator.ok(&p, &["load", "forms", "--ds", DS], 0);
    assert_eq!(again["status"], "already_loaded", "{again}");
}
