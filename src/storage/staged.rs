//! A local temporary file hashed as it is written: what a task makes (or
//! copies) before it puts it in a store with `ObjectStore::put_file`.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Result;
use tempfile::TempPath;

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
    /// Puts the file's content at `key` in `store`.
    pub(crate) fn put(&self, store: &dyn ObjectStore, key: &str) -> Result<()> {
        store.put_file(key, &self.path, &self.md5)
    }
}
