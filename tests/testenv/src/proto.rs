//! Decoding of Kubernetes protobuf request bodies for the kinds `kubectl create <kind>`
//! generators send (typed clients use protobuf). Responses are always JSON, which those
//! clients accept too.

use crate::error::ApiError;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// One protobuf field value.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let value = match tag & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let bytes = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Wire::Bytes(bytes)
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            _ => return None,
        };
        out.push((tag >> 3, value));
    }
    (pos == buf.len()).then_some(out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A decoded message as field number → values.
struct Msg<'a>(Vec<(u64, Wire<'a>)>);

impl<'a> Msg<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, ApiError> {
        fields(buf)
            .map(Msg)
            .ok_or_else(|| ApiError::bad_request("malformed protobuf body"))
    }

    fn bytes(&self, n: u64) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.0.iter().filter_map(move |(f, v)| match (f, v) {
            (f, Wire::Bytes(b)) if *f == n => Some(*b),
            _ => None,
        })
    }

    fn string(&self, n: u64) -> Option<String> {
        self.bytes(n).last().map(text).filter(|s| !s.is_empty())
    }

    fn varint(&self, n: u64) -> Option<u64> {
        self.0.iter().rev().find_map(|(f, v)| match v {
            Wire::Varint(x) if *f == n => Some(*x),
            _ => None,
        })
    }

    fn strings(&self, n: u64) -> Vec<Value> {
        self.bytes(n).map(|b| Value::from(text(b))).collect()
    }

    /// map<string, string> (or bytes, base64-encoded as JSON does).
    fn map(&self, n: u64, base64_values: bool) -> Result<Option<Value>, ApiError> {
        let mut out = Map::new();
        for entry in self.bytes(n) {
            let e = Msg::parse(entry)?;
            let key = e.bytes(1).last().map(text).unwrap_or_default();
            let raw = e.bytes(2).last().unwrap_or_default();
            let value = if base64_values {
                base64::engine::general_purpose::STANDARD.encode(raw)
            } else {
                text(raw)
            };
            out.insert(key, value.into());
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

fn object_meta(buf: &[u8]) -> Result<Value, ApiError> {
    let m = Msg::parse(buf)?;
    let mut out = Map::new();
    insert(&mut out, "name", m.string(1).map(Value::from));
    insert(&mut out, "generateName", m.string(2).map(Value::from));
    insert(&mut out, "namespace", m.string(3).map(Value::from));
    insert(&mut out, "resourceVersion", m.string(6).map(Value::from));
    insert(&mut out, "labels", m.map(11, false)?);
    insert(&mut out, "annotations", m.map(12, false)?);
    let mut refs = Vec::new();
    for r in m.bytes(13) {
        let r = Msg::parse(r)?;
        let mut o = Map::new();
        insert(&mut o, "apiVersion", r.string(5).map(Value::from));
        insert(&mut o, "kind", r.string(1).map(Value::from));
        insert(&mut o, "name", r.string(3).map(Value::from));
        insert(&mut o, "uid", r.string(4).map(Value::from));
        insert(
            &mut o,
            "controller",
            r.varint(6).map(|v| Value::from(v != 0)),
        );
        insert(
            &mut o,
            "blockOwnerDeletion",
            r.varint(7).map(|v| Value::from(v != 0)),
        );
        refs.push(Value::Object(o));
    }
    if !refs.is_empty() {
        out.insert("ownerReferences".into(), refs.into());
    }
    let finalizers = m.strings(14);
    if !finalizers.is_empty() {
        out.insert("finalizers".into(), finalizers.into());
    }
    Ok(Value::Object(out))
}

/// Whether a body is a Kubernetes protobuf envelope.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.starts_with("application/vnd.kubernetes.protobuf")
}

/// Decodes a protobuf envelope into the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| ApiError::bad_request("protobuf body lacks the k8s envelope"))?;
    let unknown = Msg::parse(inner)?;
    let type_meta = Msg::parse(unknown.bytes(1).last().unwrap_or_default())?;
    let api_version = type_meta.string(1).unwrap_or_default();
    let kind = type_meta.string(2).unwrap_or_default();
    let raw = Msg::parse(unknown.bytes(2).last().unwrap_or_default())?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), api_version.clone().into());
    obj.insert("kind".into(), kind.clone().into());
    let meta = raw.bytes(1).last().map(object_meta).transpose()?;
    obj.insert("metadata".into(), meta.unwrap_or_else(|| json!({})));
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => {
            insert(&mut obj, "data", raw.map(2, false)?);
            insert(&mut obj, "binaryData", raw.map(3, true)?);
            insert(&mut obj, "immutable", raw.varint(4).map(|v| Value::from(v != 0)));
        }
        ("v1", "Secret") => {
            insert(&mut obj, "data", raw.map(2, true)?);
            insert(&mut obj, "type", raw.string(3).map(Value::from));
            insert(&mut obj, "stringData", raw.map(4, false)?);
            insert(&mut obj, "immutable", raw.varint(5).map(|v| Value::from(v != 0)));
        }
        ("v1", "Namespace") => {
            if let Some(spec) = raw.bytes(2).last() {
                let finalizers = Msg::parse(spec)?.strings(1);
                if !finalizers.is_empty() {
                    obj.insert("spec".into(), json!({"finalizers": finalizers}));
                }
            }
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            // `kubectl auth can-i`: spec.resourceAttributes / nonResourceAttributes, all strings.
            let mut spec = Map::new();
            if let Some(raw_spec) = raw.bytes(2).last() {
                let m = Msg::parse(raw_spec)?;
                let keys: [(&str, &[&str]); 2] = [
                    ("resourceAttributes", &["namespace", "verb", "group", "version", "resource", "subresource", "name"]),
                    ("nonResourceAttributes", &["path", "verb"]),
                ];
                for (field, (name, names)) in (1u64..).zip(keys) {
                    if let Some(bytes) = m.bytes(field).last() {
                        let attrs = Msg::parse(bytes)?;
                        let mut out = Map::new();
                        for (n, key) in (1u64..).zip(names) {
                            insert(&mut out, key, attrs.string(n).map(Value::from));
                        }
                        spec.insert(name.into(), Value::Object(out));
                    }
                }
            }
            obj.insert("spec".into(), Value::Object(spec));
        }
        ("v1", "ServiceAccount") => {
            let pulls: Vec<Value> = raw
                .bytes(3)
                .map(|b| Msg::parse(b).map(|m| json!({"name": m.string(1).unwrap_or_default()})))
                .collect::<Result<_, _>>()?;
            if !pulls.is_empty() {
                obj.insert("imagePullSecrets".into(), pulls.into());
            }
            insert(&mut obj, "automountServiceAccountToken", raw.varint(4).map(|v| Value::from(v != 0)));
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf ({api_version} {kind}: only Namespace, ConfigMap, Secret, ServiceAccount and SelfSubjectAccessReview are decoded; send JSON)"
            )))
        }
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from((n << 3) | 2).unwrap_or(0),
            u8::try_from(bytes.len()).unwrap_or(0),
        ];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_configmap_envelope() {
        // What `kubectl create configmap foo --from-literal=a=b` sends.
        let body = b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x1d\n\x13\n\x03foo\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x06\n\x01a\x12\x01b\x1a\x00\"\x00";
        let obj = decode(body).unwrap();
        assert_eq!(obj["kind"], "ConfigMap");
        assert_eq!(obj["metadata"], json!({"name": "foo"}));
        assert_eq!(obj["data"], json!({"a": "b"}));
    }

    #[test]
    fn secret_bytes_become_base64() {
        let entry = [field(1, b"k"), field(2, b"hi")].concat();
        let meta = field(1, b"s");
        let raw = [field(1, &meta), field(2, &entry), field(3, b"Opaque")].concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &tm), field(2, &raw)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(obj["data"]["k"], "aGk=");
        assert_eq!(obj["type"], "Opaque");
    }

    #[test]
    fn self_subject_access_review_attributes() {
        let attrs = [field(1, b"team"), field(2, b"get"), field(5, b"secrets")].concat();
        let raw = [field(1, &[]), field(2, &field(1, &attrs))].concat();
        let tm = [
            field(1, b"authorization.k8s.io/v1"),
            field(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [b"k8s\0".to_vec(), field(1, &tm), field(2, &raw)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(
            obj["spec"],
            json!({"resourceAttributes": {"namespace": "team", "verb": "get", "resource": "secrets"}})
        );
    }
}
