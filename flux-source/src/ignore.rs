//! `.sourceignore` / `spec.ignore` rules with the semantics of Flux's go-git-derived matcher:
//! last matching pattern wins, evaluated per path independently; patterns containing `/` are
//! anchored at the directory of the file that holds them; glob patterns match path prefixes.

use std::path::Path;

use crate::error::{Error, Result};

/// Patterns Flux always applies (VCS metadata).
pub const VCS_PATTERNS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/// Patterns Flux applies only when no `.sourceignore` or `spec.ignore` pattern exists at all.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

/// The file name Flux reads ignore patterns from.
pub const SOURCEIGNORE: &str = ".sourceignore";

/// One parsed pattern line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    domain: Vec<String>,
    segments: Vec<String>,
    inclusion: bool,
    dir_only: bool,
    is_glob: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    NoMatch,
    Exclude,
    Include,
}

impl Pattern {
    /// Parses one pattern line scoped to `domain` (path components of the directory holding it).
    pub fn parse(line: &str, domain: &[String]) -> Pattern {
        let mut p = line;
        let inclusion = p.starts_with('!');
        if inclusion {
            p = &p[1..];
        }
        if !p.ends_with("\\ ") {
            p = p.trim_end_matches(' ');
        }
        let dir_only = p.ends_with('/');
        if dir_only {
            p = &p[..p.len() - 1];
        }
        Pattern {
            domain: domain.to_vec(),
            segments: p.split('/').map(str::to_string).collect(),
            inclusion,
            dir_only,
            is_glob: p.contains('/'),
        }
    }

    fn matches(&self, path: &[&str], is_dir: bool) -> Verdict {
        if path.len() <= self.domain.len() || self.domain.iter().zip(path).any(|(d, p)| d != p) {
            return Verdict::NoMatch;
        }
        let path = &path[self.domain.len()..];
        let matched = if self.is_glob {
            self.glob_match(path, is_dir)
        } else {
            self.simple_name_match(path, is_dir)
        };
        match (matched, self.inclusion) {
            (false, _) => Verdict::NoMatch,
            (true, true) => Verdict::Include,
            (true, false) => Verdict::Exclude,
        }
    }

    fn simple_name_match(&self, path: &[&str], is_dir: bool) -> bool {
        for (i, name) in path.iter().enumerate() {
            if !component_match(&self.segments[0], name) {
                continue;
            }
            return !(self.dir_only && !is_dir && i == path.len() - 1);
        }
        false
    }

    fn glob_match(&self, mut path: &[&str], is_dir: bool) -> bool {
        let mut matched = false;
        let mut can_traverse = false;
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.is_empty() {
                can_traverse = false;
                continue;
            }
            if segment == "**" {
                if i == self.segments.len() - 1 {
                    break;
                }
                can_traverse = true;
                continue;
            }
            if segment.contains("**") || path.is_empty() {
                return false;
            }
            if can_traverse {
                can_traverse = false;
                while let Some((first, rest)) = path.split_first() {
                    path = rest;
                    if component_match(segment, first) {
                        matched = true;
                        break;
                    } else if path.is_empty() {
                        matched = false;
                    }
                }
            } else {
                if !component_match(segment, path[0]) {
                    return false;
                }
                matched = true;
                path = &path[1..];
            }
        }
        if matched && self.dir_only && !is_dir && path.is_empty() {
            matched = false;
        }
        matched
    }
}

/// Go `filepath.Match` for one path component: `*`, `?`, `[...]` (with `^` negation and
/// ranges) and `\` escapes. A malformed pattern matches nothing.
fn component_match(pattern: &str, name: &str) -> bool {
    glob(pattern.as_bytes(), name.as_bytes()).unwrap_or(false)
}

