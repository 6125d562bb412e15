//! SOPS decryption and encryption compatible with sops 3.11 (age and PGP keys).
//!
//! The library is pure: callers pass the file bytes and a [`KeySet`]; nothing reads the
//! environment unless asked ([`KeySet::from_environment`]). Decryption verifies the MAC
//! (constant-time comparison) before any plaintext is returned, unless the caller opts out
//! as Flux does for manifests.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cipher;
pub mod config;
mod error;
pub mod flux;
pub mod keys;
pub mod metadata;
pub mod stores;
pub mod time;
pub mod tree;
mod walk;

use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use cipher::DataKey;
pub use error::Error;
pub use keys::{KeySet, Recipient};
pub use metadata::{Metadata, Selection};
pub use tree::{MapItem, Value};

/// The sops version written into files we encrypt.
pub const SOPS_VERSION: &str = "3.11.0";

/// A store (file format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// The format sops picks from a file name.
    pub fn from_path(path: &Path) -> Format {
        let name = path.to_string_lossy();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if name.ends_with(".json") {
            Format::Json
        } else if name.ends_with(".env") {
            Format::Dotenv
        } else if name.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    /// Parses an `--input-type`/`--output-type` value.
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }
}

/// Options for [`decrypt`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DecryptOptions {
    /// Skip MAC verification (Flux's manifest path; `--ignore-mac`).
    pub ignore_mac: bool,
    /// Check `sops.version` the way the sops CLI does.
    pub check_version: bool,
}

/// A parsed encrypted (or plaintext) file.
struct Loaded {
    documents: Vec<Value>,
    metadata: Option<Value>,
    /// Binary store: the raw `data` value.
    binary: bool,
}

fn load(input: &[u8], format: Format, file: &str) -> Result<Loaded, Error> {
    let text = || {
        std::str::from_utf8(input).map_err(|_| Error::Parse {
            file: file.to_string(),
            format: "text",
            message: "the file is not valid UTF-8".to_string(),
        })
    };
    Ok(match format {
        Format::Yaml => {
            let mut documents = stores::yaml::load(text()?, file)?;
            let mut metadata = None;
            for (i, doc) in documents.iter_mut().enumerate() {
                let found = doc.remove("sops");
                if i == 0 {
                    metadata = found;
                }
            }
            Loaded {
                documents,
                metadata,
                binary: false,
            }
        }
        Format::Json | Format::Binary => {
            let mut doc = stores::json::load(text()?, file)?;
            let metadata = doc.remove("sops").filter(|m| !matches!(m, Value::Null));
            Loaded {
                documents: vec![doc],
                metadata,
                binary: format == Format::Binary,
            }
        }
        Format::Dotenv => {
            let (doc, pairs) = stores::dotenv::load(text()?, file)?;
            let metadata = (!pairs.is_empty()).then(|| metadata::unflatten(&pairs));
            Loaded {
                documents: vec![doc],
                metadata,
                binary: false,
            }
        }
        Format::Ini => {
            let (doc, pairs) = stores::ini::load(text()?, file)?;
            let metadata = (!pairs.is_empty()).then(|| metadata::unflatten(&pairs));
            Loaded {
                documents: vec![doc],
                metadata,
                binary: false,
            }
        }
    })
}

/// The sops CLI's version check: semver `Major.Minor.Patch`, except versions starting
/// with `1.`.
fn check_version(version: &str, file: &str) -> Result<(), Error> {
    if version.starts_with("1.") {
        return Ok(());
    }
    let fail = |message: &str| Error::Version {
        file: file.to_string(),
        message: message.to_string(),
    };
    if version.trim().is_empty() {
        return Err(fail("Version string empty"));
    }
    let core = version.trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(fail("No Major.Minor.Patch elements found"));
    }
    Ok(())
}

/// The plaintext of a decrypted file: a document tree, or raw bytes for the binary store.
enum Plain {
    Documents(Vec<Value>),
    Bytes(Zeroizing<Vec<u8>>),
}

