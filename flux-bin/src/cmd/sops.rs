//! `flux-rs sops decrypt|encrypt FILE`: the sops CLI's two main commands over flux-sops.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use flux_sops::config::{Config, RuleRecipient};
use flux_sops::{DecryptOptions, EncryptOptions, Format, KeySet, Recipient, Selection};

/// `sops` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SopsCommand {
    /// Decrypt a SOPS file to stdout (or in place).
    Decrypt(Box<DecryptArgs>),
    /// Encrypt a file with the keys of a `.sops.yaml` creation rule or the given recipients.
    Encrypt(Box<EncryptArgs>),
}

/// Flags shared by both commands.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The file to read.
    pub file: PathBuf,
    /// Write the result back to FILE instead of stdout.
    #[arg(short = 'i', long)]
    pub in_place: bool,
    /// Input format: yaml, json, dotenv, ini or binary (default: from the extension).
    #[arg(long)]
    pub input_type: Option<String>,
    /// Output format (default: the input format).
    #[arg(long)]
    pub output_type: Option<String>,
    /// An age identity file (repeatable); SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and the default
    /// keys file are read too.
    #[arg(long = "age-key-file", value_name = "FILE")]
    pub age_key_files: Vec<PathBuf>,
    /// An armored OpenPGP key file (repeatable): secret keys to decrypt, public or secret
    /// keys to encrypt to.
    #[arg(long = "pgp-key-file", value_name = "FILE")]
    pub pgp_key_files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Do not verify the MAC.
    #[arg(long)]
    pub ignore_mac: bool,
}

#[derive(Debug, clap::Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Comma-separated age recipients (overrides .sops.yaml).
    #[arg(long)]
    pub age: Option<String>,
    /// Comma-separated PGP fingerprints (keys come from --pgp-key-file).
    #[arg(long)]
    pub pgp: Option<String>,
    /// The config file (default: .sops.yaml in the current folder or a parent).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub encrypted_regex: Option<String>,
    #[arg(long)]
    pub unencrypted_regex: Option<String>,
    #[arg(long)]
    pub encrypted_suffix: Option<String>,
    #[arg(long)]
    pub unencrypted_suffix: Option<String>,
    /// Compute the MAC only over encrypted values.
    #[arg(long)]
    pub mac_only_encrypted: bool,
    /// Shares needed with several key groups.
    #[arg(long = "shamir-secret-sharing-threshold")]
    pub shamir_threshold: Option<usize>,
}

fn formats(common: &CommonArgs) -> anyhow::Result<(Format, Format)> {
    let parse = |name: &str| {
        Format::parse(name)
            .with_context(|| format!("unknown format {name:?} (yaml, json, dotenv, ini, binary)"))
    };
    let input = match &common.input_type {
        Some(name) => parse(name)?,
        None => Format::from_path(&common.file),
    };
    let output = match &common.output_type {
        Some(name) => parse(name)?,
        None => match &common.input_type {
            Some(_) => input,
            None => input,
        },
    };
    Ok((input, output))
}

fn write_output(common: &CommonArgs, bytes: &[u8]) -> anyhow::Result<()> {
    if common.in_place {
        std::fs::write(&common.file, bytes)
            .with_context(|| format!("cannot write {}", common.file.display()))
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")
    }
}

/// Runs a `sops` subcommand; errors of the library map to sops' exit codes.
pub fn run(command: SopsCommand) -> anyhow::Result<ExitCode> {
    let result = match command {
        SopsCommand::Decrypt(args) => decrypt(&args),
        SopsCommand::Encrypt(args) => encrypt(&args),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            let code = err
                .downcast_ref::<flux_sops::Error>()
                .map_or(1, flux_sops::Error::exit_code);
            eprintln!("{err:#}");
            Ok(ExitCode::from(code))
        }
    }
}

