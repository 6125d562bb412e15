//! Versions and constraints as Flux and Helm use them (Masterminds/semver v3 semantics):
//! loose versions (optional `v`, three numeric parts, leading zeros allowed) and constraints
//! with `=`, `!=`, `>`, `<`, `>=`, `<=`, `~`, `^`, wildcards, hyphen ranges, `,`/space (and)
//! and `||` (or). Pre-releases only satisfy constraints that mention a pre-release.

use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, Result};

/// A parsed version.
#[derive(Debug, Clone)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub build: String,
    original: String,
}

impl Version {
    /// Parses a version loosely: optional `v`, exactly three numeric parts.
    pub fn parse(s: &str) -> Result<Version> {
        let bad = |reason: &str| Error::invalid("version", s, reason);
        let body = s.strip_prefix('v').unwrap_or(s);
        let (body, build) = match body.split_once('+') {
            Some((b, m)) => (b, m),
            None => (body, ""),
        };
        let (core, pre) = match body.split_once('-') {
            Some((c, p)) => (c, p),
            None => (body, ""),
        };
        let valid_ident = |x: &str| {
            x.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        };
        if (!pre.is_empty() && !valid_ident(pre)) || (!build.is_empty() && !valid_ident(build)) {
            return Err(bad("invalid pre-release or build metadata"));
        }
        if (body.contains('-') && pre.is_empty()) || (s.contains('+') && build.is_empty()) {
            return Err(bad("empty pre-release or build metadata"));
        }
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(bad("expected MAJOR.MINOR.PATCH"));
        }
        let num = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("non-numeric version part"));
            }
            p.parse::<u64>().map_err(|_| bad("version part too large"))
        };
        Ok(Version {
            major: num(parts[0])?,
            minor: num(parts[1])?,
            patch: num(parts[2])?,
            pre: pre.to_string(),
            build: build.to_string(),
            original: s.to_string(),
        })
    }

    /// The string the version was parsed from.
    pub fn original(&self) -> &str {
        &self.original
    }

    fn triple(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
            pre: String::new(),
            build: String::new(),
            original: format!("{major}.{minor}.{patch}"),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// Equality is semver precedence (build metadata and a `v` prefix are ignored).
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semver precedence; build metadata is ignored.
impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(&self.pre, &other.pre))
    }
}

#[allow(clippy::many_single_char_names)]
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(n), Ok(m)) => n.cmp(&m),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Tilde,
    Caret,
}

/// A constraint version: missing or wildcard parts are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: String,
}

impl Partial {
    fn dirty(&self) -> bool {
        self.minor.is_none() || self.patch.is_none() || self.major.is_none()
    }

    fn floor(&self) -> Version {
        let mut v = Version::triple(
            self.major.unwrap_or(0),
            self.minor.unwrap_or(0),
            self.patch.unwrap_or(0),
        );
        v.pre.clone_from(&self.pre);
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Single {
    op: Op,
    version: Partial,
}

/// A parsed constraint: OR of AND groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    groups: Vec<Vec<Single>>,
    original: String,
}

impl Constraint {
    /// Parses a Masterminds constraint string. Empty means `*`.
    pub fn parse(s: &str) -> Result<Constraint> {
        let mut groups = Vec::new();
        let text = if s.trim().is_empty() { "*" } else { s };
        for group in text.split("||") {
            let tokens = tokenize(group);
            if tokens.is_empty() {
                return Err(Error::invalid("semver constraint", s, "empty alternative"));
            }
            let mut singles = Vec::new();
            let mut i = 0;
            while i < tokens.len() {
                // Hyphen range: `A - B`.
                if i + 2 < tokens.len() && tokens[i + 1] == "-" {
                    singles.push(Single {
                        op: Op::Ge,
                        version: parse_partial(&tokens[i], s)?,
                    });
                    singles.push(Single {
                        op: Op::Le,
                        version: parse_partial(&tokens[i + 2], s)?,
                    });
                    i += 3;
                    continue;
                }
                singles.push(parse_single(&tokens[i], s)?);
                i += 1;
            }
            groups.push(singles);
        }
        Ok(Constraint {
            groups,
            original: s.to_string(),
        })
    }

