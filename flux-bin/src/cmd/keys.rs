//! SOPS keys for commands that decrypt, through flux-sops.

use std::path::PathBuf;

use anyhow::Context;
use flux_sops::KeySet;
use serde_json::Value;

use crate::render::Decrypt;

/// Builds the decryptor from `--age-key-file`/`--pgp-key-file` flags plus the keys sops
/// itself would find (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, the default age keys file).
pub fn decryptor(
    age_key_files: &[PathBuf],
    pgp_key_files: &[PathBuf],
) -> anyhow::Result<Box<dyn Decrypt>> {
    let mut keys = KeySet::from_environment().context("reading SOPS keys from the environment")?;
    for file in age_key_files {
        keys.add_age_key_file(file)
            .with_context(|| format!("--age-key-file {}", file.display()))?;
    }
    for file in pgp_key_files {
        keys.add_pgp_key_file(file)
            .with_context(|| format!("--pgp-key-file {}", file.display()))?;
    }
    Ok(Box::new(SopsDecrypt { keys }))
}

struct SopsDecrypt {
    keys: KeySet,
}

impl Decrypt for SopsDecrypt {
    fn decrypt(&self, object: &mut Value) -> Result<bool, String> {
        match flux_sops::flux::decrypt_resource(object, &self.keys) {
            Ok(Some(decrypted)) => {
                *object = decrypted;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(err) if self.keys.is_empty() => Err(format!(
                "{err} (no keys were given: pass --age-key-file or --pgp-key-file, or set SOPS_AGE_KEY_FILE)"
            )),
            Err(err) => Err(err.to_string()),
        }
    }

    fn decrypt_file(&self, name: &str, data: &[u8]) -> Result<Option<Vec<u8>>, String> {
        flux_sops::flux::decrypt_file(name, data, &self.keys).map_err(|err| {
            if self.keys.is_empty() {
                format!("{err} (no keys were given: pass --age-key-file or --pgp-key-file, or set SOPS_AGE_KEY_FILE)")
            } else {
                err.to_string()
            }
        })
    }
}
