//! Signed notes (x/mod `sumdb/note`): `TEXT\n` `\n` then lines `— NAME BASE64(keyhash4 || sig64)\n`;
//! verifier keys `NAME+HASH8+BASE64(0x01 || ed25519 public key)`.
//!
//! Pure and synchronous. The acceptance rules follow x/mod exactly, with one
//! deliberate tightening: base64 is decoded strictly (non-zero trailing bits
//! in the last character are rejected, Go's `StdEncoding` ignores them), so a
//! byte-flipped signature line can never verify.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature as EdSignature, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;

/// Algorithm byte for ed25519 keys.
pub const ALG_ED25519: u8 = 1;

/// At most this many signature lines are accepted in one note (x/mod's limit).
pub const MAX_SIGNATURES: usize = 100;

/// The prefix of every signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Errors from parsing keys and opening or signing notes. The messages are
/// x/mod's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed verifier id")]
    MalformedVerifier,
    #[error("unknown verifier algorithm")]
    UnknownAlgorithm,
    #[error("invalid verifier hash")]
    VerifierHash,
    #[error("malformed note")]
    Malformed,
    #[error("invalid signer")]
    InvalidSigner,
    #[error("verifier name or hash doesn't match signature")]
    MismatchedVerifier,
    #[error("unknown key {name}+{hash:08x}")]
    UnknownKey { name: String, hash: u32 },
    #[error("ambiguous key {name}+{hash:08x}")]
    AmbiguousKey { name: String, hash: u32 },
    #[error("invalid signature for key {name}+{hash:08x}")]
    InvalidSignature { name: String, hash: u32 },
    /// The note parsed but no signature was by a known key; the parsed note is kept.
    #[error("note has no verifiable signatures")]
    Unverified(Box<Note>),
    #[error("random number source failed")]
    Random,
}

/// x/mod's key hash: the first four bytes (big-endian) of SHA-256(name "\n" alg||key).
pub fn key_hash(name: &str, alg_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// A key or signer name: non-empty, no Unicode white space, no `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::is_whitespace) && !name.contains('+')
}

/// Splits at the first `sep`; the second half is empty if there is none.
fn chop(s: &str, sep: char) -> (&str, &str) {
    s.split_once(sep).unwrap_or((s, ""))
}

/// Parses exactly eight hex digits (Go's `len == 8 && ParseUint(_, 16, 32)`).
fn parse_hash8(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// An ed25519 verifier key: `name+hash+base64(0x01||pubkey)`.
#[derive(Clone)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier({}+{:08x})", self.name, self.hash)
    }
}

/// The `name+hash+base64(alg||key)` part shared by verifier and signer
/// keys: a valid name, an 8-hex-digit hash, and a non-empty key.
fn parse_named_key(s: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let (name, rest) = chop(s, '+');
    let (hash16, key64) = chop(rest, '+');
    match (parse_hash8(hash16), B64.decode(key64)) {
        (Some(hash), Ok(key)) if is_valid_name(name) && !key.is_empty() => Ok((name, hash, key)),
        _ => Err(NoteError::MalformedVerifier),
    }
}

impl Verifier {
    /// Parses a verifier key (x/mod `note.NewVerifier`).
    pub fn new(vkey: &str) -> Result<Verifier, NoteError> {
        let (name, hash, key) = parse_named_key(vkey)?;
        if hash != key_hash(name, &key) {
            return Err(NoteError::VerifierHash);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm);
        }
        let raw: &[u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedVerifier)?;
        let key = VerifyingKey::from_bytes(raw).map_err(|_| NoteError::MalformedVerifier)?;
        Ok(Verifier {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// The key's name, e.g. `sum.golang.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key hash.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// Reports whether `sig` (64 bytes, without the key-hash prefix) signs `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match EdSignature::from_slice(sig) {
            Ok(sig) => self.key.verify(msg, &sig).is_ok(),
            Err(_) => false,
        }
    }

    /// The verifier key in its text form.
    pub fn vkey(&self) -> String {
        ed25519_vkey(&self.name, self.key.as_bytes())
    }
}

/// Formats the verifier key for an ed25519 public key (x/mod `NewEd25519VerifierKey`).
pub fn ed25519_vkey(name: &str, public: &[u8; 32]) -> String {
    let mut alg_key = vec![ALG_ED25519];
    alg_key.extend_from_slice(public);
    format!(
        "{}+{:08x}+{}",
        name,
        key_hash(name, &alg_key),
        B64.encode(&alg_key)
    )
}

