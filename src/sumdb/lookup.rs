//! A lookup response, `ID\n` `RECORD LINES\n` `\n` `SIGNED TREE NOTE`, where the record lines are go.sum lines (`path version h1:…` and `path version/go.mod h1:…`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Errors parsing a lookup response or finding hashes in a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("malformed record data")]
    Malformed,
    #[error("record has no {0} hash")]
    MissingHash(String),
    #[error("record has more than one h1 hash for {0}")]
    DuplicateHash(String),
    #[error("malformed hash line in record: {0:?}")]
    BadLine(String),
}

/// A parsed lookup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The record's position in the log.
    pub id: i64,
    /// The record text exactly as hashed into the log (ends in a newline).
    pub record: Vec<u8>,
    /// The signed tree note that followed the blank line.
    pub note: Vec<u8>,
}

/// The `h1:` hashes a record gives for one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModHashes {
    /// The hash of the module zip; `None` if the record has only a go.mod line.
    pub zip_h1: Option<String>,
    /// The hash of the go.mod file.
    pub mod_h1: String,
}

/// Record text as x/mod accepts it: valid UTF-8, non-empty, newline-terminated,
/// no control characters but newline, no blank lines.
pub fn is_valid_record_text(text: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(text) else {
        return false;
    };
    s.ends_with('\n')
        && !s.starts_with('\n')
        && !s.contains("\n\n")
        && !s.chars().any(|c| c < ' ' && c != '\n')
}

/// Parses a lookup response (x/mod `tlog.ParseRecord`, stricter: the id must
/// be canonical non-negative decimal, and a note must follow).
pub fn parse_lookup(data: &[u8]) -> Result<Lookup, LookupError> {
    let nl = data
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(LookupError::Malformed)?;
    let id_str = std::str::from_utf8(&data[..nl]).map_err(|_| LookupError::Malformed)?;
    let id: i64 = id_str.parse().map_err(|_| LookupError::Malformed)?;
    if id < 0 || id.to_string() != id_str {
        return Err(LookupError::Malformed);
    }
    let rest = &data[nl + 1..];
    let split = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(LookupError::Malformed)?;
    let (record, note) = (&rest[..split + 1], &rest[split + 2..]);
    if !is_valid_record_text(record) || note.is_empty() {
        return Err(LookupError::Malformed);
    }
    Ok(Lookup {
        id,
        record: record.to_vec(),
        note: note.to_vec(),
    })
}

fn is_h1(h: &str) -> bool {
    h.strip_prefix("h1:")
        .and_then(|b| B64.decode(b).ok())
        .is_some_and(|b| b.len() == 32)
}

/// Finds the `h1:` hashes of `path version` and `path version/go.mod` in a record.
///
/// Every line must have three space-separated fields; lines about other
/// modules and other hash algorithms are ignored; a second `h1:` line for the
/// same key is an error.
pub fn record_hashes(record: &[u8], path: &str, version: &str) -> Result<ModHashes, LookupError> {
    let text = std::str::from_utf8(record).map_err(|_| LookupError::Malformed)?;
    let gomod = format!("{version}/go.mod");
    let mut zip_h1 = None;
    let mut mod_h1 = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [p, v, h] = f[..] else {
            return Err(LookupError::BadLine(line.to_string()));
        };
        if p != path || !h.starts_with("h1:") {
            continue;
        }
        let slot = if v == version {
            &mut zip_h1
        } else if v == gomod {
            &mut mod_h1
        } else {
            continue;
        };
        if !is_h1(h) {
            return Err(LookupError::BadLine(line.to_string()));
        }
        if slot.replace(h.to_string()).is_some() {
            return Err(LookupError::DuplicateHash(format!("{p} {v}")));
        }
    }
    let mod_h1 = mod_h1.ok_or_else(|| LookupError::MissingHash(format!("{path} {gomod}")))?;
    Ok(ModHashes { zip_h1, mod_h1 })
}

impl Lookup {
    /// The hashes this lookup's record gives for `path version`.
    pub fn hashes(&self, path: &str, version: &str) -> Result<ModHashes, LookupError> {
        record_hashes(&self.record, path, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKG: &str = "github.com/pkg/errors v0.9.1 h1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=\n\
                       github.com/pkg/errors v0.9.1/go.mod h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0=\n";

    #[test]
    fn parses_and_extracts() {
        let data = format!("123\n{PKG}\ngo.sum database tree\n5\nX=\n\n— k sig\n");
        let l = parse_lookup(data.as_bytes()).unwrap();
        assert_eq!(l.id, 123);
        assert_eq!(l.record, PKG.as_bytes());
        assert!(l.note.starts_with(b"go.sum database tree\n"));
        let h = l.hashes("github.com/pkg/errors", "v0.9.1").unwrap();
        assert_eq!(
            h.zip_h1.as_deref(),
            Some("h1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=")
        );
        assert_eq!(h.mod_h1, "h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0=");
        assert!(l.hashes("github.com/pkg/errors", "v0.9.0").is_err());
        assert!(l.hashes("github.com/pkg/error", "v0.9.1").is_err());
        let only_mod = "m v1.0.0/go.mod h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0=\n";
        let h = record_hashes(only_mod.as_bytes(), "m", "v1.0.0").unwrap();
        assert_eq!(h.zip_h1, None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "123",
            "123\n",
            "x123\nm v h1:x\n\nnote",
            "+123\nm v h1:x\n\nnote",
            "0123\nm v h1:x\n\nnote",
            "-1\nm v h1:x\n\nnote",
            "123\nm v h1:x\n\n",
            "123\nm v h1:x\n",
            "123\n\nnote",
            "123\nm v\x01 h1:x\n\nnote",
            "99999999999999999999\nm v h1:x\n\nnote",
        ] {
            assert!(parse_lookup(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let mut bad_utf8 = b"1\nm v h1:\xff\n\nnote".to_vec();
        assert!(parse_lookup(&bad_utf8).is_err());
        bad_utf8.clear();
        let dup = format!("{PKG}{PKG}");
        assert!(record_hashes(dup.as_bytes(), "github.com/pkg/errors", "v0.9.1").is_err());
        assert!(record_hashes(b"m  v1 h1:x\n", "m", "v1").is_err());
        assert!(record_hashes(b"m v1/go.mod h1:short=\n", "m", "v1").is_err());
        // Other algorithms are ignored.
        let h2 = format!("{PKG}github.com/pkg/errors v0.9.1 h2:xyzzy\n");
        assert!(record_hashes(h2.as_bytes(), "github.com/pkg/errors", "v0.9.1").is_ok());
    }
}
