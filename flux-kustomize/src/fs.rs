//! The filesystem seam: the build reads files only through [`FileSystem`].
//!
//! [`DiskFs`] reads the real disk but refuses every path that resolves (symlinks
//! included) outside its root; [`MemFs`] keeps files in memory for tests and embedding.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Read access to a tree of files. Paths are absolute and normalised (no `.`/`..`).
pub trait FileSystem: Send + Sync {
    /// Reads a whole file.
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// Whether `path` is an existing directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether `path` is an existing regular file.
    fn is_file(&self, path: &Path) -> bool;
    /// The entries of a directory, as full paths, sorted by name.
    fn read_dir(&self, path: &Path) -> Result<Vec<PathBuf>>;
    /// The path with symlinks resolved (identity for filesystems without links).
    fn canonical(&self, path: &Path) -> Result<PathBuf>;
}

/// Joins `rel` onto `base` and removes `.` and `..` lexically.
pub fn join_clean(base: &Path, rel: &str) -> PathBuf {
    let joined = if Path::new(rel).is_absolute() {
        PathBuf::from(rel)
    } else {
        base.join(rel)
    };
    clean(&joined)
}

/// Removes `.` and `..` components lexically.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push("/");
    }
    out
}

/// The real disk, confined to a root directory: any path that resolves outside it is
/// refused before it is opened.
#[derive(Debug, Clone)]
pub struct DiskFs {
    root: PathBuf,
}

impl DiskFs {
    /// A disk filesystem that only reads below `root` (after resolving symlinks).
    pub fn confined(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Self { root })
    }

    /// A disk filesystem that may read anything (`/` as the root).
    pub fn unrestricted() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// The root every read must stay under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves symlinks and checks the result stays under the root.
    fn checked(&self, path: &Path) -> Result<PathBuf> {
        let real = std::fs::canonicalize(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(Error::OutsideRoot {
                path: path.to_path_buf(),
                root: self.root.clone(),
            })
        }
    }
}

impl FileSystem for DiskFs {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let real = self.checked(path)?;
        std::fs::read(&real).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.checked(path).is_ok_and(|p| p.is_dir())
    }

    fn is_file(&self, path: &Path) -> bool {
        self.checked(path).is_ok_and(|p| p.is_file())
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<PathBuf>> {
        let real = self.checked(path)?;
        let entries = std::fs::read_dir(&real).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            out.push(path.join(entry.file_name()));
        }
        out.sort();
        Ok(out)
    }

    fn canonical(&self, path: &Path) -> Result<PathBuf> {
        self.checked(path)
    }
}

/// An in-memory filesystem: a map from absolute path to file contents.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    /// An empty filesystem.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file; `path` is made absolute under `/`.
    pub fn write(&mut self, path: impl AsRef<Path>, contents: impl Into<Vec<u8>>) -> &mut Self {
        let path = clean(&Path::new("/").join(path.as_ref()));
        self.files.insert(path, contents.into());
        self
    }
}

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.files
            .get(&clean(path))
            .cloned()
            .ok_or_else(|| Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
    }

    fn is_dir(&self, path: &Path) -> bool {
        let path = clean(path);
        self.files
            .keys()
            .any(|file| file != &path && file.starts_with(&path))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(&clean(path))
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<PathBuf>> {
        let path = clean(path);
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|file| {
                let rest = file.strip_prefix(&path).ok()?;
                let first = rest.components().next()?;
                Some(path.join(first.as_os_str()))
            })
            .collect();
        out.dedup();
        if out.is_empty() && !self.is_dir(&path) {
            return Err(Error::Io {
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Ok(out)
    }

    fn canonical(&self, path: &Path) -> Result<PathBuf> {
        let path = clean(path);
        if self.is_file(&path) || self.is_dir(&path) {
            Ok(path)
        } else {
            Err(Error::Io {
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_dots() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(join_clean(Path::new("/a/b"), "../x"), PathBuf::from("/a/x"));
    }

    #[test]
    fn memfs_lists_directories() {
        let mut fs = MemFs::new();
        fs.write("app/a.yaml", "x").write("app/sub/b.yaml", "y");
        assert!(fs.is_dir(Path::new("/app")));
        assert!(fs.is_file(Path::new("/app/a.yaml")));
        assert_eq!(
            fs.read_dir(Path::new("/app")).unwrap(),
            vec![PathBuf::from("/app/a.yaml"), PathBuf::from("/app/sub")]
        );
    }

    #[cfg(unix)]
    #[test]
    fn diskfs_refuses_symlink_escaping_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.yaml"), "top: secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.yaml"),
            root.path().join("link.yaml"),
        )
        .unwrap();
        let fs = DiskFs::confined(root.path()).unwrap();
        let err = fs.read(&root.path().join("link.yaml")).unwrap_err();
        assert!(matches!(err, Error::OutsideRoot { .. }), "{err}");
        assert!(fs
            .read(&outside.path().join("secret.yaml"))
            .is_err_and(|e| matches!(e, Error::OutsideRoot { .. })));
    }
}