/// A set of known verifiers, looked up by name and key hash.
pub trait Verifiers {
    /// The verifier for `name`/`hash`; [`NoteError::UnknownKey`] if there is
    /// none (the signature is then kept as unverified), any other error aborts.
    fn verifier(&self, name: &str, hash: u32) -> Result<&Verifier, NoteError>;
}

/// A list of verifiers; a name/hash pair listed twice is ambiguous.
#[derive(Debug, Clone, Default)]
pub struct VerifierList(pub Vec<Verifier>);

impl VerifierList {
    pub fn new(list: Vec<Verifier>) -> Self {
        VerifierList(list)
    }
}

impl Verifiers for VerifierList {
    fn verifier(&self, name: &str, hash: u32) -> Result<&Verifier, NoteError> {
        let mut found = self.0.iter().filter(|v| v.name == name && v.hash == hash);
        match (found.next(), found.next()) {
            (Some(v), None) => Ok(v),
            (Some(_), Some(_)) => Err(NoteError::AmbiguousKey {
                name: name.to_string(),
                hash,
            }),
            _ => Err(NoteError::UnknownKey {
                name: name.to_string(),
                hash,
            }),
        }
    }
}

/// An ed25519 signer: `PRIVATE+KEY+name+hash+base64(0x01||seed)`.
pub struct Signer {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}+{:08x})", self.name, self.hash)
    }
}

impl Signer {
    /// Parses a signer key (x/mod `note.NewSigner`).
    pub fn new(skey: &str) -> Result<Signer, NoteError> {
        let (priv1, rest) = chop(skey, '+');
        let (priv2, rest) = chop(rest, '+');
        if priv1 != "PRIVATE" || priv2 != "KEY" {
            return Err(NoteError::MalformedVerifier);
        }
        let (name, hash, key) = parse_named_key(rest)?;
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm);
        }
        let seed: &[u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedVerifier)?;
        let key = SigningKey::from_bytes(seed);
        let mut pubkey = vec![ALG_ED25519];
        pubkey.extend_from_slice(key.verifying_key().as_bytes());
        if hash != key_hash(name, &pubkey) {
            return Err(NoteError::VerifierHash);
        }
        Ok(Signer {
            name: name.to_string(),
            hash,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The 64-byte ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(msg).to_bytes()
    }

    /// The matching verifier key in its text form.
    pub fn vkey(&self) -> String {
        ed25519_vkey(&self.name, self.key.verifying_key().as_bytes())
    }
}

/// Generates a fresh ed25519 key pair; returns `(signer key, verifier key)`.
pub fn generate_key(name: &str) -> Result<(String, String), NoteError> {
    if !is_valid_name(name) {
        return Err(NoteError::InvalidSigner);
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| NoteError::Random)?;
    Ok(key_pair_from_seed(name, &seed))
}

/// The `(signer key, verifier key)` pair for an ed25519 seed (deterministic, for tests).
pub fn key_pair_from_seed(name: &str, seed: &[u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(seed);
    let vkey = ed25519_vkey(name, key.verifying_key().as_bytes());
    let mut alg_key = vec![ALG_ED25519];
    alg_key.extend_from_slice(key.verifying_key().as_bytes());
    let mut alg_seed = vec![ALG_ED25519];
    alg_seed.extend_from_slice(seed);
    let skey = format!(
        "PRIVATE+KEY+{}+{:08x}+{}",
        name,
        key_hash(name, &alg_key),
        B64.encode(&alg_seed)
    );
    (skey, vkey)
}

/// One signature line: key name, key hash and the base64 of keyhash4||sig.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub name: String,
    pub hash: u32,
    pub base64: String,
}

/// An opened note: its text and its verified and unverified signatures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    /// The signed text; always ends in a newline.
    pub text: String,
    pub sigs: Vec<Signature>,
    pub unverified_sigs: Vec<Signature>,
}

