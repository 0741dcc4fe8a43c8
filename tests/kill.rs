//! Reliability under what Airflow does to tasks (issue 11): a task SIGKILLed
//! at a random point and re-run, two copies of one task started together,
//! and many runs in a row, must all end in the state one uninterrupted run
//! leaves (lake objects and their MD5s, metadata rows, RAW and mart rows; see
//! `common::state`), with no temp file left.
//!
//! Every scenario works in one fixed directory (and, on S3 and PostgreSQL,
//! one bucket root and one database), so states compare exactly. The
//! uninterrupted reference run saves a checkpoint before each step a
//! scenario starts from; a scenario restores it instead of re-running the
//! prerequisites. Tests run one at a time (2 cores).
//!
//! Kill trials (`kill_trials_*`): each trial picks, from a seed, a task
//! (generate, validate, upload or load of one dataset, transform, or the
//! whole `run --ds`) and a delay between 0 and that task's duration in the
//! reference run; starts the task with its prerequisites done, SIGKILLs it
//! after the delay, re-runs it and then the rest of the DAG one task at a
//! time (as Airflow would), and compares the final state with the reference.
//! - `KILL_TRIALS` (default 50): trials on local files + SQLite + DuckDB.
//! - `KILL_TRIALS_S3` (default 8): trials on the s3s-fs S3 server + PostgreSQL.
//! - `KILL_TRIALS_SEED` (default 7): the seed; a failing trial prints its
//!   seed, index, task and delay.
//! - `KILL_TRIAL=N` runs trial N only, `KILL_DELAY_MS=MS` replaces its delay
//!   (to reproduce a failure exactly).
//!
//! In a debug build a trial takes about 2.5 s on files and 5 s on S3 (the
//! defaults: about 2 and 1 minutes). Long mode, about 30 minutes:
//! `KILL_TRIALS=500 KILL_TRIALS_S3=100 cargo test --test kill -- kill_trials`.
//!
//! Concurrent duplicates (`duplicates_*`): for every task, two copies for
//! the same (dataset, ds) started together, on SQLite and on PostgreSQL:
//! both exit 0, the final state equals one copy's, every failure pattern
//! is recorded once.
//!
//! Soak (`soak_*`): `SOAK_RUNS` (default 20) runs of `run --ds D`: metadata
//! does not grow after the first, no temp file, peak RSS of the re-runs
//! stable; and a `SOAK_DAYS`-day (default 7) backfill run twice: the second
//! adds nothing. Long mode: `SOAK_RUNS=100 SOAK_DAYS=30 cargo test --test
//! kill -- soak`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::servers::{PgServer, S3Server};
use common::state::{self, Locations, State};
use common::{DS, Pipeline, Run, finish};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// One scenario at a time: the machine has 2 cores and timing matters.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// One task of the DAG for DS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Step {
    task: &'static str,
    dataset: Option<&'static str>,
}

impl Step {
    fn args(&self) -> Vec<&'static str> {
        match self.dataset {
            Some(d) => vec![self.task, d, "--ds", DS],
            None => vec![self.task, "--ds", DS],
        }
    }

    fn label(&self) -> String {
        match self.dataset {
            Some(d) => format!("{} {d}", self.task),
            None => self.task.to_string(),
        }
    }
}

const TASKS: [&str; 6] = [
    "generate",
    "validate",
    "upload",
    "load",
    "transform",
    "report",
];

/// The DAG for one ds, in the order `run` and Airflow follow: each task for
/// every dataset, then transform, then the data-quality report.
fn dag() -> Vec<Step> {
    let mut steps = Vec::new();
    for task in &TASKS[..4] {
        for d in common::datasets() {
            steps.push(Step {
                task,
                dataset: Some(d),
            });
        }
    }
    for task in &TASKS[4..] {
        steps.push(Step {
            task,
            dataset: None,
        });
    }
    steps
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// file:// areas, SQLite metadata, DuckDB.
    LocalSqlite,
    /// file:// areas, PostgreSQL metadata, DuckDB.
    LocalPostgres,
    /// s3:// areas on s3s-fs, PostgreSQL metadata, DuckDB.
    S3Postgres,
}

