//! `git push` of one commit to one remote reference with gix: gix 0.90 has no push, so this
//! is the client side of `git-receive-pack` (protocol v0/v1) on top of gix-transport (file://,
//! git://, http(s):// smart HTTP, ssh) and gix-protocol's handshake (ref advertisement,
//! credentials retry on 401).
//!
//! The pure parts (command lines, capability choice, report-status parsing, the update check,
//! pack encoding) are functions without I/O; [`push`] wires them to a transport.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use gix::protocol::transport::client::blocking_io::{ExtendedBufRead, Transport};
use gix::protocol::transport::client::{MessageKind, TransportWithoutIO, WriteMode};
use gix::protocol::transport::{Protocol, Service};
use gix::ObjectId;

use super::client::{enrich, git_err, http_options, is_http, ssh_files, validate_url, SshFiles};
use super::GitAuth;
use crate::error::{Error, Result};

/// Which remote value the update may replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Whatever the remote has, as long as the new commit contains it (plain `git push`).
    FastForward,
    /// Exactly this value (`None`: the reference must not exist yet), and a fast-forward of it
    /// (`git push --force-with-lease=<ref>:<old>` without the force).
    Expect(Option<String>),
    /// Any value (`git push --force`).
    Force,
}

/// One reference update: `commit` (present in the local repository) to `remote_ref`.
#[derive(Debug, Clone)]
pub struct PushRequest<'a> {
    /// The local repository holding `commit` and its history.
    pub repository: &'a Path,
    /// Full hex id of the commit to push.
    pub commit: &'a str,
    /// Full name of the remote reference, e.g. `refs/heads/main`.
    pub remote_ref: &'a str,
    pub lease: Lease,
}

/// What a successful push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    pub remote_ref: String,
    /// The remote's previous value (`None`: the reference was created).
    pub old: Option<String>,
    pub new: String,
    /// Objects sent in the pack (0 when the remote was already up to date).
    pub objects_sent: usize,
    /// The remote already had `new` at `remote_ref`; nothing was sent.
    pub up_to_date: bool,
}

/// The all-zero id receive-pack uses for "no such reference".
const ZERO_ID: &str = "0000000000000000000000000000000000000000";

/// Capabilities to request, from what the server advertised: always `report-status` (no
/// result otherwise), `atomic` when offered; no side-band so the report is plain pkt-lines.
pub fn request_capabilities(advertised: &[&str]) -> Result<Vec<String>> {
    if !advertised.contains(&"report-status") {
        return Err(Error::invalid(
            "receive-pack capabilities",
            advertised.join(" "),
            "the server does not offer report-status, so the result could not be checked",
        ));
    }
    let mut caps = vec!["report-status".to_string()];
    if advertised.contains(&"atomic") {
        caps.push("atomic".into());
    }
    caps.push(format!("agent=flux-rs/{}", env!("CARGO_PKG_VERSION")));
    Ok(caps)
}

/// The payload of the first (and only) command pkt-line: `<old> <new> <ref>\0<caps>\n`.
pub fn command_line(old: Option<&str>, new: &str, remote_ref: &str, caps: &[String]) -> Vec<u8> {
    let mut line = format!("{} {new} {remote_ref}", old.unwrap_or(ZERO_ID)).into_bytes();
    line.push(0);
    line.extend_from_slice(caps.join(" ").as_bytes());
    line.push(b'\n');
    line
}

/// Reads receive-pack's `report-status` lines (`unpack ok|<error>`, `ok <ref>`,
/// `ng <ref> <reason>`) and returns the refusal for `remote_ref`, if any.
pub fn check_report(lines: &[String], url: &str, remote_ref: &str) -> Result<()> {
    let rejected = |reason: String| Error::PushRejected {
        url: url.to_string(),
        reference: remote_ref.to_string(),
        reason,
    };
    let mut lines = lines.iter().map(|l| l.trim_end_matches('\n'));
    match lines.next() {
        Some("unpack ok") => {}
        Some(other) => {
            let reason = other.strip_prefix("unpack ").unwrap_or(other);
            return Err(rejected(format!(
                "the remote could not unpack the objects: {reason}"
            )));
        }
        None => return Err(rejected("the remote sent no report".into())),
    }
    let mut reported = false;
    for line in lines {
        if let Some(name) = line.strip_prefix("ok ") {
            reported |= name == remote_ref;
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, "rejected"));
            if name == remote_ref {
                return Err(rejected(format!("the remote refused the update: {reason}")));
            }
        }
    }
    if reported {
        Ok(())
    } else {
        Err(rejected(
            "the remote did not report on the reference".into(),
        ))
    }
}

