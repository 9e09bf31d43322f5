//! A tree head, `go.sum database tree\nN\nHASH\n`, and the numbering of stored hashes (level-major interleaving: leaf n's hash is followed by the interior hashes it completes).

use super::TlogError;
use super::hash::{HASH_SIZE, Hash, node_hash, record_hash};
use super::reader::HashReader;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Trees larger than this are refused by the proof and tile functions, which
/// keeps every index computation far from `i64` overflow. (The real log is
/// many orders of magnitude smaller.)
pub const MAX_TREE_SIZE: i64 = 1 << 60;

const TREE_PREFIX: &[u8] = b"go.sum database tree\n";

/// A tree head: the number of records and the root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tree {
    pub n: i64,
    pub hash: Hash,
}

/// The note text for a tree head: `go.sum database tree\nN\nHASH\n`.
pub fn format_tree(tree: &Tree) -> Vec<u8> {
    format!("go.sum database tree\n{}\n{}\n", tree.n, tree.hash).into_bytes()
}

/// Parses a tree note text (x/mod `tlog.ParseTree`); trailing lines are ignored.
pub fn parse_tree(text: &[u8]) -> Result<Tree, TlogError> {
    if !text.starts_with(TREE_PREFIX)
        || text.iter().filter(|&&b| b == b'\n').count() < 3
        || text.len() > 1_000_000
    {
        return Err(TlogError::MalformedTree);
    }
    let mut lines = text.splitn(4, |&b| b == b'\n').skip(1);
    let (Some(n_line), Some(h_line)) = (lines.next(), lines.next()) else {
        return Err(TlogError::MalformedTree);
    };
    let n_str = std::str::from_utf8(n_line).map_err(|_| TlogError::MalformedTree)?;
    let n: i64 = n_str.parse().map_err(|_| TlogError::MalformedTree)?;
    if n < 0 || n.to_string() != n_str {
        return Err(TlogError::MalformedTree);
    }
    let h = B64.decode(h_line).map_err(|_| TlogError::MalformedTree)?;
    if h.len() != HASH_SIZE {
        return Err(TlogError::MalformedTree);
    }
    let hash = Hash::from_slice(&h).map_err(|_| TlogError::MalformedTree)?;
    Ok(Tree { n, hash })
}

/// The index in the stored-hash sequence of the hash at `level` covering
/// records `n<<level .. (n+1)<<level`.
pub fn stored_hash_index(level: u32, n: i64) -> i64 {
    // The hash is stored right after the last leaf of its subtree.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut i = 0;
    let mut m = n;
    while m > 0 {
        i += m;
        m >>= 1;
    }
    i + i64::from(level)
}

