//! The Parquet encoder of valid and quarantine slices: row groups encoded
//! in parallel, zstd level 1, written as the rows arrive.

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;
use polars::prelude::{ArrowSchema, CompatLevel};
use polars_parquet::parquet::error::ParquetResult;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    CompressedPage, Compressor, DynIter, DynStreamingIterator, Encoding, FileWriter, ParquetType,
    StatisticsOptions, Version, WriteOptions, ZstdLevel, array_to_columns,
    fallible_streaming_iterator, to_parquet_schema,
};
use rayon::prelude::*;

/// `frame` with its text columns copied out of the buffers they share with
/// the frames they were sliced or filtered from.
fn detached(frame: DataFrame) -> PolarsResult<DataFrame> {
    let height = frame.height();
    let columns = frame
        .into_columns()
        .into_iter()
        .map(|column| match column.dtype() {
            DataType::String => {
                let text = column.str()?;
                let arrays = text.downcast_iter().map(|array| array.clone().gc());
                Ok(StringChunked::from_chunk_iter(column.name().clone(), arrays).into_column())
            }
            _ => Ok(column),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// Rows per Parquet row group: enough for good compression, few enough that
/// the groups of one slice spread over the cores.
pub(super) const ROW_GROUP_ROWS: usize = 1 << 17;

/// Parquet with zstd level 1, the format of every valid and quarantine slice:
/// much faster to write than the default level 3 for a file hardly larger,
/// and far smaller than Snappy (README, "Why the code is shaped so").
pub(crate) fn parquet(frame: &DataFrame) -> Result<Vec<u8>> {
    let mut sink = ParquetSink::new(frame.schema(), Vec::new())?;
    sink.push(frame.clone())?;
    sink.finish()
}

/// A Parquet file written as frames arrive: rows are gathered into row
/// groups of `ROW_GROUP_ROWS`, and waves of one group per thread are
/// encoded and compressed in parallel (every column of every group; Polars'
/// own writer compresses pages on one thread) and written in order. Memory
/// holds one wave, whatever the file's size.
pub(crate) struct ParquetSink<W: Write> {
    writer: FileWriter<W>,
    encoder: Encoder,
    pending: Option<DataFrame>,
    rows: u64,
}

/// How each column of a row group becomes compressed pages.
struct Encoder {
    arrow_schema: ArrowSchema,
    parquet_types: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
}

impl<W: Write> ParquetSink<W> {
    pub(crate) fn new(schema: &Schema, out: W) -> Result<Self> {
        let arrow_schema = schema.to_arrow(CompatLevel::newest());
        let parquet_schema = to_parquet_schema(&arrow_schema)?;
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            version: Version::V1,
            compression: ParquetCompression::Zstd(ZstdLevel::try_new(1).ok()).into(),
            data_page_size: None,
        };
        Ok(Self {
            encoder: Encoder {
                encodings: get_encodings(&arrow_schema).to_vec(),
                parquet_types: parquet_schema.fields().to_vec(),
                arrow_schema: arrow_schema.clone(),
                options,
            },
            writer: FileWriter::new_with_parquet_schema(out, arrow_schema, parquet_schema, options),
            pending: None,
            rows: 0,
        })
    }

    /// Rows written or pending so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends `frame`'s rows (its columns are the sink's schema). Whole
    /// row groups are written at once; the rest waits for the next frame,
    /// copied out of `frame`'s buffers first, so that a few pending rows
    /// filtered from a large batch do not keep the whole batch in memory.
    pub(crate) fn push(&mut self, frame: DataFrame) -> Result<()> {
        self.rows += frame.height() as u64;
        let waiting = self.pending.as_ref().map_or(0, DataFrame::height);
        if waiting + frame.height() < ROW_GROUP_ROWS {
            let frame = detached(frame)?;
            match &mut self.pending {
                Some(pending) => {
                    pending.vstack_mut_owned(frame)?;
                }
                None => self.pending = Some(frame),
            }
            return Ok(());
        }
        let mut rows = self.pending.take().unwrap_or_else(|| frame.clear());
        rows.vstack_mut_owned(frame)?;
        let full = rows.height() / ROW_GROUP_ROWS * ROW_GROUP_ROWS;
        self.write_groups(&rows.slice(0, full))?;
        let rest = rows.slice(full as i64, usize::MAX);
        self.pending = (rest.height() > 0).then(|| detached(rest)).transpose()?;
        Ok(())
    }

    /// Writes what is pending and the footer, and returns the output.
    pub(crate) fn finish(mut self) -> Result<W> {
        if let Some(pending) = self.pending.take() {
            self.write_groups(&pending)?;
        }
        self.writer.end(None)?;
        Ok(self.writer.into_inner())
    }

    fn write_groups(&mut self, frame: &DataFrame) -> Result<()> {
        let groups = frame.height().div_ceil(ROW_GROUP_ROWS);
        let wave = rayon::current_num_threads().max(1);
        for first in (0..groups).step_by(wave) {
            let encoder = &self.encoder;
            let encoded = (first..(first + wave).min(groups))
                .into_par_iter()
                .map(|group| {
                    let rows = frame.slice((group * ROW_GROUP_ROWS) as i64, ROW_GROUP_ROWS);
                    encoder
                        .encode_group(&rows)
                        .map(|pages| (rows.height(), pages))
                })
                .collect::<PolarsResult<Vec<_>>>()?;
            for (rows, columns) in encoded.iter().filter(|(rows, _)| *rows > 0) {
                let columns = columns.iter().map(|pages| {
                    Ok(DynStreamingIterator::new(
                        fallible_streaming_iterator::convert(pages.iter().map(PolarsResult::Ok)),
                    ))
                });
                self.writer.write(*rows as u64, DynIter::new(columns))?;
            }
        }
        Ok(())
    }
}

impl Encoder {
    /// Every column of one row group, encoded and compressed in parallel.
    fn encode_group(&self, frame: &DataFrame) -> PolarsResult<Vec<Vec<CompressedPage>>> {
        let columns = frame
            .columns()
            .par_iter()
            .zip(self.arrow_schema.iter_values().collect::<Vec<_>>())
            .zip(self.parquet_types.as_slice())
            .zip(self.encodings.as_slice())
            .map(|(((column, field), parquet_type), encoding)| {
                let array = column
                    .as_materialized_series()
                    .rechunk()
                    .to_arrow(0, CompatLevel::newest());
                debug_assert_eq!(array.dtype(), field.dtype());
                array_to_columns(array, parquet_type.clone(), self.options, encoding)?
                    .into_iter()
                    .map(|pages| {
                        let pages = pages.map(|page| {
                            page.map_err(|e| ParquetError::FeatureNotSupported(e.to_string()))
                        });
                        Compressor::new_from_vec(pages, self.options.compression, vec![])
                            .collect::<ParquetResult<Vec<_>>>()
                            .map_err(PolarsError::from)
                    })
                    .collect::<PolarsResult<Vec<_>>>()
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok(columns.into_iter().flatten().collect())
    }
}
