//! Moving an index written with one key per artifact to one key per version: rebuilt into a fresh sled directory, then swapped in.
//!
//! ```text
//! <data-dir>/index/                 the index in use
//! <data-dir>/index.next/            the rebuilt index while it is written
//! <data-dir>/index.next/complete    written (and synced) once the rebuilt index is whole
//! <data-dir>/index.prev/            the old index, between the two renames of the swap
//! ```
//!
//! Why a fresh directory and not a rewrite in place: sled never gives back
//! page-table slots, so an index rewritten in place keeps the memory of its
//! old 3M keys on top of the new 1M (measured at 1M versions: 170 MB idle
//! after an in-place rewrite, 108 MB before it).
//!
//! Crash safety: the old index is untouched until the rebuilt one is whole
//! and marked `complete`; the swap is two renames; [`recover`] finishes a
//! swap a crash interrupted, or throws away a rebuild that never completed,
//! at the next open (which then rebuilds again).

use std::path::Path;

use super::index::{LEGACY_TREE, VERSIONS_TREE, index_err, open_db};
use super::value::{Slot, Slots};
use crate::protocol::Kind;
use crate::store::{Entry, StoreError, StoreResult};

const NEXT: &str = "index.next";
const PREV: &str = "index.prev";
const COMPLETE: &str = "complete";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Whether an opened index still has the layout before.
pub(super) fn needed(db: &sled::Db) -> bool {
    db.tree_names()
        .iter()
        .any(|n| n.as_ref() == LEGACY_TREE.as_bytes())
}

/// Finishes or discards what an interrupted rebuild left under `root`.
pub(super) fn recover(root: &Path) -> StoreResult<()> {
    let (cur, next, prev) = (root.join("index"), root.join(NEXT), root.join(PREV));
    if next.exists() {
        if next.join(COMPLETE).exists() {
            if cur.exists() {
                if prev.exists() {
                    std::fs::remove_dir_all(&prev).map_err(io(&prev))?;
                }
                std::fs::rename(&cur, &prev).map_err(io(&cur))?;
            }
            std::fs::rename(&next, &cur).map_err(io(&next))?;
            sync_dir(root)?;
            let _ = std::fs::remove_file(cur.join(COMPLETE));
        } else {
            std::fs::remove_dir_all(&next).map_err(io(&next))?;
        }
    }
    if prev.exists() {
        if cur.exists() {
            std::fs::remove_dir_all(&prev).map_err(io(&prev))?;
        } else {
            std::fs::rename(&prev, &cur).map_err(io(&prev))?;
        }
        sync_dir(root)?;
    }
    Ok(())
}

/// Writes between progress lines while rebuilding.
const PROGRESS_EVERY: u64 = 500_000;