fn decrypt(args: &DecryptArgs) -> anyhow::Result<()> {
    let common = &args.common;
    let (input_format, output_format) = formats(common)?;
    let mut keys = KeySet::from_environment()?;
    for path in &common.age_key_files {
        keys.add_age_key_file(path)?;
    }
    for path in &common.pgp_key_files {
        keys.add_pgp_key_file(path)?;
    }
    let input = std::fs::read(&common.file)
        .with_context(|| format!("cannot read {}", common.file.display()))?;
    let options = DecryptOptions {
        ignore_mac: args.ignore_mac,
        check_version: true,
    };
    let name = common.file.display().to_string();
    let plain = flux_sops::decrypt(&input, input_format, output_format, &keys, options, &name)?;
    write_output(common, &plain)
}

fn split_list(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Resolves a PGP fingerprint to one of the given key files.
fn pgp_recipient(fingerprint: &str, key_files: &[(String, String)]) -> anyhow::Result<Recipient> {
    let wanted = fingerprint.replace(' ', "").to_ascii_uppercase();
    key_files
        .iter()
        .find(|(fp, _)| fp.ends_with(&wanted))
        .map(|(fp, armored)| Recipient::Pgp {
            fingerprint: fp.clone(),
            armored: armored.clone(),
        })
        .with_context(|| format!("no --pgp-key-file holds the PGP key {wanted}"))
}

fn encrypt(args: &EncryptArgs) -> anyhow::Result<()> {
    let common = &args.common;
    let (input_format, _) = formats(common)?;
    let mut key_files = Vec::new();
    for path in &common.pgp_key_files {
        let armored = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        key_files.push((flux_sops::keys::pgp_fingerprint(&armored)?, armored));
    }
    let mut options = EncryptOptions {
        key_groups: Vec::new(),
        shamir_threshold: args.shamir_threshold.unwrap_or(0),
        selection: None,
        mac_only_encrypted: args.mac_only_encrypted,
    };
    if args.age.is_some() || args.pgp.is_some() {
        let mut group: Vec<Recipient> = args
            .age
            .iter()
            .flat_map(|a| split_list(a))
            .map(Recipient::Age)
            .collect();
        for fp in args.pgp.iter().flat_map(|p| split_list(p)) {
            group.push(pgp_recipient(&fp, &key_files)?);
        }
        options.key_groups.push(group);
    } else {
        let config_path = match &args.config {
            Some(path) => Some(path.clone()),
            None => Config::find(&std::env::current_dir()?),
        };
        let config_path =
            config_path.context("no recipients given (--age/--pgp) and no .sops.yaml found")?;
        let config = Config::load(&config_path)?;
        let rule = config.rule_for(&common.file)?;
        for group in &rule.key_groups {
            let mut recipients = Vec::new();
            for recipient in group {
                recipients.push(match recipient {
                    RuleRecipient::Age(r) => Recipient::Age(r.clone()),
                    RuleRecipient::Pgp(fp) => pgp_recipient(fp, &key_files)?,
                });
            }
            options.key_groups.push(recipients);
        }
        options.selection.clone_from(&rule.selection);
        options.mac_only_encrypted |= rule.mac_only_encrypted;
        if args.shamir_threshold.is_none() {
            options.shamir_threshold = rule.shamir_threshold;
        }
    }
    let flags = [
        args.encrypted_regex.clone().map(Selection::EncryptedRegex),
        args.unencrypted_regex
            .clone()
            .map(Selection::UnencryptedRegex),
        args.encrypted_suffix
            .clone()
            .map(Selection::EncryptedSuffix),
        args.unencrypted_suffix
            .clone()
            .map(Selection::UnencryptedSuffix),
    ];
    let mut chosen: Vec<Selection> = flags.into_iter().flatten().collect();
    if chosen.len() > 1 {
        anyhow::bail!("Cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex");
    }
    if let Some(selection) = chosen.pop() {
        options.selection = Some(selection);
    }
    let input = std::fs::read(&common.file)
        .with_context(|| format!("cannot read {}", common.file.display()))?;
    let name = common.file.display().to_string();
    let encrypted = flux_sops::encrypt(&input, input_format, &options, &name)?;
    write_output(common, &encrypted)
}

/// Used by tests: the format sops would pick for a path.
pub fn format_of(path: &Path) -> Format {
    Format::from_path(path)
}
