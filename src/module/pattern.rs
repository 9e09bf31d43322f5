//! Module path patterns with GOPRIVATE's rules (`golang.org/x/mod/module.MatchPrefixPatterns`):
//! `path.Match` per element, and a pattern of N elements covers every path whose
//! first N elements it matches (so `example.com/*` covers `example.com/a/b/c`).
//!
//! Used by the gate's policy rules; private-module routing is meant to reuse it.

/// One pattern, checked for syntax once so matching cannot fail later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern without trailing slashes (as Go trims them).
    glob: String,
    /// Slashes in `glob`: the pattern is matched against the first `slashes + 1`
    /// elements of a path.
    slashes: usize,
    /// No metacharacters: matching is a string comparison on the prefix.
    literal: bool,
    /// The literal bytes the first element must start and end with (before its
    /// first metacharacter, after its last): a quick no for most paths before
    /// the full match (`*.corp.example` against `github.com`).
    first_head: String,
    first_tail: String,
}

/// A pattern `path.Match` would reject (`ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad module pattern {pattern:?}: {problem}")]
pub struct PatternError {
    pub pattern: String,
    pub problem: &'static str,
}

impl Pattern {
    /// Parses one pattern (no commas: a list is several patterns). An empty
    /// pattern, or one of only slashes, is refused (Go skips it silently; in a
    /// policy file it is a mistake).
    pub fn new(pattern: &str) -> Result<Pattern, PatternError> {
        let glob = pattern.trim_end_matches('/');
        let err = |problem| PatternError {
            pattern: pattern.to_string(),
            problem,
        };
        if glob.is_empty() {
            return Err(err("empty pattern"));
        }
        if !glob.is_ascii() {
            return Err(err("not ASCII (module paths are ASCII)"));
        }
        if glob.contains(',') {
            return Err(err("a comma: give each pattern separately"));
        }
        validate(glob).map_err(err)?;
        let first = glob.split('/').next().unwrap_or("");
        let meta = |b: u8| matches!(b, b'*' | b'?' | b'[' | b']' | b'\\');
        let (head, tail) = match (first.bytes().position(meta), first.bytes().rposition(meta)) {
            (Some(h), Some(t)) => (&first[..h], &first[t + 1..]),
            _ => (first, ""),
        };
        Ok(Pattern {
            glob: glob.to_string(),
            slashes: glob.bytes().filter(|&b| b == b'/').count(),
            literal: !glob
                .bytes()
                .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')),
            first_head: head.to_string(),
            first_tail: tail.to_string(),
        })
    }

    /// The pattern as written (trailing slashes trimmed).
    pub fn as_str(&self) -> &str {
        &self.glob
    }

    /// The last byte every match's first element ends with, when the pattern
    /// fixes it (`*.corp.example` → `e`): an index key for wildcard hosts.
    pub fn first_last_byte(&self) -> Option<u8> {
        self.first_tail.as_bytes().last().copied()
    }

    /// The pattern's leading path elements without metacharacters (`None` when
    /// the first element has some): every path it matches starts with exactly
    /// these elements, so rules can be indexed by them.
    pub fn literal_prefix(&self) -> Option<&str> {
        let mut end = 0;
        for (i, el) in self.glob.split('/').enumerate() {
            if el.bytes().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
                break;
            }
            end = if i == 0 { el.len() } else { end + 1 + el.len() };
            if i == 0 && el.is_empty() {
                return None;
            }
        }
        (end > 0).then(|| &self.glob[..end])
    }

    /// Whether `target` (a module path) is covered by this pattern.
    pub fn matches(&self, target: &str) -> bool {
        let Some(prefix) = prefix_elements(target, self.slashes) else {
            return false;
        };
        if self.literal {
            return same(prefix.as_bytes(), self.glob.as_bytes());
        }
        let first = prefix.split('/').next().unwrap_or("");
        let (f, head, tail) = (
            first.as_bytes(),
            self.first_head.as_bytes(),
            self.first_tail.as_bytes(),
        );
        if f.len() < head.len().max(tail.len())
            || !same(&f[..head.len()], head)
            || !same(&f[f.len() - tail.len()..], tail)
        {
            return false;
        }
        path_match(self.glob.as_bytes(), prefix.as_bytes()).unwrap_or(false)
    }
}

