//! Case folding and slash-path helpers with Go's exact semantics
//! (x/mod `zip.strToFold`, `strings.EqualFold`, `path.Clean`, `path.Base`, `path.Dir`).

#[rustfmt::skip]
mod table {
    include!("fold_table.rs");
}

/// Folds one rune to the representative of its `unicode.SimpleFold` orbit
/// (the orbit minimum, with `A`–`Z` mapped to `a`–`z`), as x/mod's `strToFold` does.
fn fold_char(c: char) -> char {
    let r = c as u32;
    if r < 0x80 {
        return c.to_ascii_lowercase();
    }
    match table::FOLD.binary_search_by_key(&r, |&(from, _)| from) {
        Ok(i) => char::from_u32(table::FOLD[i].1).unwrap_or(c),
        Err(_) => c,
    }
}

/// x/mod `strToFold`: `str_to_fold(s) == str_to_fold(t)` iff Go's `strings.EqualFold(s, t)`.
pub fn str_to_fold(s: &str) -> String {
    if s.bytes().all(|b| b < 0x80 && !b.is_ascii_uppercase()) {
        return s.to_string();
    }
    s.chars().map(fold_char).collect()
}

/// Go's `strings.EqualFold` (simple Unicode case folding).
pub fn equal_fold(a: &str, b: &str) -> bool {
    let mut x = a.chars().map(fold_char);
    let mut y = b.chars().map(fold_char);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

/// Go's `path.Clean` over a slash-separated path.
pub fn clean(path: &str) -> String {
    let out = clean_bytes(path.as_bytes());
    // Only whole '/'-separated elements are removed, so UTF-8 is preserved.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Go's `path.Clean` over raw bytes (Go strings need not be UTF-8).
pub fn clean_bytes(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let n = p.len();
    let rooted = p[0] == b'/';
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0usize, 0usize);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            // Empty element or ".".
            r += 1;
        } else if p[r] == b'.' && p[r + 1] == b'.' && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                // Back up to (and drop) the last '/', but not past `dotdot`.
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// Go's `path.Base`.
pub fn base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Go's `path.Dir`.
pub fn dir(path: &str) -> String {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    clean(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_matches_go_str_to_fold() {
        assert_eq!(str_to_fold("abc/def.go"), "abc/def.go");
        assert_eq!(str_to_fold("M.GO"), "m.go");
        // Kelvin sign folds with k; long s folds with s; Greek sigma forms fold together.
        assert_eq!(str_to_fold("\u{212A}"), "k");
        assert_eq!(str_to_fold("\u{017F}"), "s");
        assert_eq!(str_to_fold("\u{03C2}"), str_to_fold("\u{03A3}"));
        assert_eq!(str_to_fold("\u{03C3}"), str_to_fold("\u{03A3}"));
        // Turkish dotless i and dotted capital I are their own orbits in simple folding.
        assert_ne!(str_to_fold("\u{0131}"), str_to_fold("i"));
        assert_ne!(str_to_fold("\u{0130}"), str_to_fold("i"));
        assert!(equal_fold("Go.Mod", "go.mod"));
        assert!(!equal_fold("go.mod", "go.mo"));
        assert!(equal_fold("\u{212A}", "K"));
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
        assert_eq!(base("a/b/c"), "c");
        assert_eq!(base("go.mod"), "go.mod");
        assert_eq!(dir("a/b/c"), "a/b");
        assert_eq!(dir("c"), ".");
    }
}
