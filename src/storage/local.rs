//! `file://` URLs: a directory on the local filesystem.

use std::cell::Cell;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::{ObjectBytes, ObjectStat, ObjectStore, Snapshot, copied_snapshot};
use crate::digest::file_md5;
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
        write_file_atomically(&path, write)
            .map_err(|e| classified(e, format!("writing {}", path.display())))
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
    replace_atomically(path, &mut |builder, dir| builder.tempfile_in(dir), write)
}

/// `write_file_atomically` with the content of the file at `source`, which
/// nothing writes any more. A file no other name holds (a task's own temp
/// file) is linked, on the same filesystem, so no byte is copied; one that
/// other names hold (a snapshot of a landing slice) is copied, so that an
/// outside write in place to one of them cannot change the other, and so
/// that two links to one file are never renamed over each other (rename
/// then does nothing and leaves the temp name). Elsewhere, or where links
/// are refused, the kernel copies it.
pub(crate) fn publish_file_atomically(source: &Path, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let linked = Cell::new(false);
    let private = fs::metadata(source)?.nlink() == 1;
    replace_atomically(
        path,
        &mut |builder, dir| match private.then(|| temp_link(builder, source, dir)) {
            Some(Ok(link)) => {
                linked.set(true);
                Ok(link)
            }
            _ => builder.tempfile_in(dir),
        },
        &mut |file| {
            if !linked.get() {
                std::io::copy(&mut fs::File::open(source)?, file)?;
            }
            Ok(())
        },
    )
}

/// A new name in `dir` for the file at `source` (a hard link), opened.
fn temp_link(
    builder: &tempfile::Builder,
    source: &Path,
    dir: &Path,
) -> std::io::Result<tempfile::NamedTempFile> {
    builder.make_in(dir, |name| {
        fs::hard_link(source, name)?;
        fs::File::open(name)
    })
}

/// Makes a locked temp file beside `path` with `make`, fills it with
/// `write`, syncs it and renames it over `path`.
fn replace_atomically(
    path: &Path,
    make: &mut TempMaker,
    write: &mut dyn FnMut(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir)?;
    let prefix = temp_prefix(path)?;
    remove_stale_temp_files(dir, &prefix)?;
    let mut tmp = locked_temp_file(dir, &prefix, make)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Makes a temp file in a directory, named by the builder given.
type TempMaker<'a> =
    dyn FnMut(&tempfile::Builder, &Path) -> std::io::Result<tempfile::NamedTempFile> + 'a;

fn parent_dir(path: &Path) -> &Path {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    }
}

/// `.NAME.`: what temp files beside `path` start with.
fn temp_prefix(path: &Path) -> Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the path has no file name")?;
    Ok(format!(".{name}."))
}

const TEMP_SUFFIX: &str = ".tmp";

