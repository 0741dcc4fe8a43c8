//! `report --ds D`: the data-quality report of one ds, one self-contained
//! HTML page (like Great Expectations' Data Docs) published to the lake at
//! `reports/ds=D/index.html`. Per dataset: rows in, valid and quarantined,
//! every check against its tolerance with its trend over the last days,
//! the new failure signatures, sample quarantined rows and the lake files.
//! The page holds no timestamps, so a re-run with nothing new leaves it
//! as it was (`reused`).

mod html;

use anyhow::Result;
use chrono::{Duration, NaiveDate};

use crate::catalog::{Dataset, Zone};
use crate::checks::check_name;
use crate::cli::ReportArgs;
use crate::context::Context;
use crate::digest::md5_hex;
use crate::exit;
use crate::formats;
use crate::metadata::CheckDay;
use crate::metrics::{Details, ReportDetails, Status, Task, TaskMetrics};

/// Quarantined rows shown per dataset.
const SAMPLE_ROWS: usize = 5;

/// What the page shows of one dataset.
struct DatasetReport {
    dataset: Dataset,
    validated: TaskMetrics,
    history: Vec<CheckDay>,
    sample: Option<Sample>,
    valid_url: String,
    quarantine_url: String,
}

/// A few quarantined rows, every value as text.
struct Sample {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

pub(crate) fn run(ctx: &mut Context, args: &ReportArgs) -> Result<TaskMetrics> {
    let ds = args.ds;
    let mut metrics = ctx.metrics(Task::Report, None, Some(ds));
    let from = ds - Duration::days(i64::from(args.days) - 1);
    let mut reports = Vec::new();
    for &dataset in ctx.catalogue.datasets() {
        if let Some(report) = dataset_report(ctx, dataset, ds, from)? {
            reports.push(report);
        }
    }
    if reports.is_empty() {
        return Err(exit::nothing_to_do(format!(
            "nothing validated for {ds}: no data-quality report to write"
        )));
    }
    let page = html::page(ds, from, &reports);
    let key = format!("reports/ds={ds}/index.html");
    // Nothing changed since the last report (a re-run): leave it alone.
    let md5 = md5_hex(page.as_bytes());
    if ctx.lake.md5(&key)?.as_deref() == Some(md5.as_str()) {
        metrics.reused = true;
    } else {
        ctx.lake.put_with_md5(&key, page.as_bytes(), &md5)?;
    }
    metrics.status = Status::Reported;
    metrics.rows_in = reports.iter().map(|r| r.validated.rows_in).sum();
    metrics.rows_out = reports.iter().map(|r| r.validated.rows_out).sum();
    metrics.invalid_rows = reports.iter().map(|r| r.validated.invalid_rows).sum();
    metrics.writes("report", ctx.lake.url(&key));
    metrics.details = Some(Details::Report(ReportDetails {
        report_bytes: page.len() as u64,
        datasets: reports
            .iter()
            .map(|r| r.dataset.name().to_string())
            .collect(),
    }));
    Ok(metrics)
}

fn dataset_report(
    ctx: &Context,
    dataset: Dataset,
    ds: NaiveDate,
    from: NaiveDate,
) -> Result<Option<DatasetReport>> {
    let Some(validated) = ctx.validated(dataset, ds)? else {
        return Ok(None);
    };
    let quarantine_key = dataset.object_key(Zone::Quarantine, ds);
    Ok(Some(DatasetReport {
        dataset,
        history: ctx.metadata.check_history(dataset, from, ds)?,
        sample: sample(ctx, &quarantine_key)?,
        valid_url: ctx.lake.url(&dataset.object_key(Zone::Valid, ds)),
        quarantine_url: ctx.lake.url(&quarantine_key),
        validated,
    }))
}

/// The first quarantined rows of the ds, from the landing area.
fn sample(ctx: &Context, key: &str) -> Result<Option<Sample>> {
    let Some(bytes) = ctx.landing.get_bytes(key)? else {
        return Ok(None);
    };
    let frame = formats::parquet_head(&bytes, SAMPLE_ROWS)?;
    let columns: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    // A rejected file's row holds its first bytes, which need not be text.
    let texts: Vec<Vec<Option<String>>> = frame
        .columns()
        .iter()
        .map(|c| match c.cast(&polars::prelude::DataType::String) {
            Ok(text) if !c.dtype().is_binary() => text
                .str()
                .map(|s| s.iter().map(|v| v.map(str::to_string)).collect())
                .unwrap_or_default(),
            _ => vec![Some("(bytes)".to_string()); c.len()],
        })
        .collect();
    let rows = (0..frame.height())
        .map(|i| texts.iter().map(|column| column[i].clone()).collect())
        .collect();
    Ok(Some(Sample { columns, rows }))
}

/// The tolerance a check runs with, as the contract declares it.
fn tolerance(dataset: Dataset, check: &str, column: &str) -> String {
    let config = dataset
        .column(column)
        .and_then(|c| c.tests.iter().find(|t| check_name(t.rule) == check))
        .map(|t| t.config)
        .unwrap_or_default();
    let mut parts = vec![format!("{:?}", config.severity).to_lowercase()];
    if let Some(limit) = config.warn_if {
        parts.push(format!("warn_if {limit}"));
    }
    if let Some(limit) = config.error_if {
        parts.push(format!("error_if {limit}"));
    }
    parts.join(", ")
}
