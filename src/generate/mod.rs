//! `generate DATASET --ds D`: synthetic data to raw-data/ in the landing area.

pub mod synth;

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use tracing::info;

use crate::catalog::Dataset;
use crate::cli::GenerateOptions;
use crate::context::{Context, Stage};
use crate::formats;
use crate::metrics::TaskMetrics;
use synth::GenParams;

pub fn run(
    ctx: &Context,
    dataset: Dataset,
    ds: NaiveDate,
    options: &GenerateOptions,
    force: bool,
) -> Result<TaskMetrics> {
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
    let stage = Stage::start("generate", dataset, ds, fingerprint);
    let key = dataset.raw_key(ds);

    if !force
        && let Some(metrics) = stage.reusable(ctx)?
        && ctx.landing.exists(&key)?
    {
        info!(%dataset, %ds, "already generated with these parameters; skipping");
        return Ok(metrics);
    }

    let mut metrics = stage.metrics();
    let mut clock = Instant::now();
    let generated = synth::generate(dataset, &params)?;
    metrics.lap("generate", &mut clock);
    let mut frame = generated.frame;
    let bytes = formats::write(&mut frame, dataset.format())?;
    metrics.lap("serialize", &mut clock);
    ctx.landing.put(&key, &bytes)?;
    metrics.lap("write", &mut clock);

    metrics.status = "generated".into();
    metrics.rows_out = frame.height() as u64;
    metrics.injected = generated.injected;
    metrics.outputs.insert("raw".into(), ctx.landing.url(&key));
    metrics.extra.insert("bytes".into(), bytes.len().into());
    stage.complete(ctx, &mut metrics)?;
    info!(%dataset, %ds, rows = metrics.rows_out, bytes = bytes.len(), "generated");
    Ok(metrics)
}
