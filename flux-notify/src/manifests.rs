//! Loading Alerts, Providers, Receivers and Secrets from multi-document YAML (what the
//! controller would read from the API server), into a [`crate::server::Registry`].

use base64::Engine as _;
use serde::Deserialize as _;
use serde_yaml::Value;

use crate::alert::Alert;
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::receiver::Receiver;
use crate::server::Registry;

fn invalid(source: &str, index: usize, message: String) -> Error {
    Error::InvalidConfig {
        object: format!("{source} (document {index})"),
        field: "manifest".into(),
        message,
    }
}

/// Adds every supported object in `text` to `registry`; other kinds are ignored. `source`
/// names the input in errors.
pub fn load_into(registry: &mut Registry, source: &str, text: &str) -> Result<()> {
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| invalid(source, i, e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let parse_err = |e: serde_yaml::Error| invalid(source, i, format!("{kind}: {e}"));
        match kind.as_str() {
            "Alert" => registry
                .alerts
                .push(serde_yaml::from_value::<Alert>(value).map_err(parse_err)?),
            "Provider" => registry
                .providers
                .push(serde_yaml::from_value::<Provider>(value).map_err(parse_err)?),
            "Receiver" => registry
                .receivers
                .push(serde_yaml::from_value::<Receiver>(value).map_err(parse_err)?),
            "Secret" => {
                let meta = |k: &str| {
                    value
                        .get("metadata")
                        .and_then(|m| m.get(k))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let (name, namespace) = (meta("name"), meta("namespace"));
                let mut data = std::collections::BTreeMap::new();
                if let Some(map) = value.get("data").and_then(Value::as_mapping) {
                    for (k, v) in map {
                        let key = k.as_str().unwrap_or_default().to_string();
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(v.as_str().unwrap_or_default().trim())
                            .map_err(|e| invalid(source, i, format!("Secret {namespace}/{name}: data.{key}: invalid base64: {e}")))?;
                        data.insert(key, decoded);
                    }
                }
                if let Some(map) = value.get("stringData").and_then(Value::as_mapping) {
                    for (k, v) in map {
                        data.insert(
                            k.as_str().unwrap_or_default().to_string(),
                            v.as_str().unwrap_or_default().as_bytes().to_vec(),
                        );
                    }
                }
                registry.secrets.0.insert((namespace, name), data);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_all_kinds() {
        let text = r"
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: apps}
data: {token: dG9r}
stringData: {address: 'http://x'}
---
kind: Provider
metadata: {name: p, namespace: apps}
spec: {type: generic, secretRef: {name: s}}
---
kind: Alert
metadata: {name: a, namespace: apps}
spec: {providerRef: {name: p}, eventSources: [{kind: Kustomization, name: '*'}]}
---
kind: Receiver
metadata: {name: r, namespace: apps}
spec: {type: generic, secretRef: {name: s}, resources: []}
---
kind: ConfigMap
metadata: {name: ignored}
";
        let mut reg = Registry::default();
        load_into(&mut reg, "test.yaml", text).unwrap();
        assert_eq!(
            (reg.alerts.len(), reg.providers.len(), reg.receivers.len()),
            (1, 1, 1)
        );
        let cfg = reg.providers[0].resolve(&reg.secrets).unwrap();
        assert_eq!(
            (cfg.token.as_str(), cfg.address.as_str()),
            ("tok", "http://x")
        );
    }

    #[test]
    fn bad_base64_names_the_field() {
        let mut reg = Registry::default();
        let err = load_into(
            &mut reg,
            "s.yaml",
            "kind: Secret\nmetadata: {name: s, namespace: n}\ndata: {token: '!!'}",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("s.yaml (document 0)")
                && err.to_string().contains("data.token"),
            "{err}"
        );
    }
}
