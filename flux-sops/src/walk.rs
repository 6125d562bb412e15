//! Walking a document tree: decrypting or encrypting the selected values while computing
//! the MAC over the plaintext, in document order.

use sha2::{Digest, Sha256, Sha512};

use crate::cipher::{decrypt_raw, decrypt_value, encrypt_raw, plaintext_of, DataKey, ValueError};
use crate::metadata::Rules;
use crate::tree::{MapItem, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Decrypt,
    Encrypt,
}

struct Walker<'a> {
    rules: &'a Rules,
    key: &'a DataKey,
    mode: Mode,
    hasher: Sha512,
    path: Vec<String>,
    comments: Vec<Vec<String>>,
}

fn new_hasher(rules: &Rules) -> Sha512 {
    let mut hasher = Sha512::new();
    if rules.mac_only_encrypted {
        hasher.update(Sha256::digest(b"sops"));
    }
    hasher
}

/// Decrypts every selected value of the documents in place and returns the MAC (upper-case
/// hex SHA-512) computed over the plaintext.
pub fn decrypt_documents(
    docs: &mut [Value],
    rules: &Rules,
    key: &DataKey,
) -> Result<String, ValueError> {
    walk_all(docs, rules, key, Mode::Decrypt)
}

/// Encrypts every selected value in place and returns the MAC over the plaintext.
pub fn encrypt_documents(
    docs: &mut [Value],
    rules: &Rules,
    key: &DataKey,
) -> Result<String, ValueError> {
    walk_all(docs, rules, key, Mode::Encrypt)
}

fn walk_all(
    docs: &mut [Value],
    rules: &Rules,
    key: &DataKey,
    mode: Mode,
) -> Result<String, ValueError> {
    let mut walker = Walker {
        rules,
        key,
        mode,
        hasher: new_hasher(rules),
        path: Vec::new(),
        comments: Vec::new(),
    };
    for doc in docs.iter_mut() {
        walker.value(doc)?;
    }
    Ok(hex::encode_upper(walker.hasher.finalize()))
}

/// Decrypts documents as the YAML loader completes them: each document's root items are
/// walked as soon as they are final, so the encrypted text of a large file is never held
/// as a whole tree next to the plaintext. Same rules, order and MAC as
/// [`decrypt_documents`]; root entries named `sops` (the metadata) are skipped.
pub struct StreamingDecryptor<'a> {
    walker: Walker<'a>,
    open: bool,
    file: &'a str,
}

impl<'a> StreamingDecryptor<'a> {
    pub fn new(rules: &'a Rules, key: &'a DataKey, file: &'a str) -> Self {
        Self {
            walker: Walker {
                rules,
                key,
                mode: Mode::Decrypt,
                hasher: new_hasher(rules),
                path: Vec::new(),
                comments: Vec::new(),
            },
            open: false,
            file,
        }
    }

    /// The MAC over everything walked (upper-case hex SHA-512).
    pub fn finish(self) -> String {
        hex::encode_upper(self.walker.hasher.finalize())
    }
}

impl crate::stores::yaml::RootVisitor for StreamingDecryptor<'_> {
    fn start_document(&mut self) {
        if self.open {
            self.walker.comments.pop();
        }
        self.walker.comments.push(Vec::new());
        self.open = true;
    }

    fn visit(&mut self, items: &mut [MapItem]) -> Result<(), crate::Error> {
        for item in items {
            if matches!(item, MapItem::Entry(key, _) if key == "sops") {
                continue;
            }
            self.walker
                .map_item(item)
                .map_err(|source| crate::Error::Tree {
                    file: self.file.to_string(),
                    source,
                })?;
        }
        Ok(())
    }
}