/// Parses `msg` and checks its signatures against `known` (x/mod `note.Open`).
///
/// The text must be valid UTF-8 without control characters other than
/// newline; the signature block follows the last blank line and every line in
/// it must be a signature. Signatures by unknown keys are kept as unverified
/// (each distinct line once); a repeated signature by a known key is dropped;
/// a bad signature by a known key is an error; at least one signature must
/// verify.
pub fn open(msg: &[u8], known: &dyn Verifiers) -> Result<Note, NoteError> {
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed)?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed);
    }
    let split = msg.rfind("\n\n").ok_or(NoteError::Malformed)?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(NoteError::Malformed);
    };
    let mut note = Note {
        text: text.to_string(),
        ..Note::default()
    };
    let mut seen: HashSet<(String, u32)> = HashSet::new();
    let mut seen_unverified: HashSet<&str> = HashSet::new();
    for (count, line) in sigs.split('\n').enumerate() {
        let body = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed)?;
        let (name, b64) = chop(body, ' ');
        let raw = B64.decode(b64).map_err(|_| NoteError::Malformed)?;
        if !is_valid_name(name) || b64.is_empty() || raw.len() < 5 {
            return Err(NoteError::Malformed);
        }
        if count + 1 > MAX_SIGNATURES {
            return Err(NoteError::Malformed);
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let sig = &raw[4..];
        let signature = Signature {
            name: name.to_string(),
            hash,
            base64: b64.to_string(),
        };
        let verifier = match known.verifier(name, hash) {
            Ok(v) => v,
            Err(NoteError::UnknownKey { .. }) => {
                if seen_unverified.insert(body) {
                    note.unverified_sigs.push(signature);
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if verifier.name() != name || verifier.key_hash() != hash {
            return Err(NoteError::MismatchedVerifier);
        }
        if !seen.insert((name.to_string(), hash)) {
            continue;
        }
        if !verifier.verify(text.as_bytes(), sig) {
            return Err(NoteError::InvalidSignature {
                name: name.to_string(),
                hash,
            });
        }
        note.sigs.push(signature);
    }
    if note.sigs.is_empty() {
        return Err(NoteError::Unverified(Box::new(note)));
    }
    Ok(note)
}

/// Signs `text` (which must end in a newline) with each signer.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<Vec<u8>, NoteError> {
    sign_note(
        &Note {
            text: text.to_string(),
            ..Note::default()
        },
        signers,
    )
}

/// Signs `note.text`, keeping the note's existing signatures except those by
/// the given signers, which are replaced (x/mod `note.Sign`).
pub fn sign_note(note: &Note, signers: &[&Signer]) -> Result<Vec<u8>, NoteError> {
    if !note.text.ends_with('\n') {
        return Err(NoteError::Malformed);
    }
    let mut have = HashSet::new();
    let mut new_sigs = String::new();
    for s in signers {
        have.insert((s.name.as_str(), s.hash));
        if !is_valid_name(&s.name) {
            return Err(NoteError::InvalidSigner);
        }
        let mut raw = s.hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&s.sign(note.text.as_bytes()));
        new_sigs.push_str(&format!("{SIG_PREFIX}{} {}\n", s.name, B64.encode(raw)));
    }
    let mut out = note.text.clone();
    out.push('\n');
    for sig in note.sigs.iter().chain(&note.unverified_sigs) {
        if !is_valid_name(&sig.name) {
            return Err(NoteError::Malformed);
        }
        if have.contains(&(sig.name.as_str(), sig.hash)) {
            continue;
        }
        let raw = B64.decode(&sig.base64).map_err(|_| NoteError::Malformed)?;
        if raw.len() < 4 || u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) != sig.hash {
            return Err(NoteError::Malformed);
        }
        out.push_str(&format!("{SIG_PREFIX}{} {}\n", sig.name, sig.base64));
    }
    out.push_str(&new_sigs);
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
    const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    fn peter() -> Signature {
        Signature {
            name: "PeterNeumann".into(),
            hash: 0xc74f20a3,
            base64: "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=".into(),
        }
    }
    fn enoch() -> Signature {
        Signature {
            name: "EnochRoot".into(),
            hash: 0xaf0cfe78,
            base64: "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=".into(),
        }
    }
    fn list(keys: &[&str]) -> VerifierList {
        VerifierList(keys.iter().map(|k| Verifier::new(k).unwrap()).collect())
    }

    #[test]
    fn new_verifier_and_manglings() {
        let v = Verifier::new(PETER_VKEY).unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.key_hash(), 0xc74f20a3);
        assert_eq!(v.vkey(), PETER_VKEY);
        assert!(Verifier::new(SUMDB_VKEY).is_ok());
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let s = String::from_utf8_lossy(&b[i..j]);
                    assert!(Verifier::new(&s).is_err(), "{s}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            let s = String::from_utf8_lossy(&m);
            assert!(Verifier::new(&s).is_err(), "{s}");
        }
        // Wrong key length and unknown algorithm, each with adjusted key hash.
        assert!(
            Verifier::new(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            )
            .is_err()
        );
        assert_eq!(
            Verifier::new("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                .unwrap_err(),
            NoteError::UnknownAlgorithm
        );
    }

    #[test]
    fn new_signer_and_manglings() {
        let s = Signer::new(PETER_SKEY).unwrap();
        assert_eq!(s.vkey(), PETER_VKEY);
        let b = PETER_SKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    let s = String::from_utf8_lossy(&b[i..j]);
                    assert!(Signer::new(&s).is_err(), "{s}");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            let s = String::from_utf8_lossy(&m);
            assert!(Signer::new(&s).is_err(), "{s}");
        }
    }

    #[test]
    fn generate_key_round_trip() {
        let (skey, vkey) = generate_key("EnochRoot").unwrap();
        let s = Signer::new(&skey).unwrap();
        let v = Verifier::new(&vkey).unwrap();
        assert_eq!(s.key_hash(), v.key_hash());
        let mut sig = s.sign(b"hi");
        assert!(v.verify(b"hi", &sig));
        assert!(!v.verify(b"hj", &sig));
        sig[0] ^= 1;
        assert!(!v.verify(b"hi", &sig));
        assert!(generate_key("bad name").is_err());
    }

    #[test]
    fn sign_vectors() {
        let s = Signer::new(PETER_SKEY).unwrap();
        let want = format!("{TEXT}\n{PETER_SIG}");
        assert_eq!(String::from_utf8(sign(TEXT, &[&s]).unwrap()).unwrap(), want);
        // An existing signature by the same key is replaced.
        let n = Note {
            text: TEXT.into(),
            sigs: vec![Signature {
                name: "PeterNeumann".into(),
                hash: 0xc74f20a3,
                base64: "BADSIGN=".into(),
            }],
            ..Note::default()
        };
        assert_eq!(
            String::from_utf8(sign_note(&n, &[&s]).unwrap()).unwrap(),
            want
        );
        assert_eq!(sign("abc", &[&s]).unwrap_err(), NoteError::Malformed);
        let bad_name = Note {
            text: TEXT.into(),
            sigs: vec![Signature {
                name: "a+b".into(),
                hash: 0,
                base64: "ABCD".into(),
            }],
            ..Note::default()
        };
        assert_eq!(sign_note(&bad_name, &[]).unwrap_err(), NoteError::Malformed);
        let bad_hash = Note {
            text: TEXT.into(),
            sigs: vec![Signature {
                name: "PeterNeumann".into(),
                hash: 0xc74f20a3,
                base64: "BADHASH=".into(),
            }],
            ..Note::default()
        };
        assert_eq!(sign_note(&bad_hash, &[]).unwrap_err(), NoteError::Malformed);
    }

    #[test]
    fn verifier_list() {
        let l = list(&[PETER_VKEY, ENOCH_VKEY, ENOCH_VKEY]);
        assert_eq!(
            l.verifier("PeterNeumann", 0xc74f20a3).unwrap().name(),
            "PeterNeumann"
        );
        assert_eq!(
            l.verifier("PeterNeumann", 0xc74f20a4)
                .unwrap_err()
                .to_string(),
            "unknown key PeterNeumann+c74f20a4"
        );
        assert_eq!(
            l.verifier("PeterNeuman", 0xc74f20a3)
                .unwrap_err()
                .to_string(),
            "unknown key PeterNeuman+c74f20a3"
        );
        assert_eq!(
            l.verifier("EnochRoot", 0xaf0cfe78).unwrap_err().to_string(),
            "ambiguous key EnochRoot+af0cfe78"
        );
    }

    #[test]
    fn open_vectors() {
        let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let n = open(both.as_bytes(), &list(&[PETER_VKEY])).unwrap();
        assert_eq!(n.text, TEXT);
        assert_eq!(n.sigs, vec![peter()]);
        assert_eq!(n.unverified_sigs, vec![enoch()]);

        let n = open(both.as_bytes(), &list(&[PETER_VKEY, ENOCH_VKEY])).unwrap();
        assert_eq!(n.sigs, vec![peter(), enoch()]);
        assert!(n.unverified_sigs.is_empty());

        match open(both.as_bytes(), &list(&[])) {
            Err(NoteError::Unverified(n)) => {
                assert!(n.sigs.is_empty());
                assert_eq!(n.unverified_sigs, vec![peter(), enoch()]);
            }
            other => panic!("{other:?}"),
        }

        let e = open(
            format!("{TEXT}\n{ENOCH_SIG}").as_bytes(),
            &list(&[ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "ambiguous key EnochRoot+af0cfe78");
        open(
            format!("{TEXT}\n{PETER_SIG}").as_bytes(),
            &list(&[ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY]),
        )
        .unwrap();

        let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
        assert_eq!(
            open(many.as_bytes(), &list(&[PETER_VKEY])).unwrap_err(),
            NoteError::Malformed
        );
        assert_eq!(
            open(many.as_bytes(), &list(&[])).unwrap_err(),
            NoteError::Malformed
        );
        let hundred = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
        assert!(open(hundred.as_bytes(), &list(&[PETER_VKEY])).is_ok());

        let (a, b) = PETER_SIG.split_at(60);
        let bad = format!("{TEXT}\n{a}ABCD{b}");
        assert_eq!(
            open(bad.as_bytes(), &list(&[PETER_VKEY]))
                .unwrap_err()
                .to_string(),
            "invalid signature for key PeterNeumann+c74f20a3"
        );

        // Repeated verified and unverified signatures.
        let (ea, eb) = ENOCH_SIG.split_at(60);
        let msg = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{ea}ABCD{eb}");
        let n = open(msg.as_bytes(), &list(&[PETER_VKEY])).unwrap();
        assert_eq!(n.sigs, vec![peter()]);
        let mut enoch_abcd = enoch();
        enoch_abcd.base64 = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5nABCD2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=".into();
        assert_eq!(n.unverified_sigs, vec![enoch(), enoch_abcd]);

        let bad_msgs = [
            TEXT.to_string(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\x01{TEXT}\n{PETER_SIG}"),
            format!(
                "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
            ),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        ];
        for m in &bad_msgs {
            assert_eq!(
                open(m.as_bytes(), &list(&[PETER_VKEY])).unwrap_err(),
                NoteError::Malformed,
                "{m:?}"
            );
        }
        let mut invalid_utf8 = b"\xff".to_vec();
        invalid_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIG}").as_bytes());
        assert_eq!(
            open(&invalid_utf8, &list(&[PETER_VKEY])).unwrap_err(),
            NoteError::Malformed
        );
    }

    struct Fixed(Verifier);
    impl Verifiers for Fixed {
        fn verifier(&self, _: &str, _: u32) -> Result<&Verifier, NoteError> {
            Ok(&self.0)
        }
    }

    #[test]
    fn open_mismatched_verifier() {
        let f = Fixed(Verifier::new(PETER_VKEY).unwrap());
        let misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
        assert_eq!(
            open(format!("{TEXT}\n{misnamed}").as_bytes(), &f).unwrap_err(),
            NoteError::MismatchedVerifier
        );
        let wrong_hash = PETER_SIG.replace("x08g", "xxxx");
        assert_eq!(
            open(format!("{TEXT}\n{wrong_hash}").as_bytes(), &f).unwrap_err(),
            NoteError::MismatchedVerifier
        );
    }

    #[test]
    fn every_flipped_byte_fails() {
        let msg = format!("{TEXT}\n{PETER_SIG}");
        let l = list(&[PETER_VKEY]);
        open(msg.as_bytes(), &l).unwrap();
        let b = msg.as_bytes();
        for i in 0..b.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = b.to_vec();
                m[i] ^= bit;
                assert!(open(&m, &l).is_err(), "byte {i} bit {bit:#x} accepted");
            }
        }
    }

    #[test]
    fn real_sumdb_latest() {
        let msg = "go.sum database tree\n740257\nfpNYfJ/ben7Y0EaPYjRABCnv1ImSv2Rwl22RS2tC6hw=\n\n\
                   — sum.golang.org Az3grsByvQt43CvDYbKmJWHmMUi+HUxdKaJicMIbSjyHn2QWWxY75B7+pwGmi8QexenXRcxvteS3XIs8k385Hr2G2wI=\n";
        let n = open(msg.as_bytes(), &list(&[SUMDB_VKEY])).unwrap();
        assert_eq!(n.sigs.len(), 1);
        assert_eq!(n.sigs[0].name, "sum.golang.org");
        assert_eq!(n.sigs[0].hash, 0x033de0ae);
    }
}