/// Byte equality without a libc call: these strings are a few dozen bytes,
/// and a plain loop that usually stops at the first or last byte beats a
/// `memcmp` call (which, on some virtual machines' AVX-512 paths, costs
/// ~150 ns — measured in benches/gate.rs).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.last() == b.last() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The first `slashes + 1` elements of `target`, or `None` if it has fewer.
fn prefix_elements(target: &str, slashes: usize) -> Option<&str> {
    let mut n = slashes;
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if n == 0 {
                return Some(&target[..i]);
            }
            n -= 1;
        }
    }
    (n == 0).then_some(target)
}

/// `module.MatchPrefixPatterns`: whether any pattern of the comma-separated
/// list covers `target`. Bad patterns match nothing, as in Go.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs.split(',').any(|g| {
        let g = g.trim_end_matches('/');
        if g.is_empty() {
            return false;
        }
        let Some(prefix) = prefix_elements(target, g.bytes().filter(|&b| b == b'/').count()) else {
            return false;
        };
        path_match(g.as_bytes(), prefix.as_bytes()).unwrap_or(false)
    })
}

/// Checks a pattern's syntax the way `path.Match` would while scanning all of it.
fn validate(glob: &str) -> Result<(), &'static str> {
    let p = glob.as_bytes();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' => {
                if i + 1 >= p.len() {
                    return Err("a trailing backslash");
                }
                i += 2;
            }
            b'[' => {
                i += 1;
                if i < p.len() && p[i] == b'^' {
                    i += 1;
                }
                let mut first = true;
                loop {
                    if i >= p.len() {
                        return Err("an unclosed [ character class");
                    }
                    if p[i] == b']' && !first {
                        i += 1;
                        break;
                    }
                    first = false;
                    let lo = class_char(p, &mut i)?;
                    if i < p.len() && p[i] == b'-' {
                        i += 1;
                        let hi = class_char(p, &mut i)?;
                        if hi < lo {
                            return Err("a character range that runs backwards");
                        }
                    }
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// One character of a class (with its escape), advancing `i`.
fn class_char(p: &[u8], i: &mut usize) -> Result<u8, &'static str> {
    match p.get(*i) {
        None => Err("an unclosed [ character class"),
        Some(b'-') | Some(b']') => Err("a bad character class"),
        Some(b'\\') => match p.get(*i + 1) {
            None => Err("a trailing backslash"),
            Some(&c) => {
                *i += 2;
                Ok(c)
            }
        },
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

/// `path.Match` on bytes: `*` any run of non-`/`, `?` one non-`/`, `[...]`
/// classes with ranges and `^` negation, `\` escapes. Module paths are ASCII
/// (x/mod's CheckPath), so bytes are characters here. `Err` is ErrBadPattern.
fn path_match(pattern: &[u8], name: &[u8]) -> Result<bool, ()> {
    // Classic backtracking on the last star, bounded by `/` (a star never
    // crosses an element, and patterns here are matched element-aligned).
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    star = Some((p, n));
                    continue;
                }
                b'?' if n < name.len() && name[n] != b'/' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' if n < name.len() && name[n] != b'/' => {
                    let (ok, next) = class_match(pattern, p, name[n])?;
                    if ok {
                        p = next;
                        n += 1;
                        continue;
                    }
                }
                b'\\' => {
                    let Some(&c) = pattern.get(p + 1) else {
                        return Err(());
                    };
                    if n < name.len() && name[n] == c {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c if !matches!(c, b'?' | b'[') && n < name.len() && name[n] == c => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return Ok(true);
        }
        // Mismatch: let the last star take one more byte, unless that is a `/`.
        match star {
            Some((sp, sn)) if sn < name.len() && name[sn] != b'/' => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => {
                // Go reports ErrBadPattern for a malformed rest of the pattern;
                // patterns are validated at parse time, so a plain no is enough.
                return Ok(false);
            }
        }
    }
}

/// Matches `c` against the class starting at `pattern[p] == '['`; returns
/// whether it matched and the index after the class.
fn class_match(pattern: &[u8], p: usize, c: u8) -> Result<(bool, usize), ()> {
    let mut i = p + 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        match pattern.get(i) {
            None => return Err(()),
            Some(b']') if !first => {
                i += 1;
                break;
            }
            _ => {}
        }
        first = false;
        let lo = class_char(pattern, &mut i).map_err(|_| ())?;
        let hi = if pattern.get(i) == Some(&b'-') {
            i += 1;
            class_char(pattern, &mut i).map_err(|_| ())?
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Ok((matched != negated, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x/mod's TestMatchPrefixPatterns (module/module_test.go), verbatim.
    #[test]
    fn x_mod_vectors() {
        for (globs, target, want) in [
            ("", "rsc.io/quote", false),
            ("/", "rsc.io/quote", false),
            ("*/quote", "rsc.io/quote", true),
            ("*/quo", "rsc.io/quote", false),
            ("*/quo??", "rsc.io/quote", true),
            ("*/quo*", "rsc.io/quote", true),
            ("*quo*", "rsc.io/quote", false),
            ("rsc.io", "rsc.io/quote", true),
            ("*.io", "rsc.io/quote", true),
            ("rsc.io/", "rsc.io/quote", true),
            ("rsc", "rsc.io/quote", false),
            ("rsc*", "rsc.io/quote", true),
            ("rsc.io", "rsc.io/quote/v3", true),
            ("*/quote", "rsc.io/quote/v3", true),
            ("*/quote/", "rsc.io/quote/v3", true),
            ("*/quote/*", "rsc.io/quote/v3", true),
            ("*/quote/*/", "rsc.io/quote/v3", true),
            ("*/v3", "rsc.io/quote/v3", false),
            ("*/*/v3", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote/v3", true),
            ("*/*/*/", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote", false),
            ("*/*/*/", "rsc.io/quote", false),
            ("*/*/*,,", "rsc.io/quote", false),
            ("*/*/*,,*/quote", "rsc.io/quote", true),
            (",,*/quote", "rsc.io/quote", true),
        ] {
            assert_eq!(
                match_prefix_patterns(globs, target),
                want,
                "MatchPrefixPatterns({globs:?}, {target:?})"
            );
            // The same answer through a parsed Pattern, one per list element.
            let parsed = globs
                .split(',')
                .filter_map(|g| Pattern::new(g).ok())
                .any(|p| p.matches(target));
            assert_eq!(parsed, want, "Pattern::new for {globs:?} on {target:?}");
        }
    }

    /// path.Match's own cases (Go's path/match_test.go) that apply within one element.
    #[test]
    fn path_match_cases() {
        for (pattern, s, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ] {
            assert_eq!(
                path_match(pattern.as_bytes(), s.as_bytes()),
                Ok(want),
                "path.Match({pattern:?}, {s:?})"
            );
        }
    }

    #[test]
    fn bad_patterns_are_named() {
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "", "//",
            "a,b", "[z-a]", "é.com",
        ] {
            assert!(Pattern::new(bad).is_err(), "{bad:?} accepted");
        }
        let e = Pattern::new("example.com/[x").unwrap_err();
        assert!(e.to_string().contains("unclosed"), "{e}");
    }

    proptest::proptest! {
        /// The parsed pattern (with its quick rejects) answers exactly as the
        /// plain MatchPrefixPatterns port.
        #[test]
        fn parsed_matches_agree(pattern in "[ab.*?/\\[\\]^\\\\-]{1,8}", target in "[ab./*]{1,8}") {
            if let Ok(p) = Pattern::new(&pattern) {
                proptest::prop_assert_eq!(p.matches(&target), match_prefix_patterns(&pattern, &target));
            }
        }
    }

    #[test]
    fn literal_prefixes() {
        let p = Pattern::new("github.com/boltdb-go/*").unwrap();
        assert_eq!(p.literal_prefix(), Some("github.com/boltdb-go"));
        assert!(p.matches("github.com/boltdb-go/bolt"));
        assert!(p.matches("github.com/boltdb-go/bolt/v2"));
        assert!(!p.matches("github.com/boltdb/bolt"));
        assert!(!p.matches("github.com/boltdb-go"));
        assert_eq!(Pattern::new("*.io/x").unwrap().literal_prefix(), None);
        assert_eq!(
            Pattern::new("a.com/*/c").unwrap().literal_prefix(),
            Some("a.com")
        );
        assert_eq!(
            Pattern::new("a.com/b/c/").unwrap().literal_prefix(),
            Some("a.com/b/c")
        );
        let lit = Pattern::new("example.com/legacy").unwrap();
        assert!(lit.matches("example.com/legacy"));
        assert!(lit.matches("example.com/legacy/sub"));
        assert!(!lit.matches("example.com/legacyx"));
    }
}
