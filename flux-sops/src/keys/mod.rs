//! Master keys: age identities, PGP secret keys, and recovering a file's data key from
//! its key groups.

mod openpgp;
pub mod shamir;

use std::fmt::Write as _;
use std::io::Read;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::metadata::{KeyGroup, Metadata};
use crate::Error;

/// The keys available for decryption. Identities are zeroized on drop (the age and PGP
/// crates clear their secret material); Debug shows only counts.
#[derive(Default, Clone)]
pub struct KeySet {
    age: Vec<age::x25519::Identity>,
    pgp: Vec<pgp::composed::SignedSecretKey>,
    /// Where keys were looked for, for error messages.
    searched: Vec<String>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("age_identities", &self.age.len())
            .field("pgp_keys", &self.pgp.len())
            .finish()
    }
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.pgp.is_empty()
    }

    pub fn age_count(&self) -> usize {
        self.age.len()
    }

    pub fn pgp_count(&self) -> usize {
        self.pgp.len()
    }

    /// Adds every `AGE-SECRET-KEY-1…` line of an age identity file (`#` and blank lines
    /// skipped). `source` names the file in errors.
    pub fn add_age_identities(&mut self, text: &str, source: &str) -> Result<usize, Error> {
        let mut added = 0;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|_| Error::Key {
                source_name: source.to_string(),
                message: format!("line {} is not a valid age identity", number + 1),
            })?;
            self.age.push(identity);
            added += 1;
        }
        self.searched.push(source.to_string());
        Ok(added)
    }

    /// Adds an ASCII-armored OpenPGP secret key (several keys in one file are accepted).
    pub fn add_pgp_armored(&mut self, text: &str, source: &str) -> Result<usize, Error> {
        use pgp::composed::Deserializable;
        let (keys, _) =
            pgp::composed::SignedSecretKey::from_armor_many(text.as_bytes()).map_err(|err| {
                Error::Key {
                    source_name: source.to_string(),
                    message: format!("not an armored OpenPGP secret key: {err}"),
                }
            })?;
        let mut added = 0;
        for key in keys {
            let key = key.map_err(|err| Error::Key {
                source_name: source.to_string(),
                message: format!("not an armored OpenPGP secret key: {err}"),
            })?;
            self.pgp.push(key);
            added += 1;
        }
        self.searched.push(source.to_string());
        Ok(added)
    }

    /// Reads an age identity file.
    pub fn add_age_key_file(&mut self, path: &std::path::Path) -> Result<usize, Error> {
        let text = read_secret_file(path)?;
        self.add_age_identities(&text, &path.display().to_string())
    }

    /// Reads an armored PGP secret key file.
    pub fn add_pgp_key_file(&mut self, path: &std::path::Path) -> Result<usize, Error> {
        let text = read_secret_file(path)?;
        self.add_pgp_armored(&text, &path.display().to_string())
    }

    /// Keys from the places sops looks at: `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE` and the
    /// default age keys file (`$XDG_CONFIG_HOME/sops/age/keys.txt`, else
    /// `$HOME/.config/sops/age/keys.txt`). Missing files are skipped.
    pub fn from_environment() -> Result<KeySet, Error> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`KeySet::from_environment`] with an explicit variable lookup (for tests).
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<KeySet, Error> {
        let mut keys = KeySet::new();
        if let Some(text) = var("SOPS_AGE_KEY").map(Zeroizing::new) {
            keys.add_age_identities(&text, "SOPS_AGE_KEY")?;
        }
        if let Some(path) = var("SOPS_AGE_KEY_FILE").filter(|p| !p.is_empty()) {
            keys.add_age_key_file(std::path::Path::new(&path))?;
        }
        let default_file = var("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| var("HOME").map(|h| std::path::Path::new(&h).join(".config")))
            .map(|dir| dir.join("sops").join("age").join("keys.txt"));
        if let Some(file) = default_file {
            if file.is_file() {
                keys.add_age_key_file(&file)?;
            } else {
                keys.searched.push(file.display().to_string());
            }
        }
        Ok(keys)
    }

    /// Keys from a Flux decryption Secret's data: entries ending in `.agekey` are age
    /// identity files, entries ending in `.asc` armored PGP keys; others are ignored.
    pub fn add_flux_secret_entries<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), Error> {
        for (name, bytes) in entries {
            let text = Zeroizing::new(String::from_utf8_lossy(bytes).into_owned());
            if name.ends_with(".agekey") {
                self.add_age_identities(&text, name)?;
            } else if std::path::Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("asc"))
            {
                self.add_pgp_armored(&text, name)?;
            }
        }
        Ok(())
    }

    fn try_age(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        if self.age.is_empty() {
            return Err(format!(
                "failed to load age identities. Did not find keys in locations {}",
                self.searched_list()
            ));
        }
        let reader = age::armor::ArmoredReader::new(enc.as_bytes());
        let decryptor = age::Decryptor::new(reader)
            .map_err(|err| format!("failed to parse the age-encrypted data key: {err}"))?;
        let identities = self.age.iter().map(|i| i as &dyn age::Identity);
        let mut stream = decryptor.decrypt(identities).map_err(|err| {
            format!(
                "failed to create reader for decrypting sops data key with age: {err}. Did not find keys in locations {}",
                self.searched_list()
            )
        })?;
        let mut out = Zeroizing::new(Vec::new());
        stream
            .read_to_end(&mut out)
            .map_err(|err| format!("failed to read the age-decrypted data key: {err}"))?;
        Ok(out)
    }

    fn searched_list(&self) -> String {
        if self.searched.is_empty() {
            "(none)".to_string()
        } else {
            self.searched
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    fn try_pgp(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        if self.pgp.is_empty() {
            return Err("no OpenPGP secret key was given (use --pgp-key-file)".to_string());
        }
        let mut last_error = String::from("no matching OpenPGP secret key");
        for key in &self.pgp {
            match decrypt_pgp(enc, key) {
                Ok(data) => return Ok(data),
                Err(err) => last_error = err,
            }
        }
        Err(last_error)
    }
}

/// Decodes an ASCII-armored OpenPGP block (armor headers and checksum skipped).
fn dearmor(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let mut lines = text.lines().map(str::trim_end);
    lines.find(|l| l.starts_with("-----BEGIN PGP"))?;
    let mut body = String::new();
    let mut in_headers = true;
    for line in lines {
        if line.starts_with("-----END PGP") {
            break;
        }
        if in_headers {
            if line.is_empty() {
                in_headers = false;
                continue;
            }
            if line.contains(": ") {
                continue;
            }
            in_headers = false;
        }
        if line.starts_with('=') {
            break;
        }
        body.push_str(line.trim());
    }
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Decrypts an armored PGP data key with rpgp; messages GnuPG 1.x framed with short
/// partial-body chunks (which rpgp rejects) go through [`openpgp::decrypt_legacy_message`].
fn decrypt_pgp(
    enc: &str,
    key: &pgp::composed::SignedSecretKey,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let first_error = match decrypt_pgp_armored(enc, key) {
        Ok(data) => return Ok(data),
        Err(err) => err,
    };
    let Some(binary) = dearmor(enc) else {
        return Err(first_error);
    };
    openpgp::decrypt_legacy_message(&binary, key)
        .map_err(|err| format!("{first_error}; as a GnuPG 1.x message: {err}"))
}

fn decrypt_pgp_armored(
    enc: &str,
    key: &pgp::composed::SignedSecretKey,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let (message, _) = pgp::composed::Message::from_string(enc)
        .map_err(|err| format!("failed to parse the PGP message: {err}"))?;
    let message = message
        .decrypt(&pgp::types::Password::empty(), key)
        .map_err(|err| format!("failed to decrypt the PGP message: {err}"))?;
    read_plain_message(message)
}

/// Reads the data of a decrypted message (decompressing it first if needed).
fn read_plain_message(
    mut message: pgp::composed::Message<'_>,
) -> Result<Zeroizing<Vec<u8>>, String> {
    if message.is_compressed() {
        message = message
            .decompress()
            .map_err(|err| format!("failed to decompress the PGP message: {err}"))?;
    }
    let data = message
        .as_data_vec()
        .map_err(|err| format!("failed to read the PGP message: {err}"))?;
    Ok(Zeroizing::new(data))
}

fn read_secret_file(path: &std::path::Path) -> Result<Zeroizing<String>, Error> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|err| Error::Key {
            source_name: path.display().to_string(),
            message: format!("cannot read key file: {err}"),
        })
}

