//! Structural-schema handling for custom resources: pruning unknown fields, defaults, and
//! the validations that produce 422 causes (type, required, enum, pattern, bounds).

use crate::error::Cause;
use serde_json::{Map, Value};

/// What processing found: validation causes and the unknown (pruned) field paths.
#[derive(Debug, Default)]
pub struct Outcome {
    /// 422 causes.
    pub causes: Vec<Cause>,
    /// Fields removed because the schema does not declare them (`spec.foo`).
    pub pruned: Vec<String>,
}

/// Prunes, defaults and validates a custom resource against its openAPIV3Schema.
pub fn process(obj: &mut Value, schema: &Value) -> Outcome {
    let mut out = Outcome::default();
    if let (Value::Object(map), Some(props)) = (
        &mut *obj,
        schema.get("properties").and_then(Value::as_object),
    ) {
        // Top level: apiVersion/kind/metadata are never pruned or checked here.
        let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
        if !preserve {
            map.retain(|k, _| {
                let keep = matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    || props.contains_key(k);
                if !keep {
                    out.pruned.push(k.clone());
                }
                keep
            });
        }
        apply_defaults(map, props);
        for (k, sub) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(v) = map.get_mut(k) {
                walk(v, sub, k, &mut out);
            }
        }
        check_required(map, schema, "", &mut out.causes);
    }
    out
}

fn apply_defaults(map: &mut Map<String, Value>, props: &Map<String, Value>) {
    for (k, sub) in props {
        if map.get(k).is_none_or(Value::is_null) {
            if let Some(d) = sub.get("default") {
                map.insert(k.clone(), d.clone());
            }
        }
    }
}

fn check_required(map: &Map<String, Value>, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                causes.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: join(path, r),
                });
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(path: &str, value: &Value, detail: String) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {shown}: {detail}"),
        field: path.to_string(),
    }
}

fn walk(value: &mut Value, schema: &Value, path: &str, out: &mut Outcome) {
    let causes = &mut out.causes;
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    let expected = schema.get("type").and_then(Value::as_str);
    let actual = type_name(value);
    if value.is_null() {
        if schema["nullable"].as_bool() != Some(true) && expected.is_some() {
            causes.push(invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    expected.unwrap_or_default()
                ),
            ));
        }
        return;
    }
    if int_or_string {
        if !matches!(actual, "integer" | "string") {
            causes.push(invalid(
                path,
                value,
                format!("{path} in body must be of type integer-or-string: \"{actual}\""),
            ));
        }
    } else if let Some(expected) = expected {
        let ok = expected == actual || (expected == "number" && actual == "integer");
        if !ok {
            causes.push(invalid(
                path,
                &Value::from(actual),
                format!("{path} in body must be of type {expected}: \"{actual}\""),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            let supported: Vec<String> = options.iter().map(|o| o.to_string()).collect();
            causes.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {value}: supported values: {}",
                    supported.join(", ")
                ),
                field: path.to_string(),
            });
        }
    }
    match value {
        Value::String(s) => {
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if regex::Regex::new(p).is_ok_and(|re| !re.is_match(s)) {
                    causes.push(invalid(
                        path,
                        &Value::String(s.clone()),
                        format!("{path} in body should match '{p}'"),
                    ));
                }
            }
            let len = s.chars().count() as u64;
            if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
                causes.push(invalid(
                    path,
                    &Value::String(s.clone()),
                    format!(
                        "{path} in body may not be longer than {}",
                        schema["maxLength"]
                    ),
                ));
            }
            if schema["minLength"].as_u64().is_some_and(|m| len < m) {
                causes.push(invalid(
                    path,
                    &Value::String(s.clone()),
                    format!(
                        "{path} in body should be at least {} chars long",
                        schema["minLength"]
                    ),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if schema["minimum"].as_f64().is_some_and(|m| x < m) {
                causes.push(invalid(
                    path,
                    &Value::Number(n.clone()),
                    format!(
                        "{path} in body should be greater than or equal to {}",
                        schema["minimum"]
                    ),
                ));
            }
            if schema["maximum"].as_f64().is_some_and(|m| x > m) {
                causes.push(invalid(
                    path,
                    &Value::Number(n.clone()),
                    format!(
                        "{path} in body should be less than or equal to {}",
                        schema["maximum"]
                    ),
                ));
            }
        }
        Value::Array(items) => {
            if schema["maxItems"]
                .as_u64()
                .is_some_and(|m| items.len() as u64 > m)
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany".into(),
                    message: format!(
                        "Too many: {}: must have at most {} items",
                        items.len(),
                        schema["maxItems"]
                    ),
                    field: path.to_string(),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
                || schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if let Some(props) = props {
                if !preserve && additional.is_none() {
                    map.retain(|k, _| {
                        let keep = props.contains_key(k);
                        if !keep {
                            out.pruned.push(join(path, k));
                        }
                        keep
                    });
                }
                apply_defaults(map, props);
                map.retain(|k, v| {
                    !(v.is_null()
                        && props
                            .get(k)
                            .is_some_and(|s| s["nullable"].as_bool() != Some(true)))
                });
                for (k, sub) in props {
                    if let Some(v) = map.get_mut(k) {
                        walk(v, sub, &join(path, k), out);
                    }
                }
            } else if let Some(additional) = additional {
                for (k, v) in map.iter_mut() {
                    walk(v, additional, &join(path, k), out);
                }
            } else if !preserve && expected == Some("object") {
                // A structural object with no properties and no preserve flag keeps nothing.
                out.pruned.extend(map.keys().map(|k| join(path, k)));
                map.clear();
            }
            check_required(map, schema, path, &mut out.causes);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "pattern": "^https?://"},
            "interval": {"type": "string", "default": "1m"},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "count": {"type": "integer", "minimum": 1},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}}})
    }

    #[test]
    fn prunes_defaults_and_accepts_valid() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"url": "https://x", "junk": 1, "extra": {"free": true}}, "other": 1});
        let out = process(&mut o, &schema());
        assert!(out.causes.is_empty());
        assert_eq!(
            out.pruned,
            vec!["other".to_string(), "spec.junk".to_string()]
        );
        assert_eq!(o["spec"]["interval"], "1m");
        assert!(o["spec"].get("junk").is_none());
        assert!(o.get("other").is_none());
        assert_eq!(o["spec"]["extra"]["free"], true);
    }

    #[test]
    fn reports_causes() {
        let mut o = json!({"spec": {"url": "ftp://x", "mode": "c", "count": 0}});
        let causes = process(&mut o, &schema()).causes;
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.url", "spec.mode", "spec.count"]);
        let mut missing = json!({"spec": {}});
        let causes = process(&mut missing, &schema()).causes;
        assert_eq!(causes[0].reason, "FieldValueRequired");
        assert_eq!(causes[0].field, "spec.url");
    }
}
