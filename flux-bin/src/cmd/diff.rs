//! `flux-rs diff`: compare a render of now with a previous render or another git revision.
//!
//! Exit codes follow `flux diff`: 0 when equal, 1 on differences, 2 on errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::build::{
    parse_local_sources, render_kustomization_args, render_kustomization_object,
    BuildKustomizationArgs,
};
use crate::render::diff::{compare, format, Snapshot};
use crate::render::{self, Outcome, RenderOptions, Report, SOPS_MASK};

/// What to compare.
#[derive(Debug, clap::Subcommand)]
pub enum DiffCommand {
    /// Compare the render of a cluster directory with a previous render or a git revision.
    ///
    /// The cluster is rendered as `build cluster` does, then compared per Kustomization and
    /// HelmRelease with either a directory written by `build cluster --output-dir`
    /// (--against-dir) or the render of the same path at another revision of the same git
    /// repository (--against-ref, e.g. origin/main). Objects are reported as created,
    /// deleted or drifted (with a unified diff of their YAML); Secret values are masked.
    /// Exit code 0: no differences, 1: differences, 2: error.
    Cluster(DiffClusterArgs),
    /// Compare the build of one Flux Kustomization with the cluster, a previous render or a git revision.
    ///
    /// Builds like `build kustomization` (the object from --kustomization-file, or from the
    /// cluster), then compares with the same build at --against-ref, with the unit of the
    /// same name in a `build cluster --output-dir` directory (--against-dir), or, with
    /// neither, with the live objects: a server-side dry-run apply of each existing object
    /// against its live state, as flux diff does. Exit codes as `diff cluster`.
    Kustomization(DiffKustomizationArgs),
}

/// What to compare against (at most one).
#[derive(Debug, clap::Args)]
#[group(required = false, multiple = false)]
pub struct Against {
    /// A directory written by `flux-rs build cluster --output-dir`.
    #[arg(long, value_name = "DIR")]
    pub against_dir: Option<PathBuf>,
    /// A git revision of the repository holding PATH (branch, tag, commit, `HEAD~1`).
    #[arg(long, value_name = "GITREF")]
    pub against_ref: Option<String>,
}

/// Arguments of `flux-rs diff cluster`.
#[derive(Debug, clap::Args)]
pub struct DiffClusterArgs {
    /// The cluster directory, e.g. clusters/staging.
    pub path: PathBuf,
    #[command(flatten)]
    pub against: Against,
    /// An age identities file for SOPS decryption (repeatable).
    #[arg(long = "age-key-file", value_name = "FILE")]
    pub age_key_files: Vec<PathBuf>,
    /// An armored PGP secret key for SOPS decryption (repeatable).
    #[arg(long = "pgp-key-file", value_name = "FILE")]
    pub pgp_key_files: Vec<PathBuf>,
    /// Use a local directory for an external source: Kind/namespace/name=PATH (repeatable).
    #[arg(long = "local-source", value_name = "KIND/NS/NAME=PATH")]
    pub local_sources: Vec<String>,
    /// Treat variables without a value as empty instead of failing.
    #[arg(long)]
    pub no_strict_substitute: bool,
}

/// Arguments of `flux-rs diff kustomization`.
#[derive(Debug, clap::Args)]
pub struct DiffKustomizationArgs {
    #[command(flatten)]
    pub build: BuildKustomizationArgs,
    #[command(flatten)]
    pub against: Against,
}

/// Runs a diff command; errors print and exit 2.
pub fn run(command: &DiffCommand) -> ExitCode {
    let result = match command {
        DiffCommand::Cluster(args) => diff_cluster(args),
        DiffCommand::Kustomization(args) => diff_kustomization(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("✗ {err:#}");
            ExitCode::from(2)
        }
    }
}

fn diff_cluster(args: &DiffClusterArgs) -> anyhow::Result<ExitCode> {
    let decrypt = super::keys::decryptor(&args.age_key_files, &args.pgp_key_files)?;
    let charts = super::charts::renderer();
    let render_at = |path: &Path, show_secrets: bool| -> anyhow::Result<Report> {
        let options = RenderOptions {
            cluster_path: path.to_path_buf(),
            root: None,
            strict_substitute: !args.no_strict_substitute,
            local_sources: parse_local_sources(&args.local_sources)?,
            show_secrets,
        };
        let report = render::render_cluster(&options, decrypt.as_ref(), charts.as_ref())
            .with_context(|| format!("rendering {}", path.display()))?;
        check_failures(&report, path)?;
        Ok(report)
    };
    if let Some(dir) = &args.against.against_dir {
        let before = Snapshot::read_dir(dir)?;
        // Compare like with like: a render written without --show-secrets has masked values.
        let masked = snapshot_is_masked(&before);
        let now = render_at(&args.path, !masked)?;
        let skipped = skipped_units(&now);
        return Ok(report_diff(
            &before.without(&skipped),
            &Snapshot::from_report(&now),
        ));
    }
    let Some(reference) = &args.against.against_ref else {
        bail!("diff cluster needs --against-dir DIR or --against-ref GITREF");
    };
    let now = render_at(&args.path, true)?;
    let checkout = GitCheckout::new(&args.path, reference)?;
    let then = render_at(&checkout.same_path(&args.path)?, true)?;
    let mut skipped = skipped_units(&now);
    skipped.extend(skipped_units(&then));
    Ok(report_diff(
        &Snapshot::from_report(&then).without(&skipped),
        &Snapshot::from_report(&now).without(&skipped),
    ))
}

