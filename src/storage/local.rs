//! `file://` URLs: a directory on the local filesystem.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::{ObjectBytes, ObjectStat, ObjectStore};
use crate::exit;

/// A directory on the local filesystem (`file://` URLs).
pub(crate) struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn write_atomically(
        &self,
        key: &str,
        write: &mut dyn FnMut(&mut fs::File) -> Result<()>,
    ) -> Result<()> {
        let path = self.path(key)?;
        write_file_atomically(&path, write).map_err(|e| match e.downcast::<std::io::Error>() {
            Ok(io) => io_error(io, format!("writing {}", path.display())),
            Err(other) => other,
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

/// Writes `path` so that readers see the old file or the whole new one, and
/// a crash at any point loses neither:
/// - the bytes go to a uniquely named temp file beside it (`.NAME.XXXXXX.tmp`;
///   pods sharing a volume all run as PID 1, so the PID would not do),
///   locked while it is written, so that the next writer can tell a dead
///   writer's leftover from a live one's file;
/// - the file is synced, renamed over `path`, and the directory synced, so
///   the rename itself survives a crash before anything records it done.
///
/// Leftovers of writers that died (their lock is free) are removed first.
pub(crate) fn write_file_atomically(
    path: &Path,
    write: &mut dyn FnMut(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the path has no file name")?;
    let prefix = format!(".{name}.");
    remove_stale_temp_files(dir, &prefix)?;
    let mut tmp = locked_temp_file(dir, &prefix)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

const TEMP_SUFFIX: &str = ".tmp";

/// A new temp file in `dir`, locked. Between its creation and its lock a
/// concurrent writer's cleanup can take it for a dead writer's and remove
/// it; the lock is only ours once the name still leads to our file after
/// taking it, so try again until it does.
fn locked_temp_file(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..8 {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)?;
        tmp.as_file().lock()?;
        let ours = tmp.as_file().metadata()?.ino();
        if fs::metadata(tmp.path()).is_ok_and(|m| m.ino() == ours) {
            return Ok(tmp);
        }
    }
    anyhow::bail!(
        "could not keep a temp file in {}: removed by concurrent writers every time",
        dir.display()
    )
}

/// Removes `PREFIX*.tmp` files in `dir` whose writer is gone: a live writer
/// holds the file's lock, and the lock dies with its process.
fn remove_stale_temp_files(dir: &Path, prefix: &str) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        if !(name.starts_with(prefix) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let Ok(file) = fs::File::open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
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

    fn open_read(&self, key: &str) -> Result<Option<Box<dyn Read + Send + '_>>> {
        let path = self.path(key)?;
        match fs::File::open(&path) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e, format!("reading {}", path.display()))),
        }
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectStat>> {
        let Some(bytes) = self.size(key)? else {
            return Ok(None);
        };
        Ok(self.streamed_md5(key)?.map(|md5| ObjectStat {
            bytes,
            md5: Some(md5),
        }))
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e, format!("checking {}", path.display()))),
        }
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
        assert_eq!(
            stat.md5.as_deref(),
            Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
        );
        assert_eq!(store.size("a/b.txt").unwrap(), Some(11));
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
    fn a_dead_writers_temp_file_is_removed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        fs::create_dir_all(dir.path().join("a")).unwrap();
        let dead = dir.path().join("a/.b.csv.dead01.tmp");
        fs::write(&dead, b"half").unwrap();
        let live = dir.path().join("a/.b.csv.live01.tmp");
        let live_file = fs::File::create(&live).unwrap();
        live_file.lock().unwrap();
        // Its lock is per open file, so another open of it in this process
        // sees it held, as another process would.
        store.put("a/b.csv", b"whole").unwrap();
        assert!(!dead.exists(), "a dead writer's leftover is removed");
        assert!(live.exists(), "a live writer's file is kept");
        drop(live_file);
        store.put("a/b.csv", b"whole again").unwrap();
        assert!(!live.exists());
        let names: Vec<_> = fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["b.csv"]);
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = LocalStore::new("/tmp/x");
        assert!(store.get("../etc/passwd").is_err());
        assert!(store.put("/abs", b"").is_err());
    }
}
