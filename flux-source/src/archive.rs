//! Deterministic `tar.gz` artifacts, byte-compatible (tar content) with Flux's
//! `Storage.Archive`: Go `filepath.Walk` order, mtime 0, uid/gid 0, modes 0750/0700/0600,
//! ustar headers (PAX only for names ustar cannot hold), gzip header without name or mtime.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::gzip::GzipWriter;

use crate::artifact::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::ignore::Rules;

const BLOCK: usize = 512;

/// What packing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// Digest of the compressed bytes.
    pub digest: Digest,
    /// Compressed size in bytes.
    pub size: u64,
    /// Number of tar entries written (directories included).
    pub entries: usize,
}

/// Archives `dir` into `out` as gzip-compressed tar, skipping paths `filter` excludes.
/// Returns the digest and size of the compressed stream.
pub fn pack(dir: &Path, filter: Option<&Rules>, out: impl Write) -> Result<Packed> {
    let meta = fs::metadata(dir).map_err(|_| Error::InvalidDir(dir.to_path_buf()))?;
    if !meta.is_dir() {
        return Err(Error::InvalidDir(dir.to_path_buf()));
    }
    let hashing = HashingWriter::new(out);
    let gz = GzipWriter::new(hashing);
    let mut tar = TarWriter {
        out: io::BufWriter::with_capacity(256 * 1024, gz),
        entries: 0,
    };
    let mut rel: Vec<String> = Vec::new();
    walk(dir, &mut rel, filter, &mut tar)?;
    tar.finish().map_err(Error::io("writing archive of", dir))?;
    let gz = tar
        .out
        .into_inner()
        .map_err(|e| Error::io("writing archive of", dir)(e.into_error()))?;
    let hashing = gz
        .finish()
        .map_err(Error::io("compressing archive of", dir))?;
    let (mut out, digest, size) = hashing.finish();
    out.flush().map_err(Error::io("writing archive of", dir))?;
    Ok(Packed {
        digest,
        size,
        entries: tar.entries,
    })
}

/// Archives `dir` into memory (for tests, small trees and OCI pushes).
pub fn pack_to_vec(dir: &Path, filter: Option<&Rules>) -> Result<(Vec<u8>, Packed)> {
    let mut buf = Vec::new();
    let packed = pack(dir, filter, &mut buf)?;
    Ok((buf, packed))
}

fn walk<W: Write>(
    path: &Path,
    rel: &mut Vec<String>,
    filter: Option<&Rules>,
    tar: &mut TarWriter<W>,
) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(Error::io("stat", path))?;
    let file_type = meta.file_type();
    let is_dir = file_type.is_dir();
    if is_dir || file_type.is_file() {
        let parts: Vec<&str> = rel.iter().map(String::as_str).collect();
        let skip = !parts.is_empty() && filter.is_some_and(|f| f.is_excluded(&parts, is_dir));
        if !skip {
            let name = if rel.is_empty() {
                ".".to_string()
            } else {
                rel.join("/")
            };
            if is_dir {
                tar.header(&name, 0o750, b'5', 0)
                    .map_err(Error::io("writing archive entry", path))?;
            } else {
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o700
                } else {
                    0o600
                };
                let mut file = fs::File::open(path).map_err(Error::io("opening", path))?;
                tar.file(&name, mode, meta.len(), &mut file)
                    .map_err(Error::io("archiving", path))?;
            }
        }
    }
    if is_dir {
        let mut names: Vec<std::ffi::OsString> = fs::read_dir(path)
            .map_err(Error::io("listing", path))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(Error::io("listing", path))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            rel.push(name.to_string_lossy().into_owned());
            walk(&path.join(&name), rel, filter, tar)?;
            rel.pop();
        }
    }
    Ok(())
}

/// A minimal Go-`archive/tar`-compatible writer for directories and regular files.
struct TarWriter<W: Write> {
    out: W,
    entries: usize,
}

