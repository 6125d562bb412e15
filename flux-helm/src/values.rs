//! Helm's values coalescing, dependency enabling and `--set` parsing.

use std::collections::BTreeMap;

use crate::chart::{Chart, ImportValue};
use crate::error::{Error, Result};
use crate::value::{Map, Value};

fn as_map(v: &Value) -> Option<Map> {
    v.as_map().cloned()
}

/// `CoalesceValues(chart, vals)`: user values over chart defaults, nulls deleting keys.
/// `legacy` selects Helm 3.17's rules (chart-default nulls kept).
pub fn coalesce_values(chart: &Chart, user: &Value, legacy: bool) -> Value {
    let dest = match user {
        Value::Map(_) => user.deep_copy(),
        _ => Value::new_map(),
    };
    coalesce(chart, &dest, false, legacy);
    dest
}

/// `MergeValues(chart, vals)`: like coalesce but keeps nulls.
pub fn merge_values(chart: &Chart, user: &Value, legacy: bool) -> Value {
    let dest = match user {
        Value::Map(_) => user.deep_copy(),
        _ => Value::new_map(),
    };
    coalesce(chart, &dest, true, legacy);
    dest
}

fn coalesce(chart: &Chart, dest: &Value, merge: bool, legacy: bool) {
    coalesce_own(chart, dest, merge, legacy);
    coalesce_deps(chart, dest, merge, legacy);
}

fn coalesce_deps(chart: &Chart, dest: &Value, merge: bool, legacy: bool) {
    let Some(d) = as_map(dest) else { return };
    for sub in &chart.subcharts {
        let existing = d.borrow().get(&sub.name).cloned();
        let sub_vals = match existing {
            None => {
                let m = Value::new_map();
                d.borrow_mut().insert(sub.name.clone(), m.clone());
                m
            }
            Some(v @ Value::Map(_)) => v,
            Some(_) => continue,
        };
        coalesce_globals(&sub_vals, dest, legacy);
        coalesce(sub, &sub_vals, merge, legacy);
    }
}

fn coalesce_globals(dest: &Value, src: &Value, legacy: bool) {
    let (Some(d), Some(s)) = (as_map(dest), as_map(src)) else {
        return;
    };
    let dg = match d.borrow().get("global") {
        None => Value::new_map(),
        Some(v @ Value::Map(_)) => v.clone(),
        Some(_) => return,
    };
    let sg = match s.borrow().get("global") {
        None => Value::new_map(),
        Some(v @ Value::Map(_)) => v.clone(),
        Some(_) => return,
    };
    let (Some(dgm), Some(sgm)) = (as_map(&dg), as_map(&sg)) else {
        return;
    };
    let entries: Vec<(String, Value)> = sgm
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, val) in entries {
        if let Value::Map(vm) = &val {
            let vv = Value::from_map(vm.borrow().clone());
            let existing = dgm.borrow().get(&key).cloned();
            match existing {
                None => {
                    dgm.borrow_mut().insert(key, vv);
                }
                Some(dv @ Value::Map(_)) => {
                    coalesce_tables(&vv, &dv, true, legacy);
                    dgm.borrow_mut().insert(key, vv);
                }
                Some(_) => {}
            }
        } else {
            let dest_is_table = matches!(dgm.borrow().get(&key), Some(Value::Map(_)));
            if !dest_is_table {
                dgm.borrow_mut().insert(key, val);
            }
        }
    }
    d.borrow_mut().insert("global".into(), dg);
}

fn clean_nil(v: &Value) {
    if let Some(m) = as_map(v) {
        m.borrow_mut().retain(|_, x| !x.is_nil());
        for x in m.borrow().values() {
            clean_nil(x);
        }
    }
}

fn coalesce_own(chart: &Chart, dest: &Value, merge: bool, legacy: bool) {
    let Some(v) = as_map(dest) else { return };
    let defaults = chart.values.deep_copy();
    let Some(vc) = as_map(&defaults) else { return };
    for (key, val) in vc.borrow().iter() {
        let existing = v.borrow().get(key).cloned();
        match existing {
            Some(Value::Nil) if !merge => {
                v.borrow_mut().remove(key);
            }
            Some(d @ Value::Map(_)) => {
                if let Value::Map(_) = val {
                    let child_merge = merge || chart.subcharts.iter().any(|s| &s.name == key);
                    if !child_merge && !legacy {
                        clean_nil(val);
                    }
                    coalesce_tables(&d, val, child_merge, legacy);
                }
            }
            Some(_) => {}
            None => {
                if !merge && !legacy {
                    if val.is_nil() {
                        continue;
                    }
                    clean_nil(val);
                }
                v.borrow_mut().insert(key.clone(), val.clone());
            }
        }
    }
}

