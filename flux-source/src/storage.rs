//! The artifact storage directory: `<root>/<kind>/<namespace>/<name>/<file>`, atomic writes
//! (temp file + rename), per-object file locks, `latest.tar.gz`/`index.yaml` symlinks and
//! garbage collection by retention count and TTL.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::archive::{self, Packed};
use crate::artifact::{rfc3339, Artifact, Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::ignore::Rules;

/// Garbage-collection policy (`--artifact-retention-records`, `--artifact-retention-ttl`).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub records: usize,
    pub ttl: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            records: 2,
            ttl: Duration::from_secs(60),
        }
    }
}

/// A storage directory plus the address artifacts are advertised under.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    advertised: String,
}

/// What [`Storage::check_stored`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredState {
    Present,
    Missing,
    /// The digest no longer matched; the file was removed (`ArtifactVerificationFailed`).
    Corrupt {
        expected: String,
        actual: String,
    },
}

/// Holds a per-object lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: fs::File,
}

impl Storage {
    /// Opens (creating) the storage root. `advertised` is `host[:port]` or a full `http(s)://` prefix.
    pub fn new(root: impl Into<PathBuf>, advertised: impl Into<String>) -> Result<Storage> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(Error::io("creating storage", &root))?;
        Ok(Storage {
            root,
            advertised: advertised.into(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new artifact description for `file` of object `kind/namespace/name` (not yet written).
    pub fn new_artifact(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        file: &str,
        revision: &str,
    ) -> Artifact {
        let path = format!("{}/{namespace}/{name}/{file}", kind.to_ascii_lowercase());
        Artifact {
            url: self.url_for(&path),
            path,
            revision: revision.to_string(),
            digest: None,
            last_update_time: rfc3339(SystemTime::now()),
            size: None,
            metadata: None,
        }
    }

    /// `http://<advertised>/<path>`, or `<advertised>/<path>` when it already has a scheme.
    pub fn url_for(&self, path: &str) -> String {
        let base = self.advertised.trim_end_matches('/');
        if base.starts_with("http://") || base.starts_with("https://") {
            format!("{base}/{path}")
        } else {
            format!("http://{base}/{path}")
        }
    }

    /// The absolute path of an artifact, refusing paths that leave the root.
    pub fn local_path(&self, artifact: &Artifact) -> Result<PathBuf> {
        let rel = crate::extract::safe_relative(&artifact.path)?;
        Ok(self.root.join(rel))
    }

    /// Creates the artifact's directory.
    pub fn mk_artifact_dir(&self, artifact: &Artifact) -> Result<PathBuf> {
        let path = self.local_path(artifact)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(Error::io("creating artifact directory", &dir))?;
        Ok(dir)
    }

    /// Takes the exclusive lock `<file>.lock` of an artifact (blocks until available).
    #[allow(clippy::incompatible_msrv)] // File::lock: stable since 1.89, our toolchain.
    pub fn lock(&self, artifact: &Artifact) -> Result<LockGuard> {
        self.mk_artifact_dir(artifact)?;
        let lock_path = PathBuf::from(format!("{}.lock", self.local_path(artifact)?.display()));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("opening lock", &lock_path))?;
        file.lock()
            .map_err(Error::io("acquiring lock", &lock_path))?;
        Ok(LockGuard { _file: file })
    }

    /// Whether the artifact file exists.
    pub fn exists(&self, artifact: &Artifact) -> bool {
        self.local_path(artifact).is_ok_and(|p| p.is_file())
    }

    /// Archives `dir` into the artifact (atomically), filling digest, size and time.
    pub fn archive(
        &self,
        artifact: &mut Artifact,
        dir: &Path,
        filter: Option<&Rules>,
    ) -> Result<Packed> {
        let mut packed = None;
        self.write_atomic(artifact, |file| {
            let p = archive::pack(dir, filter, file)?;
            packed = Some(p);
            Ok(())
        })?;
        packed.ok_or_else(|| Error::InvalidDir(dir.to_path_buf()))
    }

    /// Stores `bytes` as the artifact (atomically).
    pub fn write_bytes(&self, artifact: &mut Artifact, bytes: &[u8]) -> Result<()> {
        self.write_atomic(artifact, |file| {
            file.write_all(bytes)
                .map_err(Error::io("writing", "artifact"))
        })
    }

    /// Streams `reader` into the artifact (atomically).
    pub fn copy_from(&self, artifact: &mut Artifact, mut reader: impl io::Read) -> Result<()> {
        self.write_atomic(artifact, |file| {
            io::copy(&mut reader, file).map_err(Error::io("writing", "artifact"))?;
            Ok(())
        })
    }

    /// Writes through a temp file in the same directory, then chmod 0600 and rename. On error
    /// the temp file is removed and any previous artifact is untouched.
    fn write_atomic(
        &self,
        artifact: &mut Artifact,
        fill: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let dir = self.mk_artifact_dir(artifact)?;
        let final_path = self.local_path(artifact)?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(Error::io("creating temp file in", &dir))?;
        let (file, tmp_path) = tmp.into_parts();
        let mut hashing = HashingWriter::new(io::BufWriter::new(file));
        fill(&mut hashing)?;
        let (buffered, digest, size) = hashing.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io("writing", &final_path)(e.into_error()))?;
        file.sync_all().map_err(Error::io("syncing", &final_path))?;
        fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o600))
            .map_err(Error::io("chmod", &final_path))?;
        tmp_path
            .persist(&final_path)
            .map_err(|e| Error::io("renaming onto", &final_path)(e.error))?;
        artifact.digest = Some(digest.to_string());
        artifact.size = Some(size as i64);
        artifact.last_update_time = rfc3339(SystemTime::now());
        Ok(())
    }

    /// Points `<dir>/<link_name>` at the artifact (atomically replacing an existing link) and
    /// returns the link's URL.
    pub fn symlink(&self, artifact: &Artifact, link_name: &str) -> Result<String> {
        let path = self.local_path(artifact)?;
        let dir = path.parent().unwrap_or(&self.root);
        let file_name = path.file_name().ok_or_else(|| Error::IllegalPath {
            path: artifact.path.clone(),
            reason: "no file name",
        })?;
        let tmp = dir.join(format!(".{link_name}.tmp"));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(file_name, &tmp).map_err(Error::io("symlinking", &tmp))?;
        let link = dir.join(link_name);
        fs::rename(&tmp, &link).map_err(Error::io("renaming onto", &link))?;
        let rel = match artifact.path.rsplit_once('/') {
            Some((d, _)) => format!("{d}/{link_name}"),
            None => link_name.to_string(),
        };
        Ok(self.url_for(&rel))
    }

    /// Checks that the stored file still has the artifact's digest.
    pub fn verify(&self, artifact: &Artifact) -> Result<()> {
        let path = self.local_path(artifact)?;
        let file = fs::File::open(&path).map_err(Error::io("opening", &path))?;
        let actual =
            Digest::sha256_reader(io::BufReader::new(file)).map_err(Error::io("reading", &path))?;
        let expected = artifact.digest.clone().unwrap_or_default();
        if actual.to_string() != expected {
            return Err(Error::DigestMismatch {
                what: artifact.path.clone(),
                expected,
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Rewrites `artifact.url` for the current advertised address (done on every reconcile so
    /// that a changed `--storage-adv-addr` fixes stored URLs).
    pub fn refresh_url(&self, artifact: &mut Artifact) {
        artifact.url = self.url_for(&artifact.path);
    }

    /// The storage step of a reconcile for a previously recorded artifact: `Present` when the
    /// file exists with its digest; `Missing` when it disappeared; `Corrupt` when its bytes no
    /// longer match (the file is then removed, as Flux does, so it gets rebuilt).
    pub fn check_stored(&self, artifact: &Artifact) -> Result<StoredState> {
        let path = self.local_path(artifact)?;
        if !path.is_file() {
            return Ok(StoredState::Missing);
        }
        match self.verify(artifact) {
            Ok(()) => Ok(StoredState::Present),
            Err(Error::DigestMismatch {
                expected, actual, ..
            }) => {
                fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                Ok(StoredState::Corrupt { expected, actual })
            }
            Err(e) => Err(e),
        }
    }

    /// Garbage-collects the artifact's directory: files other than `current` older than the TTL,
    /// then the oldest until at most `records` remain. Returns the deleted paths.
    pub fn garbage_collect(
        &self,
        current: &Artifact,
        retention: Retention,
        now: SystemTime,
    ) -> Result<Vec<PathBuf>> {
        let current_path = self.local_path(current)?;
        let Some(dir) = current_path.parent() else {
            return Ok(Vec::new());
        };
        let mut files: Vec<(PathBuf, SystemTime)> = Vec::new();
        let listing = match fs::read_dir(dir) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("listing", dir)(e)),
        };
        for entry in listing.take(1000) {
            let entry = entry.map_err(Error::io("listing", dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !meta.is_file()
                || Path::new(&name).extension().is_some_and(|e| e == "lock")
                || name.starts_with(".tmp-")
            {
                continue;
            }
            let mtime = meta.modified().map_err(Error::io("stat", &path))?;
            files.push((path, mtime));
        }
        let mut garbage = Vec::new();
        let mut keep = Vec::new();
        for (path, mtime) in files {
            if path == current_path {
                continue;
            }
            if now.duration_since(mtime).unwrap_or_default() > retention.ttl {
                garbage.push(path);
            } else {
                keep.push((path, mtime));
            }
        }
        keep.sort_by_key(|(_, mtime)| *mtime);
        let allowed_others = retention.records.saturating_sub(1);
        let excess = keep.len().saturating_sub(allowed_others);
        garbage.extend(keep.into_iter().take(excess).map(|(p, _)| p));
        for path in &garbage {
            fs::remove_file(path).map_err(Error::io("removing", path))?;
            let _ = fs::remove_file(format!("{}.lock", path.display()));
        }
        Ok(garbage)
    }

    /// Removes everything stored for an object (finalizer).
    pub fn remove_all(&self, kind: &str, namespace: &str, name: &str) -> Result<()> {
        let dir = self
            .root
            .join(kind.to_ascii_lowercase())
            .join(namespace)
            .join(name);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("removing", &dir)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            dir.path().join("data"),
            "source-controller.flux-system.svc.cluster.local.",
        )
        .unwrap();
        (dir, storage)
    }

    #[test]
    fn artifact_paths_and_urls() {
        let (_d, s) = storage();
        let a = s.new_artifact(
            "GitRepository",
            "flux-system",
            "podinfo",
            "abc.tar.gz",
            "main@sha1:abc",
        );
        assert_eq!(a.path, "gitrepository/flux-system/podinfo/abc.tar.gz");
        assert_eq!(
            a.url,
            "http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/podinfo/abc.tar.gz"
        );
        let s2 = Storage::new(s.root(), "https://cdn.example/").unwrap();
        assert_eq!(s2.url_for("x/y"), "https://cdn.example/x/y");
    }

    #[test]
    fn archive_writes_atomically_and_verifies() {
        let (d, s) = storage();
        let src = d.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("a.yaml"), "a: 1\n").unwrap();
        let mut a = s.new_artifact("GitRepository", "ns", "n", "1.tar.gz", "r");
        let _lock = s.lock(&a).unwrap();
        let packed = s.archive(&mut a, &src, None).unwrap();
        assert_eq!(
            a.digest.as_deref(),
            Some(packed.digest.to_string().as_str())
        );
        assert_eq!(a.size, Some(packed.size as i64));
        s.verify(&a).unwrap();
        let path = s.local_path(&a).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, "tampered").unwrap();
        assert!(matches!(s.verify(&a), Err(Error::DigestMismatch { .. })));
    }

    #[test]
    fn failed_write_keeps_previous_artifact_and_leaves_no_temp() {
        let (_d, s) = storage();
        let mut a = s.new_artifact("Bucket", "ns", "n", "x.tar.gz", "r");
        s.write_bytes(&mut a, b"old").unwrap();
        let err = s.write_atomic(&mut a.clone(), |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::NotFound("boom".into()))
        });
        assert!(err.is_err());
        let dir = s.local_path(&a).unwrap().parent().unwrap().to_path_buf();
        assert_eq!(fs::read(s.local_path(&a).unwrap()).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.to_string_lossy().starts_with(".tmp-")),
            "{names:?}"
        );
    }

    #[test]
    fn symlink_points_at_current() {
        let (_d, s) = storage();
        let mut a = s.new_artifact("OCIRepository", "ns", "n", "sha256:ab.tar.gz", "r");
        s.write_bytes(&mut a, b"one").unwrap();
        let url = s.symlink(&a, "latest.tar.gz").unwrap();
        assert!(url.ends_with("/ocirepository/ns/n/latest.tar.gz"), "{url}");
        let link = s
            .local_path(&a)
            .unwrap()
            .parent()
            .unwrap()
            .join("latest.tar.gz");
        assert_eq!(fs::read(link).unwrap(), b"one");
    }

    #[test]
    fn gc_keeps_current_and_retention_records() {
        let (_d, s) = storage();
        let mut all = Vec::new();
        for i in 0..5 {
            let mut a = s.new_artifact("GitRepository", "ns", "n", &format!("{i}.tar.gz"), "r");
            s.write_bytes(&mut a, b"x").unwrap();
            let _ = s.lock(&a).unwrap();
            let t = SystemTime::now() - Duration::from_secs(10 - i);
            fs::File::options()
                .write(true)
                .open(s.local_path(&a).unwrap())
                .unwrap()
                .set_modified(t)
                .unwrap();
            all.push(a);
        }
        let current = &all[2];
        let retention = Retention {
            records: 2,
            ttl: Duration::from_secs(3600),
        };
        let deleted = s
            .garbage_collect(current, retention, SystemTime::now())
            .unwrap();
        assert_eq!(deleted.len(), 3);
        assert!(s.exists(current));
        assert!(s.exists(&all[4]), "newest other file kept");
        assert!(!s.exists(&all[0]));
        // TTL: everything but current is older than 1s.
        let retention = Retention {
            records: 10,
            ttl: Duration::from_secs(1),
        };
        s.garbage_collect(current, retention, SystemTime::now())
            .unwrap();
        assert!(!s.exists(&all[4]));
        assert!(s.exists(current));
    }

    #[test]
    fn check_stored_detects_missing_and_corrupt_files() {
        let (_d, s) = storage();
        let mut a = s.new_artifact("Bucket", "ns", "n", "x.tar.gz", "r");
        assert_eq!(s.check_stored(&a).unwrap(), StoredState::Missing);
        s.write_bytes(&mut a, b"content").unwrap();
        assert_eq!(s.check_stored(&a).unwrap(), StoredState::Present);
        fs::write(s.local_path(&a).unwrap(), b"tampered").unwrap();
        assert!(matches!(
            s.check_stored(&a).unwrap(),
            StoredState::Corrupt { .. }
        ));
        assert!(!s.exists(&a), "corrupt file removed");
        let moved = Storage::new(s.root(), "http://new-host:9090").unwrap();
        moved.refresh_url(&mut a);
        assert_eq!(a.url, "http://new-host:9090/bucket/ns/n/x.tar.gz");
    }

    #[test]
    fn rejects_traversal_in_artifact_path() {
        let (_d, s) = storage();
        let mut a = s.new_artifact("GitRepository", "ns", "n", "x", "r");
        a.path = "../../etc/passwd".into();
        assert!(s.local_path(&a).is_err());
    }
}
