//! Raw file formats (NDJSON, CSV, Parquet) to and from Polars frames.
//!
//! Readers never panic on bad bytes: every failure comes back as a one-line
//! reason that validate turns into a rejection.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::{Result, anyhow};
use polars::prelude::*;

use crate::catalog::Format;

/// ISO-8601 without a zone: how timestamps are written to text formats.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Serialises a frame in a raw format. Temporal columns are written as ISO
/// text in NDJSON and CSV.
pub fn write(frame: &mut DataFrame, format: Format) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(frame.estimated_size());
    match format {
        Format::Csv => CsvWriter::new(&mut out)
            .include_header(true)
            .with_datetime_format(Some(TIMESTAMP_FORMAT.into()))
            .finish(frame)?,
        Format::NdJson => {
            let mut text = temporal_as_text(frame)?;
            JsonWriter::new(&mut out)
                .with_json_format(JsonFormat::JsonLines)
                .finish(&mut text)?
        }
        Format::Parquet => return parquet(frame),
    }
    Ok(out)
}

/// Zstd-compressed Parquet, the format of every valid and quarantine slice.
pub fn parquet(frame: &mut DataFrame) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(frame.estimated_size() / 4);
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(frame)?;
    Ok(out)
}

fn temporal_as_text(frame: &DataFrame) -> Result<DataFrame> {
    let exprs: Vec<Expr> = frame
        .columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::Date => col(c.name().clone()).dt().strftime("%Y-%m-%d"),
            DataType::Datetime(_, _) => col(c.name().clone()).dt().strftime(TIMESTAMP_FORMAT),
            _ => col(c.name().clone()),
        })
        .collect();
    Ok(frame.clone().lazy().select(exprs).collect()?)
}

/// Parses raw bytes. CSV comes back all-text (validate casts it); NDJSON
/// with inferred types; Parquet with its own types. A UTF-8 byte-order mark
/// is harmless and skipped.
pub fn read(bytes: &[u8], format: Format) -> Result<DataFrame> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(anyhow!("file is empty"));
    }
    let parsed = catch_unwind(AssertUnwindSafe(|| match format {
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
    }));
    match parsed {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(e)) => Err(anyhow!(
            "unreadable {format:?}: {}",
            first_line(&e.to_string())
        )),
        Err(_) => Err(anyhow!(
            "unreadable {format:?}: the parser gave up on malformed input"
        )),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let bytes = write(&mut sample(), format).unwrap();
            let back = read(&bytes, format).unwrap();
            assert_eq!(back.height(), 2, "{format:?}");
            assert_eq!(back.width(), 3, "{format:?}");
        }
    }

    #[test]
    fn text_formats_carry_iso_dates() {
        let bytes = write(&mut sample(), Format::NdJson).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"d\":\"2024-10-04\""), "{text}");
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let parquet = write(&mut sample(), Format::Parquet).unwrap();
        let cases: Vec<(&[u8], Format)> = vec![
            (b"", Format::Csv),
            (b"  \n", Format::NdJson),
            (b"{\"id\": \"a\"}\n{\"id\": ", Format::NdJson),
            (&parquet[..parquet.len() / 2], Format::Parquet),
            (b"PAR1garbage", Format::Parquet),
            (b"id,n\n\xff\xfe,1\n", Format::Csv),
        ];
        for (bytes, format) in cases {
            assert!(read(bytes, format).is_err(), "{format:?} {bytes:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let frame = read(b"\xEF\xBB\xBFid,n\na,1\n", Format::Csv).unwrap();
        assert_eq!(frame.get_column_names()[0].as_str(), "id");
    }
}
