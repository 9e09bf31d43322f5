//! An index value: what is stored of one module version (its `.info`, `.mod`, `.zip` entries), and its compact binary form.
//!
//! ```text
//! value    = format:0x01  present:u8 (bit 0 info, bit 1 mod, bit 2 zip)  slot*   (in that order)
//! slot     = digest:text  size:uvarint  record_id:varint  tree_size:varint  verified_at:uvarint
//!            authority:u8 (0 checksum database, 1 pins)  sumdb:text  h1:text  tree_hash:text
//! text     = 0x00                                 empty
//!          | 0x01 raw[32]                         "h1:" + base64(raw)   (an h1: hash)
//!          | 0x02 raw[32]                         base64(raw)           (a tree hash)
//!          | 0x03 raw[32]                         lower-case hex(raw)   (a blob digest)
//!          | 0x04 len:uvarint utf8[len]           anything else, as written
//! uvarint  = LEB128;  varint = zigzag LEB128
//! ```
//!
//! Why binary and not JSON: sled caches whole leaves (up to 16 versions
//! each), so a hit on one version keeps its neighbours' values in memory
//! too; at ~390 bytes a value instead of ~1,000 the same page cache holds
//! 2.5× the versions (the hashes are 32 raw bytes, not 44–64 characters, and
//! no field names). The module, version and kind are in the key and the slot.
//!
//! Decoding never trusts the bytes (the index can be damaged): every length
//! is checked, anything malformed or left over is an error, and a text is
//! re-encoded in the shortest form only if that gives back the same string,
//! so encode(decode(v)) == v for every value this module wrote.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::protocol::Kind;
use crate::routes::Authority;
use crate::store::{Entry, Verification};

/// The one format byte written today.
const FORMAT: u8 = 0x01;

/// One stored artifact of a version: its [`Entry`] without the module,
/// version and kind, which the key and the slot name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub digest: String,
    pub size: u64,
    pub verification: Verification,
}

impl Slot {
    pub fn of(e: &Entry) -> Slot {
        Slot {
            digest: e.digest.clone(),
            size: e.size,
            verification: e.verification.clone(),
        }
    }

    pub fn entry(&self, module: &str, version: &str, kind: Kind) -> Entry {
        Entry {
            module: module.to_string(),
            version: version.to_string(),
            kind: kind.ext().to_string(),
            digest: self.digest.clone(),
            size: self.size,
            verification: self.verification.clone(),
        }
    }
}

/// The value under a version's key: what is stored of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    info: Option<Slot>,
    gomod: Option<Slot>,
    zip: Option<Slot>,
}