impl<W: Write> TarWriter<W> {
    fn header(&mut self, name: &str, mode: u32, typeflag: u8, size: u64) -> io::Result<()> {
        if size >= 0o777_7777_7777 {
            return Err(io::Error::other(format!(
                "{name}: files of 8 GiB or more are not supported"
            )));
        }
        let split = if name.is_ascii() {
            ustar_split(name)
        } else {
            None
        };
        let (prefix, short) = match split {
            Some(s) => s,
            None => {
                self.pax_path(name)?;
                ("", ascii_stand_in(name))
            }
        };
        let mut block = [0u8; BLOCK];
        put_str(&mut block[0..100], short);
        put_octal(&mut block[100..108], u64::from(mode));
        put_octal(&mut block[108..116], 0);
        put_octal(&mut block[116..124], 0);
        put_octal(&mut block[124..136], size);
        put_octal(&mut block[136..148], 0);
        block[156] = typeflag;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        put_octal(&mut block[329..337], 0);
        put_octal(&mut block[337..345], 0);
        put_str(&mut block[345..500], prefix);
        set_checksum(&mut block);
        self.out.write_all(&block)?;
        self.entries += 1;
        Ok(())
    }

    fn pax_path(&mut self, name: &str) -> io::Result<()> {
        let record = pax_record("path", name);
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
        let pax_name = if dir.is_empty() {
            format!("PaxHeaders.0/{base}")
        } else {
            format!("{dir}/PaxHeaders.0/{base}")
        };
        let pax_name: String = pax_name.chars().filter(char::is_ascii).collect();
        let (prefix, short) = ustar_split(&pax_name).unwrap_or(("", truncate(&pax_name, 100)));
        let mut block = [0u8; BLOCK];
        put_str(&mut block[0..100], short);
        put_octal(&mut block[100..108], 0);
        put_octal(&mut block[108..116], 0);
        put_octal(&mut block[116..124], 0);
        put_octal(&mut block[124..136], record.len() as u64);
        put_octal(&mut block[136..148], 0);
        block[156] = b'x';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        put_octal(&mut block[329..337], 0);
        put_octal(&mut block[337..345], 0);
        put_str(&mut block[345..500], prefix);
        set_checksum(&mut block);
        self.out.write_all(&block)?;
        self.out.write_all(record.as_bytes())?;
        self.pad(record.len() as u64)
    }

    fn file(
        &mut self,
        name: &str,
        mode: u32,
        size: u64,
        content: &mut impl Read,
    ) -> io::Result<()> {
        self.header(name, mode, b'0', size)?;
        let copied = io::copy(&mut content.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} changed size while archiving"),
            ));
        }
        self.pad(size)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        self.out.flush()
    }
}

/// Splits a name for ustar: whole name when ≤100 bytes, else prefix (≤155) + name (≤100) at a `/`.
fn ustar_split(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    let bytes = name.as_bytes();
    let start = name.len().saturating_sub(101);
    let limit = name.len().min(156);
    (start..limit)
        .rev()
        .find(|&i| bytes[i] == b'/' && i > 0 && name.len() - i - 1 <= 100 && name.len() - i - 1 > 0)
        .map(|i| (&name[..i], &name[i + 1..]))
}

fn ascii_stand_in(name: &str) -> &str {
    // The real name travels in the PAX record; keep an ASCII prefix as the stand-in.
    let end = name
        .char_indices()
        .find(|(_, c)| !c.is_ascii())
        .map_or(name.len(), |(i, _)| i);
    truncate(&name[..end], 100)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        s
    } else {
        &s[..max]
    }
}

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let candidate = len.to_string().len() + body.len();
        if candidate == len {
            return format!("{len}{body}");
        }
        len = candidate;
    }
}

fn put_str(field: &mut [u8], s: &str) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Go `formatOctal`: zero-padded to the field width minus one, then NUL.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:o}");
    let width = field.len() - 1;
    let padded = format!("{digits:0>width$}");
    put_str(field, &padded);
}

fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    put_octal(&mut block[148..155], sum);
    block[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("a/x"), "x\n").unwrap();
        fs::write(root.join("a.txt"), "top\n").unwrap();
        fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn names(tar_gz: &[u8]) -> Vec<(String, u32, u64)> {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn walk_order_modes_and_mtime_follow_go() {
        let dir = tree();
        let (bytes, packed) = pack_to_vec(dir.path(), None).unwrap();
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        let entries = names(&bytes);
        let got: Vec<_> = entries.iter().map(|(n, m, _)| (n.as_str(), *m)).collect();
        assert_eq!(
            got,
            vec![
                (".", 0o750),
                ("a", 0o750),
                ("a/x", 0o600),
                ("a.txt", 0o600),
                ("run.sh", 0o700)
            ]
        );
        assert!(entries.iter().all(|(_, _, t)| *t == 0));
        assert_eq!(packed.entries, 5);
        assert_eq!(packed.size, bytes.len() as u64);
        assert_eq!(packed.digest, Digest::sha256(&bytes));
    }

    #[test]
    fn same_tree_same_digest_and_changes_change_it() {
        let one = tree();
        let two = tree();
        let d1 = pack_to_vec(one.path(), None).unwrap().1.digest;
        let d2 = pack_to_vec(two.path(), None).unwrap().1.digest;
        assert_eq!(d1, d2);
        fs::write(two.path().join("a/x"), "changed\n").unwrap();
        assert_ne!(d1, pack_to_vec(two.path(), None).unwrap().1.digest);
    }

    #[test]
    fn filter_skips_entries_and_symlinks_are_dropped() {
        let dir = tree();
        std::os::unix::fs::symlink("a.txt", dir.path().join("link")).unwrap();
        let rules = Rules::from_patterns(Rules::parse("*.sh\n", &[]));
        let (bytes, _) = pack_to_vec(dir.path(), Some(&rules)).unwrap();
        let got: Vec<_> = names(&bytes).into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(got, vec![".", "a", "a/x", "a.txt"]);
    }

    #[test]
    fn long_and_non_ascii_names_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let long_dir = "d".repeat(120);
        fs::create_dir_all(dir.path().join(&long_dir)).unwrap();
        fs::write(dir.path().join(&long_dir).join("f.yaml"), "x").unwrap();
        fs::write(dir.path().join("é.txt"), "x").unwrap();
        fs::write(dir.path().join("n".repeat(130)), "x").unwrap();
        let (bytes, _) = pack_to_vec(dir.path(), None).unwrap();
        let got: Vec<_> = names(&bytes).into_iter().map(|(n, _, _)| n).collect();
        assert!(got.contains(&format!("{long_dir}/f.yaml")));
        assert!(got.contains(&"é.txt".to_string()));
        assert!(got.contains(&"n".repeat(130)));
    }

    #[test]
    fn refuses_missing_dir() {
        let err = pack_to_vec(Path::new("/nonexistent/flux"), None).unwrap_err();
        assert!(err.to_string().contains("invalid dir path"), "{err}");
    }

    #[test]
    fn octal_fields_match_go() {
        let mut f = [0u8; 8];
        put_octal(&mut f, 0o600);
        assert_eq!(&f, b"0000600\0");
        let mut s = [0u8; 12];
        put_octal(&mut s, 5);
        assert_eq!(&s, b"00000000005\0");
        assert_eq!(pax_record("path", "abc"), "12 path=abc\n");
    }

    /// Golden digest of a fixed tree: guards determinism across runs and machines.
    #[test]
    fn golden_digest_of_fixed_tree() {
        let dir = tree();
        let (_, packed) = pack_to_vec(dir.path(), None).unwrap();
        assert_eq!(packed.digest.to_string(), GOLDEN);
    }

    const GOLDEN: &str = "sha256:3646b0eceafc79373474ba94c4877ebc394019ac8ac83b539b283248fb808521";
}
