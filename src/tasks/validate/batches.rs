//! A raw file read from the landing area in batches of whole records, so
//! that validate holds a few batches of it at a time, never the file.

use std::io::Read;
use std::sync::mpsc;

use anyhow::Result;
use polars::prelude::*;

use crate::catalog::Format;
use crate::checks::split::Rejection;
use crate::exit;
use crate::formats::{self, Batcher, ParquetBatches};
use crate::storage::ObjectStore;

/// Longest record accepted: a line this long is no source row.
const MAX_RECORD_BYTES: usize = 1 << 30;

/// Why reading stopped early: the file (a rejection) or the store (an error).
pub(super) type FileResult<T> = Result<Result<T, Rejection>>;

/// How the batches are cut, and the file's size.
pub(super) struct BatchPlan<'a> {
    pub store: &'a dyn ObjectStore,
    pub key: &'a str,
    pub format: Format,
    pub size: u64,
    pub batch_bytes: usize,
    pub max_decompressed_bytes: u64,
    /// Only these columns, when not all of them are needed.
    pub only: Option<&'a [&'a str]>,
}

impl BatchPlan<'_> {
    /// Calls `each` with the file's rows, a batch at a time and in order,
    /// and with an estimate of the file's rows (from the first batch's
    /// bytes per row) for sizing key sets. Stops at the first rejection.
    pub(super) fn for_each(
        &self,
        each: &mut dyn FnMut(DataFrame, usize) -> Result<(), Rejection>,
    ) -> FileResult<()> {
        match self.format {
            Format::Parquet => self.parquet(each),
            format => self.text(format, each),
        }
    }

    /// The next batch is read and parsed on a thread of its own while
    /// `each` checks this one, so that parsing and checking overlap; one
    /// parsed batch waits at most.
    fn text(
        &self,
        format: Format,
        each: &mut dyn FnMut(DataFrame, usize) -> Result<(), Rejection>,
    ) -> FileResult<()> {
        let (sender, receiver) = mpsc::sync_channel(1);
        std::thread::scope(|scope| {
            scope.spawn(move || self.parse_text(format, &mut |batch| sender.send(batch).is_ok()));
            for batch in receiver {
                let (frame, expected_rows) = match batch? {
                    Ok(batch) => batch,
                    Err(rejection) => return Ok(Err(rejection)),
                };
                if let Err(rejection) = each(frame, expected_rows) {
                    return Ok(Err(rejection));
                }
            }
            Ok(Ok(()))
        })
    }

    /// Reads and parses the batches of a text file in order, handing each
    /// (or the error that ends the file) to `emit` until it returns false.
    fn parse_text(
        &self,
        format: Format,
        emit: &mut dyn FnMut(FileResult<(DataFrame, usize)>) -> bool,
    ) {
        let mut reader = match self.store.open_read(self.key) {
            Ok(Some(reader)) => reader,
            Ok(None) => {
                emit(Err(self.vanished()));
                return;
            }
            Err(e) => {
                emit(Err(e));
                return;
            }
        };
        let mut batcher = match self.only {
            Some(columns) => Batcher::new(format).only(columns),
            None => Batcher::new(format),
        };
        let mut buffer: Vec<u8> = Vec::with_capacity(self.batch_bytes);
        let (mut want, mut done, mut expected_rows) = (self.batch_bytes, false, 0);
        while !done {
            let missing = want.saturating_sub(buffer.len());
            let read = match (&mut reader).take(missing as u64).read_to_end(&mut buffer) {
                Ok(read) => read,
                Err(e) => {
                    let url = self.store.url(self.key);
                    emit(Err(exit::transient(format!("reading {url}: {e}"))));
                    return;
                }
            };
            done = read < missing;
            let end = match done {
                true => buffer.len(),
                false => formats::complete_records(&buffer, format),
            };
            if end == 0 && done && expected_rows > 0 {
                break;
            }
            if end == 0 && !done {
                // One record longer than a batch: read on until it ends.
                if buffer.len() >= MAX_RECORD_BYTES {
                    emit(Ok(Err(Rejection::unreadable(format!(
                        "unreadable .{} file: a record is longer than {MAX_RECORD_BYTES} bytes",
                        format.extension()
                    )))));
                    return;
                }
                want = buffer.len() * 2;
                continue;
            }
            let frame = match batcher.parse(&buffer[..end]) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    buffer.drain(..end);
                    continue;
                }
                Err(e) => {
                    emit(Ok(Err(Rejection::unreadable(e.to_string()))));
                    return;
                }
            };
            if expected_rows == 0 {
                let per_byte = frame.height().max(1) as f64 / end as f64;
                expected_rows = ((self.size as f64 * per_byte) as usize).max(1);
            }
            buffer.drain(..end);
            want = self.batch_bytes.max(buffer.len() * 2);
            if !emit(Ok(Ok((frame, expected_rows)))) {
                return;
            }
        }
    }

    /// Parquet is read from its bytes (mapped when the store is local) a
    /// slice of rows at a time; the rows a batch holds are estimated from
    /// the footer's uncompressed size.
    fn parquet(
        &self,
        each: &mut dyn FnMut(DataFrame, usize) -> Result<(), Rejection>,
    ) -> FileResult<()> {
        let bytes = self
            .store
            .get_bytes(self.key)?
            .ok_or_else(|| self.vanished())?;
        let file = match ParquetBatches::open(&bytes, self.max_decompressed_bytes) {
            Ok(file) => file,
            Err(e) => return Ok(Err(Rejection::unreadable(e.to_string()))),
        };
        let rows = file.rows();
        let batch_rows = (self.batch_bytes / 256).max(1 << 14);
        for offset in (0..rows.max(1)).step_by(batch_rows) {
            let frame = match file.read(offset, batch_rows, self.only) {
                Ok(frame) => frame,
                Err(e) => return Ok(Err(Rejection::unreadable(e.to_string()))),
            };
            if let Err(rejection) = each(frame, rows) {
                return Ok(Err(rejection));
            }
        }
        Ok(Ok(()))
    }

    fn vanished(&self) -> anyhow::Error {
        exit::transient(format!(
            "{} vanished while validated",
            self.store.url(self.key)
        ))
    }
}
