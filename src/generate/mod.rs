//! `generate DATASET --ds D`: synthetic data to raw-data/ in the landing area.

pub mod synth;

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use tracing::info;

use crate::catalog::Dataset;
use crate::cli::GenerateOptions;
use crate::context::{Context, now};
use crate::formats;
use crate::metadata::StageRecord;
use crate::metrics::TaskMetrics;
use synth::GenParams;

const STAGE: &str = "generate";

pub fn run(
    ctx: &Context,
    dataset: Dataset,
    ds: NaiveDate,
    options: &GenerateOptions,
    force: bool,
) -> Result<TaskMetrics> {
    let clock = Instant::now();
    let started_at = now();
    let params = GenParams {
        seed: options.seed,
        ds,
        scale_factor: options.scale_factor,
        defect_rate: options.defect_rate,
    };
    // Bump the trailing version when generated content changes for the same params.
    let fingerprint = format!(
        "seed={} scale_factor={} defect_rate={} generator=1",
        params.seed, params.scale_factor, params.defect_rate
    );
    let key = dataset.raw_key(ds);

    if !force
        && let Some(done) = ctx.metadata.stage(dataset.name(), ds, STAGE)?
        && done.fingerprint == fingerprint
        && ctx.landing.stat(&key)?.is_some()
    {
        info!(%dataset, %ds, "already generated with these parameters; skipping");
        let mut metrics: TaskMetrics = serde_json::from_value(done.metrics)?;
        metrics.reused = true;
        metrics.duration_ms = clock.elapsed().as_millis() as u64;
        return Ok(metrics);
    }

    let generated = synth::generate(dataset, &params)?;
    let mut frame = generated.frame;
    let bytes = formats::write(&mut frame, dataset.format())?;
    ctx.landing.put(&key, &bytes)?;

    let mut metrics = TaskMetrics::new(STAGE, Some(dataset.to_string()), Some(ds.to_string()));
    metrics.status = "generated".into();
    metrics.rows_out = frame.height() as u64;
    metrics.injected = generated.injected;
    metrics.outputs.insert("raw".into(), ctx.landing.url(&key));
    metrics.extra.insert("bytes".into(), bytes.len().into());
    metrics.duration_ms = clock.elapsed().as_millis() as u64;
    ctx.metadata.record_stage(
        dataset.name(),
        ds,
        STAGE,
        &StageRecord {
            fingerprint,
            status: metrics.status.clone(),
            metrics: serde_json::to_value(&metrics)?,
        },
        &started_at,
    )?;
    info!(%dataset, %ds, rows = metrics.rows_out, bytes = bytes.len(), "generated");
    Ok(metrics)
}