/// `coalesceTablesFullKey(dst, src)`: `dst` wins; fills from `src`.
pub fn coalesce_tables(dst: &Value, src: &Value, merge: bool, legacy: bool) {
    let (Some(d), Some(s)) = (as_map(dst), as_map(src)) else {
        return;
    };
    if std::rc::Rc::ptr_eq(&d, &s) {
        return;
    }
    let src_non_nil: Vec<String> = s
        .borrow()
        .iter()
        .filter(|(_, v)| !v.is_nil())
        .map(|(k, _)| k.clone())
        .collect();
    let dst_nils: Vec<String> = d
        .borrow()
        .iter()
        .filter(|(_, v)| v.is_nil())
        .map(|(k, _)| k.clone())
        .collect();
    if !legacy {
        for k in dst_nils {
            s.borrow_mut().insert(k, Value::Nil);
        }
    }
    let entries: Vec<(String, Value)> = s
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, val) in entries {
        let dv = d.borrow().get(&key).cloned();
        match dv {
            Some(Value::Nil) if !merge && (legacy || src_non_nil.contains(&key)) => {
                d.borrow_mut().remove(&key);
            }
            None => {
                d.borrow_mut().insert(key, val);
            }
            Some(dv) => {
                if let (Value::Map(_), Value::Map(_)) = (&val, &dv) {
                    coalesce_tables(&dv, &val, merge, legacy);
                }
            }
        }
    }
}

/// Looks up a dotted path (`a.b.c`) in a values tree.
pub fn path_value(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v.clone();
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Helm's `ProcessDependencies`: drops subcharts disabled by `condition`/`tags`, applies
/// aliases, and merges subchart defaults into their parents' values.
pub fn process_dependencies(chart: &mut Chart, user: &Value, legacy: bool) -> Result<()> {
    apply_aliases(chart);
    enable(chart, user, "", legacy)?;
    import_values(chart, legacy);
    Ok(())
}

fn apply_aliases(chart: &mut Chart) {
    let deps = chart.dependencies.clone();
    let mut out = Vec::new();
    let subs = std::mem::take(&mut chart.subcharts);
    let mut used = vec![false; subs.len()];
    for dep in &deps {
        if let Some((i, sub)) = subs.iter().enumerate().find(|(_, s)| s.name == dep.name) {
            used[i] = true;
            let mut sub = sub.clone();
            if let Some(alias) = &dep.alias {
                sub.name.clone_from(alias);
                if let Some(m) = sub.metadata.as_map() {
                    m.borrow_mut().insert("name".into(), Value::str(alias));
                }
            }
            out.push(sub);
        }
    }
    for (i, sub) in subs.into_iter().enumerate() {
        if !used[i] {
            out.push(sub);
        }
    }
    for sub in &mut out {
        apply_aliases(sub);
    }
    chart.subcharts = out;
}

fn enable(chart: &mut Chart, user: &Value, path: &str, legacy: bool) -> Result<()> {
    let cvals = coalesce_values(chart, user, legacy);
    let mut disabled = Vec::new();
    for dep in &chart.dependencies {
        let name = dep.alias.clone().unwrap_or_else(|| dep.name.clone());
        let mut enabled = true;
        // Tags.
        if !dep.tags.is_empty() {
            let tags = path_value(&cvals, "tags");
            let mut has_true = false;
            let mut has_false = false;
            for t in &dep.tags {
                match tags.as_ref().and_then(|v| v.get(t)) {
                    Some(Value::Bool(true)) => has_true = true,
                    Some(Value::Bool(false)) => has_false = true,
                    _ => {}
                }
            }
            if has_true {
                enabled = true;
            } else if has_false {
                enabled = false;
            }
        }
        if let Some(cond) = &dep.condition {
            for c in cond.split(',') {
                let c = c.trim();
                if let Some(Value::Bool(b)) = path_value(&cvals, &format!("{path}{c}")) {
                    enabled = b;
                    break;
                }
            }
        }
        if !enabled {
            disabled.push(name);
        }
    }
    chart.subcharts.retain(|s| !disabled.contains(&s.name));
    for sub in &mut chart.subcharts {
        let sub_path = format!("{path}{}.", sub.name);
        enable(sub, &cvals, &sub_path, legacy)?;
    }
    Ok(())
}

/// `processImportValues` with Helm 4's merge semantics: the chart's values become its
/// defaults merged with its subcharts' (nulls kept), and each enabled dependency's
/// `import-values` tables are copied into the parent. The parent's own values win over imported
/// ones, and earlier imports win over later ones.
fn import_values(chart: &mut Chart, legacy: bool) {
    for sub in &mut chart.subcharts {
        import_values(sub, legacy);
    }
    if chart.dependencies.is_empty() {
        return;
    }
    let merged = merge_values(chart, &Value::new_map(), legacy);
    let imported = Value::new_map();
    for dep in &chart.dependencies {
        let name = dep.alias.as_deref().unwrap_or(&dep.name);
        // Disabled dependencies were removed from the chart, and Helm drops their entries.
        if !chart.subcharts.iter().any(|s| s.name == name) {
            continue;
        }
        for import in &dep.import_values {
            // A missing or non-table child is skipped (Helm only logs a warning).
            let source = match import {
                ImportValue::Exports(export) => table(&merged, &format!("{name}.exports.{export}")),
                ImportValue::ChildParent { child, parent } => {
                    table(&merged, &format!("{name}.{child}")).map(|t| nest_under(parent, t))
                }
            };
            if let Some(source) = source {
                coalesce_tables(&imported, &source, true, legacy);
            }
        }
    }
    let values = merged.deep_copy();
    coalesce_tables(&values, &imported, true, legacy);
    chart.values = values;
}

/// `Values.Table`: the map at a dotted path, when every step is a map.
fn table(values: &Value, path: &str) -> Option<Value> {
    let mut cur = values.clone();
    for part in path.split('.') {
        cur = match cur.get(part) {
            Some(v @ Value::Map(_)) => v,
            _ => return None,
        };
    }
    Some(cur)
}

/// `pathToMap`: `{a: {b: data}}` for `a.b`; `.` is the top level itself.
fn nest_under(path: &str, data: Value) -> Value {
    if path == "." {
        return data;
    }
    path.split('.').rev().fold(data, |inner, key| {
        let mut m = BTreeMap::new();
        m.insert(key.to_string(), inner);
        Value::from_map(m)
    })
}

/// Parses one `--set` argument (`a.b=c,d[0]=e`) into `base`, Helm's strvals rules.
pub fn parse_set(s: &str, base: &Value) -> Result<()> {
    for part in split_unescaped(s, ',') {
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(Error::Set(format!("key \"{part}\" has no value")));
        };
        let value = typed_value(val);
        set_path(base, key, value)?;
    }
    Ok(())
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    let mut depth = 0;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            c if c == sep && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn typed_value(v: &str) -> Value {
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Nil,
        "0" => Value::Int(0),
        _ => {
            if !v.starts_with('0') || v.len() == 1 {
                if let Ok(i) = v.parse::<i64>() {
                    return Value::Int(i);
                }
            }
            if let (Some(inner), true) = (v.strip_prefix('{'), v.ends_with('}')) {
                let items: Vec<Value> = split_unescaped(&inner[..inner.len() - 1], ',')
                    .iter()
                    .map(|x| typed_value(x))
                    .collect();
                return Value::list(items);
            }
            Value::str(v)
        }
    }
}

