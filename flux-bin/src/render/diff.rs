//! Semantic comparison of two renders: per Kustomization/HelmRelease, which objects were
//! added, removed or changed, with a unified diff of the YAML of changed objects. Secret
//! values never appear in the output (`***`, or `*** (before)`/`*** (after)` when they differ).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::{object_id, Outcome, Report};

/// Rendered objects per unit (`Kind/namespace/name` of the Kustomization or HelmRelease),
/// each keyed by its own `Kind/namespace/name`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Unit id → object id → object.
    pub units: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file of the directory could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The directory holds no `build cluster --output-dir` layout.
    #[error("{0}: not a directory written by `flux-rs build cluster --output-dir` (expected kustomization/<namespace>/<name>.yaml or helmrelease/...)")]
    NotARender(String),
}

impl Snapshot {
    /// The rendered units of a report (skipped and failed units are left out).
    pub fn from_report(report: &Report) -> Self {
        let mut units = BTreeMap::new();
        for unit in &report.units {
            if let Outcome::Rendered(objects) = &unit.outcome {
                units.insert(unit.id(), index(objects));
            }
        }
        Self { units }
    }

    /// Reads a directory written by `build cluster --output-dir` (YAML or JSON).
    pub fn read_dir(dir: &Path) -> Result<Self, SnapshotError> {
        let mut units = BTreeMap::new();
        for (folder, kind) in [
            ("kustomization", "Kustomization"),
            ("helmrelease", "HelmRelease"),
        ] {
            let Ok(namespaces) = std::fs::read_dir(dir.join(folder)) else {
                continue;
            };
            for namespace in namespaces.flatten() {
                let ns = namespace.file_name().to_string_lossy().into_owned();
                let Ok(files) = std::fs::read_dir(namespace.path()) else {
                    continue;
                };
                for file in files.flatten() {
                    let path = file.path();
                    let file_error = |message: String| SnapshotError::File {
                        path: path.display().to_string(),
                        message,
                    };
                    let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
                        continue;
                    };
                    let text =
                        std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?;
                    let objects: Vec<Value> = match ext.to_str() {
                        Some("json") => {
                            serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))?
                        }
                        Some("yaml" | "yml") => {
                            flux_kustomize::yaml::parse_documents(&text).map_err(file_error)?
                        }
                        _ => continue,
                    };
                    let unit = format!("{kind}/{ns}/{}", stem.to_string_lossy());
                    units.insert(unit, index(&objects));
                }
            }
        }
        if units.is_empty() {
            return Err(SnapshotError::NotARender(dir.display().to_string()));
        }
        Ok(Self { units })
    }

    /// Objects keyed by their `Kind/namespace/name`.
    pub fn index(objects: &[Value]) -> BTreeMap<String, Value> {
        index(objects)
    }

    /// Drops the given units (e.g. ones the other side could not render offline).
    pub fn without(mut self, units: &[String]) -> Self {
        for unit in units {
            self.units.remove(unit);
        }
        self
    }
}

fn index(objects: &[Value]) -> BTreeMap<String, Value> {
    objects
        .iter()
        .filter(|o| !o.is_null())
        .map(|o| (object_key(o), o.clone()))
        .collect()
}

/// The key a [`Snapshot`] files an object under: `Kind/namespace/name` (`Kind/name` when
/// cluster-scoped).
pub fn object_key(object: &Value) -> String {
    object_id(object)
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Only in the new render.
    Created(Value),
    /// Only in the old render.
    Deleted(Value),
    /// In both, different.
    Drifted {
        /// The old object.
        before: Value,
        /// The new object.
        after: Value,
    },
}

/// The changes of one Kustomization or HelmRelease.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitDiff {
    /// `Kind/namespace/name` of the Kustomization or HelmRelease.
    pub unit: String,
    /// Changed objects, by object id.
    pub changes: Vec<(String, Change)>,
}