/// Outcome of one key group.
struct GroupOutcome {
    secret: Option<Zeroizing<Vec<u8>>>,
    failures: Vec<(String, String)>,
}

fn try_group(group: &KeyGroup, keys: &KeySet) -> GroupOutcome {
    let mut failures = Vec::new();
    for entry in &group.age {
        match keys.try_age(&entry.enc) {
            Ok(secret) => {
                return GroupOutcome {
                    secret: Some(secret),
                    failures,
                }
            }
            Err(err) => failures.push((entry.recipient.clone(), err)),
        }
    }
    for entry in &group.pgp {
        match keys.try_pgp(&entry.enc) {
            Ok(secret) => {
                return GroupOutcome {
                    secret: Some(secret),
                    failures,
                }
            }
            Err(err) => failures.push((entry.fingerprint.clone(), err)),
        }
    }
    for entry in &group.other {
        failures.push((
            format!("{} {}", entry.kind, entry.name),
            format!(
                "{} master keys are not supported yet (recipient {})",
                entry.kind, entry.name
            ),
        ));
    }
    GroupOutcome {
        secret: None,
        failures,
    }
}

/// Recovers the data key of a file from its key groups.
pub fn recover_data_key(metadata: &Metadata, keys: &KeySet, file: &str) -> Result<DataKey, Error> {
    let outcomes: Vec<GroupOutcome> = metadata
        .key_groups
        .iter()
        .map(|g| try_group(g, keys))
        .collect();
    let mut report =
        String::from("Failed to get the data key required to decrypt the SOPS file.\n");
    for (i, outcome) in outcomes.iter().enumerate() {
        let _ = write!(
            report,
            "\nGroup {i}: {}\n",
            if outcome.secret.is_some() {
                "SUCCESS"
            } else {
                "FAILED"
            }
        );
        if outcome.secret.is_none() {
            for (name, err) in &outcome.failures {
                let _ = writeln!(report, "  {name}: FAILED\n    - | {err}");
            }
        }
    }
    let failed = |report: String| Error::DataKey {
        file: file.to_string(),
        report,
    };
    if outcomes.len() == 1 {
        if let Some(secret) = outcomes.into_iter().next().and_then(|o| o.secret) {
            return DataKey::from_slice(&secret)
                .ok_or_else(|| failed("the recovered data key is not 32 bytes long".to_string()));
        }
        report.push_str(
            "\nRecovery failed because no master key was able to decrypt the file. In\norder for SOPS to recover the file, at least one key has to be successful,\nbut none were.",
        );
        return Err(failed(report));
    }
    let threshold = if metadata.shamir_threshold == 0 {
        outcomes.len()
    } else {
        metadata.shamir_threshold
    };
    let shares: Vec<Zeroizing<Vec<u8>>> = outcomes.into_iter().filter_map(|o| o.secret).collect();
    if shares.len() < threshold {
        let _ = write!(
            report,
            "\nRecovery failed because the file was encrypted with a Shamir threshold of\n{threshold}, but only {} part(s) were successfully recovered, one for each successful\nkey group. In order for SOPS to recover the file, at least {threshold} groups have to\nbe successful. In order for a group to be successful, decryption has to\nsucceed with any of the keys in that key group.",
            shares.len()
        );
        return Err(failed(report));
    }
    let secret = shamir::combine(&shares)
        .ok_or_else(|| failed("the key group shares could not be combined".to_string()))?;
    DataKey::from_slice(&secret)
        .ok_or_else(|| failed("the recovered data key is not 32 bytes long".to_string()))
}

