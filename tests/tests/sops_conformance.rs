//! Runs every case of `shared/conformance/sops/index.tsv` through flux-sops the way the
//! recorded `sops decrypt` commands ran: decrypted output must be byte-identical to sops',
//! failures must fail with sops' message and exit status and produce no output.

use std::path::{Path, PathBuf};

use flux_sops::{DecryptOptions, Format, KeySet};

struct Command {
    age_key_file: Option<PathBuf>,
    pgp_key_file: Option<PathBuf>,
    input_type: Option<Format>,
    output_type: Option<Format>,
    ignore_mac: bool,
    file: PathBuf,
}

/// Parses a `decrypt[N]:` line of a case.txt.
fn parse_command(case_dir: &Path, line: &str) -> Command {
    let keys_dir = case_dir.join("../keys");
    let mut command = Command {
        age_key_file: None,
        pgp_key_file: None,
        input_type: None,
        output_type: None,
        ignore_mac: false,
        file: PathBuf::new(),
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        if let Some(path) = word.strip_prefix("SOPS_AGE_KEY_FILE=") {
            command.age_key_file = Some(case_dir.join(path));
        } else if let Some(home) = word.strip_prefix("GNUPGHOME=$GNUPGHOME_") {
            let key = match home {
                "PGP1" => "pgp1.asc",
                "UPSTREAM_SOPS" => "upstream-sops-functional-tests.asc",
                "UPSTREAM_FLUX" => "upstream-flux-pgp.asc",
                _ => "",
            };
            if !key.is_empty() {
                command.pgp_key_file = Some(keys_dir.join(key));
            }
        } else if word == "--input-type" {
            i += 1;
            command.input_type = words.get(i).and_then(|w| Format::parse(w));
        } else if word == "--output-type" {
            i += 1;
            command.output_type = words.get(i).and_then(|w| Format::parse(w));
        } else if word == "--ignore-mac" {
            command.ignore_mac = true;
        } else if word == ">" {
            break;
        } else if word.starts_with("encrypted") {
            command.file = case_dir.join(word);
        }
        i += 1;
    }
    command
}

fn field<'a>(case_text: &'a str, name: &str) -> Option<&'a str> {
    case_text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

fn run(command: &Command) -> Result<Vec<u8>, flux_sops::Error> {
    let mut keys = KeySet::new();
    if let Some(path) = &command.age_key_file {
        keys.add_age_key_file(path)?;
    }
    if let Some(path) = &command.pgp_key_file {
        keys.add_pgp_key_file(path)?;
    }
    let input = std::fs::read(&command.file).map_err(|err| flux_sops::Error::Key {
        source_name: command.file.display().to_string(),
        message: err.to_string(),
    })?;
    let input_format = command
        .input_type
        .unwrap_or_else(|| Format::from_path(&command.file));
    let output_format = command.output_type.unwrap_or(input_format);
    let name = command.file.display().to_string();
    let options = DecryptOptions {
        ignore_mac: command.ignore_mac,
        check_version: true,
    };
    flux_sops::decrypt(&input, input_format, output_format, &keys, options, &name)
        .map(|out| out.to_vec())
}

/// Checks one case; returns a reason on failure.
fn check_case(dir: &Path) -> Result<(), String> {
    let case_text = std::fs::read_to_string(dir.join("case.txt")).map_err(|e| e.to_string())?;
    let expect_ok = field(&case_text, "expect") == Some("ok");
    let commands: Vec<&str> = case_text
        .lines()
        .filter(|l| l.starts_with("decrypt["))
        .filter_map(|l| l.split_once(": ").map(|(_, c)| c))
        .collect();
    if commands.is_empty() {
        return Err("case.txt lists no decrypt command".into());
    }
    for line in commands {
        let command = parse_command(dir, line);
        let result = run(&command);
        if expect_ok {
            let expected_name = line
                .rsplit_once("> ")
                .map(|(_, f)| f.trim())
                .ok_or("no expected file")?;
            let expected = std::fs::read(dir.join(expected_name)).map_err(|e| e.to_string())?;
            match result {
                Ok(out) if out == expected => {}
                Ok(out) => {
                    let first_diff = out
                        .iter()
                        .zip(expected.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(out.len().min(expected.len()));
                    let from = first_diff.saturating_sub(80);
                    return Err(format!(
                        "`{line}`: output differs at byte {first_diff}\n--- got:\n{}\n--- expected:\n{}",
                        String::from_utf8_lossy(&out[from.min(out.len())..(first_diff + 80).min(out.len())]),
                        String::from_utf8_lossy(
                            &expected[from.min(expected.len())..(first_diff + 80).min(expected.len())]
                        )
                    ));
                }
                Err(err) => return Err(format!("`{line}`: unexpected error: {err}")),
            }
        } else {
            let exit: u8 = field(&case_text, "exit")
                .and_then(|e| e.parse().ok())
                .unwrap_or(1);
            let stderr = std::fs::read_to_string(dir.join("expected.stderr")).unwrap_or_default();
            let first_line = stderr.lines().next().unwrap_or("");
            // sops quotes the offending value; we redact it.
            let wanted = match (
                first_line.find("Input string "),
                first_line.find(" does not match"),
            ) {
                (Some(a), Some(b)) => {
                    format!("{}<redacted>{}", &first_line[..a + 13], &first_line[b..])
                }
                _ => first_line.to_string(),
            };
            match result {
                Ok(_) => {
                    return Err(format!(
                        "`{line}`: decrypted, but sops fails with: {first_line}"
                    ))
                }
                Err(err) => {
                    let message = err.to_string();
                    if !message.contains(&wanted) {
                        return Err(format!("`{line}`: message {message:?} lacks {wanted:?}"));
                    }
                    if err.exit_code() != exit {
                        return Err(format!(
                            "`{line}`: exit {} instead of {exit}",
                            err.exit_code()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn sops_conformance() {
    let Some(shared) = flux_tests::shared_dir("sops") else {
        return;
    };
    let corpus = shared.join("conformance/sops");
    let rows = flux_tests::read_tsv(&corpus.join("index.tsv")).expect("index.tsv");
    let known = flux_tests::read_known_failures(
        &flux_tests::workspace_root().join("tests/known-failures/sops.tsv"),
    );
    let (mut passed, mut failed) = (0, 0);
    let mut unexpected = Vec::new();
    for row in &rows {
        let id = &row[0];
        match check_case(&corpus.join(id)) {
            Ok(()) => {
                passed += 1;
                if known.contains_key(id) {
                    unexpected.push(format!("{id}: passes but is listed in known-failures"));
                }
            }
            Err(reason) => {
                failed += 1;
                println!("FAIL {id}: {reason}");
                if !known.contains_key(id) {
                    unexpected.push(format!("{id}: {reason}"));
                }
            }
        }
    }
    println!("sops conformance: {passed} passed, {failed} failed");
    assert!(
        unexpected.is_empty(),
        "unexpected results:\n{}",
        unexpected.join("\n")
    );
}
