//! `validate DATASET --ds D`: check a raw file and split it into a valid
//! slice and a quarantine slice whose rows name every check they failed.
//!
//! Every row read ends up in exactly one slice. A file that cannot be read,
//! has the wrong columns or too many invalid rows is rejected (exit 65) and
//! quarantined whole. The file is read, checked and written a batch at a
//! time (`batches`), so memory holds a few batches and the keys that unique
//! and foreign-key checks need, whatever the file's size. The checks and the
//! split are `checks`; this module reads the inputs, writes the slices and
//! records the outcome.

mod batches;
mod quarantine;
mod slices;

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use tracing::{info, warn};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::catalog::Dataset;
use crate::checks::CheckResult;
use crate::checks::KeySet;
use crate::checks::split::{self, References, Rejection, Tolerance, Validator, Verdict};
use crate::cli::ValidateArgs;
use crate::context::{Context, Stage};
use crate::exit::{self, ExitCode};
use crate::metrics::{Details, Slices, Status, Task, TaskMetrics, ValidateDetails, VolumeCheck};
use batches::{BatchPlan, FileResult};
use slices::SliceFile;

/// Bump when the checks' code changes, so files validated by older code
/// are redone; a changed contract does that by itself (its digest is in
/// the fingerprint).
const RULES_VERSION: u32 = 2;

pub(crate) fn run(ctx: &mut Context, args: &ValidateArgs) -> Result<TaskMetrics> {
    let ValidateArgs {
        target,
        options,
        force,
    } = args;
    let (dataset, ds) = (ctx.dataset(&target.dataset)?, target.ds);
    let mut clock = Instant::now();
    let input = Input::find(ctx, dataset, ds)?;
    let fingerprint = input.fingerprint(ctx, options.max_invalid_ratio)?;
    let stage = Stage::start(Task::Validate, dataset, ds, fingerprint);
    if !*force && let Some(metrics) = reuse(ctx, &stage)? {
        return Ok(metrics);
    }

    let mut metrics = stage.metrics(ctx);
    metrics.lap("fingerprint", &mut clock);
    metrics.reads(&input.raw_url);
    for (_, key, _) in &input.references {
        metrics.reads(&ctx.landing.url(key));
    }
    let references = read_references(ctx, &input)?;
    metrics.lap("read_references", &mut clock);
    let outcome = check(ctx, &input, &references, options.max_invalid_ratio)?;
    metrics.lap("check", &mut clock);
    let (mut results, mut details) = match outcome {
        Ok(checked) => write_split(
            ctx,
            &mut metrics,
            &input,
            checked,
            options.max_invalid_ratio,
        )?,
        Err(rejection) => {
            warn!(%dataset, %ds, reason = %rejection.reason, "file rejected");
            reject(
                &mut metrics,
                format!("{}: {}", input.raw_url, rejection.reason),
            );
            metrics.add_failed(rejection.check, 1);
            let whole = quarantine::rejected_file(ctx, &input.raw_key, input.size, &rejection)?;
            let whole = SliceFile::of(&whole)?;
            let slices = slices::write(ctx, &mut metrics, dataset, ds, None, Some(whole))?;
            let details = ValidateDetails {
                failures: None,
                slices,
                warnings: Vec::new(),
                volume: None,
            };
            (vec![rejection.result()], details)
        }
    };
    metrics.lap("write", &mut clock);
    if let Some(volume) = details.volume.clone() {
        // A check of the file as a whole: one failing "row" when outside.
        let outside = u64::from(!volume.within);
        results.push(CheckResult {
            check: "volume",
            column: "*".into(),
            rule: volume.expected.clone(),
            failed_rows: outside,
        });
        if outside > 0 {
            metrics.add_failed("volume", 1);
            if !volume.severity.is_error() {
                details.warnings.push("volume".into());
            }
        }
    }
    metrics.details = Some(Details::Validate(details));

    let new_signatures = ctx.metadata.record_checks(
        dataset.name(),
        ds,
        &results,
        metrics.rows_in,
        metrics.run_id.as_deref(),
    )?;
    metrics.has_failure_delta = !new_signatures.is_empty();
    metrics.new_signatures = new_signatures;
    stage.complete(ctx, &mut metrics)?;
    info!(
        %dataset, %ds, status = %metrics.status, rows_in = metrics.rows_in,
        valid = metrics.rows_out, invalid = metrics.invalid_rows,
        has_failure_delta = metrics.has_failure_delta, "validated"
    );
    Ok(metrics)
}

/// The raw file and the raw files its foreign keys point at, found in the
/// landing area (not read yet).
struct Input {
    dataset: Dataset,
    ds: NaiveDate,
    raw_key: String,
    raw_url: String,
    size: u64,
    references: Vec<(Dataset, String, u64)>,
}