/// The working copy of a pipeline on one backend, with checkpoints.
struct Bench {
    backend: Backend,
    /// Its directory is the fixed working directory (landing, lake,
    /// metadata.db, warehouse.duckdb).
    pipeline: Pipeline,
    checkpoints: tempfile::TempDir,
    /// Scratch space: output of the processes started in the background.
    scratch: tempfile::TempDir,
    pg: Option<PgServer>,
    s3: Option<S3Server>,
}

/// What one uninterrupted pass leaves, and how long each part took.
struct Reference {
    /// After every step of `dag()`, one process each.
    state: State,
    durations: Vec<Duration>,
    /// After one `run --ds DS`.
    run_state: State,
    run_duration: Duration,
}

/// Removes everything inside `dir`.
fn clear_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// Copies the contents of `from` into `to` (created), empty directories too.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The last line of a process's error output, for messages.
fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

/// The error a task reported (metrics `error`), or its last stderr line.
fn error_of(run: &Run) -> String {
    match run.metrics["error"].as_str() {
        Some(e) => e.to_string(),
        None => last_line(&run.stderr).chars().take(400).collect(),
    }
}

impl Bench {
    fn new(backend: Backend) -> Self {
        let pg = (backend != Backend::LocalSqlite).then(PgServer::start);
        if let Some(pg) = &pg {
            pg.client().batch_execute("CREATE DATABASE work").unwrap();
        }
        let s3 = (backend == Backend::S3Postgres).then(S3Server::start);
        Self {
            backend,
            pipeline: Pipeline::new(),
            checkpoints: tempfile::tempdir().unwrap(),
            scratch: tempfile::tempdir().unwrap(),
            pg,
            s3,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.s3 {
            Some(s3) => s3.command(&self.pipeline, args),
            None => self.pipeline.command(args),
        };
        if let Some(pg) = &self.pg {
            cmd.env("PIPELINE_METADATA_URL", pg.url("work"));
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args).output().unwrap())
    }