fn glob(pattern: &[u8], name: &[u8]) -> Option<bool> {
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' if n < name.len() => {
                    p += 1;
                    n += utf8_len(name[n]);
                    continue;
                }
                b'[' if n < name.len() => {
                    let (ok, next) = class_match(pattern, p, name[n])?;
                    if ok {
                        p = next;
                        n += 1;
                        continue;
                    }
                }
                b'\\' => {
                    let lit = *pattern.get(p + 1)?;
                    if n < name.len() && name[n] == lit {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c if n < name.len() && c != b'?' && c != b'[' && name[n] == c => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return Some(true);
        }
        // Mismatch: backtrack to the last `*`, letting it eat one more byte.
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            _ => {
                // Validate the rest of the pattern so malformed classes are reported as errors.
                return Some(false);
            }
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn class_match(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let b = *pattern.get(i)?;
        if b == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        let mut lo = b;
        if lo == b'\\' {
            i += 1;
            lo = *pattern.get(i)?;
        }
        i += 1;
        let mut hi = lo;
        if pattern.get(i) == Some(&b'-') && pattern.get(i + 1).is_some_and(|&x| x != b']') {
            hi = pattern[i + 1];
            if hi == b'\\' {
                hi = *pattern.get(i + 2)?;
                i += 1;
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negated, i))
}

/// An ordered list of patterns; the last matching one decides.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    patterns: Vec<Pattern>,
}

impl Rules {
    /// Parses pattern lines (comments and blank lines skipped) scoped to `domain`.
    pub fn parse(text: &str, domain: &[String]) -> Vec<Pattern> {
        text.lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| Pattern::parse(l, domain))
            .collect()
    }

    /// Builds Flux's rule set: VCS patterns, then the default excludes only when `user` is
    /// empty, then `user` (`.sourceignore` files, then `spec.ignore`).
    pub fn flux(user: Vec<Pattern>) -> Rules {
        let mut patterns: Vec<Pattern> = VCS_PATTERNS
            .iter()
            .map(|p| Pattern::parse(p, &[]))
            .collect();
        if user.is_empty() {
            patterns.extend(DEFAULT_EXCLUDES.iter().map(|p| Pattern::parse(p, &[])));
        }
        patterns.extend(user);
        Rules { patterns }
    }

    /// Rules made only of `patterns` (no VCS or default list), as Bucket uses.
    pub fn from_patterns(patterns: Vec<Pattern>) -> Rules {
        Rules { patterns }
    }

    /// Loads `.sourceignore` files under `root` (root first, then sub-directories in lexical
    /// order, skipping `.git`) followed by `spec_ignore`, and returns Flux's full rule set.
    pub fn load(root: &Path, spec_ignore: Option<&str>) -> Result<Rules> {
        let mut user = Vec::new();
        load_sourceignore(root, &mut Vec::new(), &mut user)?;
        if let Some(spec) = spec_ignore {
            user.extend(Rules::parse(spec, &[]));
        }
        Ok(Rules::flux(user))
    }

    /// Whether the path (components relative to the root) is excluded.
    pub fn is_excluded(&self, path: &[&str], is_dir: bool) -> bool {
        for p in self.patterns.iter().rev() {
            match p.matches(path, is_dir) {
                Verdict::NoMatch => {}
                v => return v == Verdict::Exclude,
            }
        }
        false
    }

    /// Whether the `/`-separated relative path is excluded.
    pub fn is_excluded_path(&self, rel: &str, is_dir: bool) -> bool {
        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        self.is_excluded(&parts, is_dir)
    }
}

