//! Local temporary files a task puts in a store: `Staged`, a file it wrote
//! (hashed as it was written), and `Snapshot`, one version of an object
//! (hashed when first needed, possibly while it is being sent).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use tempfile::{NamedTempFile, TempPath};

use super::ObjectStore;
use crate::digest::{Md5Writer, file_md5};

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

/// One version of an object in a local temporary file that later writes of
/// the object cannot change (`ObjectStore::snapshot`); removed when dropped.
pub(crate) struct Snapshot {
    pub path: TempPath,
    pub bytes: u64,
    md5: OnceLock<String>,
    /// Kept open while the snapshot lives, for the lock a temp link holds.
    _open: Option<File>,
}

impl Snapshot {
    /// A temporary file that already holds the object's content (a link to
    /// it); it stays open, with any lock, until dropped.
    pub(crate) fn linked(file: NamedTempFile) -> Result<Self> {
        let bytes = file.as_file().metadata()?.len();
        let (open, path) = file.into_parts();
        Ok(Self {
            path,
            bytes,
            md5: OnceLock::new(),
            _open: Some(open),
        })
    }

    /// The content's hex MD5, read and hashed the first time it is asked for
    /// unless `put` already hashed it.
    pub(crate) fn md5(&self) -> Result<&str> {
        if let Some(md5) = self.md5.get() {
            return Ok(md5);
        }
        let md5 =
            file_md5(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
        Ok(self.md5.get_or_init(|| md5))
    }

    /// Puts the content at `key` in `store`. Unhashed, it is hashed while it
    /// is sent: `expected` is the MD5 it should have (what validate recorded).
    pub(crate) fn put(
        &self,
        store: &dyn ObjectStore,
        key: &str,
        expected: Option<&str>,
    ) -> Result<()> {
        if let Some(md5) = self.md5.get() {
            return store.put_file(key, &self.path, md5);
        }
        let md5 = store.put_file_hashing(key, &self.path, expected)?;
        let _ = self.md5.set(md5);
        Ok(())
    }
}

/// `ObjectStore::snapshot` by copying the object to a temporary file,
/// hashed as it is copied.
pub(crate) fn copied_snapshot(
    store: &(impl ObjectStore + ?Sized),
    key: &str,
) -> Result<Option<Snapshot>> {
    let mut copy = StagedFile::new()?;
    if store.copy_to(key, &mut copy)?.is_none() {
        return Ok(None);
    }
    let Staged { path, md5, bytes } = copy.finish()?;
    Ok(Some(Snapshot {
        path,
        bytes,
        md5: OnceLock::from(md5),
        _open: None,
    }))
}
