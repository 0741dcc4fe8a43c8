//! A raw file read in batches of whole records, so that memory holds one
//! batch rather than the file. The caller feeds bytes as they arrive;
//! `Batcher` cuts them at record boundaries and parses each batch with the
//! columns the file's first batch named, all as text (the checks cast).

use std::io::Cursor;
use std::num::NonZeroUsize;

use anyhow::{Result, anyhow};
use polars::prelude::*;

use super::readers::{UTF8_BOM, check_nesting, contained, unreadable};
use crate::catalog::Format;

/// Lines of the first batch whose keys name an NDJSON file's columns.
const NDJSON_HEADER_LINES: usize = 10_000;

/// Where the last complete record of `bytes` ends (just after its newline);
/// 0 when there is none. A CSV newline ends a record only outside quotes:
/// an even number of `"` before it (RFC 4180 escapes a quote by doubling it).
pub(crate) fn complete_records(bytes: &[u8], format: Format) -> usize {
    match format {
        Format::Csv => {
            let (mut quoted, mut end) = (false, 0);
            for at in memchr::memchr2_iter(b'"', b'\n', bytes) {
                match bytes[at] {
                    b'"' => quoted = !quoted,
                    _ if !quoted => end = at + 1,
                    _ => {}
                }
            }
            end
        }
        _ => memchr::memrchr(b'\n', bytes).map_or(0, |at| at + 1),
    }
}

/// Parses the batches of one CSV or NDJSON file in order.
pub(crate) struct Batcher {
    format: Format,
    /// The file's columns, from the CSV header or the first NDJSON lines' keys.
    schema: Option<SchemaRef>,
    /// The columns to parse, when not all of them.
    only: Option<Vec<PlSmallStr>>,
    first: bool,
    /// Lines in the batches before this one (NDJSON), for errors.
    lines: usize,
}

impl Batcher {
    pub(crate) fn new(format: Format) -> Self {
        debug_assert!(format != Format::Parquet, "Parquet is read by row group");
        Self {
            format,
            schema: None,
            only: None,
            first: true,
            lines: 0,
        }
    }

    /// Parses only `columns` (they must be in the file), skipping the
    /// work of building the others.
    pub(crate) fn only(mut self, columns: &[&str]) -> Self {
        self.only = Some(columns.iter().map(|c| PlSmallStr::from(*c)).collect());
        self
    }

    /// The rows of `records`, complete records that follow the previous
    /// batch's; `None` for a batch of blank lines.
    pub(crate) fn parse(&mut self, records: &[u8]) -> Result<Option<DataFrame>> {
        let mut records = records;
        let first = std::mem::take(&mut self.first);
        if first {
            records = records.strip_prefix(UTF8_BOM).unwrap_or(records);
            if records.iter().all(u8::is_ascii_whitespace) {
                return Err(anyhow!("file is empty"));
            }
        } else if records.iter().all(u8::is_ascii_whitespace) {
            self.lines += memchr::memchr_iter(b'\n', records).count();
            return Ok(None);
        }
        if self.format == Format::NdJson {
            check_nesting(records, self.lines)?;
            self.lines += memchr::memchr_iter(b'\n', records).count();
        }
        let format = self.format;
        let schema = match &self.schema {
            Some(schema) => schema.clone(),
            None => {
                let columns = contained(|| match format {
                    Format::Csv => csv_header(records),
                    _ => ndjson_columns(records),
                });
                let schema = unreadable(columns, format)?;
                self.schema = Some(schema.clone());
                schema
            }
        };
        let only = self.only.clone();
        let parsed = contained(|| match format {
            Format::Csv => CsvReadOptions::default()
                .with_has_header(first)
                .with_schema(Some(schema))
                .with_columns(only.map(Arc::from))
                .into_reader_with_file_handle(Cursor::new(records))
                .finish(),
            _ => {
                let schema = match only {
                    Some(only) => Arc::new(
                        (only.iter())
                            .map(|name| Ok(Field::new(name.clone(), schema.try_get(name)?.clone())))
                            .collect::<PolarsResult<Schema>>()?,
                    ),
                    None => schema,
                };
                JsonReader::new(Cursor::new(records))
                    .with_json_format(JsonFormat::JsonLines)
                    .with_schema(schema)
                    .finish()
            }
        });
        Ok(Some(unreadable(parsed, format)?))
    }
}

