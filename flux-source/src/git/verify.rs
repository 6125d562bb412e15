//! `spec.verify` for GitRepository: OpenPGP signatures of the checked-out commit and/or of the
//! annotated tag it was reached through, checked against the public keys of a Secret.
//!
//! Pure: it works on raw Git object bytes (as stored in the object database) and key text, so
//! the checks run without a repository or network.

use std::collections::BTreeMap;

use pgp::composed::{Deserializable, SignedPublicKey, StandaloneSignature};
use pgp::types::KeyDetails;

use crate::error::{Error, Result};

/// `spec.verify.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// Verify the checked-out commit (`HEAD`, legacy `head`). Flux's default.
    #[default]
    Head,
    /// Verify the annotated tag object the commit was reached through.
    Tag,
    /// Both the tag and the commit.
    TagAndHead,
}

impl VerifyMode {
    /// Parses the CRD enum (`head`, `HEAD`, `Tag`, `TagAndHEAD`); empty means `HEAD`.
    pub fn parse(mode: &str) -> Result<VerifyMode> {
        match mode {
            "" | "head" | "HEAD" => Ok(VerifyMode::Head),
            "Tag" => Ok(VerifyMode::Tag),
            "TagAndHEAD" => Ok(VerifyMode::TagAndHead),
            other => Err(Error::invalid(
                "verify.mode",
                other,
                "must be one of head, HEAD, Tag, TagAndHEAD",
            )),
        }
    }

    /// The value Flux records in `status.sourceVerificationMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::Head => "HEAD",
            VerifyMode::Tag => "Tag",
            VerifyMode::TagAndHead => "TagAndHEAD",
        }
    }

    fn verify_head(self) -> bool {
        matches!(self, VerifyMode::Head | VerifyMode::TagAndHead)
    }

    fn verify_tag(self) -> bool {
        matches!(self, VerifyMode::Tag | VerifyMode::TagAndHead)
    }
}

/// OpenPGP public keys from a verification Secret.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Reads every Secret value as armored OpenPGP public keys (one or many per value), as Flux
    /// does; `.sshpub` values hold SSH keys, which this implementation does not verify with, so
    /// they are skipped. A value that is not a valid armored key is an error naming its key.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Keyring> {
        let mut keys = Vec::new();
        for (name, value) in data {
            if name.ends_with(".sshpub") {
                continue;
            }
            let text = String::from_utf8_lossy(value);
            let bad = |e: &dyn std::fmt::Display| {
                Error::invalid(
                    "verification secret key",
                    name.clone(),
                    format!("not an armored OpenPGP public key: {e}"),
                )
            };
            let (parsed, _) = SignedPublicKey::from_string_many(&text).map_err(|e| bad(&e))?;
            for key in parsed {
                let key = key.map_err(|e| bad(&e))?;
                // Self-signatures must hold, or a tampered key could claim any subkey.
                key.verify().map_err(|e| bad(&e))?;
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(Error::invalid(
                "verification secret",
                "",
                "no OpenPGP public keys found",
            ));
        }
        Ok(Keyring { keys })
    }

    /// Number of primary keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key was loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies an armored detached `signature` over `data`; returns the signing entity's
    /// primary key ID (16 upper-case hex digits, like Go's `KeyIdString`).
    pub fn verify(&self, signature: &[u8], data: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(signature)
            .map_err(|_| "signature is not ASCII armored text".to_string())?;
        if text.starts_with("-----BEGIN SSH SIGNATURE-----") {
            return Err("unsupported signature type: ssh".into());
        }
        if text.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            return Err("unsupported signature type: x509".into());
        }
        let (sig, _) = StandaloneSignature::from_string(text)
            .map_err(|e| format!("unable to read armored signature: {e}"))?;
        for key in &self.keys {
            let primary_id = hex::encode_upper(key.primary_key.key_id().as_ref());
            if sig.verify(&key.primary_key, data).is_ok() {
                return Ok(primary_id);
            }
            for sub in &key.public_subkeys {
                if sig.verify(&sub.key, data).is_ok() {
                    return Ok(primary_id);
                }
            }
        }
        Err("unable to verify payload with any of the given key rings".into())
    }
}

/// `spec.verify` resolved: the mode and the keys.
#[derive(Debug, Clone, Default)]
pub struct GitVerify {
    pub mode: VerifyMode,
    pub keyring: Keyring,
}

/// The raw objects verification looks at, read from the clone.
#[derive(Debug, Clone, Default)]
pub struct SignedObjects {
    /// The checked-out commit id (hex) and its raw object bytes.
    pub commit: String,
    pub commit_data: Vec<u8>,
    /// The tag the commit was reached through: short name, object id and raw bytes of the
    /// annotated tag object (`None` for lightweight tags).
    pub tag: Option<TagObject>,
}

