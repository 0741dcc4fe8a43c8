//! Raw file formats (NDJSON, CSV, Parquet) to and from Polars frames.
//!
//! Readers never panic on bad bytes: every failure comes back as a one-line
//! reason that validate turns into a rejection.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow};
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

use crate::catalog::Format;
use crate::cli::Limits;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Serialises a frame in a raw format. Temporal columns are written as ISO
/// text in NDJSON and CSV. A text file may be written in chunks that are
/// concatenated: `header` says whether this one starts the file (CSV's
/// header line); Parquet is always written whole.
pub fn write(frame: &DataFrame, format: Format, header: bool) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(frame.estimated_size());
    // One thread per chunk: callers serialise chunks in parallel.
    match format {
        Format::Csv => CsvWriter::new(&mut out)
            .include_header(header)
            .n_threads(1)
            .finish(&mut temporal_as_text(frame)?)?,
        Format::NdJson => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::JsonLines)
            .finish(&mut temporal_as_text(frame)?)?,
        Format::Parquet => return parquet(frame),
    }
    Ok(out)
}

/// Rows per Parquet row group: enough for good compression, few enough that
/// the groups of one slice spread over the cores.
const ROW_GROUP_ROWS: usize = 1 << 17;

/// Parquet with zstd level 1, the format of every valid and quarantine slice:
/// on 1M contacts it writes 35% faster than the default level 3 for a file
/// 2% larger, and 35% smaller than Snappy.
pub fn parquet(frame: &DataFrame) -> Result<Vec<u8>> {
    parquet_row_groups(
        frame.schema(),
        frame.height().div_ceil(ROW_GROUP_ROWS),
        |group| Ok(frame.slice((group * ROW_GROUP_ROWS) as i64, ROW_GROUP_ROWS)),
    )
}