impl Input {
    fn find(ctx: &Context, dataset: Dataset, ds: NaiveDate) -> Result<Self> {
        let raw_key = dataset.raw_key(ds);
        let raw_url = ctx.landing.url(&raw_key);
        let size = (ctx.landing.size(&raw_key)?)
            .ok_or_else(|| exit::nothing_to_do(format!("no raw file at {raw_url}")))?;
        let references = dataset
            .references()
            .into_iter()
            .map(|target| {
                let key = target.raw_key(ds);
                let size = ctx.landing.size(&key)?.ok_or_else(|| {
                    exit::nothing_to_do(format!(
                        "cannot check foreign keys: upstream {target} file {} is absent",
                        ctx.landing.url(&key)
                    ))
                })?;
                Ok((target, key, size))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            dataset,
            ds,
            raw_key,
            raw_url,
            size,
            references,
        })
    }

    /// What the outcome depends on: the settings, the rules and a fast
    /// non-cryptographic hash of every input file, streamed (it only tells
    /// whether an input changed).
    fn fingerprint(&self, ctx: &Context, max_invalid_ratio: f64) -> Result<String> {
        let mut fingerprint = format!(
            "size={} max_invalid_ratio={max_invalid_ratio} rules={RULES_VERSION} contract=xxh3:{:032x}",
            self.size,
            xxh3_128(self.dataset.contract_digest().as_bytes())
        );
        let raw = (self.dataset, &self.raw_key);
        let references = self.references.iter().map(|(d, key, _)| (*d, key));
        for (name, key) in std::iter::once(raw).chain(references) {
            let mut hashed = Xxh3Writer(Xxh3::new());
            if ctx.landing.copy_to(key, &mut hashed)?.is_none() {
                let url = ctx.landing.url(key);
                return Err(exit::transient(format!("{url} vanished")));
            }
            let hash = hashed.0.digest128();
            fingerprint.push_str(&format!(" {name}=xxh3:{hash:032x}"));
        }
        Ok(fingerprint)
    }

    fn batches<'a>(&'a self, ctx: &'a Context) -> BatchPlan<'a> {
        BatchPlan {
            store: ctx.landing.as_ref(),
            key: &self.raw_key,
            format: self.dataset.format(),
            size: self.size,
            batch_bytes: ctx.memory.batch_bytes(),
            max_decompressed_bytes: ctx.limits.max_decompressed_bytes,
            only: None,
        }
    }
}

/// Hashes what is written to it.
struct Xxh3Writer(Xxh3);

impl std::io::Write for Xxh3Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The metrics of an earlier validation of the same inputs whose slices
/// are still in place.
fn reuse(ctx: &Context, stage: &Stage) -> Result<Option<TaskMetrics>> {
    let (dataset, ds) = (stage.dataset, stage.ds);
    let slices_intact = |done: &TaskMetrics| match Slices::of(done) {
        Some(recorded) => slices::intact(recorded, ctx.landing.as_ref(), dataset, ds),
        None => Ok(false),
    };
    let Some(mut metrics) = stage.reusable(ctx, slices_intact)? else {
        return Ok(None);
    };
    info!(%dataset, %ds, "this exact file was validated already; reusing the result");
    // A retry after a crash must still raise the alert its first attempt
    // died before sending; whether a pattern is new is asked afresh.
    metrics.new_signatures =
        ctx.metadata
            .new_signatures(dataset.name(), ds, ctx.airflow.run_id.as_deref())?;
    metrics.has_failure_delta = !metrics.new_signatures.is_empty();
    Ok(Some(metrics))
}

/// The keys of each referenced raw file, read a batch at a time. A file
/// that cannot be read, or lacks its key column, rejects the check.
fn read_references(ctx: &Context, input: &Input) -> Result<References> {
    let mut references = References::new();
    for (target, key, size) in &input.references {
        let key_column = [target.key()];
        let plan = BatchPlan {
            key,
            format: target.format(),
            size: *size,
            only: Some(&key_column),
            ..input.batches(ctx)
        };
        let mut keys: Option<KeySet> = None;
        let read = plan.for_each(&mut |frame, expected_rows| {
            let keys = keys.get_or_insert_with(|| KeySet::with_capacity(expected_rows));
            frame
                .column(target.key())
                .and_then(|column| keys.extend(column))
                .map_err(|e| Rejection::unreadable(e.to_string()))
        })?;
        if let Err(rejection) = read {
            return Err(exit::rejected(format!(
                "cannot check foreign keys: upstream {target} file is unusable: {}",
                rejection.reason
            )));
        }
        let keys = keys.unwrap_or_default();
        info!(dataset = %input.dataset, %target, keys = keys.len(), "read the referenced keys");
        references.insert(target.name(), keys);
    }
    Ok(references)
}

/// A file checked to its end: the verdict, the volume check, and the
/// slices written so far (discarded when the verdict rejects it).
struct Checked {
    verdict: Verdict,
    volume: Option<VolumeCheck>,
    valid: SliceFile,
    quarantine: SliceFile,
}

