//! The tiled transparency log (x/mod `sumdb/tlog`) — pure, no I/O.
//!
//! - [`hash`]: the SHA-256 record and node hashes.
//! - [`tree`]: stored-hash numbering, tree hashes and the `go.sum database tree` note text.
//! - [`proof`]: record (inclusion) and tree (consistency) proofs.
//! - [`tile`]: tiles and their `tile/H/L/NNN[.p/W]` paths.
//! - [`reader`]: reading hashes through tiles, authenticating every tile.

pub mod hash;
pub mod proof;
pub mod reader;
pub mod tile;
pub mod tree;

pub use hash::{HASH_SIZE, Hash, node_hash, record_hash};
pub use proof::{
    RecordProof, TreeProof, check_record, check_tree, prove_record, prove_tree,
    record_proof_indexes, tree_proof_indexes,
};
pub use reader::{HashReader, MemTiles, TileHashReader, TileReader, tile_parent, tiles_for_hashes};
pub use tile::{Tile, hash_from_tile, new_tiles, parse_tile_path, read_tile_data, tile_for_index};
pub use tree::{
    MAX_TREE_SIZE, Tree, format_tree, parse_tree, split_stored_hash_index, stored_hash_count,
    stored_hash_index, stored_hashes, stored_hashes_for_record_hash, tree_hash, tree_hash_indexes,
};

/// Errors from the log: malformed input, failed proofs, tiles that do not
/// authenticate, and readers that misbehave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("malformed hash")]
    MalformedHash,
    #[error("malformed tree note")]
    MalformedTree,
    #[error("malformed tile path {0:?}")]
    MalformedTilePath(String),
    #[error("tlog: invalid inputs in {0}")]
    InvalidInputs(&'static str),
    #[error("invalid transparency proof")]
    ProofFailed,
    #[error("index {index} not in tree of size {size}")]
    IndexNotInTree { index: i64, size: i64 },
    #[error("index {index} is not in tile {tile}")]
    IndexNotInTile { index: i64, tile: String },
    #[error("invalid tile {0}")]
    InvalidTile(String),
    #[error("tile {tile}: data length {len}, want {want}")]
    BadTileData {
        tile: String,
        len: usize,
        want: usize,
    },
    /// A tile's content does not hash to the signed tree hash or to the entry
    /// in its authenticated parent tile.
    #[error("downloaded inconsistent tile {0}")]
    InconsistentTile(String),
    #[error("tile {0} not available")]
    MissingTile(String),
    #[error("reader returned {got} items, want {want}")]
    ShortRead { want: usize, got: usize },
    #[error("tlog: internal error: {0}")]
    Internal(String),
}