fn diff_kustomization(args: &DiffKustomizationArgs) -> anyhow::Result<ExitCode> {
    let build = &args.build;
    if let Some(dir) = &args.against.against_dir {
        let before = Snapshot::read_dir(dir)?;
        let masked = snapshot_is_masked(&before);
        let mut now_args = clone_args(build);
        now_args.show_secrets = !masked;
        let now = render_kustomization_args(&now_args, &build.path)?;
        check_failures(&now, &build.path)?;
        let mut before = before;
        let rendered: Vec<String> = now.units.iter().map(render::Unit::id).collect();
        before.units.retain(|unit, _| rendered.contains(unit));
        return Ok(report_diff(&before, &Snapshot::from_report(&now)));
    }
    let Some(reference) = &args.against.against_ref else {
        return diff_live(build);
    };
    let mut now_args = clone_args(build);
    now_args.show_secrets = true;
    let now = render_kustomization_args(&now_args, &build.path)?;
    check_failures(&now, &build.path)?;
    let checkout = GitCheckout::new(&build.path, reference)?;
    let mut then_args = clone_args(&now_args);
    then_args.root = Some(match &build.root {
        Some(root) => checkout.same_path(root)?,
        None => checkout.dir.path().to_path_buf(),
    });
    if let Some(file) = &build.kustomization_file {
        // The Kustomization object as it was, when the file is part of the repository.
        if let Ok(old) = checkout.same_path(file) {
            then_args.kustomization_file = Some(old);
        }
    }
    let then_path = checkout.same_path(&build.path)?;
    let then = render_kustomization_args(&then_args, &then_path)?;
    check_failures(&then, &then_path)?;
    let mut skipped = skipped_units(&now);
    skipped.extend(skipped_units(&then));
    Ok(report_diff(
        &Snapshot::from_report(&then).without(&skipped),
        &Snapshot::from_report(&now).without(&skipped),
    ))
}

/// Against the cluster: live objects vs a server-side dry-run apply of the render.
fn diff_live(build: &BuildKustomizationArgs) -> anyhow::Result<ExitCode> {
    let mut now_args = clone_args(build);
    now_args.show_secrets = true;
    let (now, object) = render_kustomization_object(&now_args, &build.path)?;
    check_failures(&now, &build.path)?;
    let mut before = Snapshot::default();
    let mut after = Snapshot::default();
    for (i, unit) in now.units.iter().enumerate() {
        let Outcome::Rendered(objects) = &unit.outcome else {
            continue;
        };
        let states = super::cluster_read::live_states(objects)?;
        let (live, applied): (Vec<Option<serde_json::Value>>, Vec<serde_json::Value>) =
            states.into_iter().unzip();
        let mut live: Vec<serde_json::Value> = live.into_iter().flatten().collect();
        let applied = Snapshot::index(&applied);
        if i == 0 {
            // What the last apply left (status.inventory) and this render no longer has
            // would be pruned.
            for stale in inventory_objects(&object) {
                if !applied.contains_key(&crate::render::diff::object_key(&stale)) {
                    live.push(stale);
                }
            }
        }
        before.units.insert(unit.id(), Snapshot::index(&live));
        after.units.insert(unit.id(), applied);
    }
    Ok(report_diff(&before, &after))
}

/// The objects of a Kustomization's `status.inventory`, as stubs (`<ns>_<name>_<group>_<kind>`
/// ids, Flux's format; version from `v`).
fn inventory_objects(kustomization: &serde_json::Value) -> Vec<serde_json::Value> {
    let Some(entries) = kustomization
        .pointer("/status/inventory/entries")
        .and_then(serde_json::Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let id = entry.get("id")?.as_str()?;
            let version = entry
                .get("v")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("v1");
            let mut parts = id.splitn(4, '_');
            let (ns, name, group, kind) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            let mut metadata = serde_json::json!({"name": name});
            if !ns.is_empty() {
                metadata["namespace"] = serde_json::json!(ns);
            }
            Some(serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}))
        })
        .collect()
}

fn clone_args(args: &BuildKustomizationArgs) -> BuildKustomizationArgs {
    BuildKustomizationArgs {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        path: args.path.clone(),
        kustomization_file: args.kustomization_file.clone(),
        dry_run: args.dry_run,
        strict_substitute: args.strict_substitute,
        recursive: args.recursive,
        local_sources: args.local_sources.clone(),
        root: args.root.clone(),
        age_key_files: args.age_key_files.clone(),
        pgp_key_files: args.pgp_key_files.clone(),
        show_secrets: args.show_secrets,
    }
}