/// Whether the update is allowed, as `git push` decides it before sending anything.
/// `contains_old` says whether the new commit's history contains the remote's value.
pub fn check_update(
    url: &str,
    remote_ref: &str,
    remote_old: Option<&str>,
    lease: &Lease,
    contains_old: bool,
) -> Result<()> {
    let rejected = |reason: String| Error::PushRejected {
        url: url.to_string(),
        reference: remote_ref.to_string(),
        reason,
    };
    if let Lease::Expect(expected) = lease {
        if expected.as_deref() != remote_old {
            return Err(rejected(format!(
                "stale info: expected the remote at {}, it is at {}",
                expected.as_deref().unwrap_or("<none>"),
                remote_old.unwrap_or("<none>")
            )));
        }
    }
    match (lease, remote_old) {
        (Lease::Force, _) | (_, None) => Ok(()),
        (_, Some(_)) if contains_old => Ok(()),
        (_, Some(old)) => Err(rejected(format!(
            "non-fast-forward: the remote has {old}, which the pushed commit does not contain \
             (fetch first and rebuild on top of it)"
        ))),
    }
}

/// Writes a version 2 pack of whole (undeltified) objects, zlib-compressed, with the SHA-1
/// trailer. Returns the number of bytes written.
pub fn write_pack(
    objects: &[(gix::object::Kind, &[u8])],
    out: &mut dyn Write,
) -> std::io::Result<u64> {
    use gix::odb::pack::data;
    let count = u32::try_from(objects.len())
        .map_err(|_| std::io::Error::other("too many objects for one pack"))?;
    let mut hashed = gix::hash::io::Write::new(out, gix::hash::Kind::Sha1);
    let mut written = 0u64;
    let header = data::header::encode(data::Version::V2, count);
    hashed.write_all(&header)?;
    written += header.len() as u64;
    for (kind, bytes) in objects {
        let entry = match kind {
            gix::object::Kind::Commit => data::entry::Header::Commit,
            gix::object::Kind::Tree => data::entry::Header::Tree,
            gix::object::Kind::Blob => data::entry::Header::Blob,
            gix::object::Kind::Tag => data::entry::Header::Tag,
        };
        written += entry.write_to(bytes.len() as u64, &mut hashed)? as u64;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(bytes)?;
        let compressed = zlib.finish()?;
        hashed.write_all(&compressed)?;
        written += compressed.len() as u64;
    }
    let trailer = hashed
        .hash
        .try_finalize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    hashed.inner.write_all(trailer.as_slice())?;
    written += trailer.as_slice().len() as u64;
    Ok(written)
}

/// Commits reachable from `tip`, not descending below the commits in `stop` (which are not
/// returned). Missing parents (a shallow clone's boundary) are an error only when reached.
fn commits_from(
    repo: &gix::Repository,
    tip: ObjectId,
    stop: &HashSet<ObjectId>,
    url: &str,
) -> Result<Vec<ObjectId>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![tip];
    while let Some(id) = stack.pop() {
        if stop.contains(&id) || !seen.insert(id) {
            continue;
        }
        out.push(id);
        let commit = repo.find_commit(id).map_err(git_err("read commit", url))?;
        stack.extend(commit.parent_ids().map(gix::Id::detach));
    }
    Ok(out)
}

/// Whether `ancestor` is reachable from `tip` in `repo` (false when it is not even local).
fn contains(repo: &gix::Repository, tip: ObjectId, ancestor: ObjectId) -> bool {
    if !repo.has_object(ancestor) {
        return false;
    }
    // Walking down to `ancestor` (and not past it) finds it iff it is reachable; stopping
    // there keeps shallow clones (whose boundary is the remote tip) walkable.
    let stop: HashSet<ObjectId> = [ancestor].into();
    let mut seen = HashSet::new();
    let mut stack = vec![tip];
    while let Some(id) = stack.pop() {
        if stop.contains(&id) {
            return true;
        }
        if !seen.insert(id) {
            continue;
        }
        // History cut off by a shallow clone cannot contain it as far as we can tell.
        let Ok(commit) = repo.find_commit(id) else {
            continue;
        };
        stack.extend(commit.parent_ids().map(gix::Id::detach));
    }
    false
}

