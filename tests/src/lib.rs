//! Helpers shared by the workspace-level tests: locating the shared conformance corpus and
//! reporting pass counts.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The shared ground-truth folder: `$FLUX_SHARED_DIR`, or `../shared` beside the workspace.
///
/// Returns `None`, after printing a notice, when it is absent (a user's fresh clone): the
/// corpus tests then pass without running, and say so.
pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("FLUX_SHARED_DIR")
        .map_or_else(|| workspace_root().join("../shared"), PathBuf::from);
    if dir.is_dir() {
        Some(dir.canonicalize().unwrap_or(dir))
    } else {
        println!(
            "NOTICE: {} not found; skipping the {what} conformance corpus (set FLUX_SHARED_DIR to run it)",
            dir.display()
        );
        None
    }
}

/// Reads a tab-separated file with a header line into rows of columns.
pub fn read_tsv(path: &Path) -> std::io::Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect())
}

/// Parses a known-failures file: one `case-id<TAB>reason` per line, `#` comments allowed.
pub fn read_known_failures(path: &Path) -> std::collections::BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return std::collections::BTreeMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (id, reason) = line.split_once('\t').unwrap_or((line, ""));
            (id.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}
