//! TEMPORARY STUB of the verifying sumdb client (real one lands from branch `sumdb`).
use std::sync::Arc;

use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("remote: {0}")]
    Remote(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("compare-and-swap conflict")]
    CasConflict,
    #[error("fork")]
    Fork(Box<ForkEvidence>),
    #[error("security: {0}")]
    Security(String),
}
impl ClientError {
    pub fn is_security(&self) -> bool {
        matches!(self, ClientError::Fork(_) | ClientError::Security(_))
    }
}
#[derive(Debug, Clone)]
pub struct ForkEvidence {
    pub old_note: Vec<u8>,
    pub new_note: Vec<u8>,
    pub proof: Vec<String>,
}
#[derive(Debug, Clone)]
pub struct Tree {
    pub n: i64,
    pub hash: String,
}
#[derive(Debug, Clone)]
pub struct Verified {
    pub id: i64,
    pub zip_h1: Option<String>,
    pub mod_h1: String,
    pub tree: Tree,
    pub note: Vec<u8>,
}
#[async_trait]
pub trait ClientOps: Send + Sync {
    async fn read_remote(&self, path: &str) -> Result<Vec<u8>, ClientError>;
    async fn read_config(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError>;
    async fn write_config(
        &self,
        file: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), ClientError>;
    async fn read_cache(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError>;
    async fn write_cache(&self, file: &str, data: &[u8]) -> Result<(), ClientError>;
    async fn security_error(&self, evidence: &ForkEvidence);
}
pub struct Client {
    name: String,
    ops: Arc<dyn ClientOps>,
}
impl Client {
    pub fn new(ops: Arc<dyn ClientOps>, vkey: &str) -> Result<Client, ClientError> {
        Ok(Client {
            name: vkey.split('+').next().unwrap_or("").into(),
            ops,
        })
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub async fn lookup(&self, path: &str, version: &str) -> Result<Verified, ClientError> {
        let _ = self
            .ops
            .read_remote(&format!("lookup/{path}@{version}"))
            .await?;
        Err(ClientError::Security("stub".into()))
    }
}
