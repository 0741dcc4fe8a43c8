//! `validate DATASET --ds D`: check a raw file and split it into a valid
//! slice and a quarantine slice whose rows name every check they failed.
//!
//! Every row read ends up in exactly one slice. A file that cannot be read,
//! has the wrong columns or too many invalid rows is rejected (exit 65) and
//! quarantined whole.

pub mod checks;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};
use xxhash_rust::xxh3::xxh3_128;

use crate::catalog::{Dataset, Zone};
use crate::cli::{Limits, ValidateOptions};
use crate::context::{Context, Stage};
use crate::exit::{self, ExitCode};
use crate::formats;
use crate::metadata::CheckResult;
use crate::metrics::TaskMetrics;
use crate::storage::{ObjectBytes, ObjectStore, md5_hex};
use checks::{Check, flag, typed};

/// Bump when checks change, so files validated by older rules are redone.
const RULES_VERSION: u32 = 1;
const INVALID: &str = "__invalid";
/// Name of the quarantine column listing the failed checks.
pub const FAILED_CHECKS: &str = "failed_checks";
const SAMPLE_KEYS: usize = 3;

/// Why a whole file was rejected.
struct Rejection {
    check: &'static str,
    column: String,
    rule: &'static str,
    reason: String,
}

/// The split of a readable file with the right columns.
struct Split {
    rows_in: u64,
    /// Rows failing at least one check.
    failing: u64,
    /// `None` when the file is rejected for too many failing rows.
    valid: Option<ValidSlice>,
    quarantine: DataFrame,
    results: Vec<CheckResult>,
    failures: Vec<serde_json::Value>,
}

/// What validate left in the landing area for a ds: each slice, or `None`
/// where it positively wrote none (no valid slice for a rejected file, no
/// quarantine slice for a clean one). Recorded in stage_log, so that reuse
/// can check the slices are still there and upload knows what to publish
/// and what to remove.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Slices {
    pub valid: Option<SliceRecord>,
    pub quarantine: Option<SliceRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceRecord {
    pub key: String,
    pub bytes: u64,
    pub md5: String,
}

impl Slices {
    const FIELD: &str = "slices";

    /// The slices a validate run recorded, if it recorded them.
    pub fn of(metrics: &TaskMetrics) -> Option<Self> {
        serde_json::from_value(metrics.extra.get(Self::FIELD)?.clone()).ok()
    }

    pub fn get(&self, zone: Zone) -> Option<&SliceRecord> {
        match zone {
            Zone::Valid => self.valid.as_ref(),
            _ => self.quarantine.as_ref(),
        }
    }

    fn set(&mut self, zone: Zone, record: Option<SliceRecord>) {
        match zone {
            Zone::Valid => self.valid = record,
            _ => self.quarantine = record,
        }
    }