/// `parquet` of the rows where `keep` is true, filtered one row group at a
/// time as it is written rather than copied whole first.
pub fn parquet_where(frame: &DataFrame, keep: &BooleanChunked) -> Result<Vec<u8>> {
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

/// Dates as `YYYY-MM-DD` and timestamps as `YYYY-MM-DDTHH:MM:SS[.ffffff]`,
/// formatted directly: chrono's strftime costs more than the whole CSV write.
fn temporal_as_text(frame: &DataFrame) -> Result<DataFrame> {
    let mut out = frame.clone();
    for column in frame.columns() {
        // Both types are integers underneath: days, or ticks per second.
        let ticks_per_second = match column.dtype() {
            DataType::Date => None,
            DataType::Datetime(TimeUnit::Nanoseconds, _) => Some(1_000_000_000),
            DataType::Datetime(TimeUnit::Microseconds, _) => Some(1_000_000),
            DataType::Datetime(TimeUnit::Milliseconds, _) => Some(1_000),
            _ => continue,
        };
        let mut buf = String::with_capacity(32);
        let mut text = StringChunkedBuilder::new(column.name().clone(), column.len());
        for value in column.cast(&DataType::Int64)?.i64()?.iter() {
            match value {
                Some(v) => {
                    buf.clear();
                    match ticks_per_second {
                        None => push_date(&mut buf, v),
                        Some(per_second) => push_timestamp(&mut buf, v, per_second),
                    }
                    text.append_value(&buf);
                }
                None => text.append_null(),
            }
        }
        out.with_column(text.finish().into_column())?;
    }
    Ok(out)
}

/// Writes `value` zero-padded to `width` digits, without allocating.
fn push_padded(buf: &mut String, value: i64, width: usize) {
    if value < 0 {
        buf.push('-');
    }
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut len = 0;
    while n > 0 || len < width {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    buf.extend(digits[..len].iter().rev().map(|&d| d as char));
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (Hinnant's civil-from-days).
fn push_date(buf: &mut String, days: i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_padded(buf, year, 4);
    buf.push('-');
    push_padded(buf, month, 2);
    buf.push('-');
    push_padded(buf, day, 2);
}

fn push_timestamp(buf: &mut String, ticks: i64, per_second: i64) {
    let seconds = ticks.div_euclid(per_second);
    let fraction = ticks.rem_euclid(per_second);
    push_date(buf, seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    buf.push('T');
    push_padded(buf, of_day / 3_600, 2);
    buf.push(':');
    push_padded(buf, of_day / 60 % 60, 2);
    buf.push(':');
    push_padded(buf, of_day % 60, 2);
    if fraction != 0 {
        buf.push('.');
        push_padded(buf, fraction, per_second.ilog10() as usize);
    }
}

/// Parses raw bytes. CSV comes back all-text (validate casts it); NDJSON
/// with inferred types; Parquet with its own types. A UTF-8 byte-order mark
/// is harmless and skipped. Input the parsers could not survive is refused
/// first: NDJSON nested deeper than `MAX_NESTING`, Parquet declaring more
/// than `limits.max_decompressed_bytes` or holding nested columns.
pub fn read(bytes: &[u8], format: Format, limits: &Limits) -> Result<DataFrame> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(anyhow!("file is empty"));
    }
    match format {
        Format::NdJson => check_nesting(bytes)?,
        Format::Parquet => check_parquet_footer(bytes, limits)?,
        Format::Csv => {}
    }
    let parsed = contained(|| match format {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_raise_if_empty(true)
            .into_reader_with_file_handle(Cursor::new(bytes))
            .finish(),
        Format::NdJson => JsonReader::new(Cursor::new(bytes))
            .with_json_format(JsonFormat::JsonLines)
            .infer_schema_len(None)
            .finish(),
        Format::Parquet => ParquetReader::new(Cursor::new(bytes)).finish(),
    });
    match parsed {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(e)) => Err(anyhow!(
            "unreadable .{} file: {}",
            format.extension(),
            first_line(&e.to_string())
        )),
        Err(_) => Err(anyhow!(
            "unreadable .{} file: the parser gave up on malformed input",
            format.extension()
        )),
    }
}

/// Parsers of hostile bytes running now, on any thread.
static CONTAINING: AtomicUsize = AtomicUsize::new(0);

/// Runs a parser on hostile bytes, turning a panic into an `Err`. Polars
/// 0.55's Parquet decoders `expect` well-formed input in places (the
/// footer's thrift, page headers, dictionary indices) and panic on corrupt
/// files, on the calling thread or on its worker threads, which re-raise
/// it here. What can be checked from the footer is checked before Polars
/// reads a page; the rest is contained. `panic_is_contained` lets the panic
/// hook log such a panic as the parser failure it is, not as a bug.
fn contained<T>(parse: impl FnOnce() -> T) -> std::thread::Result<T> {
    CONTAINING.fetch_add(1, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(parse));
    CONTAINING.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Whether a parser of hostile bytes is running: a task parses one file at
/// a time, so a panic now is that parser's.
pub fn panic_is_contained() -> bool {
    CONTAINING.load(Ordering::SeqCst) > 0
}

/// Deepest `[`/`{` nesting accepted in NDJSON. Source rows are flat; the
/// parser recurses per level, and 200k levels overflow its stack.
pub const MAX_NESTING: usize = 64;

/// Refuses JSON nested deeper than `MAX_NESTING`, outside strings.
fn check_nesting(bytes: &[u8]) -> Result<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (line, text) in bytes.split(|b| *b == b'\n').enumerate() {
        for &b in text {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(anyhow!(
                            "unreadable .jsonl file: line {} is nested deeper than {MAX_NESTING} levels",
                            line + 1
                        ));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        // Every NDJSON line is a document of its own.
        (depth, in_string, escaped) = (0, false, false);
    }
    Ok(())
}

/// Refuses a Parquet file whose footer declares more uncompressed data than
/// the limit (a decompression bomb) or nested columns (never source data).
fn check_parquet_footer(bytes: &[u8], limits: &Limits) -> Result<()> {
    let metadata = contained(|| {
        ParquetReader::new(Cursor::new(bytes))
            .get_metadata()
            .cloned()
    });
    let metadata = match metadata {
        Ok(Ok(metadata)) => metadata,
        Ok(Err(e)) => {
            return Err(anyhow!(
                "unreadable .parquet file: {}",
                first_line(&e.to_string())
            ));
        }
        Err(_) => return Err(anyhow!("unreadable .parquet file: malformed footer")),
    };
    // The parser slices column chunks by the footer's offsets without
    // checking them (and panics on one past the end): check them here.
    let file_len = bytes.len() as u64;
    let outside = metadata
        .row_groups
        .iter()
        .flat_map(|g| g.byte_ranges_iter())
        .any(|range| range.start > range.end || range.end > file_len);
    if outside {
        return Err(anyhow!(
            "unreadable .parquet file: a column chunk lies outside the file (truncated or corrupt)"
        ));
    }
    let declared: u64 = metadata
        .row_groups
        .iter()
        .map(|g| {
            let columns: u64 = g
                .parquet_columns()
                .iter()
                .map(|c| c.uncompressed_size().max(0) as u64)
                .sum();
            columns.max(g.total_byte_size() as u64)
        })
        .sum();
    if declared > limits.max_decompressed_bytes {
        return Err(anyhow!(
            "unreadable .parquet file: it declares {declared} uncompressed bytes, over the limit of {} \
             (PIPELINE_MAX_DECOMPRESSED_BYTES)",
            limits.max_decompressed_bytes
        ));
    }
    if let Some(nested) = metadata
        .schema_descr
        .fields()
        .iter()
        .find(|f| !matches!(f, ParquetType::PrimitiveType(_)))
    {
        return Err(anyhow!(
            "unreadable .parquet file: column {} is nested; source columns must be flat",
            nested.name()
        ));
    }
    // Polars builds each row group's frame from its columns and unwraps
    // the result, so columns disagreeing with the row count panic there.
    let ragged = metadata.row_groups.iter().any(|g| {
        g.parquet_columns()
            .iter()
            .any(|c| c.num_values() != g.num_rows() as i64)
    });
    if ragged {
        return Err(anyhow!(
            "unreadable .parquet file: a column holds a different number of values than its row group's row count"
        ));
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::UNLIMITED;

    fn sample() -> DataFrame {
        df!(
            "id" => ["a", "b"],
            "n" => [1i64, 2],
            "d" => [20_000i32, 20_001],
        )
        .unwrap()
        .lazy()
        .with_column(col("d").cast(DataType::Date))
        .collect()
        .unwrap()
    }

    #[test]
    fn each_format_round_trips_its_rows() {
        for format in [Format::Csv, Format::NdJson, Format::Parquet] {
            let bytes = write(&sample(), format, true).unwrap();
            let back = read(&bytes, format, &UNLIMITED).unwrap();
            assert_eq!(back.height(), 2, "{format:?}");
            assert_eq!(back.width(), 3, "{format:?}");
        }
    }

    #[test]
    fn dates_and_timestamps_format_like_chrono() {
        let mut buf = String::new();
        for days in [-719_468i64, -1, 0, 20_233, 2_932_896] {
            buf.clear();
            push_date(&mut buf, days);
            let expected = chrono::NaiveDate::from_num_days_from_ce_opt(days as i32 + 719_163)
                .unwrap()
                .format("%Y-%m-%d")
                .to_string();
            assert_eq!(buf, expected, "{days}");
        }
        buf.clear();
        push_timestamp(
            &mut buf,
            1_748_167_200_000_000 + 1_234_567 + 59_000_000,
            1_000_000,
        );
        assert_eq!(buf, "2025-05-25T10:01:00.234567");
        buf.clear();
        push_timestamp(&mut buf, -1, 1_000);
        assert_eq!(buf, "1969-12-31T23:59:59.999");
    }

    #[test]
    fn text_formats_carry_iso_dates() {
        let bytes = write(&sample(), Format::NdJson, true).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"d\":\"2024-10-04\""), "{text}");
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let parquet = write(&sample(), Format::Parquet, true).unwrap();
        let cases: Vec<(&[u8], Format)> = vec![
            (b"", Format::Csv),
            (b"  \n", Format::NdJson),
            (b"{\"id\": \"a\"}\n{\"id\": ", Format::NdJson),
            (&parquet[..parquet.len() / 2], Format::Parquet),
            (b"PAR1garbage", Format::Parquet),
            (b"id,n\n\xff\xfe,1\n", Format::Csv),
        ];
        for (bytes, format) in cases {
            assert!(
                read(bytes, format, &UNLIMITED).is_err(),
                "{format:?} {bytes:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_strings_do_not_count() {
        let deep = format!(
            "{{\"page_id\": {}1{}}}\n",
            "[".repeat(200_000),
            "]".repeat(200_000)
        );
        let err = read(deep.as_bytes(), Format::NdJson, &UNLIMITED).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 64"), "{err}");
        let in_string = format!("{{\"page_id\": \"{}\\\"\"}}\n", "[".repeat(1_000));
        assert_eq!(
            read(in_string.as_bytes(), Format::NdJson, &UNLIMITED)
                .unwrap()
                .height(),
            1
        );
    }

    #[test]
    fn parquet_declaring_too_much_or_nested_columns_is_refused() {
        let bytes = write(&sample(), Format::Parquet, true).unwrap();
        let small = Limits {
            max_decompressed_bytes: 10,
            ..UNLIMITED
        };
        let err = read(&bytes, Format::Parquet, &small).unwrap_err();
        assert!(
            err.to_string().contains("PIPELINE_MAX_DECOMPRESSED_BYTES"),
            "{err}"
        );
        let mut nested = df!("id" => ["a"], "l" => [Series::new("".into(), [1i64, 2])]).unwrap();
        let mut out = Vec::new();
        ParquetWriter::new(&mut out).finish(&mut nested).unwrap();
        let err = read(&out, Format::Parquet, &UNLIMITED).unwrap_err();
        assert!(err.to_string().contains("column l is nested"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let frame = read(b"\xEF\xBB\xBFid,n\na,1\n", Format::Csv, &UNLIMITED).unwrap();
        assert_eq!(frame.get_column_names()[0].as_str(), "id");
    }

    #[test]
    fn parquet_row_groups_round_trip_in_order() {
        let rows = ROW_GROUP_ROWS * 2 + 5;
        let frame = df!(
            "n" => (0..rows as i64).collect::<Vec<_>>(),
            "s" => (0..rows).map(|i| (i % 7 == 0).then(|| format!("value {i}"))).collect::<Vec<_>>(),
        )
        .unwrap();
        let back = read(&parquet(&frame).unwrap(), Format::Parquet, &UNLIMITED).unwrap();
        assert!(back.equals_missing(&frame));
        let groups = ParquetReader::new(Cursor::new(parquet(&frame).unwrap()))
            .get_metadata()
            .unwrap()
            .row_groups
            .len();
        assert_eq!(groups, 3);
    }

    #[test]
    fn rows_kept_across_row_groups_are_written_in_order() {
        let rows = ROW_GROUP_ROWS + 10;
        let frame = df!("n" => (0..rows as i64).collect::<Vec<_>>()).unwrap();
        // Keep the odd numbers, in both row groups.
        let keep: BooleanChunked = (0..rows).map(|n| n % 2 == 1).collect();
        let back = read(
            &parquet_where(&frame, &keep).unwrap(),
            Format::Parquet,
            &UNLIMITED,
        )
        .unwrap();
        let n: Vec<i64> = back
            .column("n")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let odd: Vec<i64> = (0..rows as i64).filter(|n| n % 2 == 1).collect();
        assert_eq!(n, odd);
    }

    #[test]
    fn an_empty_frame_is_a_readable_parquet_file_with_its_columns() {
        let empty = sample().clear();
        let back = read(&parquet(&empty).unwrap(), Format::Parquet, &UNLIMITED).unwrap();
        assert_eq!(back.height(), 0);
        assert_eq!(back.schema(), empty.schema());
    }
}

/// Property tests: arbitrary bytes, and arbitrary bytes behind a valid
/// start, never make a reader panic. A panic that `read` catches counts as
/// a failure too: it is recognised by the message `read` gives it.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::catalog::Dataset;
    use crate::cli::{Limits, UNLIMITED};
    use proptest::prelude::*;
    use proptest::sample::{Index, select};
    use proptest::test_runner::RngSeed;

    /// CI-sized (each case takes microseconds); PROPTEST_CASES overrides.
    const CASES: u32 = 1024;

    /// A fixed seed, so that CI runs are reproducible; PROPTEST_RNG_SEED
    /// picks another.
    fn config(cases: u32) -> ProptestConfig {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        ProptestConfig {
            cases: env("PROPTEST_CASES").map_or(cases, |n| n as u32),
            rng_seed: RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(11)),
            // Never write regression files into src/.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// The limits the binary runs with by default.
    const PRODUCTION: Limits = Limits {
        max_file_bytes: 3 << 30,
        max_decompressed_bytes: 8 << 30,
        ..UNLIMITED
    };

    /// `read` returned, and for CSV and NDJSON not by catching a panic of
    /// the parser. Polars 0.55's Parquet decoders panic on some corrupt
    /// footers and pages (thrift booleans, dictionary indices, bitmap
    /// lengths), which no check of the footer can foresee: for Parquet a
    /// contained panic, reported as a one-line rejection, is the guarantee.
    fn returns(bytes: &[u8], format: Format) -> Result<(), TestCaseError> {
        if let Err(e) = read(bytes, format, &PRODUCTION) {
            let message = e.to_string();
            let contained = format == Format::Parquet
                && (message.contains("malformed footer") || message.contains("gave up"));
            prop_assert!(
                contained || !message.contains("gave up") && !message.contains("panic"),
                "{:?}: read caught a panic: {}",
                format,
                message
            );
            prop_assert!(!message.contains('\n'), "not one line: {}", message);
        }
        Ok(())
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    /// Files made of tokens that matter to a format's parser.
    fn tokens(alphabet: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(select(alphabet), 0..400).prop_map(|parts| parts.concat())
    }

    const CSV_TOKENS: &[&[u8]] = &[
        b",",
        b"\"",
        b"\"\"",
        b"\n",
        b"\r\n",
        b"\r",
        b";",
        b"\t",
        b"a",
        b"1",
        b" ",
        b"\xEF\xBB\xBF",
        b"\0",
        b"\xC3\xA9",
        b"\xFF",
        b"contact_id",
        b"#",
    ];

    const JSON_TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"\"a\"",
        b":",
        b",",
        b"1",
        b"-1e999",
        b"1.5",
        b"true",
        b"null",
        b"\\",
        b"\\\"",
        b"\\u0000",
        b"\\ud800",
        b"\n",
        b" ",
        b"\xFF",
        b"\"page_id\":",
    ];

    fn contacts_header() -> Vec<u8> {
        let names: Vec<&str> = Dataset::Contacts.columns().iter().map(|c| c.name).collect();
        format!("{}\n", names.join(",")).into_bytes()
    }

    fn sample(format: Format) -> Vec<u8> {
        let frame = df!(
            "id" => ["a", "b", "c"],
            "n" => [1i64, 2, 3],
            "x" => [Some(0.5f64), None, Some(2.5)],
            "s" => [Some("one"), Some("two, \"quoted\"\nline"), None],
        )
        .unwrap();
        write(&frame, format, true).unwrap()
    }

    /// A valid file with a few bytes overwritten, then perhaps truncated.
    fn mutated(format: Format) -> impl Strategy<Value = Vec<u8>> {
        let valid = sample(format);
        (
            prop::collection::vec((any::<Index>(), any::<u8>()), 1..8),
            prop::option::of(any::<Index>()),
        )
            .prop_map(move |(edits, cut)| {
                let mut b = valid.clone();
                for (at, byte) in edits {
                    let i = at.index(b.len());
                    b[i] = byte;
                }
                if let Some(cut) = cut {
                    b.truncate(cut.index(b.len() + 1));
                }
                b
            })
    }

    proptest! {
        #![proptest_config(config(CASES))]

        #[test]
        fn csv_arbitrary_bytes(b in bytes(2048)) {
            returns(&b, Format::Csv)?;
        }

        #[test]
        fn csv_after_a_header_line(b in bytes(2048)) {
            returns(&[contacts_header(), b].concat(), Format::Csv)?;
        }

        #[test]
        fn csv_tokens(b in tokens(CSV_TOKENS)) {
            returns(&[contacts_header(), b.clone()].concat(), Format::Csv)?;
            returns(&b, Format::Csv)?;
        }

        #[test]
        fn csv_mutated(b in mutated(Format::Csv)) {
            returns(&b, Format::Csv)?;
        }

        #[test]
        fn ndjson_arbitrary_bytes(b in bytes(2048)) {
            returns(&b, Format::NdJson)?;
        }

        #[test]
        fn ndjson_after_an_object_start(b in bytes(2048)) {
            returns(&[b"{\"".as_slice(), &b[..]].concat(), Format::NdJson)?;
        }

        #[test]
        fn ndjson_tokens(b in tokens(JSON_TOKENS)) {
            returns(&[b"{\"".as_slice(), &b[..]].concat(), Format::NdJson)?;
            returns(&b, Format::NdJson)?;
        }

        #[test]
        fn ndjson_mutated(b in mutated(Format::NdJson)) {
            returns(&b, Format::NdJson)?;
        }

        #[test]
        fn parquet_arbitrary_bytes(b in bytes(2048)) {
            returns(&b, Format::Parquet)?;
        }

        #[test]
        fn parquet_between_magic_numbers(b in bytes(2048), end in any::<bool>()) {
            let tail: &[u8] = if end { b"PAR1" } else { b"" };
            returns(&[b"PAR1".as_slice(), &b[..], tail].concat(), Format::Parquet)?;
        }

        #[test]
        fn parquet_mutated(b in mutated(Format::Parquet)) {
            returns(&b, Format::Parquet)?;
        }
    }

    /// Opening and closing of one nesting level.
    const NESTS: &[(&[u8], &[u8])] = &[(b"[", b"]"), (b"{\"a\":", b"}"), (b"[{\"a\":", b"}]")];
    const PREFIXES: &[&[u8]] = &[b"", b"{\"page_id\":"];

    proptest! {
        #![proptest_config(config(32))]

        /// Nesting far beyond any parser's stack, open or closed, after a
        /// valid start or not.
        #[test]
        fn ndjson_deep_nesting(
            depth in 1usize..250_000,
            (open, close) in select(NESTS),
            prefix in select(PREFIXES),
            closed in any::<bool>(),
        ) {
            let mut b = prefix.to_vec();
            b.extend(open.repeat(depth));
            if closed {
                b.push(b'1');
                b.extend(close.repeat(depth));
                if !prefix.is_empty() {
                    b.push(b'}');
                }
            }
            returns(&b, Format::NdJson)?;
        }
    }
}
