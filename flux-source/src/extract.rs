//! Safe extraction of (gzip-compressed) tarballs for artifact consumers: no absolute paths,
//! no `..`, no writes through or to symlinks that leave the destination, bounded sizes.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Bounds applied while extracting.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum total bytes of file content.
    pub max_total_bytes: u64,
    /// Maximum size of a single file.
    pub max_file_bytes: u64,
    /// Maximum number of entries.
    pub max_entries: usize,
    /// Keep symlinks whose target stays inside the destination (otherwise they are skipped).
    pub keep_symlinks: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 1 << 30,
            max_file_bytes: 256 << 20,
            max_entries: 1_000_000,
            keep_symlinks: false,
        }
    }
}

/// What was extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extracted {
    pub files: usize,
    pub dirs: usize,
    pub bytes: u64,
    pub skipped: usize,
}

/// Extracts a gzip-compressed tarball into `dest` (created if missing). `name` labels errors.
pub fn unpack_gz(reader: impl Read, dest: &Path, limits: &Limits, name: &str) -> Result<Extracted> {
    unpack(flate2::read::GzDecoder::new(reader), dest, limits, name)
}

/// Extracts an uncompressed tarball into `dest`.
pub fn unpack(reader: impl Read, dest: &Path, limits: &Limits, name: &str) -> Result<Extracted> {
    let bad = |reason: String| Error::Tarball {
        name: name.to_string(),
        reason,
    };
    fs::create_dir_all(dest).map_err(Error::io("creating", dest))?;
    let mut archive = tar::Archive::new(reader);
    let mut out = Extracted::default();
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for (index, entry) in entries.enumerate() {
        if index >= limits.max_entries {
            return Err(bad(format!("more than {} entries", limits.max_entries)));
        }
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let rel = safe_relative(&raw)?;
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(bad(format!("entry {raw:?} has an empty path")));
        }
        let target = dest.join(&rel);
        ensure_no_symlink_parents(dest, &rel)?;
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(Error::io("creating", &target))?;
            out.dirs += 1;
        } else if kind.is_file() {
            let size = entry.header().size().map_err(|e| bad(e.to_string()))?;
            if size > limits.max_file_bytes {
                return Err(bad(format!(
                    "{raw}: {size} bytes exceeds the file limit of {}",
                    limits.max_file_bytes
                )));
            }
            if out.bytes + size > limits.max_total_bytes {
                return Err(bad(format!(
                    "content exceeds the limit of {} bytes",
                    limits.max_total_bytes
                )));
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
            }
            remove_existing_link(&target)?;
            let mut file = fs::File::create(&target).map_err(Error::io("creating", &target))?;
            let copied = io::copy(&mut (&mut entry).take(size), &mut file)
                .map_err(|e| bad(format!("{raw}: {e}")))?;
            if copied != size {
                return Err(bad(format!("{raw}: truncated ({copied} of {size} bytes)")));
            }
            let mode = entry.header().mode().unwrap_or(0o644);
            if mode & 0o111 != 0 {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
                    .map_err(Error::io("chmod", &target))?;
            }
            out.files += 1;
            out.bytes += size;
        } else if kind.is_symlink() && limits.keep_symlinks {
            let link = entry
                .link_name()
                .map_err(|e| bad(e.to_string()))?
                .ok_or_else(|| bad(format!("{raw}: symlink without target")))?;
            let resolved = rel.parent().unwrap_or(Path::new("")).join(&link);
            if link.is_absolute() || normalize(&resolved).is_none() {
                return Err(Error::IllegalPath {
                    path: format!("{raw} -> {}", link.display()),
                    reason: "symlink target leaves the destination",
                });
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
            }
            remove_existing_link(&target)?;
            std::os::unix::fs::symlink(&link, &target).map_err(Error::io("symlinking", &target))?;
        } else {
            // Symlinks (unless kept), hard links, devices, FIFOs and PAX/GNU metadata entries
            // the reader did not fold into the next header are ignored.
            out.skipped += 1;
        }
    }
    Ok(out)
}

