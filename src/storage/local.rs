//! `file://` URLs: a directory on the local filesystem.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::{ObjectBytes, ObjectStat, ObjectStore, md5_hex};
use crate::exit;

/// A directory on the local filesystem (`file://` URLs).
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Writes a temporary file beside the object, then renames it over the
    /// object: readers see the old object or the whole new one.
    fn write_atomically(
        &self,
        key: &str,
        write: &mut dyn FnMut(&mut fs::File) -> Result<()>,
    ) -> Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().context("object key has no parent")?;
        fs::create_dir_all(dir).map_err(|e| io_error(e, format!("creating {}", dir.display())))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            std::process::id()
        ));
        // Durability is left to the filesystem: an fsync per file costs
        // more than the write.
        let written = fs::File::create(&tmp)
            .map_err(anyhow::Error::from)
            .and_then(|mut file| write(&mut file))
            .and_then(|()| Ok(fs::rename(&tmp, &path)?));
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            match e.downcast::<std::io::Error>() {
                Ok(io) => io_error(io, format!("writing {}", path.display())),
                Err(other) => other,
            }
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || key.is_empty() {
            anyhow::bail!("object key {key:?} is not a plain relative path");
        }
        Ok(self.root.join(rel))
    }
}

/// Local I/O errors are configuration problems when permissions or paths are
/// wrong, otherwise transient (disk full, NFS hiccup).
fn io_error(err: std::io::Error, what: String) -> anyhow::Error {
    let message = format!("{what}: {err}");
    match err.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem | ErrorKind::NotADirectory => {
            exit::config(message)
        }
        _ => exit::transient(message),
    }
}

impl ObjectStore for LocalStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e, format!("reading {}", path.display()))),
        }
    }

    fn get_bytes(&self, key: &str) -> Result<Option<ObjectBytes>> {
        let path = self.path(key)?;
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e, format!("reading {}", path.display()))),
        };
        // SAFETY: objects are replaced by rename, never rewritten in place,
        // so the mapped file does not change under the reader.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
            .map_err(|e| io_error(e, format!("mapping {}", path.display())))?;
        Ok(Some(ObjectBytes::Mapped(map)))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.write_atomically(key, &mut |file| Ok(file.write_all(bytes)?))
    }

    fn put_stream(
        &self,
        key: &str,
        parts: &mut dyn Iterator<Item = Result<Vec<u8>>>,
    ) -> Result<()> {
        self.write_atomically(key, &mut |file| {
            for part in &mut *parts {
                file.write_all(&part?)?;
            }
            Ok(())
        })
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectStat>> {
        Ok(self.get_bytes(key)?.map(|bytes| ObjectStat {
            bytes: bytes.len() as u64,
            md5: md5_hex(&bytes),
        }))
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        path.try_exists()
            .map_err(|e| io_error(e, format!("checking {}", path.display())))
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(e, format!("deleting {}", path.display()))),
        }
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn url(&self, key: &str) -> String {
        format!("file://{}", self.root.join(key).display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_round_trip_is_atomic_and_stat_hashes_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert_eq!(store.get("a/b.txt").unwrap(), None);
        assert!(!store.exists("a/b.txt").unwrap());
        store.put("a/b.txt", b"hello").unwrap();
        assert!(store.exists("a/b.txt").unwrap());
        store.put("a/b.txt", b"hello world").unwrap();
        assert_eq!(store.get("a/b.txt").unwrap().unwrap(), b"hello world");
        let stat = store.stat("a/b.txt").unwrap().unwrap();
        assert_eq!(stat.bytes, 11);
        assert_eq!(stat.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
        assert!(store.delete("a/b.txt").unwrap());
        assert!(!store.delete("a/b.txt").unwrap());
    }

    #[test]
    fn streamed_parts_are_written_as_one_object_and_mapped_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert!(store.get_bytes("a/b.csv").unwrap().is_none());
        let parts = [b"id\n".to_vec(), vec![], b"1\n2\n".to_vec()];
        store
            .put_stream("a/b.csv", &mut parts.into_iter().map(Ok))
            .unwrap();
        let want: &[u8] = b"id\n1\n2\n";
        assert_eq!(&*store.get_bytes("a/b.csv").unwrap().unwrap(), want);
        store
            .put_stream("a/empty", &mut std::iter::empty())
            .unwrap();
        assert_eq!(&*store.get_bytes("a/empty").unwrap().unwrap(), b"");
        // A failing part keeps the previous object and leaves no temp file.
        let mut failing = [Ok(b"x".to_vec()), Err(anyhow::anyhow!("generator failed"))].into_iter();
        let err = store.put_stream("a/b.csv", &mut failing).unwrap_err();
        assert_eq!(err.to_string(), "generator failed");
        assert_eq!(&*store.get_bytes("a/b.csv").unwrap().unwrap(), want);
        assert_eq!(fs::read_dir(dir.path().join("a")).unwrap().count(), 2);
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = LocalStore::new("/tmp/x");
        assert!(store.get("../etc/passwd").is_err());
        assert!(store.put("/abs", b"").is_err());
    }
}
