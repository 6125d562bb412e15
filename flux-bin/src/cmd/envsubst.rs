//! `flux-rs envsubst`: substitute `${var}` expressions from the environment, as `flux envsubst`.

use std::io::{Read, Write};

use anyhow::Context;

/// Arguments of `flux-rs envsubst`.
#[derive(Debug, clap::Args)]
pub struct EnvsubstArgs {
    /// Fail when a referenced variable is not set and the expression has no default.
    #[arg(long)]
    pub strict: bool,
}

/// Reads stdin, substitutes variables from the process environment and writes stdout.
pub fn run(args: &EnvsubstArgs) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading standard input")?;
    let output = substitute(&input, args.strict, &|name| std::env::var(name).ok())?;
    std::io::stdout().write_all(output.as_bytes())?;
    Ok(())
}

/// The pure part of the command, separated for tests.
pub fn substitute(
    input: &str,
    strict: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    flux_kustomize::envsubst::envsubst(input, strict, lookup).context("substituting variables")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_names_the_variable() {
        let err = substitute("a: ${NOPE}", true, &|_| None).unwrap_err();
        assert!(format!("{err:#}").contains("\"NOPE\""), "{err:#}");
        assert_eq!(substitute("a: ${X:=1}", true, &|_| None).unwrap(), "a: 1");
    }
}
