//! A local temporary file hashed as it is written: what a task makes (or
//! copies) before it puts it in a store with `ObjectStore::put_file`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};

use anyhow::Result;
use tempfile::{NamedTempFile, TempPath};

use super::ObjectStore;
use crate::digest::Md5Writer;

/// A temporary file being written; removed when dropped.
pub(crate) struct StagedFile {
    out: Md5Writer<BufWriter<File>>,
    path: TempPath,
}

/// A temporary file written to its end, with its MD5 and size.
pub(crate) struct Staged {
    pub path: TempPath,
    pub md5: String,
    pub bytes: u64,
    /// Kept open while the file is in use, for the lock a temp link holds.
    _open: Option<File>,
}

impl StagedFile {
    pub(crate) fn new() -> Result<Self> {
        let (file, path) = tempfile::NamedTempFile::new()?.into_parts();
        Ok(Self {
            out: Md5Writer::new(BufWriter::with_capacity(1 << 20, file)),
            path,
        })
    }

    pub(crate) fn finish(self) -> Result<Staged> {
        let (mut file, md5, bytes) = self.out.finish();
        file.flush()?;
        Ok(Staged {
            path: self.path,
            md5,
            bytes,
            _open: None,
        })
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Staged {
    /// A temporary file that already holds its content (a link to another
    /// file), hashed as it is read; it stays open, with any lock, until dropped.
    pub(crate) fn read(file: NamedTempFile) -> Result<Self> {
        let mut hashed = Md5Writer::new(std::io::sink());
        std::io::copy(
            &mut BufReader::with_capacity(1 << 20, file.as_file()),
            &mut hashed,
        )?;
        let (_, md5, bytes) = hashed.finish();
        let (open, path) = file.into_parts();
        Ok(Self {
            path,
            md5,
            bytes,
            _open: Some(open),
        })
    }

    /// Puts the file's content at `key` in `store`.
    pub(crate) fn put(&self, store: &dyn ObjectStore, key: &str) -> Result<()> {
        store.put_file(key, &self.path, &self.md5)
    }
}

/// `ObjectStore::snapshot` by copying the object to a temporary file.
pub(crate) fn copied_snapshot(
    store: &(impl ObjectStore + ?Sized),
    key: &str,
) -> Result<Option<Staged>> {
    let mut copy = StagedFile::new()?;
    match store.copy_to(key, &mut copy)? {
        Some(_) => Ok(Some(copy.finish()?)),
        None => Ok(None),
    }
}
