//! Readers of raw files. They never panic on bad bytes: every failure
//! comes back as a one-line reason that validate turns into a rejection.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow};
use polars::prelude::*;
use polars_parquet::write::ParquetType;

use crate::catalog::Format;
use crate::exit::first_line;

pub(super) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses a whole raw file as one batch: CSV and NDJSON all-text, Parquet
/// with its own types, through the readers validate uses batch by batch.
#[cfg(test)]
pub(crate) fn read(bytes: &[u8], format: Format, max_decompressed_bytes: u64) -> Result<DataFrame> {
    match format {
        Format::Parquet => {
            let file = ParquetBatches::open(bytes, max_decompressed_bytes)?;
            file.read(0, file.rows(), None)
        }
        _ => {
            let mut batcher = super::Batcher::new(format);
            let frame = batcher.parse(bytes)?;
            Ok(frame.expect("a first batch is never skipped"))
        }
    }
}

/// A parser's outcome as a one-line reason naming the format.
pub(super) fn unreadable<T>(
    parsed: std::thread::Result<PolarsResult<T>>,
    format: Format,
) -> Result<T> {
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

/// A Parquet raw file read a slice of rows at a time (Polars decodes only
/// the row groups that hold them), after its footer was checked.
pub(crate) struct ParquetBatches<'a> {
    bytes: &'a [u8],
    rows: usize,
}

impl<'a> ParquetBatches<'a> {
    /// Refuses a file the parser could not survive: a footer declaring more
    /// than `max_decompressed_bytes`, nested columns, ragged row groups.
    pub(crate) fn open(bytes: &'a [u8], max_decompressed_bytes: u64) -> Result<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(anyhow!("file is empty"));
        }
        let rows = check_parquet_footer(bytes, max_decompressed_bytes)?;
        Ok(Self { bytes, rows })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// `rows` rows from `offset`, of every column or of `only` these.
    pub(crate) fn read(
        &self,
        offset: usize,
        rows: usize,
        only: Option<&[&str]>,
    ) -> Result<DataFrame> {
        let columns = only.map(|only| only.iter().map(|c| c.to_string()).collect());
        let parsed = contained(|| {
            ParquetReader::new(Cursor::new(self.bytes))
                .with_slice(Some((offset, rows)))
                .with_columns(columns)
                .finish()
        });
        unreadable(parsed, Format::Parquet)
    }
}

/// The first `rows` rows of a Parquet file this pipeline wrote (a valid or
/// quarantine slice), decoding only the row groups that hold them.
pub(crate) fn parquet_head(bytes: &[u8], rows: usize) -> Result<DataFrame> {
    Ok(ParquetReader::new(Cursor::new(bytes))
        .with_slice(Some((0, rows)))
        .finish()?)
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
pub(super) fn contained<T>(parse: impl FnOnce() -> T) -> std::thread::Result<T> {
    CONTAINING.fetch_add(1, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(parse));
    CONTAINING.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Whether a parser of hostile bytes is running: a task parses one file at
/// a time, so a panic now is that parser's.
pub(crate) fn panic_is_contained() -> bool {
    CONTAINING.load(Ordering::SeqCst) > 0
}

/// Deepest `[`/`{` nesting accepted in NDJSON. Source rows are flat; the
/// parser recurses per level, and 200k levels overflow its stack.
pub(crate) const MAX_NESTING: usize = 64;

/// Refuses JSON nested deeper than `MAX_NESTING`, outside strings; lines
/// are numbered from `first_line` + 1. Only a line with more brackets than
/// the limit can pass it, so most lines are only counted (vectorised).
pub(super) fn check_nesting(bytes: &[u8], first_line: usize) -> Result<()> {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]);
    for (line, end) in ends.enumerate() {
        let text = &bytes[start..end];
        start = end + 1;
        let openers = text.iter().filter(|&&b| b == b'[' || b == b'{').count();
        if openers > MAX_NESTING && depth(text) > MAX_NESTING {
            return Err(anyhow!(
                "unreadable .jsonl file: line {} is nested deeper than {MAX_NESTING} levels",
                first_line + line + 1
            ));
        }
    }
    Ok(())
}

/// The deepest `[`/`{` nesting of one JSON document, outside strings.
fn depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
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
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The row count of a Parquet file, refusing one whose footer declares more uncompressed data than
/// the limit (a decompression bomb) or nested columns (never source data).
fn check_parquet_footer(bytes: &[u8], max_decompressed_bytes: u64) -> Result<usize> {
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
    if declared > max_decompressed_bytes {
        return Err(anyhow!(
            "unreadable .parquet file: it declares {declared} uncompressed bytes, over the limit of {} \
             (PIPELINE_MAX_DECOMPRESSED_BYTES)",
            max_decompressed_bytes
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
    Ok(metadata.num_rows)
}