    /// Whether `v` satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.groups.iter().any(|g| g.iter().all(|c| check(c, v)))
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Splits an AND group on commas and whitespace, gluing operators to their versions.
fn tokenize(group: &str) -> Vec<String> {
    let raw: Vec<&str> = group
        .split([',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for t in raw {
        if t != "-" && t.bytes().all(|b| b"=<>!~^".contains(&b)) {
            pending_op.push_str(t);
            continue;
        }
        out.push(format!("{pending_op}{t}"));
        pending_op.clear();
    }
    if !pending_op.is_empty() {
        out.push(pending_op);
    }
    out
}

fn parse_single(token: &str, original: &str) -> Result<Single> {
    let ops: [(&str, Op); 12] = [
        (">=", Op::Ge),
        ("=>", Op::Ge),
        ("<=", Op::Le),
        ("=<", Op::Le),
        ("!=", Op::Ne),
        ("~>", Op::Tilde),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
        ("~", Op::Tilde),
        ("^", Op::Caret),
        ("", Op::Eq),
    ];
    for (prefix, op) in ops {
        if let Some(rest) = token.strip_prefix(prefix) {
            return Ok(Single {
                op,
                version: parse_partial(rest.trim(), original)?,
            });
        }
    }
    Err(Error::invalid(
        "semver constraint",
        original,
        format!("cannot parse {token:?}"),
    ))
}

fn parse_partial(s: &str, original: &str) -> Result<Partial> {
    let bad = || {
        Error::invalid(
            "semver constraint",
            original,
            format!("invalid version {s:?}"),
        )
    };
    let body = s.strip_prefix('v').unwrap_or(s);
    let body = body.split_once('+').map_or(body, |(b, _)| b);
    let (core, pre) = body.split_once('-').unwrap_or((body, ""));
    if core.is_empty() {
        return Err(bad());
    }
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let mut nums = [None, None, None];
    let mut wild = false;
    for (i, p) in parts.iter().enumerate() {
        if matches!(*p, "x" | "X" | "*") {
            wild = true;
            continue;
        }
        if wild || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        nums[i] = Some(p.parse::<u64>().map_err(|_| bad())?);
    }
    Ok(Partial {
        major: nums[0],
        minor: nums[1],
        patch: nums[2],
        pre: pre.to_string(),
    })
}

fn check(c: &Single, v: &Version) -> bool {
    // Pre-releases only match constraints that carry one.
    if !v.pre.is_empty() && c.version.pre.is_empty() {
        return false;
    }
    let p = &c.version;
    let floor = p.floor();
    match c.op {
        Op::Eq => wildcard_eq(p, v),
        Op::Ne => !wildcard_eq(p, v),
        Op::Gt => {
            if p.dirty() {
                match (p.major, p.minor) {
                    (None, _) => false,
                    (Some(ma), None) => v.major > ma,
                    (Some(ma), Some(mi)) => v.major > ma || (v.major == ma && v.minor > mi),
                }
            } else {
                *v > floor
            }
        }
        Op::Lt => *v < floor,
        Op::Ge => *v >= floor,
        Op::Le => {
            if p.dirty() {
                match (p.major, p.minor) {
                    (None, _) => true,
                    (Some(ma), None) => v.major <= ma,
                    (Some(ma), Some(mi)) => v.major < ma || (v.major == ma && v.minor <= mi),
                }
            } else {
                *v <= floor
            }
        }
        Op::Tilde => {
            if *v < floor {
                return false;
            }
            match (p.major, p.minor) {
                (None, _) => true,
                (Some(ma), None) => v.major == ma,
                (Some(ma), Some(mi)) => v.major == ma && v.minor == mi,
            }
        }
        Op::Caret => {
            if *v < floor {
                return false;
            }
            match (p.major, p.minor, p.patch) {
                (None, _, _) => true,
                (Some(0), None, _) => v.major == 0,
                (Some(0), Some(0), None) => v.major == 0 && v.minor == 0,
                (Some(0), Some(0), Some(pa)) => v.major == 0 && v.minor == 0 && v.patch == pa,
                (Some(0), Some(mi), _) => v.major == 0 && v.minor == mi,
                (Some(ma), _, _) => v.major == ma,
            }
        }
    }
}

fn wildcard_eq(p: &Partial, v: &Version) -> bool {
    if !p.dirty() {
        return v.cmp(&p.floor()) == Ordering::Equal;
    }
    p.major.is_none_or(|m| m == v.major)
        && p.minor.is_none_or(|m| m == v.minor)
        && p.patch.is_none_or(|m| m == v.patch)
}

/// Picks the highest version (by semver precedence) among `candidates` that satisfies
/// `constraint`; ties keep the first candidate in input order.
pub fn select_highest<'a, T>(
    candidates: impl IntoIterator<Item = (&'a str, T)>,
    constraint: &Constraint,
) -> Option<(Version, T)> {
    let mut best: Option<(Version, T)> = None;
    for (raw, item) in candidates {
        let Ok(v) = Version::parse(raw) else { continue };
        if !constraint.matches(&v) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, item));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str, v: &str) -> bool {
        Constraint::parse(c)
            .unwrap()
            .matches(&Version::parse(v).unwrap())
    }