fn decrypt_loaded(
    loaded: Loaded,
    keys: &KeySet,
    options: DecryptOptions,
    file: &str,
) -> Result<Plain, Error> {
    let Some(meta_value) = loaded.metadata else {
        return Err(Error::MetadataNotFound {
            file: file.to_string(),
        });
    };
    let meta = Metadata::from_value(&meta_value, file)?;
    if options.check_version {
        check_version(&meta.version, file)?;
    }
    let data_key = keys::recover_data_key(&meta, keys, file)?;
    let rules = meta.rules();
    let mut documents = loaded.documents;
    let (computed, plain_bytes) = if loaded.binary {
        let encrypted = documents
            .first()
            .and_then(|d| d.get("data"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let selected = rules.should_encrypt(&["data".to_string()], &[], None);
        let bytes = if selected {
            cipher::decrypt_raw(&data_key, encrypted, b"data:")
                .map_err(|source| Error::Tree {
                    file: file.to_string(),
                    source,
                })?
                .0
        } else {
            Zeroizing::new(encrypted.as_bytes().to_vec())
        };
        let mut hasher = sha2::Sha512::new();
        use sha2::Digest;
        if rules.mac_only_encrypted {
            hasher.update(sha2::Sha256::digest(b"sops"));
        }
        if selected || !rules.mac_only_encrypted {
            hasher.update(&*bytes);
        }
        (hex::encode_upper(hasher.finalize()), Some(bytes))
    } else {
        let computed =
            walk::decrypt_documents(&mut documents, &rules, &data_key).map_err(|source| {
                Error::Tree {
                    file: file.to_string(),
                    source,
                }
            })?;
        (computed, None)
    };
    verify_mac(&meta, &data_key, computed, options, file)?;
    Ok(match plain_bytes {
        Some(bytes) => Plain::Bytes(bytes),
        None => Plain::Documents(documents),
    })
}

/// Compares the MAC computed over the plaintext with the stored one (constant time),
/// unless `options.ignore_mac`.
fn verify_mac(
    meta: &Metadata,
    data_key: &DataKey,
    computed: String,
    options: DecryptOptions,
    file: &str,
) -> Result<(), Error> {
    if options.ignore_mac {
        return Ok(());
    }
    let lastmodified = time::rfc3339_seconds(&meta.lastmodified).ok_or_else(|| {
        Error::metadata(
            file,
            format!(
                "lastmodified {:?} is not an RFC 3339 time",
                meta.lastmodified
            ),
        )
    })?;
    let stored = walk::decrypt_mac(data_key, &meta.mac, &lastmodified).map_err(|source| {
        Error::MacDecrypt {
            file: file.to_string(),
            source,
        }
    })?;
    let matches: bool = stored.as_bytes().ct_eq(computed.as_bytes()).into();
    if matches {
        Ok(())
    } else {
        Err(Error::MacMismatch {
            file: file.to_string(),
            stored: if stored.is_empty() {
                "no MAC".to_string()
            } else {
                stored
            },
            computed,
        })
    }
}

/// The text of the first top-level `sops:` entry of a YAML file written in block style:
/// from its line up to the next line that starts at column 0 (sops writes it last).
fn yaml_metadata_block(text: &str) -> Option<&str> {
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        match start {
            None if line.starts_with("sops:") => start = Some(offset),
            Some(from) if !line.starts_with([' ', '\t', '\r', '\n']) => {
                return text.get(from..offset);
            }
            _ => {}
        }
        offset += line.len();
    }
    start.and_then(|from| text.get(from..))
}

/// Decrypts a YAML file while loading it, so that the encrypted tree and the plaintext
/// never coexist (peak memory of large files). The metadata is read first from the
/// `sops:` block; the walk then decrypts every root entry as soon as the loader completes
/// it. Returns None whenever anything is unusual or fails: the caller then takes the
/// classic path, which gives the canonical result or error. The metadata the full load
/// finds must equal the one the data key came from.
fn decrypt_yaml_streaming(
    input: &[u8],
    keys: &KeySet,
    options: DecryptOptions,
    file: &str,
) -> Option<Plain> {
    let text = std::str::from_utf8(input).ok()?;
    let block = yaml_metadata_block(text)?;
    let meta_value = stores::yaml::load(block, file)
        .ok()?
        .into_iter()
        .next()?
        .remove("sops")?;
    let meta = Metadata::from_value(&meta_value, file).ok()?;
    if options.check_version {
        check_version(&meta.version, file).ok()?;
    }
    let data_key = keys::recover_data_key(&meta, keys, file).ok()?;
    let rules = meta.rules();
    let mut decryptor = walk::StreamingDecryptor::new(&rules, &data_key, file);
    let mut documents = stores::yaml::load_visiting(text, file, Some(&mut decryptor)).ok()?;
    let mut loaded_meta = None;
    for (i, doc) in documents.iter_mut().enumerate() {
        let found = doc.remove("sops");
        if i == 0 {
            loaded_meta = found;
        }
    }
    if loaded_meta.as_ref() != Some(&meta_value) {
        return None;
    }
    verify_mac(&meta, &data_key, decryptor.finish(), options, file).ok()?;
    Some(Plain::Documents(documents))
}

fn emit_plain(plain: Plain, format: Format, file: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let documents = match plain {
        Plain::Bytes(bytes) => {
            if format == Format::Binary {
                return Ok(bytes);
            }
            vec![Value::Map(vec![MapItem::Entry(
                "data".to_string(),
                Value::Str(String::from_utf8_lossy(&bytes).into_owned()),
            )])]
        }
        Plain::Documents(documents) => documents,
    };
    if format == Format::Yaml {
        return Ok(Zeroizing::new(
            stores::yaml::emit_owned(documents).into_bytes(),
        ));
    }
    let first = documents
        .into_iter()
        .next()
        .unwrap_or(Value::Map(Vec::new()));
    let text = match format {
        Format::Yaml => stores::yaml::emit(std::slice::from_ref(&first)),
        Format::Json => stores::json::emit(&first),
        Format::Dotenv => stores::dotenv::emit(&first, None, file)?,
        Format::Ini => stores::ini::emit(&first, None, file)?,
        Format::Binary => match first.get("data") {
            Some(Value::Str(s)) => s.clone(),
            _ => {
                return Err(Error::Emit {
                    file: file.to_string(),
                    message: "no binary data found in tree".to_string(),
                })
            }
        },
    };
    Ok(Zeroizing::new(text.into_bytes()))
}

/// Decrypts a SOPS file. `file` names the input in errors. The MAC is verified before
/// anything is returned (unless `options.ignore_mac`).
pub fn decrypt(
    input: &[u8],
    input_format: Format,
    output_format: Format,
    keys: &KeySet,
    options: DecryptOptions,
    file: &str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    if input_format == Format::Yaml {
        if let Some(plain) = decrypt_yaml_streaming(input, keys, options, file) {
            return emit_plain(plain, output_format, file);
        }
    }
    let loaded = load(input, input_format, file)?;
    let plain = decrypt_loaded(loaded, keys, options, file)?;
    emit_plain(plain, output_format, file)
}

/// Decrypts a SOPS document tree (for callers that already parsed the file, e.g. Flux's
/// JSON path). The tree's top-level `sops` entry is removed.
pub fn decrypt_tree(
    mut document: Value,
    keys: &KeySet,
    options: DecryptOptions,
    file: &str,
) -> Result<Value, Error> {
    let metadata = document.remove("sops");
    let loaded = Loaded {
        documents: vec![document],
        metadata,
        binary: false,
    };
    match decrypt_loaded(loaded, keys, options, file)? {
        Plain::Documents(mut docs) => Ok(docs.pop().unwrap_or(Value::Map(Vec::new()))),
        Plain::Bytes(_) => Err(Error::Emit {
            file: file.to_string(),
            message: "unexpected binary data".into(),
        }),
    }
}

/// How to encrypt a file.
#[derive(Clone, Debug)]
pub struct EncryptOptions {
    /// Key groups: each a list of recipients. One group = no Shamir splitting.
    pub key_groups: Vec<Vec<Recipient>>,
    /// Shares needed with several groups (0 = all groups).
    pub shamir_threshold: usize,
    /// The selection rule (default `unencrypted_suffix: _unencrypted`).
    pub selection: Option<Selection>,
    pub mac_only_encrypted: bool,
}

/// Encrypts a plaintext file in `format` (the output uses the same store).
pub fn encrypt(
    input: &[u8],
    format: Format,
    options: &EncryptOptions,
    file: &str,
) -> Result<Vec<u8>, Error> {
    let fail = |message: &str| Error::Encrypt {
        file: file.to_string(),
        message: message.to_string(),
    };
    let mut loaded = if format == Format::Binary {
        Loaded {
            documents: vec![Value::Map(vec![MapItem::Entry(
                "data".to_string(),
                Value::Str(String::new()),
            )])],
            metadata: None,
            binary: true,
        }
    } else {
        load(input, format, file)?
    };
    if loaded.metadata.is_some() {
        return Err(fail("File already encrypted"));
    }
    if options.key_groups.iter().all(Vec::is_empty) {
        return Err(fail(
            "Could not generate data key: no master keys were provided",
        ));
    }
    let data_key = DataKey::generate();
    let groups: Vec<&Vec<Recipient>> = options
        .key_groups
        .iter()
        .filter(|g| !g.is_empty())
        .collect();
    let threshold = if options.shamir_threshold == 0 {
        groups.len()
    } else {
        options.shamir_threshold
    };
    if groups.len() > 1 && threshold > groups.len() {
        return Err(fail(
            "the Shamir threshold is larger than the number of key groups",
        ));
    }
    let secrets: Vec<Zeroizing<Vec<u8>>> = if groups.len() == 1 {
        vec![Zeroizing::new(data_key.as_bytes().to_vec())]
    } else {
        keys::shamir::split(data_key.as_bytes(), groups.len(), threshold)
    };
    let now = time::now_utc();
    let mut key_groups = Vec::new();
    for (group, secret) in groups.iter().zip(secrets.iter()) {
        let mut out = metadata::KeyGroup::default();
        for recipient in *group {
            match recipient {
                Recipient::Age(r) => out.age.push(metadata::AgeEntry {
                    recipient: r.clone(),
                    enc: keys::wrap_age(r, secret)?,
                }),
                Recipient::Pgp {
                    fingerprint,
                    armored,
                } => out.pgp.push(metadata::PgpEntry {
                    fingerprint: fingerprint.clone(),
                    created_at: now.clone(),
                    enc: keys::wrap_pgp(armored, secret)?,
                }),
            }
        }
        key_groups.push(out);
    }
    let mut meta = Metadata {
        key_groups,
        shamir_threshold: if groups.len() > 1 { threshold } else { 0 },
        lastmodified: now.clone(),
        mac: String::new(),
        selection: options
            .selection
            .clone()
            .unwrap_or_else(|| Selection::UnencryptedSuffix("_unencrypted".to_string())),
        mac_only_encrypted: options.mac_only_encrypted,
        version: SOPS_VERSION.to_string(),
    };
    let rules = meta.rules();
    let mac = if loaded.binary {
        use sha2::Digest;
        let mut hasher = sha2::Sha512::new();
        if rules.mac_only_encrypted {
            hasher.update(sha2::Sha256::digest(b"sops"));
        }
        hasher.update(input);
        let enc = cipher::encrypt_raw(&data_key, input, "str", b"data:").map_err(|source| {
            Error::EncryptTree {
                file: file.to_string(),
                source,
            }
        })?;
        loaded.documents = vec![Value::Map(vec![MapItem::Entry(
            "data".to_string(),
            Value::Str(enc),
        )])];
        hex::encode_upper(hasher.finalize())
    } else {
        walk::encrypt_documents(&mut loaded.documents, &rules, &data_key).map_err(|source| {
            Error::EncryptTree {
                file: file.to_string(),
                source,
            }
        })?
    };
    meta.mac = walk::encrypt_mac(&data_key, &mac, &now).map_err(|source| Error::EncryptTree {
        file: file.to_string(),
        source,
    })?;
    let meta_value = meta.to_value();
    let text = match format {
        Format::Yaml => {
            for doc in &mut loaded.documents {
                doc.push_entry("sops", meta_value.clone());
            }
            stores::yaml::emit(&loaded.documents)
        }
        Format::Json | Format::Binary => {
            let mut doc = loaded
                .documents
                .into_iter()
                .next()
                .unwrap_or(Value::Map(Vec::new()));
            doc.push_entry("sops", meta_value);
            stores::json::emit(&doc)
        }
        Format::Dotenv => {
            let pairs = metadata::flatten(&meta_value);
            stores::dotenv::emit(&loaded.documents[0], Some(&pairs), file)?
        }
        Format::Ini => {
            let pairs = metadata::flatten(&meta_value);
            stores::ini::emit(&loaded.documents[0], Some(&pairs), file)?
        }
    };
    Ok(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age_keys() -> (KeySet, String) {
        use age::secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate();
        let mut keys = KeySet::new();
        keys.add_age_identities(identity.to_string().expose_secret(), "test")
            .unwrap();
        (keys, identity.to_public().to_string())
    }

    fn encrypt_yaml(plain: &str, recipient: &str, selection: Option<Selection>) -> Vec<u8> {
        let options = EncryptOptions {
            key_groups: vec![vec![Recipient::Age(recipient.to_string())]],
            shamir_threshold: 0,
            selection,
            mac_only_encrypted: false,
        };
        encrypt(plain.as_bytes(), Format::Yaml, &options, "test.yaml").unwrap()
    }

    /// The classic path: whole tree loaded, then walked.
    fn decrypt_classic(input: &[u8], keys: &KeySet) -> Result<Zeroizing<Vec<u8>>, Error> {
        let loaded = load(input, Format::Yaml, "test.yaml")?;
        let plain = decrypt_loaded(loaded, keys, DecryptOptions::default(), "test.yaml")?;
        emit_plain(plain, Format::Yaml, "test.yaml")
    }

    const SAMPLE: &str = "# top comment\nservice-a:\n    user: alice\n    port: 5432\n    # about the list\n    hosts:\n        - one\n        # inside\n        - 2\n    enabled: true\nplain_unencrypted: visible\nlast:\n    a: 1\n    b:\n        - x\n        - \"y\"\n# trailing comment\n";

    #[test]
    fn streaming_decryption_matches_the_classic_path() {
        let (keys, recipient) = age_keys();
        for selection in [
            None,
            Some(Selection::EncryptedRegex("^(user|port)$".to_string())),
            Some(Selection::EncryptedCommentRegex("about".to_string())),
        ] {
            let encrypted = encrypt_yaml(SAMPLE, &recipient, selection);
            let streamed =
                decrypt_yaml_streaming(&encrypted, &keys, DecryptOptions::default(), "test.yaml");
            assert!(streamed.is_some(), "the streaming path was not taken");
            let out = decrypt(
                &encrypted,
                Format::Yaml,
                Format::Yaml,
                &keys,
                DecryptOptions::default(),
                "test.yaml",
            )
            .unwrap();
            assert_eq!(&out[..], &decrypt_classic(&encrypted, &keys).unwrap()[..]);
            assert_eq!(String::from_utf8_lossy(&out), SAMPLE);
        }
    }

    #[test]
    fn streaming_multi_document_matches_the_classic_path() {
        let (keys, recipient) = age_keys();
        let encrypted = encrypt_yaml("a: 1\nb: two\n---\nc: [3]\n# end\n", &recipient, None);
        assert!(
            decrypt_yaml_streaming(&encrypted, &keys, DecryptOptions::default(), "t").is_some()
        );
        let out = decrypt(
            &encrypted,
            Format::Yaml,
            Format::Yaml,
            &keys,
            DecryptOptions::default(),
            "test.yaml",
        )
        .unwrap();
        assert_eq!(&out[..], &decrypt_classic(&encrypted, &keys).unwrap()[..]);
    }

    #[test]
    fn streaming_refuses_a_tampered_file_and_the_error_is_the_classic_one() {
        let (keys, recipient) = age_keys();
        let encrypted = String::from_utf8(encrypt_yaml(SAMPLE, &recipient, None)).unwrap();
        // Drop the encrypted `enabled` entry: every other value still decrypts, the MAC
        // no longer matches.
        let tampered: String = encrypted
            .split_inclusive('\n')
            .filter(|l| !l.trim_start().starts_with("enabled:"))
            .collect();
        assert!(
            decrypt_yaml_streaming(tampered.as_bytes(), &keys, DecryptOptions::default(), "t")
                .is_none()
        );
        let err = decrypt(
            tampered.as_bytes(),
            Format::Yaml,
            Format::Yaml,
            &keys,
            DecryptOptions::default(),
            "test.yaml",
        )
        .unwrap_err();
        assert!(matches!(err, Error::MacMismatch { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            decrypt_classic(tampered.as_bytes(), &keys)
                .unwrap_err()
                .to_string()
        );
    }

    #[test]
    fn metadata_block_is_found_and_a_decoy_falls_back() {
        let text = "a: 1\nsops:\n    version: x\n    mac: y\nafter: 2\n";
        assert_eq!(
            yaml_metadata_block(text),
            Some("sops:\n    version: x\n    mac: y\n")
        );
        assert_eq!(yaml_metadata_block("a: 1\n"), None);
        // A `sops:` line inside a flow mapping is not the root entry: the block found
        // does not equal the loaded metadata, so the classic path decides.
        let (keys, recipient) = age_keys();
        let encrypted = String::from_utf8(encrypt_yaml("k: v\n", &recipient, None)).unwrap();
        let decoy = format!("x: {{\nsops: 1}}\n{encrypted}");
        assert!(
            decrypt_yaml_streaming(decoy.as_bytes(), &keys, DecryptOptions::default(), "t")
                .is_none()
        );
    }
}