/// Compares two snapshots; units and objects in id order, only those that differ.
pub fn compare(before: &Snapshot, after: &Snapshot) -> Vec<UnitDiff> {
    let empty = BTreeMap::new();
    let mut unit_ids: Vec<&String> = before.units.keys().chain(after.units.keys()).collect();
    unit_ids.sort();
    unit_ids.dedup();
    let mut diffs = Vec::new();
    for unit in unit_ids {
        let old = before.units.get(unit).unwrap_or(&empty);
        let new = after.units.get(unit).unwrap_or(&empty);
        let mut ids: Vec<&String> = old.keys().chain(new.keys()).collect();
        ids.sort();
        ids.dedup();
        let changes: Vec<(String, Change)> = ids
            .into_iter()
            .filter_map(|id| {
                let change = match (old.get(id), new.get(id)) {
                    (None, Some(after)) => Change::Created(after.clone()),
                    (Some(before), None) => Change::Deleted(before.clone()),
                    (Some(before), Some(after)) if before != after => Change::Drifted {
                        before: before.clone(),
                        after: after.clone(),
                    },
                    _ => return None,
                };
                Some((id.clone(), change))
            })
            .collect();
        if !changes.is_empty() {
            diffs.push(UnitDiff {
                unit: unit.clone(),
                changes,
            });
        }
    }
    diffs
}

/// The human report: `► unit` headers, one line per object (`created`, `deleted`,
/// `drifted`) and, for drifted objects, a unified diff of their YAML.
pub fn format(diffs: &[UnitDiff]) -> String {
    let mut out = String::new();
    for diff in diffs {
        let _ = writeln!(out, "► {}", diff.unit);
        for (id, change) in &diff.changes {
            match change {
                Change::Created(_) => {
                    let _ = writeln!(out, "  + {id} created");
                }
                Change::Deleted(_) => {
                    let _ = writeln!(out, "  - {id} deleted");
                }
                Change::Drifted { before, after } => {
                    let _ = writeln!(out, "  ~ {id} drifted");
                    let (before, after) = mask_pair(before, after);
                    let old = flux_kustomize::yaml::to_yaml(&before);
                    let new = flux_kustomize::yaml::to_yaml(&after);
                    for line in unified(&old, &new, 3).lines() {
                        let _ = writeln!(out, "    {line}");
                    }
                }
            }
        }
    }
    out
}

/// Secret values masked: `***` where both sides agree, `*** (before)`/`*** (after)` where
/// they differ, so a changed secret shows as changed without showing its value.
fn mask_pair(before: &Value, after: &Value) -> (Value, Value) {
    let is_secret = |o: &Value| o.get("kind").and_then(Value::as_str) == Some("Secret");
    let (mut before, mut after) = (before.clone(), after.clone());
    if !is_secret(&before) && !is_secret(&after) {
        return (before, after);
    }
    for field in ["data", "stringData"] {
        let old = before.get(field).cloned();
        let new = after.get(field).cloned();
        if let Some(Value::Object(map)) = before.get_mut(field) {
            for (k, v) in map.iter_mut() {
                let same = new.as_ref().and_then(|n| n.get(k)) == Some(&*v);
                *v = Value::String(if same { "***" } else { "*** (before)" }.into());
            }
        }
        if let Some(Value::Object(map)) = after.get_mut(field) {
            for (k, v) in map.iter_mut() {
                let same = old.as_ref().and_then(|o| o.get(k)) == Some(&*v);
                *v = Value::String(if same { "***" } else { "*** (after)" }.into());
            }
        }
    }
    (before, after)
}

/// Above this many cells the line diff gives up aligning and shows a block replace.
const MAX_DIFF_CELLS: usize = 4_000_000;

/// A unified diff (`--- before`/`+++ after`, `@@` hunks with `context` lines around).
pub fn unified(old: &str, new: &str, context: usize) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = line_ops(&a, &b);
    // Indices of ops that are changes.
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let mut out = String::from("--- before\n+++ after\n");
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(context);
        let mut end = (changed[i] + context + 1).min(ops.len());
        let mut j = i + 1;
        while j < changed.len() && changed[j] <= end + context {
            end = (changed[j] + context + 1).min(ops.len());
            j += 1;
        }
        let (mut old_start, mut new_start) = (0, 0);
        for op in &ops[..start] {
            match op {
                Op::Same(_) => {
                    old_start += 1;
                    new_start += 1;
                }
                Op::Del(_) => old_start += 1,
                Op::Add(_) => new_start += 1,
            }
        }
        let hunk = &ops[start..end];
        let old_len = hunk.iter().filter(|o| !matches!(o, Op::Add(_))).count();
        let new_len = hunk.iter().filter(|o| !matches!(o, Op::Del(_))).count();
        let _ = writeln!(
            out,
            "@@ -{},{old_len} +{},{new_len} @@",
            old_start + usize::from(old_len > 0),
            new_start + usize::from(new_len > 0)
        );
        for op in hunk {
            let _ = match op {
                Op::Same(line) => writeln!(out, " {line}"),
                Op::Del(line) => writeln!(out, "-{line}"),
                Op::Add(line) => writeln!(out, "+{line}"),
            };
        }
        i = j;
    }
    out
}

enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

/// Line edit script: common prefix and suffix, then an LCS table over the middle.
#[allow(clippy::many_single_char_names)] // the textbook LCS names: a, b, n, m, i, j
fn line_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op<'a>> = a[..prefix].iter().map(|l| Op::Same(l)).collect();
    let (n, m) = (mid_a.len(), mid_b.len());
    if n.saturating_mul(m) > MAX_DIFF_CELLS {
        ops.extend(mid_a.iter().map(|l| Op::Del(l)));
        ops.extend(mid_b.iter().map(|l| Op::Add(l)));
    } else {
        // lcs[i][j]: LCS length of mid_a[i..] and mid_b[j..].
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        let at = |i: usize, j: usize| i * (m + 1) + j;
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[at(i, j)] = if mid_a[i] == mid_b[j] {
                    lcs[at(i + 1, j + 1)] + 1
                } else {
                    lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && mid_a[i] == mid_b[j] {
                ops.push(Op::Same(mid_a[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
                ops.push(Op::Del(mid_a[i]));
                i += 1;
            } else {
                ops.push(Op::Add(mid_b[j]));
                j += 1;
            }
        }
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| Op::Same(l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(unit: &str, objects: &[Value]) -> Snapshot {
        Snapshot {
            units: BTreeMap::from([(unit.to_string(), index(objects))]),
        }
    }

    fn cm(name: &str, value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "a"}, "data": {"k": value}})
    }

    #[test]
    fn equal_snapshots_have_no_diff() {
        let s = snapshot("Kustomization/flux-system/x", &[cm("c", "1")]);
        assert!(compare(&s, &s.clone()).is_empty());
    }

    #[test]
    fn created_deleted_and_drifted_objects_are_grouped_per_unit() {
        let before = snapshot(
            "Kustomization/flux-system/x",
            &[cm("c", "1"), cm("gone", "1")],
        );
        let after = snapshot(
            "Kustomization/flux-system/x",
            &[cm("c", "2"), cm("new", "1")],
        );
        let diffs = compare(&before, &after);
        assert_eq!(diffs.len(), 1);
        let kinds: Vec<(&str, &str)> = diffs[0]
            .changes
            .iter()
            .map(|(id, c)| {
                let what = match c {
                    Change::Created(_) => "created",
                    Change::Deleted(_) => "deleted",
                    Change::Drifted { .. } => "drifted",
                };
                (id.as_str(), what)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("ConfigMap/a/c", "drifted"),
                ("ConfigMap/a/gone", "deleted"),
                ("ConfigMap/a/new", "created")
            ]
        );
        let text = format(&diffs);
        assert!(
            text.starts_with("► Kustomization/flux-system/x\n"),
            "{text}"
        );
        assert!(
            text.contains("-  k: \"1\"") && text.contains("+  k: \"2\""),
            "{text}"
        );
    }

    #[test]
    fn secret_values_are_masked_but_changes_visible() {
        let secret = |v: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "a"}, "data": {"same": "c2FtZQ==", "pw": v}});
        let before = snapshot("HelmRelease/a/r", &[secret("b2xk")]);
        let after = snapshot("HelmRelease/a/r", &[secret("bmV3")]);
        let text = format(&compare(&before, &after));
        assert!(
            !text.contains("b2xk") && !text.contains("bmV3") && !text.contains("c2FtZQ=="),
            "{text}"
        );
        assert!(text.contains("-  pw: '*** (before)'"), "{text}");
        assert!(text.contains("+  pw: '*** (after)'"), "{text}");
    }

    #[test]
    fn unified_diff_has_hunks_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n";
        assert_eq!(
            unified(old, new, 1),
            "--- before\n+++ after\n@@ -4,3 +4,3 @@\n d\n-e\n+E\n f\n@@ -9,1 +9,2 @@\n i\n+j\n"
        );
    }
}