/// A tag reference and, when annotated, its tag object.
#[derive(Debug, Clone)]
pub struct TagObject {
    pub name: String,
    /// Tag object id (annotated) or the commit id (lightweight).
    pub id: String,
    /// Raw tag object bytes; `None` for a lightweight tag.
    pub data: Option<Vec<u8>>,
}

/// Verifies `objects` as `verify.mode` asks. Returns Flux's `SourceVerified` message
/// (`verified signature of\n\t- commit '<hex>' with key '<ID>'`). Errors follow Flux's texts.
pub fn verify(spec: &GitVerify, objects: &SignedObjects) -> Result<String> {
    let mut message = String::new();
    if spec.mode.verify_tag() {
        let tag = objects.tag.as_ref().ok_or_else(|| {
            Error::Verification(
                "cannot verify tag object's signature if a tag reference is not specified".into(),
            )
        })?;
        let label = format!("{}@{}", tag.name, tag.id);
        let signed = tag
            .data
            .as_deref()
            .and_then(gix::objs::TagRefIter::signature)
            .ok_or_else(|| {
                Error::Verification(format!(
                    "cannot verify signature of tag '{label}' since it is not signed"
                ))
            })?;
        let (signature, data) = signed;
        let key = spec
            .keyring
            .verify(signature.data, &data.to_bstring())
            .map_err(|detail| {
                Error::Verification(format!(
                    "signature verification of tag '{label}' failed: {detail}"
                ))
            })?;
        message = format!("verified signature of\n\t- tag '{label}' with key '{key}'");
    }
    if spec.mode.verify_head() {
        let commit = &objects.commit;
        let failed = |detail: String| {
            Error::Verification(format!(
                "signature verification of commit '{commit}' failed: {detail}"
            ))
        };
        let signed =
            gix::objs::CommitRefIter::signature(&objects.commit_data, gix::hash::Kind::Sha1)
                .map_err(|e| failed(format!("unable to parse commit: {e}")))?
                .ok_or_else(|| {
                    failed("unable to verify Git commit: commit is not signed".into())
                })?;
        let (signature, data) = signed;
        let key = spec
            .keyring
            .verify(&signature, &data.to_bstring())
            .map_err(failed)?;
        if message.is_empty() {
            message.push_str("verified signature of");
        }
        message = format!("{message}\n\t- commit '{commit}' with key '{key}'");
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_like_the_crd_enum() {
        assert_eq!(VerifyMode::parse("head").unwrap(), VerifyMode::Head);
        assert_eq!(VerifyMode::parse("HEAD").unwrap(), VerifyMode::Head);
        assert_eq!(VerifyMode::parse("").unwrap(), VerifyMode::Head);
        assert_eq!(VerifyMode::parse("Tag").unwrap(), VerifyMode::Tag);
        assert_eq!(
            VerifyMode::parse("TagAndHEAD").unwrap(),
            VerifyMode::TagAndHead
        );
        assert!(VerifyMode::parse("tag").is_err());
        assert_eq!(VerifyMode::TagAndHead.as_str(), "TagAndHEAD");
    }

    #[test]
    fn bad_key_text_names_the_secret_key() {
        let mut data = BTreeMap::new();
        data.insert("author.asc".to_string(), b"not a key".to_vec());
        let err = Keyring::from_secret_data(&data).unwrap_err().to_string();
        assert!(err.contains("author.asc"), "{err}");
        let empty = Keyring::from_secret_data(&BTreeMap::new()).unwrap_err();
        assert!(empty.to_string().contains("no OpenPGP public keys"));
    }

    #[test]
    fn tag_mode_without_tag_and_unsigned_commit_are_errors() {
        let spec = GitVerify {
            mode: VerifyMode::Tag,
            keyring: Keyring::default(),
        };
        let objects = SignedObjects {
            commit: "c".repeat(40),
            commit_data: b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 0 +0000\ncommitter a <a@b> 0 +0000\n\nmsg\n".to_vec(),
            tag: None,
        };
        let err = verify(&spec, &objects).unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot verify tag object's signature if a tag reference is not specified"
        );
        let head = GitVerify {
            mode: VerifyMode::Head,
            keyring: Keyring::default(),
        };
        let err = verify(&head, &objects).unwrap_err().to_string();
        assert!(err.contains("is not signed"), "{err}");
        let lightweight = SignedObjects {
            tag: Some(TagObject {
                name: "v1".into(),
                id: "c".repeat(40),
                data: None,
            }),
            ..objects
        };
        let err = verify(&spec, &lightweight).unwrap_err().to_string();
        assert!(err.contains("since it is not signed"), "{err}");
    }
}
