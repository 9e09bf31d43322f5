//! TEMPORARY STUB (real one lands from branch `modzip`).
use std::path::Path;
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ZipError(pub String);
pub struct CheckedZip {
    pub h1: String,
    pub go_mod: Option<Vec<u8>>,
    pub files: usize,
    pub uncompressed: u64,
}
pub fn hash_go_mod(_data: &[u8]) -> String {
    String::new()
}
pub fn check_zip(
    _p: &Path,
    _m: &str,
    _v: &str,
    _mod_file: Option<&[u8]>,
) -> Result<CheckedZip, ZipError> {
    Err(ZipError("stub".into()))
}