    #[test]
    fn parses_loose_versions() {
        assert_eq!(Version::parse("v1.2.3").unwrap().to_string(), "1.2.3");
        assert_eq!(Version::parse("01.02.03").unwrap().minor, 2);
        assert_eq!(Version::parse("1.2.3-rc.1+build.5").unwrap().pre, "rc.1");
        assert!(Version::parse("1.2").is_err());
        assert!(Version::parse("latest").is_err());
        assert!(Version::parse("1.2.3-").is_err());
    }

    #[test]
    fn precedence() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-beta"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert!(v("1.0.0-2") < v("1.0.0-10"));
        assert_eq!(v("1.0.0+a").cmp(&v("1.0.0+b")), Ordering::Equal);
    }

    #[test]
    fn operators() {
        assert!(ok(">=1.2.0 <2.0.0", "1.5.0"));
        assert!(!ok(">=1.2.0, <2.0.0", "2.0.0"));
        assert!(ok("~1.2.3", "1.2.9"));
        assert!(!ok("~1.2.3", "1.3.0"));
        assert!(ok("~1", "1.9.0"));
        assert!(ok("^1.2.3", "1.9.9"));
        assert!(!ok("^1.2.3", "2.0.0"));
        assert!(ok("^0.2.3", "0.2.9"));
        assert!(!ok("^0.2.3", "0.3.0"));
        assert!(!ok("^0.0.3", "0.0.4"));
        assert!(ok("1.2.x", "1.2.7"));
        assert!(!ok("1.2.x", "1.3.0"));
        assert!(ok("*", "3.0.0"));
        assert!(ok("", "3.0.0"));
        assert!(ok("!=1.2.3", "1.2.4"));
        assert!(ok("1.0.0 - 2.0.0", "2.0.0"));
        assert!(!ok("1.0.0 - 2.0.0", "2.0.1"));
        assert!(ok("<1.0.0 || >=3.0.0", "3.1.0"));
        assert!(!ok("<1.0.0 || >=3.0.0", "2.0.0"));
        assert!(ok(">1.2", "1.3.0"));
        assert!(!ok(">1.2", "1.2.5"));
        assert!(ok("<=1.2", "1.2.9"));
        assert!(ok("= 1.2.3", "1.2.3"));
        assert!(ok(">= 1.2.3", "v1.3.0"));
    }

    #[test]
    fn prereleases_need_prerelease_constraints() {
        assert!(!ok("*", "1.0.0-rc.1"));
        assert!(!ok(">=1.0.0", "2.0.0-rc.1"));
        assert!(ok(">=1.0.0-0", "2.0.0-rc.1"));
        assert!(ok("1.0.0-rc.1", "1.0.0-rc.1"));
    }

    #[test]
    fn invalid_constraints_are_errors() {
        assert!(Constraint::parse(">=abc").is_err());
        assert!(Constraint::parse("1.2.3.4").is_err());
        assert!(Constraint::parse("||").is_err());
    }

    #[test]
    fn selects_highest() {
        let tags = [
            "v1.0.0",
            "v1.2.0",
            "v2.0.0",
            "not-a-version",
            "v1.10.0",
            "v1.11.0-rc.1",
        ];
        let c = Constraint::parse("1.x").unwrap();
        let (v, tag) = select_highest(tags.iter().map(|t| (*t, *t)), &c).unwrap();
        assert_eq!(tag, "v1.10.0");
        assert_eq!(v.minor, 10);
        assert!(select_highest(
            tags.iter().map(|t| (*t, *t)),
            &Constraint::parse(">5").unwrap()
        )
        .is_none());
    }
}
