//! Raw file formats (NDJSON, CSV, Parquet) to and from Polars frames:
//! readers, the Parquet encoder, and ISO text for temporal columns.

mod batches;
mod parquet;
mod readers;
mod temporal;

use anyhow::Result;
use polars::prelude::*;

use crate::catalog::Format;
pub(crate) use batches::{Batcher, complete_records};
pub(crate) use parquet::{ParquetSink, parquet};
#[cfg(test)]
pub(crate) use readers::read;
pub(crate) use readers::{ParquetBatches, panic_is_contained, parquet_head};
use temporal::temporal_as_text;

/// Serialises a frame in a raw format. Temporal columns are written as ISO
/// text in NDJSON and CSV. A text file may be written in chunks that are
/// concatenated: `header` says whether this one starts the file (CSV's
/// header line); Parquet is always written whole.
pub(crate) fn write(frame: &DataFrame, format: Format, header: bool) -> Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::parquet::ROW_GROUP_ROWS;
    use super::temporal::{push_date, push_timestamp};
    use super::*;
    use std::io::Cursor;

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
            let back = read(&bytes, format, u64::MAX).unwrap();
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
                read(bytes, format, u64::MAX).is_err(),
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
        let err = read(deep.as_bytes(), Format::NdJson, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 64"), "{err}");
        let in_string = format!("{{\"page_id\": \"{}\\\"\"}}\n", "[".repeat(1_000));
        assert_eq!(
            read(in_string.as_bytes(), Format::NdJson, u64::MAX)
                .unwrap()
                .height(),
            1
        );
    }

    #[test]
    fn parquet_declaring_too_much_or_nested_columns_is_refused() {
        let bytes = write(&sample(), Format::Parquet, true).unwrap();
        let err = read(&bytes, Format::Parquet, 10).unwrap_err();
        assert!(
            err.to_string().contains("PIPELINE_MAX_DECOMPRESSED_BYTES"),
            "{err}"
        );
        let mut nested = df!("id" => ["a"], "l" => [Series::new("".into(), [1i64, 2])]).unwrap();
        let mut out = Vec::new();
        ParquetWriter::new(&mut out).finish(&mut nested).unwrap();
        let err = read(&out, Format::Parquet, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("column l is nested"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let frame = read(b"\xEF\xBB\xBFid,n\na,1\n", Format::Csv, u64::MAX).unwrap();
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
        let back = read(&parquet(&frame).unwrap(), Format::Parquet, u64::MAX).unwrap();
        assert!(back.equals_missing(&frame));
        let groups = ParquetReader::new(Cursor::new(parquet(&frame).unwrap()))
            .get_metadata()
            .unwrap()
            .row_groups
            .len();
        assert_eq!(groups, 3);
    }

    #[test]
    fn frames_pushed_in_pieces_are_written_whole_and_in_order() {
        let rows = ROW_GROUP_ROWS * 3 + 10;
        let frame = df!("n" => (0..rows as i64).collect::<Vec<_>>()).unwrap();
        let mut sink = ParquetSink::new(frame.schema(), Vec::new()).unwrap();
        for piece in [7, ROW_GROUP_ROWS * 2, 1, usize::MAX] {
            let done = sink.rows() as i64;
            sink.push(frame.slice(done, piece)).unwrap();
        }
        assert_eq!(sink.rows(), rows as u64);
        let back = read(&sink.finish().unwrap(), Format::Parquet, u64::MAX).unwrap();
        assert!(back.equals(&frame));
    }

    #[test]
    fn an_empty_frame_is_a_readable_parquet_file_with_its_columns() {
        let empty = sample().clear();
        let back = read(&parquet(&empty).unwrap(), Format::Parquet, u64::MAX).unwrap();
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

    /// The limit the binary runs with by default.
    const PRODUCTION: u64 = crate::cli::DEFAULT_MAX_DECOMPRESSED_BYTES;

    /// `read` returned, and for CSV and NDJSON not by catching a panic of
    /// the parser. Polars 0.55's Parquet decoders panic on some corrupt
    /// footers and pages (thrift booleans, dictionary indices, bitmap
    /// lengths), which no check of the footer can foresee: for Parquet a
    /// contained panic, reported as a one-line rejection, is the guarantee.
    fn returns(bytes: &[u8], format: Format) -> Result<(), TestCaseError> {
        if let Err(e) = read(bytes, format, PRODUCTION) {
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
        let names: Vec<&str> = Dataset::named("contacts")
            .columns()
            .iter()
            .map(|c| c.name)
            .collect();
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
