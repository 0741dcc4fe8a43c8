//! `generate DATASET --ds D`: synthetic data to raw-data/ in the landing area.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use polars::prelude::DataFrame;
use tracing::info;

use crate::catalog::Format;
use crate::cli::GenerateArgs;
use crate::context::{Context, Stage};
use crate::exit;
use crate::formats::{self, ParquetSink};
use crate::metrics::{Details, GenerateDetails, Status, Task, TaskMetrics};
use crate::storage::StagedFile;
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
    // Chunks are made on every core and written in order as they come, so
    // memory holds a few chunks, not the file: text serialised on the
    // thread that made it and streamed to the store, Parquet encoded a row
    // group at a time into a temporary file that is then put.
    let (generated, bytes) = match format {
        Format::Csv | Format::NdJson => in_order(
            builtin,
            &params,
            |index, chunk| formats::write(&chunk, format, index == 0),
            |parts| {
                let mut bytes = 0;
                let mut counted = parts.inspect(|part| {
                    if let Ok(part) = part {
                        bytes += part.len();
                    }
                });
                ctx.landing.put_stream(&key, &mut counted)?;
                Ok(bytes)
            },
        )?,
        Format::Parquet => in_order(
            builtin,
            &params,
            |_, chunk| Ok(chunk),
            |chunks| write_parquet(ctx, &key, chunks),
        )?,
    };
    metrics.lap("generate", &mut clock);
    let rows: usize = generated.output.iter().sum();
    let injected = generated.injected;

    metrics.status = Status::Generated;
    metrics.rows_out = rows as u64;
    metrics.injected = injected;
    metrics.writes("raw", ctx.landing.url(&key));
    metrics.details = Some(Details::Generate(GenerateDetails {
        bytes: bytes as u64,
    }));
    stage.complete(ctx, &mut metrics)?;
    info!(%dataset, %ds, rows, bytes, "generated");
    Ok(metrics)
}

/// Generates `builtin`'s chunks in parallel, each made into a `T` by `make`
/// on the thread that generated it, and hands them in chunk order to
/// `consume` on this thread; returns the rows per chunk and what `consume`
/// returned (the bytes written).
fn in_order<T: Send>(
    builtin: Builtin,
    params: &GenParams,
    make: impl Fn(usize, DataFrame) -> Result<T> + Sync,
    consume: impl FnOnce(&mut InOrder<T>) -> Result<usize>,
) -> Result<(synth::Generated<Vec<usize>>, usize)> {
    // Room for two waves of chunks between the generators and the writer.
    let (sender, receiver) = mpsc::sync_channel(2 * rayon::current_num_threads());
    let mut parts = InOrder::new(receiver, synth::chunk_count(builtin, params));
    let (generated, consumed) = std::thread::scope(|scope| {
        let make = &make;
        // Owns the sender, so the writer sees the end of the chunks. The
        // generators get a thread pool of their own: blocked on a full
        // channel, they must not hold the threads the writer encodes on.
        let generating = scope.spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new().build()?;
            pool.install(|| {
                synth::generate_chunks(builtin, params, |index, chunk| {
                    let rows = chunk.height();
                    let part = make(index, chunk)?;
                    // A send fails only when the writer gave up; it reports why.
                    let _ = sender.send((index, part));
                    Ok(rows)
                })
            })
        });
        let consumed = consume(&mut parts);
        // The writer may have stopped early: let the generators finish.
        drop(parts);
        let generated = generating
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (generated, consumed)
    });
    let generated = generated?;
    Ok((generated, consumed?))
}

/// A Parquet file of the frames, encoded into a temporary file as they
/// come, then put in the landing area.
fn write_parquet(ctx: &Context, key: &str, frames: &mut InOrder<DataFrame>) -> Result<usize> {
    let first = frames
        .next()
        .ok_or_else(|| anyhow!("the generator made no chunk"))??;
    let mut sink = ParquetSink::new(first.schema(), StagedFile::new()?)?;
    sink.push(first)?;
    for frame in frames {
        sink.push(frame?)?;
    }
    let file = sink.finish()?.finish()?;
    file.put(ctx.landing.as_ref(), key)?;
    Ok(file.bytes as usize)
}

/// Chunks, received in any order and yielded in chunk order.
struct InOrder<T> {
    receiver: mpsc::Receiver<(usize, T)>,
    pending: BTreeMap<usize, T>,
    next: usize,
    chunks: usize,
}

impl<T> InOrder<T> {
    fn new(receiver: mpsc::Receiver<(usize, T)>, chunks: usize) -> Self {
        Self {
            receiver,
            pending: BTreeMap::new(),
            next: 0,
            chunks,
        }
    }
}

impl<T> Iterator for InOrder<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        while self.next < self.chunks {
            if let Some(part) = self.pending.remove(&self.next) {
                self.next += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// A writer that does parallel work on the global pool (as the Parquet
    /// encoder does) after the generators have filled the channel still
    /// gets every chunk, in order: the generators block on a pool of their own.
    #[test]
    fn a_writer_using_the_global_pool_is_never_starved_by_blocked_generators() {
        let params = GenParams {
            seed: 7,
            ds: chrono::NaiveDate::from_ymd_opt(2025, 5, 25).unwrap(),
            scale_factor: 8.0,
            defect_rate: 0.0,
        };
        let chunks = synth::chunk_count(Builtin::WebsiteActivity, &params);
        assert!(
            chunks > 2 * rayon::current_num_threads() + 2,
            "{chunks} chunks fill the channel"
        );
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let outcome = in_order(
                Builtin::WebsiteActivity,
                &params,
                |index, _| Ok(index),
                |parts| {
                    let parallel_work = || {
                        let doubled: Vec<usize> = (0..64).into_par_iter().map(|i| i * 2).collect();
                        assert_eq!(doubled.len(), 64);
                    };
                    // Let the generators fill the channel and block on it.
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    parallel_work();
                    let mut order = Vec::new();
                    for part in parts {
                        parallel_work();
                        order.push(part?);
                    }
                    assert_eq!(order, (0..order.len()).collect::<Vec<_>>());
                    Ok(order.len())
                },
            );
            let _ = done.send(outcome.map(|(_, n)| n));
        });
        let written = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the writer and the generators deadlocked");
        assert_eq!(written.unwrap(), chunks);
    }
}