/// A CSV file's columns, all text, from its header line.
fn csv_header(records: &[u8]) -> PolarsResult<SchemaRef> {
    let header = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_n_rows(Some(0))
        .with_raise_if_empty(true)
        .into_reader_with_file_handle(Cursor::new(records))
        .finish()?;
    Ok(header.schema().clone())
}

/// The keys of an NDJSON file's first lines, each a text column: the
/// contract gives the types, and the checks cast text to them, so nothing
/// is inferred per value. A column holding arrays or objects in those lines
/// keeps its nested type, so that the checks find no castable value in it.
fn ndjson_columns(records: &[u8]) -> PolarsResult<SchemaRef> {
    let lines = NonZeroUsize::new(NDJSON_HEADER_LINES);
    let inferred = polars::io::ndjson::infer_schema(&mut Cursor::new(records), lines)?;
    Ok(Arc::new(
        inferred
            .iter()
            .map(|(name, dtype)| match dtype.is_nested() {
                true => Field::new(name.clone(), dtype.clone()),
                false => Field::new(name.clone(), DataType::String),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_end_at_newlines_outside_quotes() {
        let csv = b"a,b\n1,\"x\ny\"\n2,\"q\"\"\n";
        assert_eq!(complete_records(csv, Format::Csv), 12);
        assert_eq!(complete_records(b"a,b\n1,\"open", Format::Csv), 4);
        assert_eq!(complete_records(b"no newline", Format::Csv), 0);
        let ndjson = b"{\"a\": 1}\n{\"a\": 2";
        assert_eq!(complete_records(ndjson, Format::NdJson), 9);
    }

    #[test]
    fn batches_after_the_first_take_its_columns() {
        for (format, first, second) in [
            (Format::Csv, &b"id,n\na,1\n"[..], &b"b,2\n\"c\n\",3\n"[..]),
            (
                Format::NdJson,
                b"{\"id\": \"a\", \"n\": 1}\n",
                b"{\"n\": 2.5, \"id\": \"b\"}\n{\"id\": \"c\"}\n",
            ),
        ] {
            let mut batcher = Batcher::new(format);
            let one = batcher.parse(first).unwrap().unwrap();
            let two = batcher.parse(second).unwrap().unwrap();
            assert_eq!(one.get_column_names(), two.get_column_names(), "{format:?}");
            assert_eq!(two.height(), 2, "{format:?}");
            let n = two.column("n").unwrap();
            assert_eq!(n.dtype(), &DataType::String, "{format:?}");
            assert!(batcher.parse(b"\n \n").unwrap().is_none());
        }
    }

    #[test]
    fn nesting_errors_name_the_line_of_the_file() {
        let mut batcher = Batcher::new(Format::NdJson);
        batcher.parse(b"{\"a\": 1}\n{\"a\": 2}\n").unwrap();
        batcher.parse(b"\n").unwrap();
        let deep = format!("{{\"a\": {}1{}}}\n", "[".repeat(65), "]".repeat(65));
        let flat_but_bracketed = format!("{{\"a\": \"{}\"}}\n", "[".repeat(65));
        batcher.parse(flat_but_bracketed.as_bytes()).unwrap();
        let err = batcher.parse(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 5 is nested deeper"), "{err}");
    }

    #[test]
    fn an_empty_first_batch_is_an_empty_file() {
        let mut batcher = Batcher::new(Format::Csv);
        let err = batcher.parse(b"\xEF\xBB\xBF \n").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