/// Prints the differences; exit 1 when there are any.
fn report_diff(before: &Snapshot, after: &Snapshot) -> ExitCode {
    let diffs = compare(before, after);
    if diffs.is_empty() {
        eprintln!("✔ no differences");
        return ExitCode::SUCCESS;
    }
    print!("{}", format(&diffs));
    ExitCode::from(1)
}

/// A render with failed units cannot be compared honestly.
fn check_failures(report: &Report, path: &Path) -> anyhow::Result<()> {
    let failures: Vec<String> = report
        .units
        .iter()
        .filter_map(|u| match &u.outcome {
            Outcome::Failed(message) => Some(format!("{}: {message}", u.id())),
            _ => None,
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        bail!(
            "rendering {} failed:\n  {}",
            path.display(),
            failures.join("\n  ")
        )
    }
}

fn skipped_units(report: &Report) -> Vec<String> {
    report
        .units
        .iter()
        .filter(|u| matches!(u.outcome, Outcome::Skipped(_)))
        .map(render::Unit::id)
        .collect()
}

/// Whether a previous render holds Flux's `**SOPS**` mask anywhere.
fn snapshot_is_masked(snapshot: &Snapshot) -> bool {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(SOPS_MASK);
    snapshot
        .units
        .values()
        .flat_map(|u| u.values())
        .any(|object| {
            ["data", "stringData"].iter().any(|field| {
                object
                    .get(field)
                    .and_then(serde_json::Value::as_object)
                    .is_some_and(|m| {
                        m.values()
                            .any(|v| v.as_str() == Some(SOPS_MASK) || v.as_str() == Some(&encoded))
                    })
            })
        })
}

/// The tree of one git revision written out to a temporary directory.
struct GitCheckout {
    /// The repository's work tree (canonical).
    workdir: PathBuf,
    /// Where the revision's files are.
    dir: tempfile::TempDir,
}

impl GitCheckout {
    /// Finds the repository holding `path` and writes the tree of `reference` out.
    fn new(path: &Path, reference: &str) -> anyhow::Result<Self> {
        let repo = gix::discover(path)
            .with_context(|| format!("{}: not inside a git repository", path.display()))?;
        let workdir = repo
            .workdir()
            .with_context(|| format!("{}: the git repository has no work tree", path.display()))?;
        let workdir =
            std::fs::canonicalize(workdir).with_context(|| format!("{}", workdir.display()))?;
        let commit = repo
            .rev_parse_single(reference)
            .with_context(|| format!("--against-ref {reference}: no such revision"))?
            .object()?
            .peel_to_commit()
            .with_context(|| format!("--against-ref {reference}: not a commit"))?;
        let tree = commit.tree()?;
        let dir = tempfile::Builder::new()
            .prefix("flux-rs-diff-")
            .tempdir()
            .context("creating a temporary directory")?;
        write_tree(&repo, &tree, dir.path()).with_context(|| format!("writing out {reference}"))?;
        Ok(Self { workdir, dir })
    }

    /// `path` (in the work tree) mapped into the checkout.
    fn same_path(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let canonical = std::fs::canonicalize(path)
            .with_context(|| format!("{}: not found", path.display()))?;
        let relative = canonical.strip_prefix(&self.workdir).with_context(|| {
            format!(
                "{} is outside the git repository {}",
                path.display(),
                self.workdir.display()
            )
        })?;
        let mapped = self.dir.path().join(relative);
        if !mapped.exists() {
            bail!(
                "{} does not exist at the revision compared against",
                relative.display()
            );
        }
        Ok(mapped)
    }
}

fn write_tree(repo: &gix::Repository, tree: &gix::Tree<'_>, dest: &Path) -> anyhow::Result<()> {
    use gix::object::tree::EntryKind;
    std::fs::create_dir_all(dest)?;
    for entry in tree.iter() {
        let entry = entry?;
        let name = entry.filename().to_string();
        if name.contains('/') || name == ".." || name == "." {
            bail!("unsafe path {name:?} in the git tree");
        }
        let target = dest.join(&name);
        match entry.kind() {
            EntryKind::Tree => {
                let subtree = repo.find_object(entry.oid())?.into_tree();
                write_tree(repo, &subtree, &target)?;
            }
            EntryKind::Blob | EntryKind::BlobExecutable => {
                let blob = repo.find_object(entry.oid())?;
                std::fs::write(&target, &blob.data)?;
            }
            EntryKind::Link => {
                let blob = repo.find_object(entry.oid())?;
                let link = String::from_utf8_lossy(&blob.data).into_owned();
                std::os::unix::fs::symlink(link, &target)?;
            }
            // Submodules are not part of this repository's files.
            EntryKind::Commit => {}
        }
    }
    Ok(())
}
