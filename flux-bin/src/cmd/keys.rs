//! SOPS key loading for commands that decrypt (wired to flux-sops).

use std::path::PathBuf;

use serde_json::Value;

use crate::render::Decrypt;

/// Builds the decryptor from key files and the SOPS environment variables.
pub fn decryptor(
    _age_key_files: &[PathBuf],
    _pgp_key_files: &[PathBuf],
) -> anyhow::Result<Box<dyn Decrypt>> {
    Ok(Box::new(Unavailable))
}

struct Unavailable;

impl Decrypt for Unavailable {
    fn decrypt(&self, object: &mut Value) -> Result<bool, String> {
        if object.get("sops").is_some() {
            Err("SOPS decryption is not wired in yet".to_string())
        } else {
            Ok(false)
        }
    }
}
