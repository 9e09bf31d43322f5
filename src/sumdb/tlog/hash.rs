//! A log hash: 32 bytes, written as standard base64 (`fpNYfJ/ben7Y…6hw=`); records hash as SHA-256(0x00 || data), nodes as SHA-256(0x01 || left || right).

use super::TlogError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The size of a [`Hash`] in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash in the log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// Parses the base64 form (x/mod `tlog.ParseHash`).
    pub fn parse(s: &str) -> Result<Hash, TlogError> {
        Self::from_slice(&B64.decode(s).map_err(|_| TlogError::MalformedHash)?)
    }

    /// The hash held in exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Hash, TlogError> {
        Ok(Hash(b.try_into().map_err(|_| TlogError::MalformedHash)?))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&B64.encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = TlogError;
    fn from_str(s: &str) -> Result<Hash, TlogError> {
        Hash::parse(s)
    }
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; HASH_SIZE];
    out.copy_from_slice(&h.finalize());
    Hash(out)
}

/// The content hash of a record: SHA-256(0x00 || data).
pub fn record_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    sha256(&[&[0x01], &left.0, &right.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let h = record_hash(b"hello world");
        assert_eq!(
            h.to_string(),
            "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
        );
        assert_eq!(Hash::parse(&h.to_string()).unwrap(), h);
        assert!(Hash::parse("TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=").is_err());
        assert!(Hash::parse("AAAA").is_err());
        assert!(Hash::parse("").is_err());
    }
}