/// A new temp file in `dir` made by `make`, locked. Between its creation
/// and its lock a concurrent writer's cleanup can take it for a dead
/// writer's and remove it; the lock is only ours once the name still leads
/// to our file after taking it, so try again until it does. The lock is
/// shared: a temp link shares its file with others (a slice linked for two
/// uploads at once), and any lock tells the cleanup it is in use.
fn locked_temp_file(
    dir: &Path,
    prefix: &str,
    make: &mut TempMaker,
) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::MetadataExt;
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(TEMP_SUFFIX);
    for _ in 0..8 {
        let tmp = make(&builder, dir)?;
        tmp.as_file().lock_shared()?;
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

/// `io_error` of an I/O failure inside `err`; other errors as they are.
fn classified(err: anyhow::Error, what: String) -> anyhow::Error {
    match err.downcast::<std::io::Error>() {
        Ok(io) => io_error(io, what),
        Err(other) => other,
    }
}

fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == ErrorKind::NotFound)
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

    fn put_file(&self, key: &str, source: &Path, _md5: &str) -> Result<()> {
        let path = self.path(key)?;
        publish_file_atomically(source, &path)
            .map_err(|e| classified(e, format!("writing {}", path.display())))
    }

    /// A file keeps no MD5, so the file is hashed on another thread while
    /// it is published.
    fn put_file_hashing(
        &self,
        key: &str,
        source: &Path,
        _expected: Option<&str>,
    ) -> Result<String> {
        std::thread::scope(|scope| {
            let hashing = scope.spawn(|| file_md5(source));
            let published = self.put_file(key, source, "");
            let md5 = hashing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            published?;
            md5.map_err(|e| io_error(e, format!("reading {}", source.display())))
        })
    }

    /// A hard link to the object beside it, locked while the snapshot lives
    /// (so writers' cleanup leaves it alone, and removes it if this process
    /// dies): a later write replaces the object by rename and leaves the
    /// linked file as it was, so nothing is copied. A copy where links are
    /// refused.
    fn snapshot(&self, key: &str) -> Result<Option<Snapshot>> {
        let path = self.path(key)?;
        let (dir, prefix) = (parent_dir(&path), temp_prefix(&path)?);
        // A killed upload's link would otherwise stay until the slice is rewritten.
        remove_stale_temp_files(dir, &prefix)?;
        let link = locked_temp_file(dir, &prefix, &mut |b, dir| temp_link(b, &path, dir));
        match link {
            Ok(link) => Snapshot::linked(link)
                .map(Some)
                .map_err(|e| classified(e, format!("reading {}", path.display()))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(_) => copied_snapshot(self, key),
        }
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

    fn inode(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).unwrap().ino()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_on_the_same_filesystem_is_published_by_link() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("staged.parquet");
        fs::write(&source, b"slice").unwrap();
        let store = LocalStore::new(dir.path().join("lake"));
        store.put_file("a/b.parquet", &source, "").unwrap();
        let object = dir.path().join("lake/a/b.parquet");
        assert_eq!(inode(&object), inode(&source), "linked, not copied");
        fs::remove_file(&source).unwrap();
        assert_eq!(store.get("a/b.parquet").unwrap().unwrap(), b"slice");
        assert_eq!(names(&dir.path().join("lake/a")), ["b.parquet"]);
    }

    #[test]
    fn a_file_on_another_filesystem_is_copied() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("skipped: no /dev/shm");
            return;
        };
        let device = |p: &Path| fs::metadata(p).unwrap().dev();
        if device(dir.path()) == device(other.path()) {
            eprintln!("skipped: /dev/shm is on the temp dir's filesystem");
            return;
        }
        let source = other.path().join("staged");
        fs::write(&source, b"copied bytes").unwrap();
        let store = LocalStore::new(dir.path());
        store.put_file("a/b", &source, "").unwrap();
        assert_ne!(device(&dir.path().join("a/b")), device(&source));
        assert_eq!(store.get("a/b").unwrap().unwrap(), b"copied bytes");
        assert_eq!(names(&dir.path().join("a")), ["b"]);
    }

    #[test]
    fn a_snapshot_keeps_its_version_when_the_object_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert!(store.snapshot("a/b").unwrap().is_none());
        store.put("a/b", b"first").unwrap();
        let snapshot = store.snapshot("a/b").unwrap().unwrap();
        assert_eq!(snapshot.bytes, 5);
        // Published while the object shares its file: copied, and hashed
        // on the way.
        let lake = LocalStore::new(dir.path().join("lake"));
        snapshot.put(&lake, "a/b", None).unwrap();
        assert_eq!(snapshot.md5().unwrap(), crate::digest::md5_hex(b"first"));
        let published = dir.path().join("lake/a/b");
        assert_ne!(
            inode(&published),
            inode(&snapshot.path),
            "a shared file is copied"
        );
        // The replacing write's cleanup of dead temp files leaves the live
        // snapshot's link alone.
        store.put("a/b", b"second, longer").unwrap();
        assert_eq!(fs::read(&snapshot.path).unwrap(), b"first");
        assert_eq!(names(&dir.path().join("a")).len(), 2);
        drop(snapshot);
        assert_eq!(names(&dir.path().join("a")), ["b"], "the link goes with it");
        // A dead process's link (its lock gone) goes with the next snapshot.
        fs::hard_link(dir.path().join("a/b"), dir.path().join("a/.b.dead01.tmp")).unwrap();
        let again = store.snapshot("a/b").unwrap().unwrap();
        assert!(!dir.path().join("a/.b.dead01.tmp").exists());
        drop(again);
        assert_eq!(lake.get("a/b").unwrap().unwrap(), b"first");
        assert_eq!(store.get("a/b").unwrap().unwrap(), b"second, longer");
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = LocalStore::new("/tmp/x");
        assert!(store.get("../etc/passwd").is_err());
        assert!(store.put("/abs", b"").is_err());
    }
}
