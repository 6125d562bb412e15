//! Minimal decryptor used to measure flux-sops against the sops binary:
//! `decrypt AGE_KEY_FILE FILE` writes the plaintext to stdout.

use std::io::Write;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(key_file), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: decrypt AGE_KEY_FILE FILE".into());
    };
    let mut keys = flux_sops::KeySet::new();
    keys.add_age_key_file(Path::new(key_file))?;
    let input = std::fs::read(file)?;
    let format = flux_sops::Format::from_path(Path::new(file));
    let out = flux_sops::decrypt(
        &input,
        format,
        format,
        &keys,
        flux_sops::DecryptOptions::default(),
        file,
    )?;
    std::io::stdout().lock().write_all(&out)?;
    Ok(())
}