/// Reads, checks and splits the file a batch at a time.
fn check(
    ctx: &Context,
    input: &Input,
    references: &References,
    max_invalid_ratio: f64,
) -> FileResult<Checked> {
    let dataset = input.dataset;
    if input.size > ctx.limits.max_file_bytes {
        return Ok(Err(Rejection::unreadable(format!(
            "file is {} bytes, over the limit of {} (PIPELINE_MAX_FILE_BYTES)",
            input.size, ctx.limits.max_file_bytes
        ))));
    }
    let mut valid = SliceFile::new(&split::valid_schema(dataset))?;
    let mut quarantine = SliceFile::new(&split::quarantine_schema(dataset))?;
    let mut validator: Option<Validator> = None;
    let mut batches = 0u64;
    let plan = input.batches(ctx);
    let read = plan.for_each(&mut |frame, expected_rows| {
        let validator = validator
            .get_or_insert_with(|| Validator::new(dataset, input.ds, references, expected_rows));
        let checked = validator.check(frame)?;
        let pushed = valid
            .push(checked.valid)
            .and_then(|()| quarantine.push(checked.quarantine));
        batches += 1;
        if batches > 1 {
            info!(%dataset, batch = batches, rows = valid.rows() + quarantine.rows(), "checked a batch");
        }
        pushed.map_err(|e| Rejection::unreadable(e.to_string()))
    })?;
    if let Err(rejection) = read {
        return Ok(Err(rejection));
    }
    let validator = validator.expect("a readable file has a first batch");
    let rows = validator.rows_in();
    let volume = volume(ctx, dataset, input.ds, rows)?;
    let outside = volume.as_ref().filter(|v| !v.within);
    let tolerance = Tolerance {
        max_invalid_ratio,
        rejected_by: outside
            .filter(|v| v.severity.is_error())
            .map(|v| format!("volume {} rows, expected {}", v.rows, v.expected)),
    };
    let verdict = match validator.finish(tolerance) {
        Ok(verdict) => verdict,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if let Some(label) = &verdict.rejection {
        // Rejected over its tolerance: every row goes to quarantine, read
        // again by a fresh validator, so that memory stays bounded.
        quarantine = SliceFile::new(&split::quarantine_schema(dataset))?;
        let mut again = Validator::new(dataset, input.ds, references, rows as usize);
        let read = plan.for_each(&mut |frame, _| {
            let rows = again.quarantine_all(frame, label)?;
            quarantine
                .push(rows)
                .map_err(|e| Rejection::unreadable(e.to_string()))
        })?;
        if let Err(rejection) = read {
            return Ok(Err(rejection));
        }
    }
    Ok(Ok(Checked {
        verdict,
        volume,
        valid,
        quarantine,
    }))
}

/// The file's rows against the previous ds's, if the contract declares a
/// band and the previous ds was validated (not rejected).
fn volume(
    ctx: &Context,
    dataset: Dataset,
    ds: NaiveDate,
    rows: u64,
) -> Result<Option<VolumeCheck>> {
    let (Some(band), Some(previous_ds)) = (dataset.volume(), ds.pred_opt()) else {
        return Ok(None);
    };
    let previous = ctx
        .validated(dataset, previous_ds)?
        .filter(|m| m.status != Status::Rejected);
    Ok(previous.map(|m| VolumeCheck {
        previous_ds: previous_ds.to_string(),
        previous_rows: m.rows_in,
        rows,
        expected: band.to_string(),
        within: band.accepts(rows, m.rows_in),
        severity: band.severity,
    }))
}

/// Writes both slices of a checked file and puts its counts in `metrics`.
fn write_split(
    ctx: &Context,
    metrics: &mut TaskMetrics,
    input: &Input,
    checked: Checked,
    max_invalid_ratio: f64,
) -> Result<(Vec<CheckResult>, ValidateDetails)> {
    let Checked {
        verdict,
        volume,
        valid,
        quarantine,
    } = checked;
    let summary = verdict.summary;
    let quarantined = quarantine.rows();
    metrics.rows_in = verdict.rows_in;
    metrics.invalid_rows = quarantined;
    for r in &summary.results {
        metrics.add_failed(r.check, r.failed_rows);
    }
    metrics.failed.retain(|_, n| *n > 0);
    let valid = match verdict.rejection {
        Some(_) => {
            let why = match summary.rejected_by.is_empty() {
                true => format!(
                    "{} of {} rows failed checks, over the tolerance of {max_invalid_ratio}",
                    summary.failing, verdict.rows_in
                ),
                false => format!(
                    "the contract rejects the file: {}",
                    summary.rejected_by.join(", ")
                ),
            };
            reject(metrics, format!("{}: {why}", input.raw_url));
            None
        }
        None => {
            metrics.rows_out = valid.rows();
            metrics.status = match quarantined {
                0 => Status::Validated,
                _ => Status::Quarantined,
            };
            Some(valid.finish()?)
        }
    };
    let quarantine = (quarantined > 0).then(|| quarantine.finish()).transpose()?;
    let slices = slices::write(ctx, metrics, input.dataset, input.ds, valid, quarantine)?;
    let details = ValidateDetails {
        failures: Some(summary.failures),
        slices,
        warnings: summary.warnings,
        volume,
    };
    Ok((summary.results, details))
}

fn reject(metrics: &mut TaskMetrics, error: String) {
    metrics.status = Status::Rejected;
    metrics.exit_code = ExitCode::DataRejected.code();
    metrics.error = Some(error);
}
