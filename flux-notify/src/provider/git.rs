//! Git commit-status providers: github, gitlab, gitea, bitbucket, bitbucketserver,
//! azuredevops. Each builds the status POST for the commit named by the event's revision.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::json;
use sha1::{Digest, Sha1};

use super::{HttpRequest, Outbound, ProviderConfig, ProviderType};
use crate::error::{Error, Result};
use crate::event::{Event, Severity};
use crate::gojson;

/// Splits a CamelCase reason into words like Flux's `splitCamelcase`
/// (`ReconciliationSucceeded` → `Reconciliation`, `Succeeded`; `HTTPError` → `HTTP`, `Error`).
pub fn split_camel_case(src: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in src.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some(run) if k == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = k;
    }
    for i in 0..runs.len().saturating_sub(1) {
        if runs[i][0].is_uppercase() && runs[i + 1][0].is_lowercase() {
            if let Some(moved) = runs[i].pop() {
                runs[i + 1].insert(0, moved);
            }
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

/// `(lower(kind/name), lower(reason split into words))`.
pub(crate) fn name_and_description(event: &Event) -> (String, String) {
    let o = &event.involved_object;
    let name = format!("{}/{}", o.kind, o.name).to_lowercase();
    let desc = split_camel_case(&event.reason).join(" ").to_lowercase();
    (name, desc)
}

/// The default commit-status context: `<kind>/<name>/<first dash-segment of provider UID>`,
/// lower-cased.
pub fn default_commit_status(provider_uid: &str, event: &Event) -> String {
    let first = provider_uid.split('-').next().unwrap_or_default();
    let o = &event.involved_object;
    format!("{}/{}/{first}", o.kind, o.name).to_lowercase()
}

/// Extracts the commit hash from a revision: `<ref>@sha1:<hex>`, `sha256:<hex>`, legacy
/// `<branch>/<hex>` or a bare hex hash.
pub fn parse_revision(rev: &str) -> Option<String> {
    let mut hash = rev.rsplit_once('@').map_or(rev, |(_, h)| h);
    if let Some((algo, h)) = hash.split_once(':') {
        if algo != "sha1" && algo != "sha256" {
            return None;
        }
        hash = h;
    } else if let Some((_, h)) = hash.rsplit_once('/') {
        hash = h;
    }
    let ok = matches!(hash.len(), 40 | 64) && hash.bytes().all(|c| c.is_ascii_hexdigit());
    ok.then(|| hash.to_string())
}

/// `(scheme://host[:port], path id without leading `/` and `.git`)` for a repository URL;
/// `ssh` and scp-like addresses map to `https`.
pub fn parse_git_address(address: &str) -> Option<(String, String)> {
    let normalized = if !address.contains("://") {
        // scp-like `git@host:owner/repo.git`
        let (userhost, path) = address.split_once(':')?;
        let host = userhost.rsplit_once('@').map_or(userhost, |(_, h)| h);
        format!("https://{host}/{path}")
    } else {
        address.to_string()
    };
    let url = reqwest::Url::parse(&normalized).ok()?;
    let scheme = if url.scheme() == "ssh" {
        "https"
    } else {
        url.scheme()
    };
    let host = url.host_str()?;
    let host = match url.port() {
        Some(p) if url.scheme() != "ssh" => format!("{host}:{p}"),
        _ => host.to_string(),
    };
    let id = url.path().trim_start_matches('/');
    let id = id.strip_suffix(".git").unwrap_or(id).to_string();
    Some((format!("{scheme}://{host}"), id))
}

fn owner_repo<'a>(cfg: &ProviderConfig, id: &'a str) -> Result<(&'a str, &'a str)> {
    match id.split('/').collect::<Vec<_>>().as_slice() {
        [owner, repo] => Ok((owner, repo)),
        _ => Err(cfg.invalid("address", format!("invalid repository id '{id}'"))),
    }
}

/// Builds the commit-status POST for a commit-status provider.
pub(super) fn commit_status(event: &Event, cfg: &ProviderConfig) -> Result<Vec<Outbound>> {
    let Some(kind) = cfg.provider_type else {
        return Ok(Vec::new());
    };
    let progressing = event.reason == "Progressing";
    if progressing && kind != ProviderType::Gitea {
        return Ok(Vec::new());
    }
    if !cfg.commit_status_expr.is_empty() {
        return Err(cfg.invalid(
            "spec.commitStatusExpr",
            "CEL commit status expressions are not supported by flux-rs yet",
        ));
    }
    let unsupported = |message: String| Error::UnsupportedEvent {
        object: event.object_string(),
        provider_type: kind.as_str().into(),
        message,
    };
    let revision = event
        .revision()
        .ok_or_else(|| unsupported("missing revision metadata".into()))?;
    let sha = parse_revision(revision).ok_or_else(|| {
        unsupported(format!(
            "failed to extract commit hash from '{revision}' revision"
        ))
    })?;
    let (ok, failed) = match kind {
        ProviderType::GitHub => ("success", "failure"),
        ProviderType::GitLab => ("success", "failed"),
        ProviderType::Gitea => ("success", "failure"),
        ProviderType::Bitbucket | ProviderType::BitbucketServer => ("SUCCESSFUL", "FAILED"),
        _ => ("succeeded", "error"),
    };
    let state = match event.severity {
        _ if progressing => "pending",
        Severity::Info => ok,
        Severity::Error => failed,
        Severity::Trace => {
            return Err(unsupported(format!(
                "can't convert severity trace to a {} state",
                kind.as_str()
            )))
        }
    };
    let context = default_commit_status(&cfg.uid, event);
    let (name, desc) = name_and_description(event);
    let token = cfg.token.as_str();
    let req = match kind {
        ProviderType::GitHub => {
            let (host, id) = parse_git_address(&cfg.address)
                .ok_or_else(|| cfg.invalid("address", "invalid repository URL"))?;
            let (owner, repo) = owner_repo(cfg, &id)?;
            let api = match cfg.api_base_override.as_deref() {
                Some(base) => base.trim_end_matches('/').to_string(),
                None if host == "https://github.com" => "https://api.github.com".into(),
                None => format!("{host}/api/v3"),
            };
            let body = json!({"state": state, "description": desc, "context": context});
            HttpRequest::post_json(
                format!("{api}/repos/{owner}/{repo}/statuses/{sha}"),
                gojson::to_vec(&body),
            )
            .header("Accept", "application/vnd.github.v3+json")
            .header("Authorization", format!("Bearer {token}"))
        }
        ProviderType::GitLab => {
            let (host, id) = parse_git_address(&cfg.address)
                .ok_or_else(|| cfg.invalid("address", "invalid repository URL"))?;
            let project: String = url_escape(&id);
            let body = json!({"state": state, "name": context, "description": desc});
            HttpRequest::post_json(
                format!("{host}/api/v4/projects/{project}/statuses/{sha}"),
                gojson::to_vec(&body),
            )
            .header("PRIVATE-TOKEN", token)
        }
        ProviderType::Gitea => {
            let (host, id) = parse_git_address(&cfg.address)
                .ok_or_else(|| cfg.invalid("address", "invalid repository URL"))?;
            let (owner, repo) = owner_repo(cfg, &id)?;
            let body =
                json!({"state": state, "target_url": "", "description": desc, "context": context});
            HttpRequest::post_json(
                format!("{host}/api/v1/repos/{owner}/{repo}/statuses/{sha}"),
                gojson::to_vec(&body),
            )
            .header("Authorization", format!("token {token}"))
        }
        ProviderType::Bitbucket => {
            let (_, id) = parse_git_address(&cfg.address)
                .ok_or_else(|| cfg.invalid("address", "invalid repository URL"))?;
            let (owner, repo) = owner_repo(cfg, &id)?;
            let (user, pass) = token
                .split_once(':')
                .filter(|(_, p)| !p.contains(':'))
                .ok_or_else(|| {
                    cfg.invalid(
                        "secretRef.token",
                        "invalid token format, expected to be <user>:<password>",
                    )
                })?;
            let api = cfg
                .api_base_override
                .as_deref()
                .unwrap_or("https://api.bitbucket.org/2.0")
                .trim_end_matches('/');
            // go-bitbucket marshals the status through a map: keys sorted.
            let body = json!({
                "description": desc,
                "key": hex::encode(Sha1::digest(context.as_bytes())),
                "name": name,
                "state": state,
                "url": "https://bitbucket.org",
            });
            HttpRequest::post_json(
                format!("{api}/repositories/{owner}/{repo}/commit/{sha}/statuses/build"),
                gojson::to_vec(&body),
            )
            .header("Authorization", basic(user, pass))
        }
        ProviderType::BitbucketServer => {
            let url = cfg.url()?;
            let path = url.path().strip_suffix(".git").unwrap_or(url.path());
            let idx = path.rfind("/scm/").ok_or_else(|| {
                cfg.invalid("address", "could not find '/scm/' in the repository URL")
            })?;
            let (context_path, id) = (&path[..idx], &path[idx + 5..]);
            let (project, repo) = owner_repo(cfg, id)?;
            let host = url.host_str().unwrap_or_default();
            let origin = match url.port() {
                Some(p) => format!("{}://{host}:{p}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            };
            let endpoint = format!("{origin}{context_path}/rest/api/latest/projects/{project}/repos/{repo}/commits/{sha}/builds");
            let body = json!({
                "description": desc,
                "key": hex::encode(Sha1::digest(context.as_bytes())),
                "name": format!("{name} [{desc}]"),
                "state": state,
                "url": cfg.address,
            });
            // json.Encoder.Encode appends a newline.
            let mut bytes = gojson::to_vec(&body);
            bytes.push(b'\n');
            let auth = if token.is_empty() {
                basic(&cfg.username, &cfg.password)
            } else {
                format!("Bearer {token}")
            };
            HttpRequest::post_json(endpoint, bytes)
                .header("Authorization", auth)
                .header("x-atlassian-token", "no-check")
                .header("x-requested-with", "XMLHttpRequest")
        }
        _ => {
            let (host, id) = parse_git_address(&cfg.address)
                .ok_or_else(|| cfg.invalid("address", "invalid repository URL"))?;
            let parts: Vec<&str> = id.split('/').collect();
            let [org, project, _, repo] = parts.as_slice() else {
                return Err(cfg.invalid(
                    "address",
                    format!("invalid repository id '{id}', expected <org>/<project>/_git/<repo>"),
                ));
            };
            let genre = event
                .metadata
                .get("summary")
                .map_or_else(|| "fluxcd".to_string(), |s| format!("fluxcd:{s}"));
            let body = json!({"context": {"genre": genre, "name": context}, "description": desc, "state": state});
            HttpRequest::post_json(
                format!("{host}/{org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses?api-version=6.0"),
                gojson::to_vec(&body),
            )
            .header("Authorization", basic("", token))
        }
    };
    Ok(vec![Outbound::Http(req)])
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Percent-encodes a path segment (GitLab project ids contain `/`).
fn url_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case() {
        assert_eq!(
            split_camel_case("ReconciliationSucceeded"),
            ["Reconciliation", "Succeeded"]
        );
        assert_eq!(split_camel_case("HTTPError"), ["HTTP", "Error"]);
        assert_eq!(split_camel_case("Progressing"), ["Progressing"]);
        assert_eq!(split_camel_case("health check"), ["health", " ", "check"]);
    }

    #[test]
    fn revisions() {
        let h = "a".repeat(40);
        assert_eq!(parse_revision(&format!("main@sha1:{h}")), Some(h.clone()));
        assert_eq!(parse_revision(&format!("main/{h}")), Some(h.clone()));
        assert_eq!(parse_revision(&format!("sha1:{h}")), Some(h.clone()));
        assert_eq!(parse_revision(&h), Some(h.clone()));
        assert_eq!(parse_revision("v1.0.0@md5:abc"), None);
        assert_eq!(parse_revision("main"), None);
    }

    #[test]
    fn git_addresses() {
        assert_eq!(
            parse_git_address("https://github.com/org/repo.git"),
            Some(("https://github.com".into(), "org/repo".into()))
        );
        assert_eq!(
            parse_git_address("ssh://git@github.com/org/repo"),
            Some(("https://github.com".into(), "org/repo".into()))
        );
        assert_eq!(
            parse_git_address("git@gitlab.com:group/sub/repo.git"),
            Some(("https://gitlab.com".into(), "group/sub/repo".into()))
        );
    }
}
