//! `generate DATASET --ds D`: synthetic data to raw-data/ in the landing area.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use tracing::info;

use crate::catalog::Format;
use crate::cli::GenerateArgs;
use crate::context::{Context, Stage};
use crate::exit;
use crate::formats;
use crate::metrics::{Details, GenerateDetails, Status, Task, TaskMetrics};
use crate::synth::{self, Builtin, GenParams};

pub(crate) fn run(ctx: &mut Context, args: &GenerateArgs) -> Result<TaskMetrics> {
    let ctx = &*ctx;
    let GenerateArgs {
        target,
        options,
        force,
    } = args;
    let (dataset, ds) = (ctx.dataset(&target.dataset)?, target.ds);
    let builtin = Builtin::of(dataset).ok_or_else(|| {
        exit::usage(format!(
            "generate has no synthetic generator for {dataset}: it makes the six built-in \
             datasets only; put {dataset}'s files in the landing area ({}) instead",
            ctx.landing.url(&dataset.raw_key(ds))
        ))
    })?;
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
    let stage = Stage::start(Task::Generate, dataset, ds, fingerprint);
    let key = dataset.raw_key(ds);

    let file_intact = |done: &TaskMetrics| -> Result<bool> {
        let recorded = match &done.details {
            Some(Details::Generate(details)) => Some(details.bytes),
            _ => None,
        };
        Ok(recorded.is_some() && ctx.landing.size(&key)? == recorded)
    };
    if !*force && let Some(metrics) = stage.reusable(ctx, file_intact)? {
        info!(%dataset, %ds, "already generated with these parameters; skipping");
        return Ok(metrics);
    }

    let mut metrics = stage.metrics(ctx);
    let mut clock = Instant::now();
    let format = dataset.format();
    let (rows, bytes, injected) = match format {
        Format::Parquet => {
            let generated = synth::generate(builtin, &params)?;
            metrics.lap("generate", &mut clock);
            let frame = generated.output;
            let bytes = formats::write(&frame, format, true)?;
            metrics.lap("serialize", &mut clock);
            ctx.landing.put(&key, &bytes)?;
            (frame.height(), bytes.len(), generated.injected)
        }
        // Text is serialised chunk by chunk as it is generated, and written
        // while later chunks are still being made: one lap, "generate".
        Format::Csv | Format::NdJson => {
            let (sender, receiver) = mpsc::channel();
            let mut parts = InOrder::new(receiver, synth::chunk_count(builtin, &params));

            let params = &params;
            let (generated, written) = std::thread::scope(|scope| {
                // Owns the sender, so the writer sees the end of the chunks.
                let generating = scope.spawn(move || {
                    synth::generate_chunks(builtin, params, |index, chunk| {
                        let part = formats::write(&chunk, format, index == 0)?;
                        // A send fails only when the writer gave up; it reports why.
                        let _ = sender.send((index, part));
                        Ok(chunk.height())
                    })
                });
                let written = ctx.landing.put_stream(&key, &mut parts);
                let generated = generating
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (generated, written)
            });
            let generated = generated?;
            written?;
            metrics.lap("generate", &mut clock);
            (
                generated.output.iter().sum(),
                parts.bytes,
                generated.injected,
            )
        }
    };

    metrics.status = Status::Generated;
    metrics.rows_out = rows as u64;
    metrics.injected = injected;
    metrics.outputs.insert("raw".into(), ctx.landing.url(&key));
    metrics.details = Some(Details::Generate(GenerateDetails {
        bytes: bytes as u64,
    }));
    stage.complete(ctx, &mut metrics)?;
    info!(%dataset, %ds, rows, bytes, "generated");
    Ok(metrics)
}

/// Serialised chunks, received in any order and yielded in chunk order.
struct InOrder {
    receiver: mpsc::Receiver<(usize, Vec<u8>)>,
    pending: BTreeMap<usize, Vec<u8>>,
    next: usize,
    chunks: usize,
    bytes: usize,
}

impl InOrder {
    fn new(receiver: mpsc::Receiver<(usize, Vec<u8>)>, chunks: usize) -> Self {
        Self {
            receiver,
            pending: BTreeMap::new(),
            next: 0,
            chunks,
            bytes: 0,
        }
    }
}

impl Iterator for InOrder {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        while self.next < self.chunks {
            if let Some(part) = self.pending.remove(&self.next) {
                self.next += 1;
                self.bytes += part.len();
                return Some(Ok(part));
            }
            match self.receiver.recv() {
                Ok((index, part)) => {
                    self.pending.insert(index, part);
                }
                Err(_) => {
                    let missing = self.next;
                    self.next = self.chunks;
                    return Some(Err(anyhow!("generation stopped before chunk {missing}")));
                }
            }
        }
        None
    }
}
