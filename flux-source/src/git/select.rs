//! Pure reference resolution with Flux's precedence: commit > name > semver > tag > branch >
//! default `master`.

use crate::artifact::git_revision;
use crate::error::{Error, Result};
use crate::semver::{select_highest, Constraint};

/// `spec.ref` of a GitRepository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitRef {
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub semver: Option<String>,
    pub name: Option<String>,
    pub commit: Option<String>,
}

/// One advertised remote reference, peeled to the commit it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full name, e.g. `refs/heads/main`.
    pub name: String,
    /// Commit (annotated tags peeled) as 40 hex.
    pub commit: String,
}

/// What to fetch and how to name the resulting revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Full reference to fetch (`refs/heads/main`), if any.
    pub reference: Option<String>,
    /// The commit the reference points to now, when known before cloning.
    pub commit: Option<String>,
    /// A specific commit was requested (fetch it, not the reference tip).
    pub exact_commit: bool,
    /// Keep the full reference name in the revision (`ref.name`).
    pub keep_full_name: bool,
}

impl Resolved {
    /// The revision string this resolution will produce, when the commit is known.
    pub fn revision(&self) -> Option<String> {
        self.commit.as_deref().map(|c| self.revision_for(c))
    }

    /// The revision for the checked-out `commit`.
    pub fn revision_for(&self, commit: &str) -> String {
        git_revision(self.reference.as_deref(), commit, self.keep_full_name)
    }
}

fn find<'a>(refs: &'a [RemoteRef], full: &str) -> Option<&'a RemoteRef> {
    refs.iter().find(|r| r.name == full)
}

/// Resolves `r` against the remote's advertised references.
pub fn resolve(r: &GitRef, refs: &[RemoteRef]) -> Result<Resolved> {
    if let Some(commit) = non_empty(r.commit.as_deref()) {
        let commit = commit.to_ascii_lowercase();
        if commit.len() < 4 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "ref.commit",
                commit,
                "expected a hex commit id",
            ));
        }
        let reference = match non_empty(r.branch.as_deref()) {
            Some(branch) => {
                let full = format!("refs/heads/{branch}");
                find(refs, &full).ok_or_else(|| {
                    Error::NotFound(format!("unable to resolve branch '{branch}'"))
                })?;
                Some(full)
            }
            None => None,
        };
        return Ok(Resolved {
            reference,
            commit: (commit.len() == 40).then_some(commit),
            exact_commit: true,
            keep_full_name: false,
        });
    }
    if let Some(name) = non_empty(r.name.as_deref()) {
        if !name.starts_with("refs/") {
            return Err(Error::invalid(
                "ref.name",
                name,
                "must be a full reference starting with refs/",
            ));
        }
        let found = find(refs, name)
            .ok_or_else(|| Error::NotFound(format!("unable to resolve ref '{name}'")))?;
        return Ok(Resolved {
            reference: Some(name.to_string()),
            commit: Some(found.commit.clone()),
            exact_commit: false,
            keep_full_name: true,
        });
    }
    if let Some(range) = non_empty(r.semver.as_deref()) {
        let constraint = Constraint::parse(range)?;
        let tags = refs
            .iter()
            .filter_map(|t| t.name.strip_prefix("refs/tags/").map(|short| (short, t)))
            .filter(|(short, _)| !short.ends_with("^{}"));
        let (_, chosen) = select_highest(tags, &constraint)
            .ok_or_else(|| Error::NotFound(format!("no match found for semver: {range}")))?;
        return Ok(Resolved {
            reference: Some(chosen.name.clone()),
            commit: Some(chosen.commit.clone()),
            exact_commit: false,
            keep_full_name: false,
        });
    }
    if let Some(tag) = non_empty(r.tag.as_deref()) {
        let full = format!("refs/tags/{tag}");
        let found = find(refs, &full)
            .ok_or_else(|| Error::NotFound(format!("unable to resolve tag '{tag}'")))?;
        return Ok(Resolved {
            reference: Some(full),
            commit: Some(found.commit.clone()),
            exact_commit: false,
            keep_full_name: false,
        });
    }
    let branch = non_empty(r.branch.as_deref()).unwrap_or("master");
    let full = format!("refs/heads/{branch}");
    let found = find(refs, &full)
        .ok_or_else(|| Error::NotFound(format!("unable to resolve branch '{branch}'")))?;
    Ok(Resolved {
        reference: Some(full),
        commit: Some(found.commit.clone()),
        exact_commit: false,
        keep_full_name: false,
    })
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn refs() -> Vec<RemoteRef> {
        [
            ("refs/heads/master", A),
            ("refs/heads/main", B),
            ("refs/tags/v1.0.0", A),
            ("refs/tags/v1.2.0", B),
            ("refs/tags/v2.0.0-rc.1", C),
            ("refs/pull/420/head", C),
        ]
        .iter()
        .map(|(n, c)| RemoteRef {
            name: (*n).into(),
            commit: (*c).into(),
        })
        .collect()
    }

    fn rev(r: GitRef) -> String {
        resolve(&r, &refs()).unwrap().revision().unwrap()
    }

    #[test]
    fn default_is_master() {
        assert_eq!(rev(GitRef::default()), format!("master@sha1:{A}"));
    }

    #[test]
    fn precedence_commit_name_semver_tag_branch() {
        let all = GitRef {
            branch: Some("main".into()),
            tag: Some("v1.0.0".into()),
            semver: Some("1.x".into()),
            name: Some("refs/pull/420/head".into()),
            commit: Some(C.into()),
        };
        assert_eq!(rev(all.clone()), format!("main@sha1:{C}"));
        let no_commit = GitRef {
            commit: None,
            ..all.clone()
        };
        assert_eq!(
            rev(no_commit.clone()),
            format!("refs/pull/420/head@sha1:{C}")
        );
        let no_name = GitRef {
            name: None,
            ..no_commit
        };
        assert_eq!(rev(no_name.clone()), format!("v1.2.0@sha1:{B}"));
        let no_semver = GitRef {
            semver: None,
            ..no_name
        };
        assert_eq!(rev(no_semver.clone()), format!("v1.0.0@sha1:{A}"));
        let branch_only = GitRef {
            tag: None,
            ..no_semver
        };
        assert_eq!(rev(branch_only), format!("main@sha1:{B}"));
    }

    #[test]
    fn commit_only_has_no_reference() {
        let r = GitRef {
            commit: Some(C.into()),
            ..GitRef::default()
        };
        assert_eq!(rev(r), format!("sha1:{C}"));
    }

    #[test]
    fn missing_refs_are_clear_errors() {
        let err = resolve(
            &GitRef {
                branch: Some("nope".into()),
                ..GitRef::default()
            },
            &refs(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "unable to resolve branch 'nope'");
        let err = resolve(
            &GitRef {
                semver: Some(">=5.0.0".into()),
                ..GitRef::default()
            },
            &refs(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("no match found for semver"),
            "{err}"
        );
    }

    #[test]
    fn semver_prerelease_needs_prerelease_range() {
        let r = GitRef {
            semver: Some(">=2.0.0-0".into()),
            ..GitRef::default()
        };
        assert_eq!(rev(r), format!("v2.0.0-rc.1@sha1:{C}"));
    }
}