/// A recipient to encrypt a data key (or share) to.
#[derive(Clone, Debug)]
pub enum Recipient {
    Age(String),
    /// An armored OpenPGP public key, with its fingerprint.
    Pgp {
        fingerprint: String,
        armored: String,
    },
}

/// Wraps `secret` for one age recipient: an armored age file, as sops writes it.
pub fn wrap_age(recipient: &str, secret: &[u8]) -> Result<String, Error> {
    use std::io::Write;
    let bad = |message: String| Error::Key {
        source_name: recipient.to_string(),
        message,
    };
    let parsed = age::x25519::Recipient::from_str(recipient)
        .map_err(|err| bad(format!("invalid age recipient: {err}")))?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&parsed as &dyn age::Recipient))
            .map_err(|err| bad(format!("age encryption failed: {err}")))?;
    let mut out = Vec::new();
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|err| bad(format!("age encryption failed: {err}")))?;
    let mut writer = encryptor
        .wrap_output(armored)
        .map_err(|err| bad(format!("age encryption failed: {err}")))?;
    writer
        .write_all(secret)
        .and_then(|()| writer.finish())
        .and_then(|armored| armored.finish())
        .map_err(|err| bad(format!("age encryption failed: {err}")))?;
    let mut text =
        String::from_utf8(out).map_err(|_| bad("age produced non-UTF-8 armor".into()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Parses an armored OpenPGP public (or secret) key and returns its fingerprint.
pub fn pgp_fingerprint(armored: &str) -> Result<String, Error> {
    let key = parse_public_key(armored)?;
    use pgp::types::KeyDetails;
    Ok(hex::encode_upper(key.fingerprint().as_bytes()))
}

fn parse_public_key(armored: &str) -> Result<pgp::composed::SignedPublicKey, Error> {
    use pgp::composed::Deserializable;
    if let Ok((key, _)) = pgp::composed::SignedPublicKey::from_string(armored) {
        return Ok(key);
    }
    let (secret, _) =
        pgp::composed::SignedSecretKey::from_string(armored).map_err(|err| Error::Key {
            source_name: "pgp key".to_string(),
            message: format!("not an armored OpenPGP key: {err}"),
        })?;
    Ok(secret.signed_public_key())
}

/// Wraps `secret` for an OpenPGP public key (its first encryption subkey, else the
/// primary key): an armored message without a final newline, as sops stores it.
pub fn wrap_pgp(armored_key: &str, secret: &[u8]) -> Result<String, Error> {
    use pgp::types::{KeyDetails, PublicKeyTrait};
    let key = parse_public_key(armored_key)?;
    let bad = |message: String| Error::Key {
        source_name: hex::encode_upper(key.fingerprint().as_bytes()),
        message,
    };
    let mut rng = rand::rngs::OsRng;
    let mut builder = pgp::composed::MessageBuilder::from_bytes("", secret.to_vec())
        .seipd_v1(&mut rng, pgp::crypto::sym::SymmetricKeyAlgorithm::AES256);
    let subkey = key.public_subkeys.iter().find(|k| k.is_encryption_key());
    match subkey {
        Some(sub) => builder.encrypt_to_key(&mut rng, sub),
        None => builder.encrypt_to_key(&mut rng, &key),
    }
    .map_err(|err| bad(format!("PGP encryption failed: {err}")))?;
    let text = builder
        .to_armored_string(rng, pgp::composed::ArmorOptions::default())
        .map_err(|err| bad(format!("PGP encryption failed: {err}")))?;
    Ok(text.trim().to_string())
}