/// Adds the trees and blobs reachable from `tree` that are neither in `skip` nor in `seen`.
fn collect_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    skip: &HashSet<ObjectId>,
    seen: &mut HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
    url: &str,
) -> Result<()> {
    let mut stack = vec![tree];
    while let Some(id) = stack.pop() {
        if skip.contains(&id) || !seen.insert(id) {
            continue;
        }
        out.push(id);
        let tree = repo.find_tree(id).map_err(git_err("read tree", url))?;
        for entry in tree.iter() {
            let entry = entry.map_err(git_err("read tree", url))?;
            let oid = entry.object_id();
            match entry.mode().kind() {
                gix::object::tree::EntryKind::Tree => stack.push(oid),
                // Submodule commits live in other repositories.
                gix::object::tree::EntryKind::Commit => {}
                _ => {
                    if !skip.contains(&oid) && seen.insert(oid) {
                        out.push(oid);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The objects the remote lacks: commits from `tip` back to (excluding) the remote's commits
/// we know, with their trees and blobs minus those of the remote's commits.
pub fn objects_to_send(
    repo: &gix::Repository,
    tip: ObjectId,
    remote_has: &[ObjectId],
    url: &str,
) -> Result<Vec<ObjectId>> {
    let known: Vec<ObjectId> = remote_has
        .iter()
        .copied()
        .filter(|id| {
            repo.find_object(*id)
                .is_ok_and(|o| o.kind == gix::object::Kind::Commit)
        })
        .collect();
    let mut skip = HashSet::new();
    let mut ignored = Vec::new();
    for id in &known {
        let tree = repo
            .find_commit(*id)
            .map_err(git_err("read commit", url))?
            .tree_id()
            .map_err(git_err("read commit", url))?
            .detach();
        let mut none = HashSet::new();
        collect_tree(repo, tree, &HashSet::new(), &mut none, &mut ignored, url)?;
        skip.extend(none);
    }
    let stop: HashSet<ObjectId> = known.into_iter().collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for id in commits_from(repo, tip, &stop, url)? {
        out.push(id);
        let tree = repo
            .find_commit(id)
            .map_err(git_err("read commit", url))?
            .tree_id()
            .map_err(git_err("read commit", url))?
            .detach();
        collect_tree(repo, tree, &skip, &mut seen, &mut out, url)?;
    }
    Ok(out)
}

fn open_transport(
    url: &str,
    auth: &GitAuth,
    ssh: Option<&SshFiles>,
) -> Result<Box<dyn Transport + Send>> {
    use gix::protocol::transport::client::blocking_io::{connect, ssh as gix_ssh};
    let parsed = gix::url::parse(gix::bstr::BStr::new(url)).map_err(git_err("parse url", url))?;
    let mut options = connect::Options {
        // receive-pack speaks v0/v1 only.
        version: Protocol::V1,
        ..Default::default()
    };
    if let Some(ssh) = ssh {
        options.ssh = gix_ssh::connect::Options {
            command: Some(ssh.command.clone().into()),
            disallow_shell: false,
            kind: Some(gix_ssh::ProgramKind::Ssh),
        };
    }
    let mut transport = connect::connect(parsed, options).map_err(git_err("connect", url))?;
    if is_http(url) {
        transport
            .configure(&http_options(auth, url)?)
            .map_err(git_err("connect", url))?;
    }
    Ok(transport)
}

/// Pushes `request.commit` from the local repository to `request.remote_ref` at `url`, with
/// the same credentials as fetching (basic/bearer over HTTP, SSH key + known_hosts).
/// Non-fast-forward updates and stale leases are refused before anything is sent; the
/// remote's `ng` answers become [`Error::PushRejected`].
pub fn push(url: &str, auth: &GitAuth, request: &PushRequest<'_>) -> Result<PushOutcome> {
    crate::tls::ensure_provider();
    validate_url(url)?;
    let ssh = ssh_files(url, auth)?;
    push_with(url, auth, request, ssh.as_ref()).map_err(|e| enrich(e, ssh.as_ref()))
}

fn push_with(
    url: &str,
    auth: &GitAuth,
    request: &PushRequest<'_>,
    ssh: Option<&SshFiles>,
) -> Result<PushOutcome> {
    let new = ObjectId::from_hex(request.commit.as_bytes())
        .map_err(|e| Error::invalid("commit", request.commit, e.to_string()))?;
    if !request.remote_ref.starts_with("refs/") {
        return Err(Error::invalid(
            "remote reference",
            request.remote_ref,
            "a full reference name such as refs/heads/main is required",
        ));
    }
    let repo = gix::open_opts(request.repository, gix::open::Options::isolated())
        .map_err(git_err("open local repository", url))?;
    if !repo.has_object(new) {
        return Err(Error::invalid(
            "commit",
            request.commit,
            format!("not found in {}", request.repository.display()),
        ));
    }

    let mut transport = open_transport(url, auth, ssh)?;
    let basic = auth.basic.clone();
    let handshake = gix::protocol::handshake(
        &mut transport,
        Service::ReceivePack,
        move |action| match action {
            gix::credentials::helper::Action::Get(ctx) => {
                Ok(basic
                    .as_ref()
                    .map(|(u, p)| gix::credentials::protocol::Outcome {
                        identity: gix::sec::identity::Account {
                            username: u.clone(),
                            password: p.clone(),
                            oauth_refresh_token: None,
                        },
                        next: ctx.into(),
                    }))
            }
            _ => Ok(None),
        },
        Vec::new(),
        &mut gix::progress::Discard,
    )
    .map_err(git_err("receive-pack handshake", url))?;

    let mut remote: HashMap<String, ObjectId> = HashMap::new();
    for r in handshake.refs.iter().flatten() {
        if let (name, Some(target), _) = r.unpack() {
            remote.insert(name.to_string(), target.to_owned());
        }
    }
    let old = remote.get(request.remote_ref).copied();
    let old_hex = old.map(|o| o.to_string());
    if old == Some(new) {
        if let Lease::Expect(Some(expected)) = &request.lease {
            check_update(
                url,
                request.remote_ref,
                old_hex.as_deref(),
                &request.lease,
                true,
            )
            .map(|()| expected)?;
        }
        return Ok(PushOutcome {
            remote_ref: request.remote_ref.to_string(),
            old: old_hex,
            new: new.to_string(),
            objects_sent: 0,
            up_to_date: true,
        });
    }
    let contains_old = match old {
        Some(old) => contains(&repo, new, old),
        None => true,
    };
    check_update(
        url,
        request.remote_ref,
        old_hex.as_deref(),
        &request.lease,
        contains_old,
    )?;

    let advertised: Vec<String> = handshake
        .capabilities
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let advertised: Vec<&str> = advertised.iter().map(String::as_str).collect();
    let caps = request_capabilities(&advertised)?;

    let remote_has: Vec<ObjectId> = remote.values().copied().collect();
    let ids = objects_to_send(&repo, new, &remote_has, url)?;
    let mut objects = Vec::with_capacity(ids.len());
    for id in &ids {
        let object = repo.find_object(*id).map_err(git_err("read object", url))?;
        objects.push((object.kind, object.data.clone()));
    }
    let borrowed: Vec<(gix::object::Kind, &[u8])> =
        objects.iter().map(|(k, d)| (*k, d.as_slice())).collect();

    let report = {
        let mut writer = transport
            .request(WriteMode::Binary, MessageKind::Flush, false)
            .map_err(git_err("receive-pack request", url))?;
        writer
            .write_all(&command_line(
                old_hex.as_deref(),
                &new.to_string(),
                request.remote_ref,
                &caps,
            ))
            .map_err(git_err("send commands", url))?;
        writer
            .write_message(MessageKind::Flush)
            .map_err(git_err("send commands", url))?;
        let (mut raw, mut reader) = writer.into_parts();
        write_pack(&borrowed, &mut raw).map_err(git_err("send pack", url))?;
        raw.flush().map_err(git_err("send pack", url))?;
        // The request body must be complete (HTTP) before the response can be read.
        drop(raw);
        read_report(&mut reader, url)?
    };
    check_report(&report, url, request.remote_ref)?;
    Ok(PushOutcome {
        remote_ref: request.remote_ref.to_string(),
        old: old_hex,
        new: new.to_string(),
        objects_sent: ids.len(),
        up_to_date: false,
    })
}

/// Reads pkt-lines up to the flush that ends the report.
fn read_report<'a>(
    reader: &mut Box<dyn ExtendedBufRead<'a> + Unpin + 'a>,
    url: &str,
) -> Result<Vec<String>> {
    reader.reset(Protocol::V1);
    let mut lines = Vec::new();
    while let Some(line) = reader.readline() {
        let line = line
            .map_err(git_err("read report-status", url))?
            .map_err(git_err("read report-status", url))?;
        if let Some(text) = line.as_slice() {
            lines.push(String::from_utf8_lossy(text).into_owned());
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "git://h/r.git";

    #[test]
    fn capabilities_need_report_status_and_take_atomic_when_offered() {
        let caps =
            request_capabilities(&["report-status", "delete-refs", "atomic", "ofs-delta"]).unwrap();
        assert_eq!(&caps[..2], ["report-status", "atomic"]);
        assert!(caps[2].starts_with("agent=flux-rs/"));
        assert!(request_capabilities(&["delete-refs"]).is_err());
    }

    #[test]
    fn command_line_has_zero_id_for_new_refs() {
        let line = command_line(None, "ab", "refs/heads/main", &["report-status".into()]);
        assert_eq!(
            line,
            format!("{ZERO_ID} ab refs/heads/main\0report-status\n").into_bytes()
        );
        let line = command_line(Some("cd"), "ab", "refs/heads/x", &[]);
        assert_eq!(line, b"cd ab refs/heads/x\0\n".to_vec());
    }

    #[test]
    fn report_status_ok_ng_and_unpack_errors() {
        let ok = vec![
            "unpack ok\n".to_string(),
            "ok refs/heads/main\n".to_string(),
        ];
        check_report(&ok, URL, "refs/heads/main").unwrap();
        let ng = vec![
            "unpack ok".to_string(),
            "ng refs/heads/main non-fast-forward".to_string(),
        ];
        let err = check_report(&ng, URL, "refs/heads/main").unwrap_err();
        assert_eq!(
            err.to_string(),
            "push to git://h/r.git rejected: refs/heads/main: the remote refused the update: non-fast-forward"
        );
        let unpack = vec!["unpack index-pack abnormal exit".to_string()];
        let err = check_report(&unpack, URL, "refs/heads/main").unwrap_err();
        assert!(err
            .to_string()
            .contains("could not unpack the objects: index-pack abnormal exit"));
        assert!(check_report(&[], URL, "refs/heads/main").is_err());
        let other = vec!["unpack ok".to_string(), "ok refs/heads/other".to_string()];
        assert!(check_report(&other, URL, "refs/heads/main").is_err());
    }

    #[test]
    fn update_checks() {
        let ff = Lease::FastForward;
        check_update(URL, "refs/heads/m", None, &ff, true).unwrap();
        check_update(URL, "refs/heads/m", Some("a"), &ff, true).unwrap();
        let err = check_update(URL, "refs/heads/m", Some("a"), &ff, false).unwrap_err();
        assert!(err.to_string().contains("non-fast-forward"), "{err}");
        check_update(URL, "refs/heads/m", Some("a"), &Lease::Force, false).unwrap();
        let lease = Lease::Expect(None);
        let err = check_update(URL, "refs/heads/m", Some("a"), &lease, true).unwrap_err();
        assert!(err.to_string().contains("stale info"), "{err}");
        let lease = Lease::Expect(Some("a".into()));
        check_update(URL, "refs/heads/m", Some("a"), &lease, true).unwrap();
        assert!(check_update(URL, "refs/heads/m", Some("a"), &lease, false).is_err());
    }

    #[test]
    fn pack_round_trips_through_gix_index_writer() {
        let dir = tempfile::tempdir().unwrap();
        let blob = b"hello\n".as_slice();
        let tree_repo = gix::init_bare(dir.path().join("src.git")).unwrap();
        let blob_id = tree_repo.write_blob(blob).unwrap().detach();
        let mut pack = Vec::new();
        write_pack(&[(gix::object::Kind::Blob, blob)], &mut pack).unwrap();
        assert_eq!(&pack[..4], b"PACK");
        // The trailer is the SHA-1 of everything before it.
        let (body, trailer) = pack.split_at(pack.len() - 20);
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        hasher.update(body);
        assert_eq!(hasher.try_finalize().unwrap().as_slice(), trailer);
        // gix reads it back: the single entry decodes to the blob.
        let path = dir.path().join("p.pack");
        std::fs::write(&path, &pack).unwrap();
        let file = gix::odb::pack::data::File::at(&path, gix::hash::Kind::Sha1).unwrap();
        assert_eq!(file.num_objects(), 1);
        let entry = file.entry(12).unwrap();
        let mut out = Vec::new();
        let mut inflate = gix::zlib::Inflate::default();
        let outcome = file
            .decode_entry(
                entry,
                &mut out,
                &mut inflate,
                &|_, _| Ok(None),
                &mut gix::odb::pack::cache::Never,
            )
            .unwrap();
        assert_eq!(outcome.kind, gix::object::Kind::Blob);
        assert_eq!(out, blob);
        assert_eq!(
            gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::object::Kind::Blob, &out).unwrap(),
            blob_id
        );
    }
}
