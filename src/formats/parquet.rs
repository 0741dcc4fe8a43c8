//! The Parquet encoder of valid and quarantine slices: row groups encoded
//! in parallel, zstd level 1.

use anyhow::Result;
use polars::prelude::*;
use polars::prelude::{ArrowField, CompatLevel};
use polars_parquet::parquet::error::ParquetResult;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    CompressedPage, Compressor, DynIter, DynStreamingIterator, Encoding, FileWriter, ParquetType,
    StatisticsOptions, Version, WriteOptions, ZstdLevel, array_to_columns,
    fallible_streaming_iterator, to_parquet_schema,
};
use rayon::prelude::*;

/// Rows per Parquet row group: enough for good compression, few enough that
/// the groups of one slice spread over the cores.
pub(super) const ROW_GROUP_ROWS: usize = 1 << 17;

/// Parquet with zstd level 1, the format of every valid and quarantine slice:
/// much faster to write than the default level 3 for a file hardly larger,
/// and far smaller than Snappy (README, "Why the code is shaped so").
pub(crate) fn parquet(frame: &DataFrame) -> Result<Vec<u8>> {
    parquet_row_groups(
        frame.schema(),
        frame.height().div_ceil(ROW_GROUP_ROWS),
        |group| Ok(frame.slice((group * ROW_GROUP_ROWS) as i64, ROW_GROUP_ROWS)),
    )
}

/// `parquet` of the rows where `keep` is true, filtered one row group at a
/// time as it is written rather than copied whole first.
pub(crate) fn parquet_where(frame: &DataFrame, keep: &BooleanChunked) -> Result<Vec<u8>> {
    parquet_row_groups(
        frame.schema(),
        frame.height().div_ceil(ROW_GROUP_ROWS),
        |group| {
            let offset = (group * ROW_GROUP_ROWS) as i64;
            frame
                .slice(offset, ROW_GROUP_ROWS)
                .filter(&keep.slice(offset, ROW_GROUP_ROWS))
        },
    )
}

/// Parquet of `groups` row groups that `row_group(i)` builds on demand.
/// Every column of every group is encoded and compressed in parallel
/// (Polars' own writer compresses pages on one thread), then the groups are
/// written in order.
fn parquet_row_groups(
    schema: &Schema,
    groups: usize,
    row_group: impl Fn(usize) -> PolarsResult<DataFrame> + Sync,
) -> Result<Vec<u8>> {
    let arrow_schema = schema.to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&arrow_schema)?;
    let encodings = get_encodings(&arrow_schema);
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        version: Version::V1,
        compression: ParquetCompression::Zstd(ZstdLevel::try_new(1).ok()).into(),
        data_page_size: None,
    };
    let encode = |(column, (field, parquet_type)): (&Column, (&ArrowField, &ParquetType)),
                  encoding: &Vec<Encoding>|
     -> PolarsResult<Vec<Vec<CompressedPage>>> {
        let array = column
            .as_materialized_series()
            .rechunk()
            .to_arrow(0, CompatLevel::newest());
        debug_assert_eq!(array.dtype(), field.dtype());
        array_to_columns(array, parquet_type.clone(), options, encoding)?
            .into_iter()
            .map(|pages| {
                let pages = pages
                    .map(|page| page.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
                Compressor::new_from_vec(pages, options.compression, vec![])
                    .collect::<ParquetResult<Vec<_>>>()
                    .map_err(PolarsError::from)
            })
            .collect()
    };
    let encode_group = |i: usize| -> PolarsResult<(usize, Vec<Vec<CompressedPage>>)> {
        let frame = row_group(i)?;
        let columns = frame
            .columns()
            .par_iter()
            .zip(
                arrow_schema
                    .iter_values()
                    .zip(parquet_schema.fields())
                    .collect::<Vec<_>>(),
            )
            .zip(encodings.as_slice())
            .map(|(column, encoding)| encode(column, encoding))
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok((frame.height(), columns.into_iter().flatten().collect()))
    };

    // A wave of one group per thread at a time, so that only one wave of
    // compressed pages is held beside the file.
    let wave = rayon::current_num_threads().max(1);
    let mut waves = (0..groups).step_by(wave).map(|first| {
        (first..(first + wave).min(groups))
            .into_par_iter()
            .map(encode_group)
            .collect::<PolarsResult<Vec<_>>>()
    });
    let first_wave = waves.next().transpose()?.unwrap_or_default();
    // Size the file from the first wave: one allocation, no regrowth.
    let first_bytes: usize = first_wave
        .iter()
        .flat_map(|(_, columns)| columns.iter().flatten())
        .map(|page| match page {
            CompressedPage::Data(page) => page.compressed_size(),
            CompressedPage::Dict(_) => 0,
        })
        .sum();
    let estimate = first_bytes * groups / first_wave.len().max(1);
    let out = Vec::with_capacity(estimate + estimate / 16 + (1 << 16));
    let mut writer = FileWriter::new_with_parquet_schema(
        out,
        arrow_schema.clone(),
        parquet_schema.clone(),
        options,
    );
    for encoded in std::iter::once(Ok(first_wave)).chain(waves) {
        for (rows, columns) in encoded?.iter().filter(|(rows, _)| *rows > 0) {
            let columns = columns.iter().map(|pages| {
                Ok(DynStreamingIterator::new(
                    fallible_streaming_iterator::convert(pages.iter().map(PolarsResult::Ok)),
                ))
            });
            writer.write(*rows as u64, DynIter::new(columns))?;
        }
    }
    writer.end(None)?;
    Ok(writer.into_inner())
}