impl Walker<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = self.path.join(":").into_bytes();
        aad.push(b':');
        aad
    }

    /// One item of a mapping whose comment level is already pushed.
    fn map_item(&mut self, item: &mut MapItem) -> Result<(), ValueError> {
        match item {
            MapItem::Comment(text) => {
                if let Some(new_text) = self.comment(text)? {
                    *text = new_text;
                }
            }
            MapItem::Entry(key, child) => {
                self.path.push(key.clone());
                let result = self.value(child);
                self.path.pop();
                result?;
                if let Some(level) = self.comments.last_mut() {
                    level.clear();
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, value: &mut Value) -> Result<(), ValueError> {
        match value {
            Value::Map(items) => {
                self.comments.push(Vec::new());
                for item in items.iter_mut() {
                    self.map_item(item)?;
                }
                self.comments.pop();
                Ok(())
            }
            Value::Seq(items) => {
                self.comments.push(Vec::new());
                for item in items.iter_mut() {
                    if let Value::Comment(text) = item {
                        if let Some(new_text) = self.comment(text)? {
                            // An encrypted comment inside a list is written as a list item.
                            *item = Value::Str(new_text);
                        }
                        continue;
                    }
                    self.value(item)?;
                    if let Value::Comment(_) = item {
                        // A decrypted `type:comment` list item: a comment again.
                        continue;
                    }
                    if let Some(level) = self.comments.last_mut() {
                        level.clear();
                    }
                }
                self.comments.pop();
                Ok(())
            }
            Value::Null => Ok(()),
            scalar => self.scalar(scalar),
        }
    }

    /// Handles a comment; returns its replacement text when it changes.
    fn comment(&mut self, text: &str) -> Result<Option<String>, ValueError> {
        if let Some(level) = self.comments.last_mut() {
            level.push(text.to_string());
        }
        let encrypt = self
            .rules
            .should_encrypt(&self.path, &self.comments, Some(text));
        if !encrypt {
            return Ok(None);
        }
        let aad = self.aad();
        match self.mode {
            Mode::Encrypt => encrypt_raw(self.key, text.as_bytes(), "comment", &aad).map(Some),
            // Comments written by sops versions that did not encrypt them stay as they are.
            Mode::Decrypt => Ok(decrypt_raw(self.key, text, &aad)
                .ok()
                .map(|(plain, _)| String::from_utf8_lossy(&plain).into_owned())),
        }
    }

    fn scalar(&mut self, value: &mut Value) -> Result<(), ValueError> {
        let is_list_comment = matches!(value, Value::Comment(_));
        let encrypt = if is_list_comment {
            let text = match value {
                Value::Comment(t) => t.clone(),
                _ => String::new(),
            };
            if let Some(level) = self.comments.last_mut() {
                level.push(text.clone());
            }
            self.rules
                .should_encrypt(&self.path, &self.comments, Some(&text))
        } else {
            self.rules.should_encrypt(&self.path, &self.comments, None)
        };
        let aad = self.aad();
        match self.mode {
            Mode::Decrypt => {
                if encrypt {
                    let plain = match value {
                        Value::Str(s) if s.is_empty() => Value::Str(String::new()),
                        Value::Str(s) => decrypt_value(self.key, s, &aad)?,
                        _ => return Err(ValueError::Format),
                    };
                    *value = plain;
                }
                let hashed = encrypt || !self.rules.mac_only_encrypted;
                if hashed && !matches!(value, Value::Comment(_)) {
                    if let Some((bytes, _)) = plaintext_of(value) {
                        self.hasher.update(&bytes);
                    }
                }
            }
            Mode::Encrypt => {
                let hashed = encrypt || !self.rules.mac_only_encrypted;
                let empty_string = matches!(value, Value::Str(s) if s.is_empty());
                let mut encrypted = None;
                if let Some((bytes, datatype)) = plaintext_of(value) {
                    if hashed && datatype != "comment" {
                        self.hasher.update(&bytes);
                    }
                    if encrypt && !empty_string {
                        encrypted = Some(encrypt_raw(self.key, &bytes, datatype, &aad)?);
                    }
                }
                if let Some(enc) = encrypted {
                    *value = Value::Str(enc);
                }
            }
        }
        Ok(())
    }
}

/// Encrypts the MAC hex with `lastmodified` as additional data.
pub fn encrypt_mac(key: &DataKey, mac: &str, lastmodified: &str) -> Result<String, ValueError> {
    encrypt_raw(key, mac.as_bytes(), "str", lastmodified.as_bytes())
}

/// Decrypts the stored MAC (empty when absent).
pub fn decrypt_mac(key: &DataKey, stored: &str, lastmodified: &str) -> Result<String, ValueError> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    let (plain, _) = decrypt_raw(key, stored, lastmodified.as_bytes())?;
    Ok(String::from_utf8_lossy(&plain).into_owned())
}
