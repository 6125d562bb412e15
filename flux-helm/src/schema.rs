//! `values.schema.json` validation (a subset of JSON Schema, with Helm 4's message format).

use crate::chart::Chart;
use crate::error::{Error, Result};
use crate::value::Value;

/// Validates the coalesced values against the chart's and its subcharts' schemas.
pub fn validate_chart(chart: &Chart, values: &Value) -> Result<()> {
    let mut failures = String::new();
    collect(chart, values, &mut failures);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Render(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{failures}"
        )))
    }
}

fn collect(chart: &Chart, values: &Value, out: &mut String) {
    if let Some(schema) = &chart.schema {
        if let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema) {
            let instance = crate::json::to_serde(values);
            let mut errors = Vec::new();
            check(&schema, &schema, &instance, "", &mut errors);
            if !errors.is_empty() {
                out.push_str(&format!("{}:\n", chart.name));
                for e in errors {
                    out.push_str(&format!("- {e}\n"));
                }
            }
        }
    }
    for sub in &chart.subcharts {
        let sub_values = values.get(&sub.name).unwrap_or_else(Value::new_map);
        collect(sub, &sub_values, out);
    }
}

fn type_matches(t: &str, v: &serde_json::Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn resolve<'a>(
    root: &'a serde_json::Value,
    schema: &'a serde_json::Value,
) -> &'a serde_json::Value {
    if let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
        if let Some(ptr) = r.strip_prefix('#') {
            if let Some(target) = root.pointer(ptr) {
                return target;
            }
        }
    }
    schema
}

/// Checks the keywords charts commonly use; messages follow santhosh-tekuri/jsonschema.
fn check(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    let schema = resolve(root, schema);
    let loc = format!("at '{at}'");
    if let Some(t) = schema.get("type") {
        let ok = match t {
            serde_json::Value::String(s) => type_matches(s, v),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str())
                .any(|s| type_matches(s, v)),
            _ => true,
        };
        if !ok {
            let want = match t {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => String::new(),
            };
            let got = match v {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Number(n) => {
                    if n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                        "integer"
                    } else {
                        "number"
                    }
                }
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
            };
            errors.push(format!("{loc}: got {got}, want {want}"));
            return;
        }
    }
    if let Some(serde_json::Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed
                .iter()
                .map(std::string::ToString::to_string)
                .collect();
            errors.push(format!("{loc}: value must be one of {}", list.join(", ")));
        }
    }
    if let serde_json::Value::Object(obj) = v {
        if let Some(serde_json::Value::Array(req)) = schema.get("required") {
            let missing: Vec<&str> = req
                .iter()
                .filter_map(|r| r.as_str())
                .filter(|r| !obj.contains_key(*r))
                .collect();
            match missing.len() {
                0 => {}
                1 => errors.push(format!("{loc}: missing property '{}'", missing[0])),
                _ => errors.push(format!(
                    "{loc}: missing properties {}",
                    missing
                        .iter()
                        .map(|m| format!("'{m}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        if let Some(serde_json::Value::Object(props)) = schema.get("properties") {
            for (k, sub) in props {
                if let Some(x) = obj.get(k) {
                    check(root, sub, x, &format!("{at}/{k}"), errors);
                }
            }
        }
    }
}
