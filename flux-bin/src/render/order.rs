//! `dependsOn` ordering: a stable topological order with cycle detection.

use std::collections::{BTreeMap, BTreeSet};

/// A node's identity: `namespace/name` of a Kustomization or HelmRelease.
pub type Key = String;

/// Orders `nodes` so that every node comes after the nodes it depends on.
///
/// Dependencies on keys that are not in `nodes` are ignored (they are reported elsewhere as
/// external). Among nodes whose dependencies are met, input order is kept, so the result is
/// deterministic. A cycle is an error listing its members in order, e.g.
/// `flux-system/a -> flux-system/b -> flux-system/a`.
pub fn topological(nodes: &[(Key, Vec<Key>)]) -> Result<Vec<Key>, String> {
    let known: BTreeSet<&str> = nodes.iter().map(|(k, _)| k.as_str()).collect();
    let deps: BTreeMap<&str, Vec<&str>> = nodes
        .iter()
        .map(|(k, d)| {
            let inside = d
                .iter()
                .map(String::as_str)
                .filter(|d| known.contains(d))
                .collect();
            (k.as_str(), inside)
        })
        .collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(nodes.len());
    while order.len() < nodes.len() {
        let before = order.len();
        for (key, _) in nodes {
            if done.contains(key.as_str()) {
                continue;
            }
            if deps[key.as_str()].iter().all(|d| done.contains(d)) {
                done.insert(key);
                order.push(key.clone());
            }
        }
        if order.len() == before {
            let pending: Vec<&str> = nodes
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| !done.contains(k))
                .collect();
            return Err(format!("dependency cycle: {}", find_cycle(&pending, &deps)));
        }
    }
    Ok(order)
}

/// Follows dependencies from the first pending node until one repeats.
fn find_cycle(pending: &[&str], deps: &BTreeMap<&str, Vec<&str>>) -> String {
    let pending_set: BTreeSet<&str> = pending.iter().copied().collect();
    let mut path: Vec<&str> = Vec::new();
    let mut current = pending[0];
    loop {
        if let Some(pos) = path.iter().position(|p| *p == current) {
            let mut cycle: Vec<&str> = path[pos..].to_vec();
            cycle.push(current);
            return cycle.join(" -> ");
        }
        path.push(current);
        match deps[current].iter().find(|d| pending_set.contains(*d)) {
            Some(next) => current = next,
            None => return path.join(" -> "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(k: &str, deps: &[&str]) -> (Key, Vec<Key>) {
        (
            k.to_string(),
            deps.iter().map(|d| (*d).to_string()).collect(),
        )
    }

    #[test]
    fn dependencies_come_first_and_order_is_stable() {
        let nodes = [
            node("ns/apps", &["ns/configs"]),
            node("ns/monitoring", &["ns/configs"]),
            node("ns/configs", &["ns/controllers"]),
            node("ns/controllers", &[]),
            node("ns/other", &["elsewhere/unknown"]),
        ];
        assert_eq!(
            topological(&nodes).unwrap(),
            [
                "ns/controllers",
                "ns/other",
                "ns/configs",
                "ns/apps",
                "ns/monitoring"
            ]
        );
    }

    #[test]
    fn cycles_are_named() {
        let nodes = [
            node("ns/a", &["ns/b"]),
            node("ns/b", &["ns/c"]),
            node("ns/c", &["ns/a"]),
            node("ns/d", &[]),
        ];
        assert_eq!(
            topological(&nodes).unwrap_err(),
            "dependency cycle: ns/a -> ns/b -> ns/c -> ns/a"
        );
    }
}
