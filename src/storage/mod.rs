//! Object storage behind one small interface, addressed by URL.
//!
//! Keys are `/`-separated relative paths (see `catalog::Dataset::object_key`).
//! Writes are atomic: a reader sees the old object or the whole new one.

mod local;
mod s3;
mod staged;

use anyhow::Result;

use std::io::{Read, Write};
use std::path::Path;

use crate::digest::{Md5Writer, file_md5};
use crate::exit;
use crate::settings::S3Tuning;
pub(crate) use local::{LocalStore, write_file_atomically};
pub(crate) use staged::{Snapshot, Staged, StagedFile, copied_snapshot};

/// Bytes a file is read in when it is streamed to a store.
const PART_BYTES: usize = 8 << 20;

/// What is known about a stored object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjectStat {
    pub bytes: u64,
    /// Hex MD5 of the content: 32 lowercase hex digits, or `None` when the
    /// store cannot say without reading it (an S3 object written by someone
    /// else in several parts).
    pub md5: Option<String>,
}

/// An object's bytes: read into memory, or mapped from a local file.
pub(crate) enum ObjectBytes {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for ObjectBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ObjectBytes::Read(bytes) => bytes,
            ObjectBytes::Mapped(map) => map,
        }
    }
}

pub(crate) trait ObjectStore: Send + Sync {
    /// The object's bytes, or `None` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// `get` for a caller that only reads the bytes: a local store maps the
    /// file rather than copying it into fresh memory.
    fn get_bytes(&self, key: &str) -> Result<Option<ObjectBytes>> {
        Ok(self.get(key)?.map(ObjectBytes::Read))
    }
    /// The object as a stream, read a buffer at a time without holding it
    /// whole, or `None` when it does not exist.
    fn open_read(&self, key: &str) -> Result<Option<Box<dyn Read + Send + '_>>> {
        Ok(self
            .get(key)?
            .map(|bytes| Box::new(std::io::Cursor::new(bytes)) as Box<dyn Read + Send>))
    }
    /// Copies the object into `out` a buffer at a time; its size, or `None`
    /// when it does not exist. A failure is transient (exit 75).
    fn copy_to(&self, key: &str, out: &mut dyn Write) -> Result<Option<u64>> {
        let Some(mut reader) = self.open_read(key)? else {
            return Ok(None);
        };
        let copied = std::io::copy(&mut reader, out)
            .map_err(|e| exit::transient(format!("copying {}: {e}", self.url(key))))?;
        Ok(Some(copied))
    }
    /// At most the first `len` bytes of the object.
    fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_bytes(key)?
            .map(|bytes| bytes[..bytes.len().min(len)].to_vec()))
    }
    /// Writes the whole object atomically, replacing any previous one.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// `put` of the concatenation of `parts`, taken in order as they come,
    /// so that writing overlaps with making them. An `Err` part abandons
    /// the write and leaves any previous object in place.
    fn put_stream(
        &self,
        key: &str,
        parts: &mut dyn Iterator<Item = Result<Vec<u8>>>,
    ) -> Result<()> {
        let whole = parts.collect::<Result<Vec<_>>>()?.concat();
        self.put(key, &whole)
    }
    /// `put` when the caller already has the content's hex MD5, so a
    /// backend that stores it need not hash the bytes again.
    fn put_with_md5(&self, key: &str, bytes: &[u8], _md5: &str) -> Result<()> {
        self.put(key, bytes)
    }
    /// `put_with_md5` of a local file's content, streamed from the file.
    fn put_file(&self, key: &str, path: &Path, _md5: &str) -> Result<()> {
        let mut file = std::fs::File::open(path)?;
        let mut parts = std::iter::from_fn(|| {
            let mut part = Vec::with_capacity(PART_BYTES);
            match (&mut file).take(PART_BYTES as u64).read_to_end(&mut part) {
                Ok(0) => None,
                Ok(_) => Some(Ok(part)),
                Err(e) => Some(Err(e.into())),
            }
        });
        self.put_stream(key, &mut parts)
    }
    /// `put_file` of a file whose MD5 is not known yet; returns it.
    /// `expected` is the MD5 the caller believes it has: a store that keeps
    /// the MD5 with the object may send the content while hashing it, and
    /// must then never commit it under an MD5 that is not its own.
    fn put_file_hashing(&self, key: &str, path: &Path, _expected: Option<&str>) -> Result<String> {
        hash_then_put_file(self, key, path)
    }
    /// The object as it is now, in a local file that later writes of it
    /// cannot change; `None` when it does not exist. A copy in a temp file
    /// here; a local store links it instead.
    fn snapshot(&self, key: &str) -> Result<Option<Snapshot>> {
        copied_snapshot(self, key)
    }
    fn stat(&self, key: &str) -> Result<Option<ObjectStat>>;
    /// The object's hex MD5, read and hashed when `stat` cannot tell it.
    fn md5(&self, key: &str) -> Result<Option<String>> {
        match self.stat(key)? {
            Some(ObjectStat { md5: Some(md5), .. }) => Ok(Some(md5)),
            Some(_) => self.streamed_md5(key),
            None => Ok(None),
        }
    }
    /// The object's hex MD5, hashed as it is read.
    fn streamed_md5(&self, key: &str) -> Result<Option<String>> {
        let mut hashed = Md5Writer::new(std::io::sink());
        Ok(self.copy_to(key, &mut hashed)?.map(|_| hashed.finish().1))
    }
    /// The object's size in bytes, without reading it.
    fn size(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.stat(key)?.map(|s| s.bytes))
    }
    /// Whether the object exists, without reading it.
    fn exists(&self, key: &str) -> Result<bool>;
    /// Removes the object; `false` when there was none.
    fn delete(&self, key: &str) -> Result<bool>;
    /// The object as a file on this machine, when the store is local, so
    /// readers can use it in place.
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// Where the object lives, for metrics and logs.
    fn url(&self, key: &str) -> String;
}

/// `ObjectStore::put_file_hashing` in two reads: hash, then put.
fn hash_then_put_file(
    store: &(impl ObjectStore + ?Sized),
    key: &str,
    path: &Path,
) -> Result<String> {
    let md5 = file_md5(path)?;
    store.put_file(key, path, &md5)?;
    Ok(md5)
}

/// Opens the store a URL names; `setting` names the setting in errors.
pub(crate) fn open(
    url: &str,
    setting: &'static str,
    s3: &S3Tuning,
) -> Result<Box<dyn ObjectStore>> {
    match url.split_once("://") {
        Some(("file", path)) if !path.is_empty() => Ok(Box::new(LocalStore::new(path))),
        Some(("s3", location)) => Ok(Box::new(s3::S3Store::open(location, setting, *s3)?)),
        _ => Err(exit::config(format!(
            "{setting}: unsupported storage URL {url:?} (expected file://PATH or s3://BUCKET[/PREFIX])"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_urls_are_config_errors() {
        for url in ["ftp://host/x", "file://", "s3://", "s3:///prefix", "lake"] {
            let err = open(url, "PIPELINE_LAKE_URL", &S3Tuning::DEFAULT)
                .err()
                .unwrap();
            assert_eq!(exit::code_of(&err), exit::ExitCode::Config, "{url}");
            assert!(err.to_string().contains("PIPELINE_LAKE_URL"), "{url}");
        }
    }
}
