//! Shell completion scripts.

use std::io::Write;

/// Writes the completion script for `shell` to `out`.
pub fn write(shell: clap_complete::Shell, command: &mut clap::Command, out: &mut dyn Write) {
    let name = command.get_name().to_string();
    clap_complete::generate(shell, command, name, out);
}
