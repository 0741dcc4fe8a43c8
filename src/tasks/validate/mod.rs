//! `validate DATASET --ds D`: check a raw file and split it into a valid
//! slice and a quarantine slice whose rows name every check they failed.
//!
//! Every row read ends up in exactly one slice. A file that cannot be read,
//! has the wrong columns or too many invalid rows is rejected (exit 65) and
//! quarantined whole. The checks and the split are `checks`; this module
//! reads the inputs, writes the slices and records the outcome.

mod quarantine;
mod slices;

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;
use tracing::{info, warn};
use xxhash_rust::xxh3::xxh3_128;

use crate::catalog::Dataset;
use crate::checks::CheckResult;
use crate::checks::split::{self, Rejection, Split, Tolerance, ValidSlice};
use crate::cli::ValidateArgs;
use crate::context::{Context, Stage};
use crate::exit::{self, ExitCode};
use crate::formats;
use crate::metrics::{Details, Slices, Status, Task, TaskMetrics, ValidateDetails, VolumeCheck};
use crate::storage::ObjectBytes;

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
    let input = Input::read(ctx, dataset, ds)?;
    let fingerprint = input.fingerprint(options.max_invalid_ratio);
    let stage = Stage::start(Task::Validate, dataset, ds, fingerprint);
    if !*force && let Some(metrics) = reuse(ctx, &stage)? {
        return Ok(metrics);
    }

    let mut metrics = stage.metrics(ctx);
    metrics.lap("read", &mut clock);
    let (raw_key, raw_url, size) = (input.raw_key.clone(), input.raw_url.clone(), input.size);
    let (outcome, volume) = check(
        ctx,
        &mut metrics,
        &mut clock,
        input,
        options.max_invalid_ratio,
    )?;
    metrics.lap("check", &mut clock);
    let (mut results, mut details) = match outcome {
        Ok(split) => write_split(
            ctx,
            &mut metrics,
            dataset,
            ds,
            split,
            &raw_url,
            options.max_invalid_ratio,
        )?,
        Err(rejection) => {
            warn!(%dataset, %ds, reason = %rejection.reason, "file rejected");
            reject(&mut metrics, format!("{raw_url}: {}", rejection.reason));
            metrics.add_failed(rejection.check, 1);
            let whole = quarantine::rejected_file(ctx, &raw_key, size, &rejection)?;
            let whole = formats::parquet(&whole)?;
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
    if let Some(volume) = volume {
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
        details.volume = Some(volume);
    }
    metrics.details = Some(Details::Validate(details));

    let new_signatures = ctx.metadata.record_checks(
        dataset,
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

/// The raw file (unless it is over the size limit) and the raw files its
/// foreign keys point at.
struct Input {
    dataset: Dataset,
    ds: NaiveDate,
    raw_key: String,
    raw_url: String,
    size: u64,
    raw: Option<ObjectBytes>,
    references: Vec<(Dataset, ObjectBytes)>,
    max_file_bytes: u64,
}

impl Input {
    fn read(ctx: &Context, dataset: Dataset, ds: NaiveDate) -> Result<Self> {
        let raw_key = dataset.raw_key(ds);
        let raw_url = ctx.landing.url(&raw_key);
        let absent = || exit::nothing_to_do(format!("no raw file at {raw_url}"));
        let size = ctx.landing.size(&raw_key)?.ok_or_else(absent)?;
        let raw = match size > ctx.limits.max_file_bytes {
            true => None,
            false => Some(ctx.landing.get_bytes(&raw_key)?.ok_or_else(absent)?),
        };
        let references = dataset
            .references()
            .into_iter()
            .map(|target| {
                let key = target.raw_key(ds);
                let bytes = ctx.landing.get_bytes(&key)?.ok_or_else(|| {
                    exit::nothing_to_do(format!(
                        "cannot check foreign keys: upstream {target} file {} is absent",
                        ctx.landing.url(&key)
                    ))
                })?;
                Ok((target, bytes))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            dataset,
            ds,
            raw_key,
            raw_url,
            size,
            raw,
            references,
            max_file_bytes: ctx.limits.max_file_bytes,
        })
    }

    /// What the outcome depends on: the settings, the rules and a fast
    /// non-cryptographic hash of every input file (it only tells whether an
    /// input changed).
    fn fingerprint(&self, max_invalid_ratio: f64) -> String {
        let mut fingerprint = format!(
            "size={} max_invalid_ratio={max_invalid_ratio} rules={RULES_VERSION} contract=xxh3:{:032x}",
            self.size,
            xxh3_128(self.dataset.contract_digest().as_bytes())
        );
        let raw = (self.dataset, self.raw.as_deref().unwrap_or_default());
        let references = self.references.iter().map(|(d, b)| (*d, &**b));
        for (name, bytes) in std::iter::once(raw).chain(references) {
            fingerprint.push_str(&format!(" {name}=xxh3:{:032x}", xxh3_128(bytes)));
        }
        fingerprint
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
            .new_signatures(dataset, ds, ctx.airflow.run_id.as_deref())?;
    metrics.has_failure_delta = !metrics.new_signatures.is_empty();
    Ok(Some(metrics))
}

/// Parses the file and the referenced keys, and splits the rows.
fn check(
    ctx: &Context,
    metrics: &mut TaskMetrics,
    clock: &mut Instant,
    input: Input,
    max_invalid_ratio: f64,
) -> Result<(Result<Split, Rejection>, Option<VolumeCheck>)> {
    let limit = ctx.limits.max_decompressed_bytes;
    let parsed = match &input.raw {
        None => Err(anyhow::anyhow!(
            "file is {} bytes, over the limit of {} (PIPELINE_MAX_FILE_BYTES)",
            input.size,
            input.max_file_bytes
        )),
        Some(bytes) => formats::read(bytes, input.dataset.format(), limit),
    };
    drop(input.raw);
    metrics.lap("parse", clock);
    let references = match &parsed {
        Ok(_) => parse_references(&input.references, limit)?,
        Err(_) => HashMap::new(),
    };
    drop(input.references);
    metrics.lap("read_references", clock);
    let frame = match parsed {
        Ok(frame) => frame,
        Err(e) => return Ok((Err(Rejection::unreadable(e.to_string())), None)),
    };
    let volume = volume(ctx, input.dataset, input.ds, frame.height() as u64)?;
    let outside = volume.as_ref().filter(|v| !v.within);
    let tolerance = Tolerance {
        max_invalid_ratio,
        rejected_by: outside
            .filter(|v| v.severity.is_error())
            .map(|v| format!("volume {} rows, expected {}", v.rows, v.expected)),
    };
    let split = split::split(input.dataset, input.ds, frame, &references, tolerance);
    Ok((split, volume))
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

/// The keys of each referenced file.
fn parse_references(
    files: &[(Dataset, ObjectBytes)],
    max_decompressed_bytes: u64,
) -> Result<HashMap<&'static str, Series>> {
    files
        .iter()
        .map(|(target, bytes)| {
            let keys = formats::read(bytes, target.format(), max_decompressed_bytes)
                .and_then(|f| {
                    let column = f.column(target.key())?.as_materialized_series().clone();
                    Ok(column.cast(&DataType::String)?.drop_nulls())
                })
                .map_err(|e| {
                    exit::rejected(format!(
                        "cannot check foreign keys: upstream {target} file is unusable: {e}"
                    ))
                })?;
            Ok((target.name(), keys))
        })
        .collect()
}

/// Writes both slices of a checked file and puts its counts in `metrics`.
fn write_split(
    ctx: &Context,
    metrics: &mut TaskMetrics,
    dataset: Dataset,
    ds: NaiveDate,
    split: Split,
    raw_url: &str,
    max_invalid_ratio: f64,
) -> Result<(Vec<CheckResult>, ValidateDetails)> {
    let quarantined = split.quarantine.height() as u64;
    metrics.rows_in = split.rows_in;
    metrics.rows_out = split.valid.as_ref().map_or(0, |v| v.rows);
    metrics.invalid_rows = quarantined;
    for r in &split.summary.results {
        metrics.add_failed(r.check, r.failed_rows);
    }
    metrics.failed.retain(|_, n| *n > 0);
    metrics.status = match (&split.valid, quarantined) {
        (None, _) => {
            let why = match split.summary.rejected_by.is_empty() {
                true => format!(
                    "{} of {} rows failed checks, over the tolerance of {max_invalid_ratio}",
                    split.summary.failing, split.rows_in
                ),
                false => format!(
                    "the contract rejects the file: {}",
                    split.summary.rejected_by.join(", ")
                ),
            };
            reject(metrics, format!("{raw_url}: {why}"));
            Status::Rejected
        }
        (Some(_), 0) => Status::Validated,
        (Some(_), _) => Status::Quarantined,
    };
    let valid_bytes = split.valid.as_ref().map(ValidSlice::parquet).transpose()?;
    let quarantine_bytes = (quarantined > 0)
        .then(|| formats::parquet(&split.quarantine))
        .transpose()?;
    let slices = slices::write(ctx, metrics, dataset, ds, valid_bytes, quarantine_bytes)?;
    let details = ValidateDetails {
        failures: Some(split.summary.failures),
        slices,
        warnings: split.summary.warnings,
        volume: None,
    };
    Ok((split.summary.results, details))
}

fn reject(metrics: &mut TaskMetrics, error: String) {
    metrics.status = Status::Rejected;
    metrics.exit_code = ExitCode::DataRejected.code();
    metrics.error = Some(error);
}