/// Rebuilds `root/index` into `root/index.next` with one key per version,
/// copying every other tree as it is, then swaps it in. Returns the number of
/// artifact entries moved. Runs at open, before anything else uses the index.
///
/// An old entry that cannot be read is skipped with a warning: it could not
/// be read before either, and its blob is fetched and verified again when
/// asked for.
pub(super) fn rebuild(root: &Path, cache_bytes: u64) -> StoreResult<u64> {
    let started = std::time::Instant::now();
    let next = root.join(NEXT);
    if next.exists() {
        std::fs::remove_dir_all(&next).map_err(io(&next))?;
    }
    let open = |p: &Path| open_db(p, cache_bytes);
    let (old, new) = (open(&root.join("index"))?, open(&next)?);
    tracing::info!(path = %root.join("index").display(),
        "rebuilding the index with one key per module version (once)");
    let (mut moved, mut skipped) = (0u64, 0u64);
    // Every other tree first, as it is; the old layout's entries last, merged
    // into whatever `versions` holds.
    for name in old.tree_names() {
        if name.as_ref() == LEGACY_TREE.as_bytes() {
            continue;
        }
        let (from, to) = (
            old.open_tree(&name).map_err(index_err)?,
            new.open_tree(&name).map_err(index_err)?,
        );
        for item in from.iter() {
            let (k, v) = item.map_err(index_err)?;
            to.insert(k, v).map_err(index_err)?;
        }
    }
    let legacy = old.open_tree(LEGACY_TREE).map_err(index_err)?;
    let versions = new.open_tree(VERSIONS_TREE).map_err(index_err)?;
    // The old keys of one version are adjacent (`m@v/info`, `m@v/mod`, `m@v/zip`):
    // nothing else starts with `m@v/`.
    let mut current: Option<(String, Slots)> = None;
    let put = |key: &str, found: Slots| -> StoreResult<()> {
        let mut merged = match versions.get(key.as_bytes()).map_err(index_err)? {
            Some(v) => Slots::decode(&v).unwrap_or_default(),
            None => Slots::default(),
        };
        for (k, s) in found.each() {
            *merged.slot(k) = Some(s.clone());
        }
        versions
            .insert(key.as_bytes(), merged.encode())
            .map_err(index_err)?;
        Ok(())
    };
    for item in legacy.iter() {
        let (k, v) = item.map_err(index_err)?;
        let parsed = std::str::from_utf8(&k).ok().and_then(|k| {
            let (vkey, kind) = k.rsplit_once('/')?;
            Some((vkey.to_string(), Kind::parse(kind)?))
        });
        let entry = serde_json::from_slice::<Entry>(&v).ok();
        let (Some((vkey, kind)), Some(entry)) = (parsed, entry) else {
            skipped += 1;
            tracing::warn!(key = %String::from_utf8_lossy(&k),
                "index rebuild: an entry of the old layout cannot be read; skipped");
            continue;
        };
        if current.as_ref().is_some_and(|(c, _)| *c != vkey)
            && let Some((c, slots)) = current.take()
        {
            put(&c, slots)?;
        }
        let (_, slots) = current.get_or_insert_with(|| (vkey, Slots::default()));
        *slots.slot(kind) = Some(Slot::of(&entry));
        moved += 1;
        if moved % PROGRESS_EVERY == 0 {
            tracing::info!(moved, "rebuilding the index");
        }
    }
    if let Some((c, slots)) = current.take() {
        put(&c, slots)?;
    }
    new.flush().map_err(index_err)?;
    drop((legacy, versions, old, new));
    let mark = next.join(COMPLETE);
    std::fs::File::create(&mark)
        .and_then(|f| f.sync_all())
        .map_err(io(&mark))?;
    sync_dir(&next)?;
    recover(root)?;
    tracing::info!(
        moved,
        skipped,
        secs = started.elapsed().as_secs_f64(),
        "index rebuilt with one key per module version"
    );
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::super::index::tests::entry;
    use super::super::index::{bulk_put, decode_entries, walk_totals};
    use super::*;

    fn sorted(mut v: Vec<Entry>) -> Vec<Entry> {
        v.sort_by(|a, b| (&a.module, &a.version, &a.kind).cmp(&(&b.module, &b.version, &b.kind)));
        v
    }

    fn legacy_store(root: &Path) -> Vec<Entry> {
        let old = vec![
            entry("example.com/a", "v1.0.0", "info", 1),
            entry("example.com/a", "v1.0.0", "mod", 2),
            entry("example.com/a", "v1.0.0", "zip", 3),
            entry("example.com/a", "v1.0.0-pre", "mod", 4),
            entry("example.com/a/b", "v0.1.0", "zip", 5),
        ];
        let db = sled::Config::new().path(root.join("index")).open().unwrap();
        bulk_put(&db, &old, true).unwrap();
        let legacy = db.open_tree(LEGACY_TREE).unwrap();
        legacy
            .insert(b"example.com/bad@v1.0.0/mod", b"{not json".to_vec())
            .unwrap();
        legacy
            .insert(b"example.com/bad@v1.0.0/exe", b"{}".to_vec())
            .unwrap();
        db.open_tree("trust").unwrap().insert(b"k", b"v").unwrap();
        db.insert(b"default", b"kept").unwrap();
        db.flush().unwrap();
        old
    }

    fn read_back(root: &Path) -> (sled::Db, Vec<Entry>) {
        let db = sled::Config::new().path(root.join("index")).open().unwrap();
        assert!(!needed(&db));
        let mut got = Vec::new();
        for item in db.open_tree(VERSIONS_TREE).unwrap().iter() {
            let (k, v) = item.unwrap();
            got.extend(decode_entries(&k, &v).unwrap());
        }
        (db, sorted(got))
    }

    #[test]
    fn old_layout_is_rebuilt_with_every_other_tree_kept() {
        let d = tempfile::tempdir().unwrap();
        let old = legacy_store(d.path());
        assert_eq!(rebuild(d.path(), 1 << 20).unwrap(), 5);
        let (db, got) = read_back(d.path());
        assert_eq!(got, sorted(old));
        let versions = db.open_tree(VERSIONS_TREE).unwrap();
        assert_eq!(versions.len(), 3);
        assert_eq!(walk_totals(&versions).unwrap(), (5, 15));
        assert_eq!(
            db.open_tree("trust").unwrap().get(b"k").unwrap().unwrap(),
            b"v"
        );
        assert_eq!(db.get(b"default").unwrap().unwrap(), b"kept");
        assert!(!d.path().join(NEXT).exists() && !d.path().join(PREV).exists());
    }

    #[test]
    fn a_crash_at_any_step_of_the_swap_loses_nothing() {
        // Cut short before `complete`: the half-built copy is thrown away, the
        // old index is whole, and the next open rebuilds.
        let d = tempfile::tempdir().unwrap();
        let old = sorted(legacy_store(d.path()));
        std::fs::create_dir_all(d.path().join(NEXT).join("junk")).unwrap();
        recover(d.path()).unwrap();
        assert!(!d.path().join(NEXT).exists());
        let db = sled::Config::new()
            .path(d.path().join("index"))
            .open()
            .unwrap();
        assert!(needed(&db));
        drop(db);

        // Cut between the two renames: the old index is in `index.prev`, the
        // complete new one in `index.next`, no `index`.
        assert_eq!(rebuild(d.path(), 1 << 20).unwrap(), 5);
        std::fs::rename(d.path().join("index"), d.path().join(NEXT)).unwrap();
        std::fs::write(d.path().join(NEXT).join(COMPLETE), b"").unwrap();
        std::fs::create_dir_all(d.path().join(PREV)).unwrap();
        recover(d.path()).unwrap();
        let (_, got) = read_back(d.path());
        assert_eq!(got, old);

        // Cut after the swap, before the old copy was removed.
        std::fs::create_dir_all(d.path().join(PREV).join("x")).unwrap();
        recover(d.path()).unwrap();
        assert!(!d.path().join(PREV).exists());
        let (_, got) = read_back(d.path());
        assert_eq!(got, old);
    }
}