/// A value that is not in the form above.
#[derive(Debug, thiserror::Error)]
#[error("malformed index value: {0}")]
pub(crate) struct Malformed(&'static str);

const KINDS: [Kind; 3] = [Kind::Info, Kind::Mod, Kind::Zip];

impl Slots {
    pub fn get(&self, kind: Kind) -> Option<&Slot> {
        match kind {
            Kind::Info => self.info.as_ref(),
            Kind::Mod => self.gomod.as_ref(),
            Kind::Zip => self.zip.as_ref(),
        }
    }

    pub fn slot(&mut self, kind: Kind) -> &mut Option<Slot> {
        match kind {
            Kind::Info => &mut self.info,
            Kind::Mod => &mut self.gomod,
            Kind::Zip => &mut self.zip,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.info.is_none() && self.gomod.is_none() && self.zip.is_none()
    }

    /// The stored kinds, in the order `info`, `mod`, `zip`.
    pub fn each(&self) -> impl Iterator<Item = (Kind, &Slot)> {
        KINDS
            .into_iter()
            .filter_map(|k| self.get(k).map(|s| (k, s)))
    }

    /// (count, bytes) of the artifacts named.
    pub fn totals(&self) -> (u64, u64) {
        self.each()
            .fold((0, 0), |(n, b), (_, s)| (n + 1, b + s.size))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(400);
        out.push(FORMAT);
        let present = KINDS
            .iter()
            .enumerate()
            .filter(|(_, k)| self.get(**k).is_some())
            .fold(0u8, |m, (i, _)| m | 1 << i);
        out.push(present);
        for (_, s) in self.each() {
            let v = &s.verification;
            put_text(&mut out, &s.digest);
            put_uvarint(&mut out, s.size);
            put_uvarint(&mut out, zigzag(v.record_id));
            put_uvarint(&mut out, zigzag(v.tree_size));
            put_uvarint(&mut out, v.verified_at);
            out.push(match v.authority {
                Authority::ChecksumDatabase => 0,
                Authority::Pins => 1,
            });
            put_text(&mut out, &v.sumdb);
            put_text(&mut out, &v.h1);
            put_text(&mut out, &v.tree_hash);
        }
        out
    }

    pub fn decode(v: &[u8]) -> Result<Slots, Malformed> {
        let mut r = Reader(v);
        if r.byte()? != FORMAT {
            return Err(Malformed("unknown format"));
        }
        let present = r.byte()?;
        if present & !0b111 != 0 {
            return Err(Malformed("unknown kinds"));
        }
        let mut slots = Slots::default();
        for (i, kind) in KINDS.into_iter().enumerate() {
            if present & 1 << i == 0 {
                continue;
            }
            let digest = r.text()?;
            let size = r.uvarint()?;
            let record_id = unzigzag(r.uvarint()?);
            let tree_size = unzigzag(r.uvarint()?);
            let verified_at = r.uvarint()?;
            let authority = match r.byte()? {
                0 => Authority::ChecksumDatabase,
                1 => Authority::Pins,
                _ => return Err(Malformed("unknown authority")),
            };
            let (sumdb, h1, tree_hash) = (r.text()?, r.text()?, r.text()?);
            *slots.slot(kind) = Some(Slot {
                digest,
                size,
                verification: Verification {
                    h1,
                    sumdb,
                    record_id,
                    tree_size,
                    tree_hash,
                    verified_at,
                    authority,
                },
            });
        }
        if !r.0.is_empty() {
            return Err(Malformed("bytes after the last slot"));
        }
        Ok(slots)
    }
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_uvarint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// 32 raw bytes if `s` is exactly `encode(raw)`, the shortest form's test.
fn raw32(
    s: &str,
    decode: impl Fn(&str) -> Option<Vec<u8>>,
    encode: impl Fn(&[u8]) -> String,
) -> Option<[u8; 32]> {
    let raw: [u8; 32] = decode(s)?.try_into().ok()?;
    (encode(&raw) == s).then_some(raw)
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    let b64 = |s: &str| B64.decode(s).ok();
    let forms: [(u8, Option<[u8; 32]>); 3] = [
        (
            1,
            s.strip_prefix("h1:")
                .and_then(|rest| raw32(rest, b64, |r| B64.encode(r))),
        ),
        (2, raw32(s, b64, |r| B64.encode(r))),
        (3, raw32(s, from_hex, |r| hex::encode(r))),
    ];
    if s.is_empty() {
        out.push(0);
    } else if let Some((tag, Some(raw))) = forms.into_iter().find(|(_, r)| r.is_some()) {
        out.push(tag);
        out.extend_from_slice(&raw);
    } else {
        out.push(4);
        put_uvarint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

/// Reads the value front to back; every read checks what is left.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn uvarint(&mut self) -> Result<u64, Malformed> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Malformed("varint overflows 64 bits"));
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Malformed("varint too long"))
    }

    fn raw32(&mut self) -> Result<&[u8], Malformed> {
        self.take(32)
    }

    fn text(&mut self) -> Result<String, Malformed> {
        Ok(match self.byte()? {
            0 => String::new(),
            1 => format!("h1:{}", B64.encode(self.raw32()?)),
            2 => B64.encode(self.raw32()?),
            3 => hex::encode(self.raw32()?),
            4 => {
                let len = usize::try_from(self.uvarint()?).map_err(|_| Malformed("length"))?;
                String::from_utf8(self.take(len)?.to_vec())
                    .map_err(|_| Malformed("text is not UTF-8"))?
            }
            _ => return Err(Malformed("unknown text form")),
        })
    }
}

/// For the fuzz target: decodes arbitrary bytes and, if they decode,
/// checks that encoding and decoding again gives the same slots.
#[doc(hidden)]
pub fn fuzz_round_trip(data: &[u8]) {
    if let Ok(s) = Slots::decode(data) {
        let again = Slots::decode(&s.encode());
        assert_eq!(again.ok().as_ref(), Some(&s), "re-encoded value differs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(digest: &str, h1: &str, tree_hash: &str, record_id: i64) -> Slot {
        Slot {
            digest: digest.into(),
            size: 123_456,
            verification: Verification {
                h1: h1.into(),
                sumdb: "sum.golang.org".into(),
                record_id,
                tree_size: 40_000_000,
                tree_hash: tree_hash.into(),
                verified_at: 1_764_000_000,
                authority: Authority::Pins,
            },
        }
    }

    #[test]
    fn values_round_trip_and_real_hashes_take_32_bytes() {
        let digest = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
        let h1 = "h1:LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=";
        let th = "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=";
        let mut s = Slots::default();
        *s.slot(Kind::Mod) = Some(slot(digest, h1, th, 7));
        *s.slot(Kind::Zip) = Some(slot(digest, h1, th, -1));
        let v = s.encode();
        assert_eq!(Slots::decode(&v).unwrap(), s);
        // Three 33-byte hashes, the database name and five numbers a slot.
        assert!(v.len() <= 2 + 2 * 130, "{} bytes", v.len());
        // Texts that only look like hashes are kept exactly as written.
        let odd = slot(
            &digest.to_uppercase(),
            "h1:LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm565=",
            "not base64",
            i64::MIN,
        );
        let mut s = Slots::default();
        *s.slot(Kind::Info) = Some(odd);
        assert_eq!(Slots::decode(&s.encode()).unwrap(), s);
        assert_eq!(
            Slots::decode(&Slots::default().encode()).unwrap(),
            Slots::default()
        );
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let mut s = Slots::default();
        *s.slot(Kind::Zip) = Some(slot(&"a".repeat(64), "h1:x", "", 1));
        let v = s.encode();
        for cut in 0..v.len() {
            assert!(Slots::decode(&v[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(Slots::decode(&longer).is_err());
        assert!(Slots::decode(b"{\"zip\":{}}").is_err());
        assert!(Slots::decode(&[FORMAT, 0b1000]).is_err());
        let mut bad_varint = vec![FORMAT, 0b100, 0];
        bad_varint.extend([0xff; 11]);
        assert!(Slots::decode(&bad_varint).is_err());
        for b in 0..=255u8 {
            fuzz_round_trip(&[FORMAT, 0b1, b, b, b, b, b, b, b, b, b]);
        }
    }
}