    /// Starts a task in the background, its output going to files named
    /// after `name` in the scratch directory.
    fn spawn(&self, args: &[&str], name: &str) -> std::process::Child {
        let out = std::fs::File::create(self.scratch.path().join(format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.scratch.path().join(format!("{name}.err"))).unwrap();
        self.command(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap()
    }

    /// The output of a task started with `spawn`, once it has exited.
    fn spawned_output(&self, name: &str, status: std::process::ExitStatus) -> Run {
        let read = |ext: &str| {
            std::fs::read(self.scratch.path().join(format!("{name}.{ext}"))).unwrap_or_default()
        };
        finish(std::process::Output {
            status,
            stdout: read("out"),
            stderr: read("err"),
        })
    }

    fn locations(&self) -> Locations {
        let mut at = Locations::local(&self.pipeline);
        if let Some(s3) = &self.s3 {
            at = at.on_s3(s3);
        }
        if let Some(pg) = &self.pg {
            at = at.on_postgres(&pg.url("work"));
        }
        at
    }

    fn capture(&self) -> State {
        state::capture(self.locations())
    }

    fn temp_files(&self) -> Vec<PathBuf> {
        state::temp_files(&self.locations())
    }

    /// One number from the metadata database.
    fn meta_count(&self, sql: &str) -> i64 {
        match &self.pg {
            Some(pg) => {
                let mut client =
                    postgres::Client::connect(&pg.url("work"), postgres::NoTls).unwrap();
                client.query_one(sql, &[]).unwrap().get(0)
            }
            None => rusqlite::Connection::open(self.pipeline.metadata_db())
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
        }
    }

    /// Saves everything as checkpoint `k` (no task may be running).
    fn save(&self, k: usize) {
        let dir = self.checkpoints.path().join(k.to_string());
        copy_dir(self.pipeline.dir.path(), &dir.join("work"));
        if let Some(s3) = &self.s3 {
            copy_dir(s3.root_dir(), &dir.join("s3"));
        }
        if let Some(pg) = &self.pg {
            // CREATE DATABASE waits (5 s) for the last tasks' sessions to end.
            let mut client = pg.client();
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS ckpt_{k}"))
                .unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE ckpt_{k} TEMPLATE work"))
                .unwrap();
        }
    }

    /// Puts everything back as checkpoint `k` was saved.
    fn restore(&self, k: usize) {
        let dir = self.checkpoints.path().join(k.to_string());
        assert!(dir.exists(), "checkpoint {k} was not saved");
        clear_dir(self.pipeline.dir.path());
        copy_dir(&dir.join("work"), self.pipeline.dir.path());
        if let Some(s3) = &self.s3 {
            clear_dir(s3.root_dir());
            copy_dir(&dir.join("s3"), s3.root_dir());
        }
        if let Some(pg) = &self.pg {
            let mut client = pg.client();
            client
                .batch_execute("DROP DATABASE IF EXISTS work WITH (FORCE)")
                .unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE work TEMPLATE ckpt_{k}"))
                .unwrap();
        }
    }

    /// Runs one task and says why it failed, if it did.
    fn step(&self, args: &[&str]) -> Result<Duration, String> {
        let started = Instant::now();
        let run = self.run(args);
        if run.code == 0 {
            Ok(started.elapsed())
        } else {
            Err(format!(
                "`{}` exited {}: {}",
                args.join(" "),
                run.code,
                error_of(&run)
            ))
        }
    }

    /// The uninterrupted pass, step by step then as one `run`, saving a
    /// checkpoint before each step in `keep` (0 is the empty state).
    fn reference(&self, keep: &BTreeSet<usize>) -> Reference {
        let started = Instant::now();
        self.save(0);
        let mut durations = Vec::new();
        for (k, step) in dag().iter().enumerate() {
            if k > 0 && keep.contains(&k) {
                self.save(k);
            }
            let took = self
                .step(&step.args())
                .unwrap_or_else(|e| panic!("{:?} reference run: {e}", self.backend));
            durations.push(took);
        }
        let state = self.capture();
        let temps = self.temp_files();
        assert!(temps.is_empty(), "reference run left {temps:?}");
        self.restore(0);
        let run_duration = self
            .step(&["run", "--ds", DS])
            .unwrap_or_else(|e| panic!("{:?} reference run: {e}", self.backend));
        let run_state = self.capture();
        eprintln!(
            "{:?} reference: steps {:?} ms, run {} ms ({:.1} s in all)",
            self.backend,
            durations.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            run_duration.as_millis(),
            started.elapsed().as_secs_f64()
        );
        let sizes: Vec<String> = state
            .parts
            .iter()
            .map(|(name, lines)| format!("{name}: {}", lines.len()))
            .collect();
        eprintln!("reference state: {}", sizes.join(", "));
        Reference {
            state,
            durations,
            run_state,
            run_duration,
        }
    }

    /// Runs steps `from..` of the DAG, one process each.
    fn finish_dag(&self, from: usize) -> Result<(), String> {
        for step in &dag()[from..] {
            self.step(&step.args())?;
        }
        Ok(())
    }

    /// Differences from `expected`, and leftover temp files, as problems.
    fn check_final(&self, expected: &State) -> Vec<String> {
        let mut problems = self.capture().diff(expected, 6);
        let temps = self.temp_files();
        if !temps.is_empty() {
            problems.push(format!("temp files left: {temps:?}"));
        }
        problems
    }
}

/// Where a kill trial strikes.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// Step `k` of `dag()`.
    Step(usize),
    /// The whole `run --ds DS`.
    Run,
}

struct Trial {
    index: usize,
    target: Target,
    /// The delay as a fraction of the target's reference duration.
    fraction: f64,
}

/// Trial `index` of `seed`, alone: the same whatever the trial count.
fn plan(seed: u64, salt: u64, index: usize) -> Trial {
    // One stream per trial: trial N is the same whatever the trial count.
    let mut rng =
        Pcg64Mcg::seed_from_u64(seed ^ salt ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let steps = dag();
    let target = match TASKS.get(rng.random_range(0..=TASKS.len())) {
        None => Target::Run,
        Some(&task) => {
            let dataset = (!matches!(task, "transform" | "report"))
                .then(|| common::datasets()[rng.random_range(0..common::datasets().len())]);
            let k = steps
                .iter()
                .position(|s| s.task == task && s.dataset == dataset)
                .unwrap();
            Target::Step(k)
        }
    };
    Trial {
        index,
        target,
        fraction: rng.random::<f64>(),
    }
}

/// Runs one trial; Ok(summary) or Err(what went wrong).
fn kill_trial(bench: &Bench, reference: &Reference, trial: &Trial) -> Result<String, String> {
    let steps = dag();
    let (k, args, duration, label) = match trial.target {
        Target::Step(k) => (k, steps[k].args(), reference.durations[k], steps[k].label()),
        Target::Run => (
            0,
            vec!["run", "--ds", DS],
            reference.run_duration,
            "run".to_string(),
        ),
    };
    let delay = match std::env::var("KILL_DELAY_MS") {
        Ok(ms) => Duration::from_millis(ms.parse().expect("KILL_DELAY_MS")),
        Err(_) => duration.mul_f64(trial.fraction),
    };
    let what = format!(
        "{label}, SIGKILL after {} ms ({:.3} of its {} ms)",
        delay.as_millis(),
        trial.fraction,
        duration.as_millis()
    );
    bench.restore(k);
    let mut child = bench.spawn(&args, "killed");
    std::thread::sleep(delay);
    let _ = child.kill();
    let status = child.wait().unwrap();
    let outcome = match status.signal() {
        Some(9) => "killed".to_string(),
        _ => {
            let run = bench.spawned_output("killed", status);
            if run.code != 0 {
                return Err(format!(
                    "{what}: finished before the kill with exit {}: {}",
                    run.code,
                    error_of(&run)
                ));
            }
            "finished before the kill".to_string()
        }
    };
    // The retry, then the rest of the DAG.
    let expected = match trial.target {
        Target::Step(k) => {
            bench
                .step(&args)
                .and_then(|_| bench.finish_dag(k + 1))
                .map_err(|e| format!("{what} ({outcome}): {e}"))?;
            &reference.state
        }
        Target::Run => {
            bench
                .step(&args)
                .map_err(|e| format!("{what} ({outcome}): {e}"))?;
            &reference.run_state
        }
    };
    let problems = bench.check_final(expected);
    if problems.is_empty() {
        Ok(format!("{what}: {outcome}, converged"))
    } else {
        Err(format!(
            "{what} ({outcome}): final state differs from the uninterrupted run:\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn kill_trials(backend: Backend, count_var: &str, default_count: u64) {
    let _serial = serial();
    let started = Instant::now();
    let seed = env_u64("KILL_TRIALS_SEED", 7);
    let count = env_u64(count_var, default_count) as usize;
    let salt = match backend {
        Backend::S3Postgres => 0x53_33,
        _ => 0,
    };
    let only = std::env::var("KILL_TRIAL")
        .ok()
        .map(|v| v.parse::<usize>().expect("KILL_TRIAL"));
    let indices: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..count).collect(),
    };
    let trials: Vec<Trial> = indices.iter().map(|&i| plan(seed, salt, i)).collect();
    let keep: BTreeSet<usize> = trials
        .iter()
        .filter_map(|t| match t.target {
            Target::Step(k) => Some(k),
            Target::Run => None,
        })
        .collect();

    let bench = Bench::new(backend);
    let reference = bench.reference(&keep);
    let mut failures = Vec::new();
    let run_vs_steps = reference.run_state.diff(&reference.state, 6);
    if !run_vs_steps.is_empty() {
        failures.push(format!(
            "uninterrupted `run --ds` and the DAG step by step end differently:\n  {}",
            run_vs_steps.join("\n  ")
        ));
    }
    for trial in &trials {
        let t = Instant::now();
        let header = format!(
            "{backend:?} trial {} (KILL_TRIALS_SEED={seed} KILL_TRIAL={})",
            trial.index, trial.index
        );
        match kill_trial(&bench, &reference, trial) {
            Ok(summary) => eprintln!("{header}: {summary} [{:.1} s]", t.elapsed().as_secs_f64()),
            Err(failure) => {
                eprintln!("{header}: FAILED: {failure}");
                failures.push(format!("{header}: {failure}"));
            }
        }
    }
    eprintln!(
        "{backend:?}: {} trials in {:.1} s",
        trials.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} kill trials failed:\n{}",
        failures.len(),
        trials.len(),
        failures.join("\n")
    );
}

#[test]
fn kill_trials_on_files_sqlite_and_duckdb_converge() {
    kill_trials(Backend::LocalSqlite, "KILL_TRIALS", 50);
}

#[test]
fn kill_trials_on_s3_and_postgres_converge() {
    kill_trials(Backend::S3Postgres, "KILL_TRIALS_S3", 8);
}

/// Two copies of every task, per task of the DAG, started together.
fn duplicates(backend: Backend) {
    let _serial = serial();
    let started = Instant::now();
    let steps = dag();
    let first = |task: &str| steps.iter().position(|s| s.task == task).unwrap();
    let keep: BTreeSet<usize> = TASKS.iter().map(|t| first(t)).collect();
    let bench = Bench::new(backend);
    let reference = bench.reference(&keep);
    let mut failures = Vec::new();
    for task in TASKS {
        let t = Instant::now();
        let k0 = first(task);
        bench.restore(k0);
        let mut problems = Vec::new();
        let mut alerts = 0;
        let mut last = k0;
        for (k, step) in steps.iter().enumerate().filter(|(_, s)| s.task == task) {
            last = k;
            let args = step.args();
            let children = [bench.spawn(&args, "copy-a"), bench.spawn(&args, "copy-b")];
            let mut failed = false;
            for (mut child, name) in children.into_iter().zip(["copy-a", "copy-b"]) {
                let status = child.wait().unwrap();
                let run = bench.spawned_output(name, status);
                alerts += run.metrics["new_signatures"].as_array().map_or(0, Vec::len);
                if run.code != 0 {
                    failed = true;
                    problems.push(format!(
                        "{} ({name}) exited {}: {}",
                        step.label(),
                        run.code,
                        error_of(&run)
                    ));
                }
            }
            // Still a failure, but retried as Airflow would, to see whether
            // the state converges.
            if failed && let Err(e) = bench.step(&args) {
                problems.push(format!("{}: the retry failed too: {e}", step.label()));
            }
        }
        if let Err(e) = bench.finish_dag(last + 1) {
            problems.push(format!("the rest of the DAG failed: {e}"));
        }
        problems.extend(bench.check_final(&reference.state));
        let once = bench.meta_count("SELECT count(*) FROM dq_signature WHERE occurrences <> 1");
        if once != 0 {
            problems.push(format!("{once} dq_signature rows with occurrences <> 1"));
        }
        let signatures = bench.meta_count("SELECT count(*) FROM dq_signature");
        let patterns = bench
            .meta_count("SELECT count(DISTINCT signature) FROM dq_checks WHERE failed_rows > 0");
        if signatures != patterns {
            problems.push(format!(
                "{signatures} dq_signature rows for {patterns} failing patterns"
            ));
        }
        eprintln!(
            "{backend:?} duplicate {task}: {} ({alerts} new-signature reports by the copies) [{:.1} s]",
            if problems.is_empty() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        for p in problems {
            failures.push(format!("{backend:?} two copies of {task}: {p}"));
        }
    }
    eprintln!(
        "{backend:?} duplicates: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn two_copies_of_each_task_on_sqlite_end_as_one() {
    duplicates(Backend::LocalSqlite);
}

#[test]
fn two_copies_of_each_task_on_postgres_end_as_one() {
    duplicates(Backend::LocalPostgres);
}

/// Runs a task and measures its peak resident set size in KiB: through
/// GNU time when /usr/bin/time exists, otherwise by polling VmHWM in
/// /proc/PID/status (None if neither works).
fn run_measured(bench: &Bench, args: &[&str]) -> (Run, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let report = bench.scratch.path().join("rss");
    let _ = std::fs::remove_file(&report);
    if time.exists() {
        let inner = bench.command(args);
        let mut cmd = Command::new(time);
        cmd.args(["-f", "%M", "-o"])
            .arg(&report)
            .arg(inner.get_program())
            .args(inner.get_args());
        for (key, value) in inner.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let run = finish(cmd.output().unwrap());
        let kib = std::fs::read_to_string(&report)
            .ok()
            .and_then(|s| s.lines().last()?.trim().parse().ok());
        return (run, kib);
    }
    let mut child = bench.spawn(args, "measured");
    let pid = child.id();
    let mut peak = None;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (bench.spawned_output("measured", status), peak)
}

#[test]
fn soak_repeated_runs_of_one_ds_add_nothing_and_stay_flat() {
    let _serial = serial();
    let started = Instant::now();
    let runs = env_u64("SOAK_RUNS", 20).max(2) as usize;
    let bench = Bench::new(Backend::LocalSqlite);
    let meta = bench.locations().metadata;
    let mut rss = Vec::new();
    let mut first: Option<(State, _)> = None;
    let mut failures = Vec::new();
    for i in 0..runs {
        let (run, kib) = run_measured(&bench, &["run", "--ds", DS]);
        assert_eq!(run.code, 0, "run {i}: {}", error_of(&run));
        rss.push(kib);
        let counts = state::metadata_counts(&meta);
        match &first {
            None => first = Some((bench.capture(), counts)),
            Some((_, counts0)) if *counts0 != counts => failures.push(format!(
                "run {i}: metadata rows {counts:?}, after the first run {counts0:?}"
            )),
            Some(_) => {}
        }
        let temps = bench.temp_files();
        if !temps.is_empty() {
            failures.push(format!("run {i}: temp files left: {temps:?}"));
        }
    }
    let (state0, _) = first.unwrap();
    for d in bench.capture().diff(&state0, 6) {
        failures.push(format!("after {runs} runs, the state moved: {d}"));
    }
    eprintln!(
        "soak: {runs} runs in {:.1} s, peak RSS KiB {rss:?}",
        started.elapsed().as_secs_f64()
    );
    // Re-runs only: the first run does the work.
    let reruns: Vec<u64> = rss[1..].iter().flatten().copied().collect();
    if reruns.len() == runs - 1 && reruns.len() >= 2 {
        let head = reruns.len().min(3);
        let baseline = *reruns[..head].iter().max().unwrap();
        let tail = *reruns[reruns.len() - head..].iter().max().unwrap();
        if tail as f64 > baseline as f64 * 1.2 + 16.0 * 1024.0 {
            failures.push(format!(
                "peak RSS of the re-runs grew from {baseline} KiB to {tail} KiB: {rss:?}"
            ));
        }
    } else {
        eprintln!("soak: peak RSS not measurable here; its assertion is skipped");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn soak_a_backfill_run_twice_adds_nothing_the_second_time() {
    let _serial = serial();
    let started = Instant::now();
    let days = env_u64("SOAK_DAYS", 7).max(1);
    let from: NaiveDate = DS.parse().unwrap();
    let to = (from + chrono::Days::new(days - 1)).to_string();
    let bench = Bench::new(Backend::LocalSqlite);
    let meta = bench.locations().metadata;
    let args = ["run", "--from", DS, "--to", &to];

    let run = bench.run(&args);
    assert_eq!(run.code, 0, "first backfill: {}", error_of(&run));
    let first_took = started.elapsed();
    let counts = state::metadata_counts(&meta);
    let state = bench.capture();
    assert!(bench.temp_files().is_empty(), "{:?}", bench.temp_files());
    // Every day added the same stage records.
    let days_logged = bench.meta_count("SELECT count(DISTINCT ds) FROM stage_log");
    assert_eq!(days_logged, days as i64);
    let per_day = bench.meta_count("SELECT count(*) FROM stage_log") / days as i64;
    assert_eq!(
        bench.meta_count(&format!(
            "SELECT count(*) FROM (SELECT ds FROM stage_log GROUP BY ds HAVING count(*) <> {per_day}) x"
        )),
        0,
        "every ds has {per_day} stage_log rows"
    );

    let again = bench.run(&args);
    assert_eq!(again.code, 0, "second backfill: {}", error_of(&again));
    assert_eq!(
        state::metadata_counts(&meta),
        counts,
        "the second backfill added metadata rows"
    );
    let diff = bench.capture().diff(&state, 6);
    assert!(
        diff.is_empty(),
        "the second backfill changed the state:\n{}",
        diff.join("\n")
    );
    assert!(bench.temp_files().is_empty(), "{:?}", bench.temp_files());
    eprintln!(
        "backfill of {days} days: first {:.1} s, second {:.1} s",
        first_took.as_secs_f64(),
        (started.elapsed() - first_took).as_secs_f64()
    );
}

/// The harness itself: the comparison sees a lost object, a temp file, a
/// duplicated warehouse row and a changed metadata row, and ignores a
/// timestamp. Without this, a capture that silently read nothing would let
/// every trial pass.
#[test]
fn the_state_comparison_sees_what_a_kill_could_break() {
    let _serial = serial();
    let bench = Bench::new(Backend::LocalSqlite);
    let reference = bench.reference(&BTreeSet::new());
    let expected = &reference.run_state;
    assert!(bench.check_final(expected).is_empty());
    for part in [
        "landing",
        "lake",
        "metadata stage_log",
        "metadata dq_signature",
    ] {
        assert!(expected.len(part) > 0, "{part} captured nothing");
    }
    for part in ["warehouse RAW.CONTACTS", "warehouse MART.MART_CONTACTS"] {
        assert!(expected.len(part) > 0, "{part} captured nothing");
    }
    let complaint = |part: &str| {
        let problems = bench.check_final(expected);
        assert!(
            problems.len() == 1 && problems[0].starts_with(part),
            "{part}: {problems:?}"
        );
    };
    let p = &bench.pipeline;

    let object = p.slice_path(&p.lake(), "valid-data", "contacts");
    let bytes = std::fs::read(&object).unwrap();
    std::fs::remove_file(&object).unwrap();
    complaint("lake:");
    std::fs::write(&object, &bytes).unwrap();

    let temp = object.with_file_name(".contacts.parquet.a1b2c3.tmp");
    std::fs::write(&temp, b"half").unwrap();
    // The temp file is also an unexpected object of the lake.
    let problems = bench.check_final(expected);
    assert!(
        problems.iter().any(|p| p.starts_with("temp files left")),
        "{problems:?}"
    );
    std::fs::remove_file(&temp).unwrap();

    let meta = rusqlite::Connection::open(p.metadata_db()).unwrap();
    meta.execute_batch(
        "UPDATE stage_log SET finished_at = '2099-01-01T00:00:00Z', started_at = 'x'",
    )
    .unwrap();
    assert!(bench.check_final(expected).is_empty(), "timestamps ignored");
    meta.execute_batch(
        "UPDATE dq_signature SET occurrences = occurrences + 1 \
         WHERE signature = (SELECT min(signature) FROM dq_signature)",
    )
    .unwrap();
    complaint("metadata dq_signature:");
    meta.execute_batch(
        "UPDATE dq_signature SET occurrences = occurrences - 1 \
         WHERE signature = (SELECT min(signature) FROM dq_signature)",
    )
    .unwrap();
    drop(meta);
    assert!(bench.check_final(expected).is_empty());

    let wh = duckdb::Connection::open(p.warehouse_db()).unwrap();
    wh.execute_batch("INSERT INTO RAW.CONTACTS SELECT * FROM RAW.CONTACTS LIMIT 1")
        .unwrap();
    drop(wh);
    complaint("warehouse RAW.CONTACTS:");
}
