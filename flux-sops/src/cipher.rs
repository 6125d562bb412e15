//! The value layer: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` strings.

use std::sync::OnceLock;

use aes_gcm::aead::generic_array::typenum::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::Engine;
use rand::RngCore;
use regex::Regex;
use zeroize::{Zeroize, Zeroizing};

use crate::tree::{format_float_plain, Value};

/// AES-256-GCM with sops' 32-byte nonces.
type SopsGcm = AesGcm<Aes256, U32>;

/// The 32-byte data key of a file. Zeroized on drop; its Debug output hides the bytes.
#[derive(Clone, Zeroize, zeroize::ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        DataKey(bytes)
    }

    /// Wraps raw key bytes (must be 32 long).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey(array))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> SopsGcm {
        SopsGcm::new(GenericArray::from_slice(&self.0))
    }
}

/// Why a value could not be decrypted. Messages follow sops' wording, never quoting the
/// value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("Input string <redacted> does not match sops' data format")]
    Format,
    #[error("Error base64-decoding {field}: illegal base64 data at input byte {offset}")]
    Base64 { field: &'static str, offset: usize },
    #[error("Could not decrypt with AES_GCM: cipher: message authentication failed")]
    Authentication,
    #[error("Unknown datatype: {0}")]
    UnknownType(String),
    #[error("Error decoding {0} value: <redacted>")]
    Decoding(&'static str),
    #[error("Could not encrypt value: {0}")]
    Encrypt(&'static str),
}

fn enc_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern
        Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").unwrap()
    })
}

/// Whether a string looks like an encrypted sops value.
pub fn is_encrypted_value(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,")
}

fn decode_b64(field: &'static str, text: &str) -> Result<Vec<u8>, ValueError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|err| {
            let offset = match err {
                base64::DecodeError::InvalidByte(offset, _)
                | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                base64::DecodeError::InvalidLength(len) => len,
                base64::DecodeError::InvalidPadding => text.len(),
            };
            ValueError::Base64 { field, offset }
        })
}

/// Decrypts one `ENC[…]` string and returns the plaintext bytes and the type tag.
pub fn decrypt_raw(
    key: &DataKey,
    value: &str,
    aad: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, String), ValueError> {
    if value.is_empty() {
        return Ok((Zeroizing::new(Vec::new()), "str".to_string()));
    }
    let caps = enc_regex().captures(value).ok_or(ValueError::Format)?;
    let field = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    let mut data = Zeroizing::new(decode_b64("data", field(1))?);
    let iv = decode_b64("iv", field(2))?;
    let tag = decode_b64("tag", field(3))?;
    let datatype = field(4).to_string();
    if iv.len() != 32 || tag.len() != 16 {
        // sops' Go code would reject other nonce sizes too (the GCM instance is built
        // for 32 bytes).
        return Err(ValueError::Authentication);
    }
    key.cipher()
        .decrypt_in_place_detached(
            GenericArray::from_slice(&iv),
            aad,
            &mut data,
            GenericArray::from_slice(&tag),
        )
        .map_err(|_| ValueError::Authentication)?;
    Ok((data, datatype))
}

/// Decrypts one `ENC[…]` string into a typed value.
pub fn decrypt_value(key: &DataKey, value: &str, aad: &[u8]) -> Result<Value, ValueError> {
    let (plain, datatype) = decrypt_raw(key, value, aad)?;
    typed_value(&plain, &datatype)
}

fn typed_value(plain: &[u8], datatype: &str) -> Result<Value, ValueError> {
    let text = || String::from_utf8_lossy(plain).into_owned();
    Ok(match datatype {
        "str" | "bytes" => Value::Str(text()),
        "int" => Value::Int(text().parse().map_err(|_| ValueError::Decoding("int"))?),
        "float" => Value::Float(parse_go_float(&text()).ok_or(ValueError::Decoding("float"))?),
        "bool" => Value::Bool(match text().as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(ValueError::Decoding("bool")),
        }),
        "time" => {
            Value::Time(crate::time::rfc3339_nanos(&text()).ok_or(ValueError::Decoding("time"))?)
        }
        "comment" => Value::Comment(text()),
        other => return Err(ValueError::UnknownType(other.to_string())),
    })
}

fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The bytes sops encrypts and hashes for a value, and its type tag. `None` for values
/// that are never encrypted (null, collections).
pub fn plaintext_of(value: &Value) -> Option<(std::borrow::Cow<'_, [u8]>, &'static str)> {
    use std::borrow::Cow;
    Some(match value {
        Value::Str(s) => (Cow::Borrowed(s.as_bytes()), "str"),
        Value::Int(i) => (Cow::Owned(i.to_string().into_bytes()), "int"),
        Value::Float(f) => (Cow::Owned(format_float_plain(*f).into_bytes()), "float"),
        Value::Bool(b) => (
            Cow::Borrowed(if *b { &b"True"[..] } else { &b"False"[..] }),
            "bool",
        ),
        Value::Time(t) => (Cow::Borrowed(t.as_bytes()), "time"),
        Value::Comment(c) => (Cow::Borrowed(c.as_bytes()), "comment"),
        Value::Null | Value::Map(_) | Value::Seq(_) => return None,
    })
}

/// Encrypts raw bytes with a fresh random IV.
pub fn encrypt_raw(
    key: &DataKey,
    plain: &[u8],
    datatype: &str,
    aad: &[u8],
) -> Result<String, ValueError> {
    let mut iv = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let mut data = Zeroizing::new(plain.to_vec());
    let tag = key
        .cipher()
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), aad, &mut data)
        .map_err(|_| ValueError::Encrypt("AES-GCM failure"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{datatype}]",
        b64.encode(&*data),
        b64.encode(iv),
        b64.encode(tag)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_key() -> DataKey {
        let bytes = hex::decode("acebe324f3b6f75489b5208f622c0d456d865f0627827c11072691f603043dd6")
            .unwrap();
        DataKey::from_slice(&bytes).unwrap()
    }

    #[test]
    fn decrypts_the_worked_example() {
        let value = "ENC[AES256_GCM,data:YNXxEpyOnH6G8NXCpcPCnUmN7u6c9UmXTbMLjw==,iv:hRSjHGoHONUJZbiTPckGVpKdFpi51Xv2gT84ovzU4UQ=,tag:n4QNGwYNB3N19ElJNnZOkA==,type:str]";
        let plain = decrypt_value(&corpus_key(), value, b"data:password:").unwrap();
        assert_eq!(plain, Value::Str("c3VwZXItc2VjcmV0LXBhc3N3b3Jk".into()));
        assert_eq!(
            decrypt_value(&corpus_key(), value, b"data:other:"),
            Err(ValueError::Authentication)
        );
    }

    #[test]
    fn encrypt_then_decrypt() {
        let key = DataKey::generate();
        let enc = encrypt_raw(&key, b"42", "int", b"a:").unwrap();
        assert_eq!(decrypt_value(&key, &enc, b"a:").unwrap(), Value::Int(42));
        assert_eq!(
            decrypt_value(&key, "ENC[AES256_GCM,data:x", b"a:"),
            Err(ValueError::Format)
        );
        assert!(!format!("{key:?}").contains(&hex::encode(key.as_bytes())));
    }
}