/// The inverse of [`stored_hash_index`]: `(level, n)`. `index` must be ≥ 0.
pub fn split_stored_hash_index(index: i64) -> (u32, i64) {
    let index = index.max(0);
    // Leaf n's hash is at index ≥ 2n-ish; start below and walk up.
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    while index_n > index && n > 0 {
        n -= 1;
        index_n = stored_hash_index(0, n);
    }
    loop {
        let x = index_n + 1 + i64::from((n + 1).trailing_zeros());
        if x > index {
            break;
        }
        n += 1;
        index_n = x;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// The number of stored hashes in a tree of `n` records.
pub fn stored_hash_count(n: i64) -> i64 {
    if n <= 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// The hashes to append to the stored-hash sequence when adding record `n`
/// with content `data`, given the hashes already stored.
pub fn stored_hashes(n: i64, data: &[u8], r: &dyn HashReader) -> Result<Vec<Hash>, TlogError> {
    stored_hashes_for_record_hash(n, record_hash(data), r)
}

/// Like [`stored_hashes`] but given the record hash.
pub fn stored_hashes_for_record_hash(
    n: i64,
    h: Hash,
    r: &dyn HashReader,
) -> Result<Vec<Hash>, TlogError> {
    if !(0..MAX_TREE_SIZE).contains(&n) {
        return Err(TlogError::InvalidInputs("StoredHashes"));
    }
    let m = (n + 1).trailing_zeros();
    let indexes: Vec<i64> = (0..m)
        .rev()
        .map(|i| stored_hash_index(i, (n >> i) - 1))
        .collect();
    let old = r.read_hashes(&indexes)?;
    if old.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: old.len(),
        });
    }
    let mut hashes = vec![h];
    let mut h = h;
    for left in old.iter().rev() {
        h = node_hash(*left, h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// `(k, l)` with `k = 2^l` the largest power of two below `n` (for n ≥ 2).
pub(crate) fn maxpow2(n: i64) -> (i64, u32) {
    let mut l = 0u32;
    while (1i64 << (l + 1)) < n {
        l += 1;
    }
    (1 << l, l)
}

/// Appends the stored-hash indexes of the complete subtrees making up `lo..hi`.
pub(crate) fn sub_tree_index(mut lo: i64, hi: i64, need: &mut Vec<i64>) {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// Hashes the subtrees of `lo..hi`, taking their hashes from `hashes`.
pub(crate) fn sub_tree_hash(
    mut lo: i64,
    hi: i64,
    hashes: &mut std::slice::Iter<'_, Hash>,
) -> Result<Hash, TlogError> {
    let mut parts = Vec::new();
    while lo < hi {
        let (k, _) = maxpow2(hi - lo + 1);
        parts.push(
            *hashes
                .next()
                .ok_or_else(|| TlogError::Internal("subtree hashes exhausted".into()))?,
        );
        lo += k;
    }
    let mut it = parts.into_iter().rev();
    let mut h = it
        .next()
        .ok_or_else(|| TlogError::Internal("empty subtree".into()))?;
    for left in it {
        h = node_hash(left, h);
    }
    Ok(h)
}

/// The stored-hash indexes [`tree_hash`] reads for a tree of `n` records.
pub fn tree_hash_indexes(n: i64) -> Vec<i64> {
    let mut need = Vec::new();
    if (1..=MAX_TREE_SIZE).contains(&n) {
        sub_tree_index(0, n, &mut need);
    }
    need
}

/// The root hash of the tree of the first `n` records; the empty tree's hash is all zeros.
pub fn tree_hash(n: i64, r: &dyn HashReader) -> Result<Hash, TlogError> {
    if n == 0 {
        return Ok(Hash::default());
    }
    if !(1..=MAX_TREE_SIZE).contains(&n) {
        return Err(TlogError::InvalidInputs("TreeHash"));
    }
    let indexes = tree_hash_indexes(n);
    let hashes = r.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    sub_tree_hash(0, n, &mut hashes.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_inverts_index() {
        for l in 0..10 {
            for n in 0..100 {
                let x = stored_hash_index(l, n);
                assert_eq!(split_stored_hash_index(x), (l, n), "{l} {n} {x}");
            }
        }
        for x in 0..5000 {
            let (l, n) = split_stored_hash_index(x);
            assert_eq!(stored_hash_index(l, n), x);
        }
    }

    #[test]
    fn format_and_parse_tree_vectors() {
        let tree = Tree {
            n: 123456789012,
            hash: record_hash(b"hello world"),
        };
        let golden =
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
        assert_eq!(format_tree(&tree), golden.as_bytes());
        assert_eq!(parse_tree(golden.as_bytes()).unwrap(), tree);
        for bad in [
            format!("not-{golden}"),
            "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n"
                .into(),
            "go.sum database tree\n+5\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
            "go.sum database tree\n05\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
            "go.sum database tree\n-1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
            "go.sum database tree\n5\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=".into(),
        ] {
            assert!(parse_tree(bad.as_bytes()).is_err(), "{bad:?}");
        }
        for good in [
            format!("{golden}JOE"),
            format!("{golden}JOE\n"),
            format!("{golden}{}", "JOE\n".repeat(1000)),
        ] {
            assert_eq!(parse_tree(good.as_bytes()).unwrap(), tree);
        }
    }
}