fn load_sourceignore(dir: &Path, domain: &mut Vec<String>, out: &mut Vec<Pattern>) -> Result<()> {
    let file = dir.join(SOURCEIGNORE);
    match std::fs::read_to_string(&file) {
        Ok(text) => out.extend(Rules::parse(&text, domain)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(Error::invalid(
                "ignore file",
                file.display().to_string(),
                "not UTF-8",
            ));
        }
        Err(e) => return Err(Error::io("reading", &file)(e)),
    }
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io("listing", dir))? {
        let entry = entry.map_err(Error::io("listing", dir))?;
        let file_type = entry.file_type().map_err(Error::io("stat", entry.path()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if file_type.is_dir() && name != ".git" {
            subdirs.push(name);
        }
    }
    subdirs.sort();
    for name in subdirs {
        domain.push(name);
        load_sourceignore(&dir.join(&domain[domain.len() - 1]), domain, out)?;
        domain.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::from_patterns(Rules::parse(text, &[]))
    }

    #[test]
    fn simple_names_match_any_component() {
        let r = rules("*.md\nbuild/\n");
        assert!(r.is_excluded_path("README.md", false));
        assert!(r.is_excluded_path("docs/a/b.md", false));
        assert!(r.is_excluded_path("build", true));
        assert!(r.is_excluded_path("x/build/out.txt", false));
        assert!(
            !r.is_excluded_path("build", false),
            "dir-only pattern must not match a file"
        );
        assert!(!r.is_excluded_path("main.rs", false));
    }

    #[test]
    fn slash_patterns_are_anchored_and_prefix_match() {
        let r = rules("/deploy\nconfig/*.yaml\n");
        assert!(r.is_excluded_path("deploy", true));
        assert!(r.is_excluded_path("deploy/app.yaml", false));
        assert!(!r.is_excluded_path("x/deploy", true));
        assert!(r.is_excluded_path("config/a.yaml", false));
        assert!(!r.is_excluded_path("sub/config/a.yaml", false));
    }

    #[test]
    fn double_star_and_negation() {
        let r = rules("**/secret.txt\ndocs/**\n!docs/keep.md\n");
        assert!(r.is_excluded_path("secret.txt", false));
        assert!(r.is_excluded_path("a/b/secret.txt", false));
        assert!(r.is_excluded_path("docs/x.md", false));
        assert!(
            !r.is_excluded_path("docs/keep.md", false),
            "last match wins"
        );
    }

    #[test]
    fn re_include_inside_excluded_dir_works_unlike_git() {
        let r = rules("/*\n!/deploy\n");
        assert!(r.is_excluded_path("src", true));
        assert!(!r.is_excluded_path("deploy", true));
        assert!(!r.is_excluded_path("deploy/app.yaml", false));
    }

    #[test]
    fn comments_blank_lines_and_trailing_spaces() {
        let r = rules("# comment\n\n  \nfoo.txt   \n");
        assert!(r.is_excluded_path("foo.txt", false));
        assert!(!r.is_excluded_path("# comment", false));
    }

    #[test]
    fn go_filepath_match_classes() {
        assert!(component_match("[a-c]x", "bx"));
        assert!(!component_match("[^a-c]x", "bx"));
        assert!(component_match("f?o", "foo"));
        assert!(component_match("\\*", "*"));
        assert!(
            !component_match("[a-", "a"),
            "malformed pattern matches nothing"
        );
        assert!(component_match("*.tar.gz", "a.tar.gz"));
        assert!(!component_match("*.yaml", "a.yml"));
    }

    #[test]
    fn defaults_only_without_user_patterns() {
        let defaults = Rules::flux(Vec::new());
        assert!(defaults.is_excluded_path(".git", true));
        assert!(defaults.is_excluded_path(".git/config", false));
        assert!(defaults.is_excluded_path("logo.png", false));
        assert!(defaults.is_excluded_path(".github/workflows/ci.yaml", false));
        assert!(defaults.is_excluded_path("a/.sops.yaml", false));
        let user = Rules::flux(Rules::parse("*.txt", &[]));
        assert!(
            !user.is_excluded_path("logo.png", false),
            "defaults dropped"
        );
        assert!(user.is_excluded_path(".gitignore", false), "VCS list kept");
        assert!(user.is_excluded_path("a.txt", false));
    }

    #[test]
    fn nested_sourceignore_is_scoped_to_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps/x")).unwrap();
        std::fs::write(dir.path().join(".sourceignore"), "/root-only.yaml\n").unwrap();
        std::fs::write(
            dir.path().join("apps/.sourceignore"),
            "*.tmp\n/x/drop.yaml\n",
        )
        .unwrap();
        let r = Rules::load(dir.path(), Some("*.bak")).unwrap();
        assert!(r.is_excluded_path("root-only.yaml", false));
        assert!(r.is_excluded_path("apps/a.tmp", false));
        assert!(!r.is_excluded_path("a.tmp", false), "scoped to apps/");
        assert!(r.is_excluded_path("apps/x/drop.yaml", false));
        assert!(!r.is_excluded_path("x/drop.yaml", false));
        assert!(r.is_excluded_path("z.bak", false));
        assert!(!r.is_excluded_path("logo.png", false));
    }
}