    /// Whether every slice is in `store` as recorded, and no other.
    fn intact(&self, store: &dyn ObjectStore, dataset: Dataset, ds: NaiveDate) -> Result<bool> {
        for zone in [Zone::Valid, Zone::Quarantine] {
            let key = dataset.object_key(zone, ds);
            let found = match self.get(zone) {
                Some(slice) => store
                    .stat(&key)?
                    .is_some_and(|s| s.bytes == slice.bytes && s.md5.as_ref() == Some(&slice.md5)),
                None => !store.exists(&key)?,
            };
            if !found {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

pub fn run(
    ctx: &mut Context,
    dataset: Dataset,
    ds: NaiveDate,
    options: &ValidateOptions,
    force: bool,
) -> Result<TaskMetrics> {
    let mut clock = Instant::now();
    let raw_key = dataset.raw_key(ds);
    let raw_url = ctx.landing.url(&raw_key);
    let size = ctx
        .landing
        .size(&raw_key)?
        .ok_or_else(|| exit::nothing_to_do(format!("no raw file at {raw_url}")))?;
    let oversized = size > ctx.limits.max_file_bytes;
    let raw = if oversized {
        None
    } else {
        Some(
            ctx.landing
                .get_bytes(&raw_key)?
                .ok_or_else(|| exit::nothing_to_do(format!("no raw file at {raw_url}")))?,
        )
    };
    let reference_bytes = reference_files(ctx, dataset, ds)?;
    // A fast non-cryptographic hash: it only tells whether an input changed,
    // the file itself or a file its foreign keys are checked against.
    let mut fingerprint = format!(
        "size={size} max_invalid_ratio={} rules={RULES_VERSION}",
        options.max_invalid_ratio
    );
    for (name, bytes) in std::iter::once((dataset, raw.as_deref().unwrap_or_default()))
        .chain(reference_bytes.iter().map(|(d, b)| (*d, &**b)))
    {
        fingerprint.push_str(&format!(" {name}=xxh3:{:032x}", xxh3_128(bytes)));
    }
    let stage = Stage::start("validate", dataset, ds, fingerprint);
    let slices_intact = |done: &TaskMetrics| match Slices::of(done) {
        Some(slices) => slices.intact(ctx.landing.as_ref(), dataset, ds),
        None => Ok(false),
    };
    if !force && let Some(mut metrics) = stage.reusable(ctx, slices_intact)? {
        info!(%dataset, %ds, "this exact file was validated already; reusing the result");
        // A retry after a crash must still raise the alert its first attempt
        // died before sending; whether a pattern is new is asked afresh.
        metrics.new_signatures =
            ctx.metadata
                .new_signatures(dataset, ds, stage.metrics().run_id.as_deref())?;
        metrics.has_failure_delta = !metrics.new_signatures.is_empty();
        return Ok(metrics);
    }

    let mut metrics = stage.metrics();
    metrics.lap("read", &mut clock);
    let slices;

    let parsed = match &raw {
        None => Err(anyhow::anyhow!(
            "file is {size} bytes, over the limit of {} (PIPELINE_MAX_FILE_BYTES)",
            ctx.limits.max_file_bytes
        )),
        Some(bytes) => formats::read(bytes, dataset.format(), &ctx.limits),
    };
    drop(raw);
    metrics.lap("parse", &mut clock);
    let references = match &parsed {
        Ok(_) => parse_references(&reference_bytes, &ctx.limits)?,
        Err(_) => HashMap::new(),
    };
    drop(reference_bytes);
    metrics.lap("read_references", &mut clock);
    let outcome = match parsed {
        Ok(frame) => split(dataset, ds, frame, &references, options.max_invalid_ratio),
        Err(e) => Err(Rejection {
            check: "file",
            column: "*".into(),
            rule: "readable",
            reason: e.to_string(),
        }),
    };

    metrics.lap("check", &mut clock);
    let results = match outcome {
        Ok(split) => {
            let quarantined = split.quarantine.height() as u64;
            metrics.rows_in = split.rows_in;
            metrics.rows_out = split.valid.as_ref().map_or(0, |v| v.rows);
            metrics.invalid_rows = quarantined;
            for r in &split.results {
                metrics.add_failed(r.check, r.failed_rows);
            }
            metrics.failed.retain(|_, n| *n > 0);
            metrics
                .extra
                .insert("failures".into(), split.failures.into());
            if split.valid.is_none() {
                metrics.status = "rejected".into();
                metrics.exit_code = ExitCode::DataRejected.code();
                metrics.error = Some(format!(
                    "{raw_url}: {} of {} rows failed checks, over the tolerance of {}",
                    split.failing, split.rows_in, options.max_invalid_ratio
                ));
            } else {
                metrics.status = if quarantined == 0 {
                    "validated"
                } else {
                    "quarantined"
                }
                .into();
            }
            let valid_bytes = split.valid.as_ref().map(ValidSlice::parquet).transpose()?;
            let quarantine_bytes = (quarantined > 0)
                .then(|| formats::parquet(&split.quarantine))
                .transpose()?;
            slices = publish(
                ctx,
                &mut metrics,
                dataset,
                ds,
                valid_bytes,
                quarantine_bytes,
            )?;
            split.results
        }
        Err(rejection) => {
            warn!(%dataset, %ds, reason = %rejection.reason, "file rejected");
            metrics.status = "rejected".into();
            metrics.exit_code = ExitCode::DataRejected.code();
            metrics.error = Some(format!("{raw_url}: {}", rejection.reason));
            metrics.add_failed(rejection.check, 1);
            let whole = quarantine_by_reference(ctx, &raw_key, size, &rejection)?;
            let whole = formats::parquet(&whole)?;
            slices = publish(ctx, &mut metrics, dataset, ds, None, Some(whole))?;
            vec![CheckResult {
                check: rejection.check,
                column: rejection.column,
                rule: rejection.rule.to_string(),
                failed_rows: 1,
            }]
        }
    };

    metrics.lap("write", &mut clock);
    metrics
        .extra
        .insert(Slices::FIELD.into(), serde_json::to_value(&slices)?);
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

/// Bytes of a rejected file kept in its quarantine row; the rest is there
/// by reference (its URL, size and MD5), so a huge or hostile file is never
/// loaded whole into one cell.
const QUARANTINE_COPY_BYTES: usize = 1 << 20;

/// The one quarantine row of a rejected file.
fn quarantine_by_reference(
    ctx: &Context,
    raw_key: &str,
    size: u64,
    rejection: &Rejection,
) -> Result<DataFrame> {
    let gone = || {
        exit::transient(format!(
            "{} vanished while validated",
            ctx.landing.url(raw_key)
        ))
    };
    let md5 = ctx.landing.md5(raw_key)?.ok_or_else(gone)?;
    let copied = ctx
        .landing
        .get_prefix(raw_key, QUARANTINE_COPY_BYTES)?
        .ok_or_else(gone)?;
    Ok(df!(
        "source_file" => [ctx.landing.url(raw_key)],
        FAILED_CHECKS => [format!("{}:{}", rejection.check, rejection.reason)],
        "content_bytes" => [size],
        "content_md5" => [md5],
        "content" => [copied.as_slice()],
    )?)
}

/// Writes each slice's Parquet and names it in the outputs, or removes a
/// stale one from an earlier validation; returns what it wrote.
fn publish(
    ctx: &Context,
    metrics: &mut TaskMetrics,
    dataset: Dataset,
    ds: NaiveDate,
    valid: Option<Vec<u8>>,
    quarantine: Option<Vec<u8>>,
) -> Result<Slices> {
    let mut slices = Slices::default();
    for (zone, name, parquet) in [
        (Zone::Valid, "valid", valid),
        (Zone::Quarantine, "quarantine", quarantine),
    ] {
        let key = dataset.object_key(zone, ds);
        let record = match parquet {
            Some(bytes) => {
                let md5 = md5_hex(&bytes);
                ctx.landing.put_with_md5(&key, &bytes, &md5)?;
                metrics.outputs.insert(name.into(), ctx.landing.url(&key));
                Some(SliceRecord {
                    key,
                    bytes: bytes.len() as u64,
                    md5,
                })
            }
            None => {
                ctx.landing.delete(&key)?;
                None
            }
        };
        slices.set(zone, record);
    }
    Ok(slices)
}

/// The raw files of the datasets this one's foreign keys point at, for the
/// same ds.
fn reference_files(
    ctx: &Context,
    dataset: Dataset,
    ds: NaiveDate,
) -> Result<Vec<(Dataset, ObjectBytes)>> {
    dataset
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
        .collect()
}

/// The keys of each referenced file.
fn parse_references(
    files: &[(Dataset, ObjectBytes)],
    limits: &Limits,
) -> Result<HashMap<Dataset, Series>> {
    files
        .iter()
        .map(|(target, bytes)| {
            let keys = formats::read(bytes, target.format(), limits)
                .and_then(|f| {
                    let column = f.column(target.key())?.as_materialized_series().clone();
                    Ok(column.cast(&DataType::String)?.drop_nulls())
                })
                .map_err(|e| {
                    exit::rejected(format!(
                        "cannot check foreign keys: upstream {target} file is unusable: {e}"
                    ))
                })?;
            Ok((*target, keys))
        })
        .collect()
}

/// The valid rows, kept as the typed columns of every row and a mask, so
/// that the slice is filtered row group by row group as it is written
/// rather than copied whole first.
struct ValidSlice {
    typed: DataFrame,
    keep: BooleanChunked,
    rows: u64,
}

impl ValidSlice {
    fn parquet(&self) -> Result<Vec<u8>> {
        formats::parquet_where(&self.typed, &self.keep)
    }
}

fn split(
    dataset: Dataset,
    ds: NaiveDate,
    raw: DataFrame,
    references: &HashMap<Dataset, Series>,
    max_invalid_ratio: f64,
) -> std::result::Result<Split, Rejection> {
    check_columns(dataset, &raw)?;
    let rows_in = raw.height() as u64;
    let schema = raw.schema().clone();
    let typed_columns: Vec<Expr> = dataset
        .columns()
        .iter()
        .map(|spec| {
            let raw_type = schema.get(spec.name).unwrap_or(&DataType::Null);
            checks::cast_to_type(spec, raw_type).alias(typed(spec.name))
        })
        .collect();
    let plan = checks::plan(dataset, ds, references);
    let flags: Vec<Expr> = plan
        .iter()
        .enumerate()
        .map(|(i, c)| c.fails.clone().alias(flag(i)))
        .collect();
    let any_failed = (0..plan.len()).map(|i| col(flag(i))).reduce(|a, b| a.or(b));
    let work = raw
        .lazy()
        .with_columns(typed_columns)
        .with_columns(flags)
        .with_column(any_failed.unwrap_or(lit(false)).alias(INVALID))
        .collect()
        .map_err(|e| Rejection {
            check: "schema",
            column: "*".into(),
            rule: "castable columns",
            reason: format!("columns cannot be cast to their types: {}", first_line(&e)),
        })?;

    let mut results = Vec::with_capacity(plan.len());
    let mut failures = Vec::new();
    for (i, check) in plan.iter().enumerate() {
        let failed = count_true(&work, &flag(i));
        if check.check == "type_cast" && failed > 0 {
            let present = rows_in - work.column(check.column).map_or(0, |c| c.null_count()) as u64;
            if failed == present {
                return Err(Rejection {
                    check: "schema",
                    column: check.column.to_string(),
                    rule: "castable columns",
                    reason: format!("column {} has no value {}", check.column, check.rule),
                });
            }
        }
        if failed > 0 {
            failures.push(failure_summary(dataset, check, failed, &work, i));
        }
        results.push(check.result(failed));
    }

    let failing = count_true(&work, INVALID);
    let over_tolerance = failing as f64 > max_invalid_ratio * rows_in as f64;
    let to_reason = |rows: LazyFrame, extra: Option<Expr>| -> PolarsResult<DataFrame> {
        let mut labels: Vec<Expr> = plan
            .iter()
            .enumerate()
            .map(|(i, c)| when(col(flag(i))).then(lit(c.label())).otherwise(lit(NULL)))
            .collect();
        labels.extend(extra);
        let mut out: Vec<Expr> = dataset
            .columns()
            .iter()
            .map(|c| col(c.name).cast(DataType::String))
            .collect();
        out.push(concat_str(labels, ";", true).alias(FAILED_CHECKS));
        rows.select(out).collect()
    };
    let internal = |e: PolarsError| Rejection {
        check: "file",
        column: "*".into(),
        rule: "readable",
        reason: first_line(&e),
    };
    let (valid, quarantine) = if over_tolerance {
        let note = when(col(INVALID).not())
            .then(lit("rejected:invalid_ratio"))
            .otherwise(lit(NULL));
        (None, to_reason(work.lazy(), Some(note)).map_err(internal)?)
    } else {
        let invalid = mask(&work, INVALID).map_err(internal)?;
        let quarantine = work
            .select(
                (dataset.columns().iter().map(|c| c.name.to_string()))
                    .chain((0..plan.len()).map(flag)),
            )
            .and_then(|rows| rows.filter(&invalid))
            .and_then(|rows| to_reason(rows.lazy(), None))
            .map_err(internal)?;
        let typed = work
            .select(dataset.columns().iter().map(|c| typed(c.name)))
            .and_then(|mut typed| {
                let names: Vec<&str> = dataset.columns().iter().map(|c| c.name).collect();
                typed.set_column_names(&names)?;
                Ok(typed)
            })
            .map_err(internal)?;
        let keep = !invalid;
        let valid = ValidSlice {
            typed,
            keep,
            rows: rows_in - failing,
        };
        (Some(valid), quarantine)
    };
    Ok(Split {
        rows_in,
        failing,
        valid,
        quarantine,
        results,
        failures,
    })
}

fn first_line(e: &PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// A flag column as one chunk. Filtering a column by a one-chunk mask
/// slices the mask to the column's chunks; a mask chunked differently from
/// the column would make Polars copy the column into one chunk first.
fn mask(frame: &DataFrame, name: &str) -> PolarsResult<BooleanChunked> {
    Ok(frame.column(name)?.bool()?.rechunk().into_owned())
}

fn count_true(frame: &DataFrame, name: &str) -> u64 {
    frame
        .column(name)
        .ok()
        .and_then(|c| c.bool().ok().map(|b| b.num_trues() as u64))
        .unwrap_or(0)
}

/// What a DQ alert shows for a failing check: the pattern, the count and a
/// few offending keys.
fn failure_summary(
    dataset: Dataset,
    check: &Check,
    failed: u64,
    work: &DataFrame,
    index: usize,
) -> serde_json::Value {
    let samples: Vec<Option<String>> = mask(work, &flag(index))
        .and_then(|failed| work.column(dataset.key())?.filter(&failed))
        .and_then(|keys| keys.head(Some(SAMPLE_KEYS)).cast(&DataType::String))
        .ok()
        .and_then(|keys| {
            let keys = keys.str().ok()?;
            Some(keys.iter().map(|v| v.map(str::to_string)).collect())
        })
        .unwrap_or_default();
    let result = check.result(failed);
    json!({
        "check": result.check,
        "column": result.column,
        "rule": result.rule,
        "failed_rows": failed,
        "signature": result.signature(dataset),
        "sample_keys": samples,
    })
}

/// The file must have exactly the catalogue's columns (in any order).
fn check_columns(dataset: Dataset, raw: &DataFrame) -> std::result::Result<(), Rejection> {
    let have: HashSet<&str> = raw.get_column_names().iter().map(|n| n.as_str()).collect();
    let want: HashSet<&str> = dataset.columns().iter().map(|c| c.name).collect();
    let mut missing: Vec<&str> = want.difference(&have).copied().collect();
    let mut extra: Vec<&str> = have.difference(&want).copied().collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    extra.sort_unstable();
    let column = format!(
        "missing=[{}] extra=[{}]",
        missing.join(","),
        extra.join(",")
    );
    Err(Rejection {
        check: "schema",
        reason: format!("columns do not match the catalogue: {column}"),
        column,
        rule: "exact columns",
    })
}
