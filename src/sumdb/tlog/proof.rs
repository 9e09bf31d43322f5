//! Proofs: a record proof is the list of sibling subtree hashes from leaf `n` up to the root of tree `t`; a tree proof shows tree `n` is a prefix of tree `t` (RFC 6962 shape, x/mod order).

use super::TlogError;
use super::hash::{Hash, node_hash};
use super::reader::HashReader;
use super::tree::{MAX_TREE_SIZE, maxpow2, sub_tree_hash, sub_tree_index};

/// A proof that a record is in a tree.
pub type RecordProof = Vec<Hash>;

/// A proof that one tree is a prefix of another.
pub type TreeProof = Vec<Hash>;

fn read_exact(r: &dyn HashReader, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

fn record_inputs_ok(t: i64, n: i64) -> bool {
    (0..=MAX_TREE_SIZE).contains(&t) && (0..t).contains(&n)
}

fn tree_inputs_ok(t: i64, n: i64) -> bool {
    (1..=MAX_TREE_SIZE).contains(&t) && (1..=t).contains(&n)
}

/// The stored-hash indexes [`prove_record`] reads for record `n` in tree `t`.
pub fn record_proof_indexes(t: i64, n: i64) -> Result<Vec<i64>, TlogError> {
    if !record_inputs_ok(t, n) {
        return Err(TlogError::InvalidInputs("ProveRecord"));
    }
    let mut need = Vec::new();
    leaf_proof_index(0, t, n, &mut need);
    Ok(need)
}

fn leaf_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if lo + 1 == hi {
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        leaf_proof_index(lo + k, hi, n, need);
    }
}

/// The proof that record `n` is in the tree of size `t`.
pub fn prove_record(t: i64, n: i64, r: &dyn HashReader) -> Result<RecordProof, TlogError> {
    let indexes = record_proof_indexes(t, n)?;
    let hashes = read_exact(r, &indexes)?;
    let mut it = hashes.iter();
    let mut p = Vec::new();
    leaf_proof(0, t, n, &mut it, &mut p)?;
    if it.next().is_some() {
        return Err(TlogError::Internal("unused hashes in ProveRecord".into()));
    }
    Ok(p)
}

fn leaf_proof(
    lo: i64,
    hi: i64,
    n: i64,
    hashes: &mut std::slice::Iter<'_, Hash>,
    p: &mut RecordProof,
) -> Result<(), TlogError> {
    if lo + 1 == hi {
        return Ok(());
    }
    let (k, _) = maxpow2(hi - lo);
    let th = if n < lo + k {
        leaf_proof(lo, lo + k, n, hashes, p)?;
        sub_tree_hash(lo + k, hi, hashes)?
    } else {
        let th = sub_tree_hash(lo, lo + k, hashes)?;
        leaf_proof(lo + k, hi, n, hashes, p)?;
        th
    };
    p.push(th);
    Ok(())
}

/// Checks that `p` proves record `n` with hash `h` is in the tree of size `t` with hash `th`.
pub fn check_record(p: &[Hash], t: i64, th: Hash, n: i64, h: Hash) -> Result<(), TlogError> {
    if !record_inputs_ok(t, n) {
        return Err(TlogError::InvalidInputs("CheckRecord"));
    }
    if run_record_proof(p, 0, t, n, h)? == th {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

fn run_record_proof(p: &[Hash], lo: i64, hi: i64, n: i64, leaf: Hash) -> Result<Hash, TlogError> {
    if lo + 1 == hi {
        return if p.is_empty() {
            Ok(leaf)
        } else {
            Err(TlogError::ProofFailed)
        };
    }
    let Some((last, rest)) = p.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        Ok(node_hash(
            run_record_proof(rest, lo, lo + k, n, leaf)?,
            *last,
        ))
    } else {
        Ok(node_hash(
            *last,
            run_record_proof(rest, lo + k, hi, n, leaf)?,
        ))
    }
}

/// The stored-hash indexes [`prove_tree`] reads to prove tree `n` is a prefix of tree `t`.
pub fn tree_proof_indexes(t: i64, n: i64) -> Result<Vec<i64>, TlogError> {
    if !tree_inputs_ok(t, n) {
        return Err(TlogError::InvalidInputs("ProveTree"));
    }
    let mut need = Vec::new();
    tree_proof_index(0, t, n, &mut need);
    Ok(need)
}

fn tree_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if n == hi {
        if lo != 0 {
            sub_tree_index(lo, hi, need);
        }
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        tree_proof_index(lo + k, hi, n, need);
    }
}

/// The proof that the tree of size `n` is a prefix of the tree of size `t`.
pub fn prove_tree(t: i64, n: i64, r: &dyn HashReader) -> Result<TreeProof, TlogError> {
    let indexes = tree_proof_indexes(t, n)?;
    let hashes = read_exact(r, &indexes)?;
    let mut it = hashes.iter();
    let mut p = Vec::new();
    tree_proof(0, t, n, &mut it, &mut p)?;
    if it.next().is_some() {
        return Err(TlogError::Internal("unused hashes in ProveTree".into()));
    }
    Ok(p)
}

fn tree_proof(
    lo: i64,
    hi: i64,
    n: i64,
    hashes: &mut std::slice::Iter<'_, Hash>,
    p: &mut TreeProof,
) -> Result<(), TlogError> {
    if n == hi {
        if lo != 0 {
            p.push(sub_tree_hash(lo, hi, hashes)?);
        }
        return Ok(());
    }
    let (k, _) = maxpow2(hi - lo);
    let th = if n <= lo + k {
        tree_proof(lo, lo + k, n, hashes, p)?;
        sub_tree_hash(lo + k, hi, hashes)?
    } else {
        let th = sub_tree_hash(lo, lo + k, hashes)?;
        tree_proof(lo + k, hi, n, hashes, p)?;
        th
    };
    p.push(th);
    Ok(())
}

/// Checks that `p` proves the tree of size `n` with hash `h` is a prefix of
/// the tree of size `t` with hash `th`.
pub fn check_tree(p: &[Hash], t: i64, th: Hash, n: i64, h: Hash) -> Result<(), TlogError> {
    if !tree_inputs_ok(t, n) {
        return Err(TlogError::InvalidInputs("CheckTree"));
    }
    let (h2, th2) = run_tree_proof(p, 0, t, n, h)?;
    if th2 == th && h2 == h {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

/// Returns (hash of tree n, hash of tree hi) over `lo..hi` as computed from the proof.
fn run_tree_proof(
    p: &[Hash],
    lo: i64,
    hi: i64,
    n: i64,
    old: Hash,
) -> Result<(Hash, Hash), TlogError> {
    if n == hi {
        if lo == 0 {
            return if p.is_empty() {
                Ok((old, old))
            } else {
                Err(TlogError::ProofFailed)
            };
        }
        return match p {
            [h] => Ok((*h, *h)),
            _ => Err(TlogError::ProofFailed),
        };
    }
    let Some((last, rest)) = p.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let (oh, th) = run_tree_proof(rest, lo, lo + k, n, old)?;
        Ok((oh, node_hash(th, *last)))
    } else {
        let (oh, th) = run_tree_proof(rest, lo + k, hi, n, old)?;
        Ok((node_hash(*last, oh), node_hash(*last, th)))
    }
}