fn set_path(base: &Value, key: &str, value: Value) -> Result<()> {
    let mut cur = base.clone();
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let (name, index) = match part.find('[') {
            Some(b) => {
                let idx: usize = part
                    .get(b + 1..part.len().saturating_sub(1))
                    .unwrap_or("")
                    .parse()
                    .map_err(|_| Error::Set(format!("invalid index in {key}")))?;
                (&part[..b], Some(idx))
            }
            None => (*part, None),
        };
        let Some(m) = cur.as_map().cloned() else {
            return Err(Error::Set(format!("key {key} is not a map")));
        };
        match index {
            None => {
                if last {
                    m.borrow_mut().insert(name.to_string(), value);
                    return Ok(());
                }
                let next = match m.borrow().get(name) {
                    Some(v @ Value::Map(_)) => v.clone(),
                    _ => Value::new_map(),
                };
                m.borrow_mut().insert(name.to_string(), next.clone());
                cur = next;
            }
            Some(idx) => {
                let mut list = match m.borrow().get(name) {
                    Some(Value::List(l)) => l.as_ref().clone(),
                    _ => Vec::new(),
                };
                while list.len() <= idx {
                    list.push(Value::Nil);
                }
                if last {
                    list[idx] = value;
                    m.borrow_mut().insert(name.to_string(), Value::list(list));
                    return Ok(());
                }
                let next = match &list[idx] {
                    v @ Value::Map(_) => v.clone(),
                    _ => Value::new_map(),
                };
                list[idx] = next.clone();
                m.borrow_mut().insert(name.to_string(), Value::list(list));
                cur = next;
            }
        }
    }
    Ok(())
}

/// Merges values files the way `helm -f` does (later files win, maps merged deeply).
pub fn merge_user_values(base: &Value, overlay: &Value) -> Value {
    let (Some(b), Some(o)) = (as_map(base), as_map(overlay)) else {
        return overlay.clone();
    };
    let mut out: BTreeMap<String, Value> = b.borrow().clone();
    for (k, v) in o.borrow().iter() {
        let merged = match (out.get(k), v) {
            (Some(bv @ Value::Map(_)), Value::Map(_)) => merge_user_values(bv, v),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Value::from_map(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_set_strings_are_errors() {
        let base = Value::new_map();
        assert!(parse_set("a[=1", &base).is_err());
        assert!(parse_set("novalue", &base).is_err());
    }

    #[test]
    fn set_strings() {
        let base = Value::new_map();
        parse_set("a.b=1,c=x,d[1]=true,e=null", &base).expect("parse");
        assert_eq!(
            base.go_string(),
            "map[a:map[b:1] c:x d:[<nil> true] e:<nil>]"
        );
    }
}