/// Validates a tar entry path: relative, no `..` escaping, returns the normalised path.
pub fn safe_relative(raw: &str) -> Result<PathBuf> {
    let illegal = |reason| Error::IllegalPath {
        path: raw.to_string(),
        reason,
    };
    let path = Path::new(raw);
    if path.is_absolute() || raw.starts_with('/') || raw.starts_with('\\') {
        return Err(illegal("absolute path"));
    }
    if raw.split(['/', '\\']).any(|c| c == "..") {
        return Err(illegal("contains '..'"));
    }
    normalize(path).ok_or_else(|| illegal("leaves the destination"))
}

fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn ensure_no_symlink_parents(dest: &Path, rel: &Path) -> Result<()> {
    let mut current = dest.to_path_buf();
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        if components.peek().is_none() {
            break;
        }
        current.push(c);
        if let Ok(meta) = fs::symlink_metadata(&current) {
            if meta.file_type().is_symlink() {
                return Err(Error::IllegalPath {
                    path: rel.display().to_string(),
                    reason: "a parent directory is a symlink",
                });
            }
        }
    }
    Ok(())
}

fn remove_existing_link(target: &Path) -> Result<()> {
    if let Ok(meta) = fs::symlink_metadata(target) {
        if meta.file_type().is_symlink() {
            fs::remove_file(target).map_err(Error::io("removing", target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        // Written by hand so that hostile names reach the reader unchanged.
        let mut out = Vec::new();
        for (name, data) in entries {
            let mut h = [0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            h[108..116].copy_from_slice(b"0000000\0");
            h[116..124].copy_from_slice(b"0000000\0");
            h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            h[136..148].copy_from_slice(b"00000000000\0");
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[148..156].fill(b' ');
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn rejects_parent_and_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        for name in ["../evil", "a/../../evil", "/etc/evil"] {
            let tar = raw_tar(&[(name, b"x")]);
            let err = unpack(&tar[..], &dest, &Limits::default(), "t.tar").unwrap_err();
            assert!(matches!(err, Error::IllegalPath { .. }), "{name}: {err}");
        }
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn enforces_size_limits() {
        let dir = tempfile::tempdir().unwrap();
        let tar = raw_tar(&[("a", &[1u8; 100]), ("b", &[2u8; 100])]);
        let limits = Limits {
            max_total_bytes: 150,
            ..Limits::default()
        };
        let err = unpack(&tar[..], dir.path(), &limits, "t.tar").unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        let limits = Limits {
            max_file_bytes: 50,
            ..Limits::default()
        };
        assert!(unpack(&tar[..], dir.path(), &limits, "t.tar").is_err());
    }

    #[test]
    fn round_trips_a_packed_tree() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("d/e")).unwrap();
        fs::write(src.path().join("d/e/f.yaml"), "k: v\n").unwrap();
        let (bytes, _) = crate::archive::pack_to_vec(src.path(), None).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let got = unpack_gz(&bytes[..], dest.path(), &Limits::default(), "t.tgz").unwrap();
        assert_eq!(got.files, 1);
        assert_eq!(
            fs::read_to_string(dest.path().join("d/e/f.yaml")).unwrap(),
            "k: v\n"
        );
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let dest = tempfile::tempdir().unwrap();
        let err = unpack_gz(
            &b"\x1f\x8bnot really gzip"[..],
            dest.path(),
            &Limits::default(),
            "bad.tgz",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad.tgz"), "{err}");
    }

    #[test]
    fn symlink_escape_is_rejected_when_kept() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder.append_link(&mut h, "link", "../../etc").unwrap();
        let tar = builder.into_inner().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let limits = Limits {
            keep_symlinks: true,
            ..Limits::default()
        };
        let err = unpack(&tar[..], dest.path(), &limits, "t.tar").unwrap_err();
        assert!(matches!(err, Error::IllegalPath { .. }), "{err}");
        // Skipped by default.
        let got = unpack(&tar[..], dest.path(), &Limits::default(), "t.tar").unwrap();
        assert_eq!(got.skipped, 1);
    }
}
