//! SOPS-encrypted files consumed by kustomize generators, decrypted before the build as
//! kustomize-controller does: the `files`, `envs` (and legacy `env`) of every
//! `secretGenerator`/`configMapGenerator` reachable from the build directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use flux_kustomize::flux::find_kustomization;
use flux_kustomize::fs::{clean, join_clean};
use flux_kustomize::FileSystem;
use serde_json::Value;

/// Every generator input file reachable from `dir` (plus the spec's `components`), as
/// cleaned absolute paths. Unreadable or unparsable kustomization files are skipped here;
/// the build itself reports them.
pub fn generator_inputs(fs: &dyn FileSystem, dir: &Path, components: &[String]) -> Vec<PathBuf> {
    let mut inputs = BTreeSet::new();
    let mut visited = BTreeSet::new();
    let mut queue: Vec<PathBuf> = vec![clean(dir)];
    queue.extend(components.iter().map(|c| join_clean(dir, c)));
    while let Some(dir) = queue.pop() {
        if !visited.insert(dir.clone()) || !fs.is_dir(&dir) {
            continue;
        }
        let Some(file) = find_kustomization(fs, &dir) else {
            // Flux generates a kustomization listing the directory tree: look below.
            if let Ok(entries) = fs.read_dir(&dir) {
                queue.extend(entries.into_iter().filter(|e| fs.is_dir(e)));
            }
            continue;
        };
        let Ok(bytes) = fs.read(&file) else { continue };
        let Ok(kustomization) = serde_yaml::from_slice::<Value>(&bytes) else {
            continue;
        };
        for generator in ["secretGenerator", "configMapGenerator"] {
            let Some(Value::Array(entries)) = kustomization.get(generator) else {
                continue;
            };
            for entry in entries {
                for path in generator_paths(entry) {
                    inputs.insert(join_clean(&dir, &path));
                }
            }
        }
        for field in ["resources", "components", "bases"] {
            if let Some(Value::Array(items)) = kustomization.get(field) {
                for item in items.iter().filter_map(Value::as_str) {
                    if !item.contains("://") {
                        queue.push(join_clean(&dir, item));
                    }
                }
            }
        }
    }
    inputs.into_iter().collect()
}

/// The file paths one generator entry reads: `files` (`[key=]path`), `envs`, `env`.
fn generator_paths(entry: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    if let Some(Value::Array(files)) = entry.get("files") {
        for file in files.iter().filter_map(Value::as_str) {
            let path = file.split_once('=').map_or(file, |(_, path)| path);
            paths.push(path.to_string());
        }
    }
    if let Some(Value::Array(envs)) = entry.get("envs") {
        paths.extend(envs.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(env) = entry.get("env").and_then(Value::as_str) {
        paths.push(env.to_string());
    }
    paths
}

/// A filesystem that shows decrypted contents for some files over another filesystem.
pub struct DecryptedFs<'a> {
    inner: &'a dyn FileSystem,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl<'a> DecryptedFs<'a> {
    /// `files` maps cleaned paths to their plaintext.
    pub fn new(inner: &'a dyn FileSystem, files: BTreeMap<PathBuf, Vec<u8>>) -> Self {
        Self { inner, files }
    }
}

impl FileSystem for DecryptedFs<'_> {
    fn read(&self, path: &Path) -> flux_kustomize::Result<Vec<u8>> {
        match self.files.get(&clean(path)) {
            Some(plain) => Ok(plain.clone()),
            None => self.inner.read(path),
        }
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        self.inner.is_file(path)
    }
    fn read_dir(&self, path: &Path) -> flux_kustomize::Result<Vec<PathBuf>> {
        self.inner.read_dir(path)
    }
    fn canonical(&self, path: &Path) -> flux_kustomize::Result<PathBuf> {
        self.inner.canonical(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_kustomize::MemFs;

    #[test]
    fn finds_generator_inputs_through_resources_and_generated_dirs() {
        let mut fs = MemFs::new();
        fs.write(
            "/r/app/kustomization.yaml",
            "resources: [../base, https://example.com/x.yaml]\nsecretGenerator:\n- name: s\n  files: [key=secret.enc.json, plain.txt]\n  envs: [a.env]\n",
        )
        .write(
            "/r/base/kustomization.yaml",
            "configMapGenerator:\n- name: c\n  env: legacy.env\n",
        )
        .write("/r/base/legacy.env", "A=1\n")
        .write("/r/plain/sub/kustomization.yaml", "secretGenerator:\n- name: t\n  files: [t.yaml]\n")
        .write("/r/comp/kustomization.yaml", "secretGenerator:\n- name: u\n  envs: [u.env]\n");
        let found = generator_inputs(&fs, Path::new("/r/app"), &["../comp".to_string()]);
        let found: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            found,
            [
                "/r/app/a.env",
                "/r/app/plain.txt",
                "/r/app/secret.enc.json",
                "/r/base/legacy.env",
                "/r/comp/u.env"
            ]
        );
        let found = generator_inputs(&fs, Path::new("/r/plain"), &[]);
        assert_eq!(found, [PathBuf::from("/r/plain/sub/t.yaml")]);
    }

    #[test]
    fn decrypted_files_shadow_the_inner_filesystem() {
        let mut fs = MemFs::new();
        fs.write("/a", "cipher").write("/b", "other");
        let files = BTreeMap::from([(PathBuf::from("/a"), b"plain".to_vec())]);
        let shadow = DecryptedFs::new(&fs, files);
        assert_eq!(shadow.read(Path::new("/a")).unwrap(), b"plain");
        assert_eq!(shadow.read(Path::new("/b")).unwrap(), b"other");
    }
}
