//! The audit trail on disk: append-only segment files of records, each sealed with a sorted index by module version.
//!
//! ```text
//! <data-dir>/audit/lock                  held (flock) by the process that has the trail open
//! <data-dir>/audit/seg-<start µs, hex>.log records: [len u32 LE][crc32 u32 LE][JSON], appended
//! <data-dir>/audit/seg-<start µs, hex>.idx written once when the segment is sealed:
//!     entries  [klen u16][module \0 version \0][n u32][blen u32][n offsets, delta varints]  sorted by key
//!     fences   [klen u16][key][entry position u64]   the key of every FENCE_EVERY-th entry
//!     footer   [fences position u64][fence count u32][crc32 of the fences u32]["MGA1"]
//! ```
//!
//! Records are only ever appended to the newest ("active") segment, whose
//! index lives in memory — compactly: a hash of each record's module and its
//! offset, 16 bytes a record, whatever the names (a full map of names there
//! held ~120 MB for a segment of 480k distinct versions, most of a
//! million-version mirror's RSS). When it reaches [`SEGMENT_BYTES`] or
//! [`SEGMENT_AGE_US`] it is *sealed*: its index is written to `.idx.tmp`,
//! synced and renamed (a segment is sealed iff its `.idx` exists), and a new
//! segment starts.
//!
//! - **Who fetched M[@V]**: in each sealed segment, the fences (kept in
//!   memory once read; a few KiB per segment) locate M's first entry, and
//!   the entries are read from there while they start with `M\0`; each record
//!   they name is read with one positioned read. M's records in the active
//!   segment come from memory. Nothing about other modules is read but the
//!   one index block each fence search lands in. In the active segment, the
//!   records whose module hash matches are read and checked by name.
//! - **Crash safety**: a record is appended whole with its CRC; at open, the
//!   active segment is read from the start and cut after its last whole,
//!   matching record (a torn tail from a crash mid-append is dropped), and its
//!   index rebuilt from what it holds. A segment whose seal was interrupted
//!   (no `.idx`) is sealed again from its file. Sealing reads the segment
//!   back once to sort its names (two flat buffers, freed when written).
//! - **Retention** deletes whole sealed segments whose newest record is older
//!   than the cutoff (records are kept up to one segment age longer than the
//!   retention).

use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{AuditError, Event, Record, rfc3339_us, verdict};

/// A segment is sealed once it holds this many bytes...
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// ...or once its first record is this old (so retention can drop whole days).
pub const SEGMENT_AGE_US: u64 = 86_400 * 1_000_000;
/// One fence per this many index entries.
const FENCE_EVERY: usize = 64;
const IDX_MAGIC: &[u8; 4] = b"MGA1";
/// How far a record's time may lie before its segment's start: records are
/// stamped when answered and queued briefly, so a batch is not strictly in
/// time order. Time-range reads widen their segment bounds by this much.
const SLACK_US: u64 = 60 * 1_000_000;
/// Largest record accepted when reading back (a longer length is damage).
const MAX_RECORD: u32 = 64 << 10;

/// One record as stored (short keys: the trail is mostly these).
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "T")]
    time_us: u64,
    #[serde(rename = "m")]
    module: String,
    #[serde(rename = "v")]
    version: String,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    forwarded_for: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(rename = "k")]
    kind: String,
    #[serde(rename = "h", default, skip_serializing_if = "String::is_empty")]
    cache: String,
    #[serde(rename = "s")]
    status: u16,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    tree_size: Option<i64>,
}

/// [`Stored`] borrowed from an [`Event`], for writing without copies.
#[derive(Serialize)]
struct StoredRef<'a> {
    #[serde(rename = "T")]
    time_us: u64,
    #[serde(rename = "m")]
    module: &'a str,
    #[serde(rename = "v")]
    version: &'a str,
    #[serde(rename = "c", skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    #[serde(rename = "f", skip_serializing_if = "Option::is_none")]
    forwarded_for: Option<&'a str>,
    #[serde(rename = "u", skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(rename = "k")]
    kind: &'a str,
    #[serde(rename = "h", skip_serializing_if = "str::is_empty")]
    cache: &'a str,
    #[serde(rename = "s")]
    status: u16,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(rename = "t", skip_serializing_if = "Option::is_none")]
    tree_size: Option<i64>,
}

/// Writes an address as `Display` does; IPv4 (the common case) without the
/// formatting machinery, which cost more than the rest of a record.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if o >= 100 {
                    out.push((b'0' + o / 100) as char);
                }
                if o >= 10 {
                    out.push((b'0' + o / 10 % 10) as char);
                }
                out.push((b'0' + o % 10) as char);
            }
        }
        v6 => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

impl Stored {
    fn into_record(self) -> Record {
        Record {
            time: rfc3339_us(self.time_us),
            time_us: self.time_us,
            client: self.client,
            forwarded_for: self.forwarded_for,
            user: self.user,
            module: self.module,
            version: self.version,
            verdict: verdict(self.status).to_string(),
            kind: self.kind,
            cache: self.cache,
            status: self.status,
            reason: self.reason,
            tree_size: self.tree_size,
        }
    }
}

/// `module \0 version \0`: the name part of index keys.
fn names(module: &str, version: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(module.len() + version.len() + 2);
    k.extend_from_slice(module.as_bytes());
    k.push(0);
    k.extend_from_slice(version.as_bytes());
    k.push(0);
    k
}

/// The prefix of a module's (or one version's) names.
fn name_prefix(module: &str, version: Option<&str>) -> Vec<u8> {
    match version {
        Some(v) => names(module, v),
        None => {
            let mut k = module.as_bytes().to_vec();
            k.push(0);
            k
        }
    }
}

fn seg_file(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("seg-{seg:016x}.log"))
}

fn idx_file(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("seg-{seg:016x}.idx"))
}

fn seg_id(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    u64::from_str_radix(hex, 16).ok()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varints(mut b: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let (mut acc, mut shift, mut prev) = (0u64, 0u32, 0u64);
    while let Some((&x, rest)) = b.split_first() {
        b = rest;
        if shift < 64 {
            acc |= u64::from(x & 0x7f) << shift;
        }
        shift += 7;
        if x & 0x80 == 0 {
            prev += acc;
            out.push(prev);
            acc = 0;
            shift = 0;
        }
    }
    out
}

/// Offsets, delta-encoded (they ascend).
fn pack(offsets: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(offsets.len() * 3);
    let mut prev = 0;
    for &o in offsets {
        put_varint(&mut out, o - prev);
        prev = o;
    }
    out
}

#[cfg(test)]
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// Reads the record at `off`; `None` if it is not a whole, matching record.
fn read_at(f: &File, off: u64) -> Option<Stored> {
    let mut head = [0u8; 8];
    f.read_exact_at(&mut head, off).ok()?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let mut payload = vec![0u8; len as usize];
    f.read_exact_at(&mut payload, off + 8).ok()?;
    if crc32fast::hash(&payload) != crc {
        return None;
    }
    serde_json::from_slice(&payload).ok()
}

/// The hash the active index keeps of a record's module (in memory only).
fn module_hash(module: &str) -> u64 {
    hash64(module)
}

/// A 64-bit hash for the in-memory indexes here (never written to disk).
fn hash64(v: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// A segment's index entries, sorted by names then offset, in two flat
/// buffers (a few large allocations, not one per name, so they go back to
/// the system when dropped).
struct Sorted {
    names: Vec<u8>,
    /// (start in `names`, length, record offset)
    items: Vec<(u32, u16, u64)>,
}

impl Sorted {
    fn key(&self, item: &(u32, u16, u64)) -> &[u8] {
        &self.names[item.0 as usize..item.0 as usize + item.1 as usize]
    }

    /// Each distinct names with its offsets, ascending.
    fn groups(&self) -> impl Iterator<Item = (&[u8], Vec<u64>)> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            let first = self.items.get(i)?;
            let key = self.key(first);
            let mut offs = Vec::new();
            while let Some(it) = self.items.get(i) {
                if self.key(it) != key {
                    break;
                }
                offs.push(it.2);
                i += 1;
            }
            Some((key, offs))
        })
    }
}

/// Reads a segment from the start: the length of the good prefix (anything
/// after it is a torn tail) and, if `sort`, its index entries sorted; calls
/// `each` with every whole record's module hash and offset.
fn index_of(
    path: &Path,
    sort: bool,
    mut each: impl FnMut(u64, u64),
) -> std::io::Result<(Sorted, u64)> {
    let mut sorted = Sorted {
        names: Vec::new(),
        items: Vec::new(),
    };
    // Each distinct names is kept once (a hit-heavy segment repeats a few
    // thousand versions hundreds of thousands of times): the table holds
    // (start, length) of the names already in `names`, by their hash.
    let mut seen: hashbrown::HashTable<(u32, u16)> = hashbrown::HashTable::new();
    let hash_of = |k: &[u8]| hash64(k);
    let good = scan_with(path, |off, s| {
        each(module_hash(&s.module), off);
        if !sort {
            return true;
        }
        let key = names(&s.module, &s.version);
        let Ok(len) = u16::try_from(key.len()) else {
            return true;
        };
        let h = hash_of(&key);
        let names_buf = &sorted.names;
        let found = seen
            .find(h, |&(st, ln)| {
                names_buf.get(st as usize..st as usize + ln as usize) == Some(key.as_slice())
            })
            .copied();
        let start = match found {
            Some((st, _)) => st,
            // A segment is far below 4 GiB.
            None => match u32::try_from(sorted.names.len()) {
                Ok(st) => {
                    sorted.names.extend_from_slice(&key);
                    let names_buf = &sorted.names;
                    seen.insert_unique(h, (st, len), |&(s, l)| {
                        hash_of(&names_buf[s as usize..s as usize + l as usize])
                    });
                    st
                }
                Err(_) => return true,
            },
        };
        sorted.items.push((start, len, off));
        true
    })?;
    drop(seen);
    let Sorted { names, mut items } = sorted;
    items.sort_unstable_by(|a, b| {
        let ka = &names[a.0 as usize..a.0 as usize + a.1 as usize];
        let kb = &names[b.0 as usize..b.0 as usize + b.1 as usize];
        ka.cmp(kb).then(a.2.cmp(&b.2))
    });
    Ok((Sorted { names, items }, good))
}

/// Calls `each` with every whole record of a segment in file order until it
/// says stop; returns the length of the good prefix read.
fn scan_with(path: &Path, mut each: impl FnMut(u64, Stored) -> bool) -> std::io::Result<u64> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut off = 0u64;
    let mut head = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        if r.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            break;
        }
        payload.resize(len as usize, 0);
        if r.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            break;
        }
        let Ok(s) = serde_json::from_slice::<Stored>(&payload) else {
            break;
        };
        let at = off;
        off += 8 + u64::from(len);
        if !each(at, s) {
            break;
        }
    }
    Ok(off)
}

/// The segment being appended to, indexed in memory.
struct Active {
    seg: u64,
    file: File,
    len: u64,
    /// (module hash, offset) of every record in this segment, in file order.
    index: Vec<(u64, u64)>,
}

/// A sealed segment's fences: (first key of a run of entries, its position).
type Fences = Arc<Vec<(Vec<u8>, u64)>>;

struct Inner {
    dir: PathBuf,
    /// Held while the trail is open: one process appends at a time.
    _lock: File,
    active: Mutex<Option<Active>>,
    fences: Mutex<std::collections::HashMap<u64, Fences>>,
}

/// The on-disk trail: opened by a server (which writes) or by the CLI on a stopped data dir.
#[derive(Clone)]
pub struct Trail(Arc<Inner>);

impl Trail {
    /// Opens (creating) `<data-dir>/audit`: recovers the active segment and
    /// seals any segment a crash left unsealed.
    pub fn open(data_dir: &Path) -> Result<Trail, AuditError> {
        let dir = data_dir.join("audit");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("lock");
        let Some(lock) = crate::admin::lock::acquire(&lock_path).map_err(io(&lock_path))? else {
            return Err(AuditError::Locked(data_dir.to_owned()));
        };
        let trail = Trail(Arc::new(Inner {
            dir,
            _lock: lock,
            active: Mutex::new(None),
            fences: Mutex::default(),
        }));
        let segs = trail.segments()?;
        let unsealed: Vec<u64> = segs
            .iter()
            .copied()
            .filter(|s| !trail.is_sealed(*s).unwrap_or(false))
            .collect();
        for (i, seg) in unsealed.iter().enumerate() {
            let path = seg_file(&trail.0.dir, *seg);
            let active = i + 1 == unsealed.len() && Some(seg) == segs.last();
            let mut index = Vec::new();
            let (sorted, good) = index_of(&path, !active, |h, off| {
                if active {
                    index.push((h, off));
                }
            })
            .map_err(io(&path))?;
            if active {
                drop(sorted);
                // The newest segment stays active: cut a torn tail, go on appending.
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(&path)
                    .map_err(io(&path))?;
                if file.metadata().map_err(io(&path))?.len() != good {
                    tracing::warn!(segment = %path.display(), good_bytes = good,
                        "audit trail: dropping a torn record at the end (a crash mid-write)");
                    file.set_len(good).map_err(io(&path))?;
                }
                *trail.active() = Some(Active {
                    seg: *seg,
                    file,
                    len: good,
                    index,
                });
            } else {
                trail.seal_sorted(*seg, &sorted)?;
            }
        }
        Ok(trail)
    }

    fn active(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        self.0.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Segment ids on disk, oldest first.
    fn segments(&self) -> Result<Vec<u64>, AuditError> {
        let dir = &self.0.dir;
        let mut segs: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .filter_map(|e| seg_id(&e.file_name().to_string_lossy()))
            .collect();
        segs.sort_unstable();
        Ok(segs)
    }

    fn is_sealed(&self, seg: u64) -> Result<bool, AuditError> {
        Ok(idx_file(&self.0.dir, seg).exists())
    }

    /// Seals a segment whose file is complete: reads it back for its names.
    fn seal(&self, seg: u64) -> Result<(), AuditError> {
        let path = seg_file(&self.0.dir, seg);
        let (sorted, _) = index_of(&path, true, |_, _| {}).map_err(io(&path))?;
        self.seal_sorted(seg, &sorted)
    }

    /// Writes a segment's sorted index next to it (tmp, sync, rename, sync dir).
    fn seal_sorted(&self, seg: u64, idx: &Sorted) -> Result<(), AuditError> {
        let mut out = Vec::with_capacity(idx.items.len() * 32);
        let mut fences = Vec::new();
        for (i, (key, offsets)) in idx.groups().enumerate() {
            if i % FENCE_EVERY == 0 {
                fences.push((key.to_vec(), out.len() as u64));
            }
            let packed = pack(&offsets);
            out.extend_from_slice(&(key.len() as u16).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
            out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            out.extend_from_slice(&packed);
        }
        let fence_pos = out.len() as u64;
        for (key, pos) in &fences {
            out.extend_from_slice(&(key.len() as u16).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&pos.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[fence_pos as usize..]);
        out.extend_from_slice(&fence_pos.to_le_bytes());
        out.extend_from_slice(&(fences.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(IDX_MAGIC);
        let path = idx_file(&self.0.dir, seg);
        let tmp = path.with_extension("idx.tmp");
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&out).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = File::open(&self.0.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// A sealed segment's fences (read once, then kept).
    fn fences(&self, seg: u64) -> Option<Fences> {
        if let Some(f) = self
            .0
            .fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seg)
        {
            return Some(f.clone());
        }
        let f = File::open(idx_file(&self.0.dir, seg)).ok()?;
        let len = f.metadata().ok()?.len();
        let mut foot = [0u8; 20];
        f.read_exact_at(&mut foot, len.checked_sub(20)?).ok()?;
        if &foot[16..] != IDX_MAGIC {
            return None;
        }
        let pos = u64::from_le_bytes(foot[..8].try_into().ok()?);
        let count = u32::from_le_bytes(foot[8..12].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(foot[12..16].try_into().ok()?);
        let mut raw = vec![0u8; usize::try_from(len.checked_sub(20)?.checked_sub(pos)?).ok()?];
        f.read_exact_at(&mut raw, pos).ok()?;
        if crc32fast::hash(&raw) != crc {
            return None;
        }
        let mut fences = Vec::with_capacity(count);
        let mut b = &raw[..];
        for _ in 0..count {
            let klen = u16::from_le_bytes(b.get(..2)?.try_into().ok()?) as usize;
            let key = b.get(2..2 + klen)?.to_vec();
            let at = u64::from_le_bytes(b.get(2 + klen..10 + klen)?.try_into().ok()?);
            b = &b[10 + klen..];
            fences.push((key, at));
        }
        let fences = Arc::new(fences);
        self.0
            .fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seg, fences.clone());
        Some(fences)
    }

    /// The entries of a sealed segment's index whose key starts with `prefix`.
    fn lookup(&self, seg: u64, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u64>)> {
        let Some(fences) = self.fences(seg) else {
            return Vec::new();
        };
        if fences.is_empty() {
            return Vec::new();
        }
        // The last fence whose key sorts before the prefix: M's entries start in its run.
        let i = fences.partition_point(|(k, _)| k.as_slice() < prefix);
        let start = fences[i.saturating_sub(1)].1;
        let Ok(f) = File::open(idx_file(&self.0.dir, seg)) else {
            return Vec::new();
        };
        let mut r = BufReader::with_capacity(16 << 10, f);
        if std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(start)).is_err() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut head = [0u8; 2];
        loop {
            if r.read_exact(&mut head).is_err() {
                break;
            }
            let klen = u16::from_le_bytes(head) as usize;
            let mut key = vec![0u8; klen];
            let mut counts = [0u8; 8];
            if r.read_exact(&mut key).is_err() || r.read_exact(&mut counts).is_err() {
                break;
            }
            let blen = u32::from_le_bytes([counts[4], counts[5], counts[6], counts[7]]) as usize;
            if blen > 1 << 30 {
                break; // damage: no honest entry is this long
            }
            let mut packed = vec![0u8; blen];
            if r.read_exact(&mut packed).is_err() {
                break;
            }
            if key.as_slice() > prefix && !key.starts_with(prefix) {
                break; // sorted: past M
            }
            if key.starts_with(prefix) {
                out.push((key, varints(&packed)));
            }
        }
        out
    }

    /// Appends records to the active segment (starting or sealing segments as
    /// needed); `sync` makes them durable (fdatasync) before returning.
    pub fn write(&self, events: &[Event], sync: bool) -> Result<(), AuditError> {
        if events.is_empty() && !sync {
            return Ok(());
        }
        let mut guard = self.active();
        let now = events
            .iter()
            .map(|e| e.time_us)
            .min()
            .unwrap_or_else(super::now_us);
        let rotate = match guard.as_ref() {
            None => true,
            Some(a) => a.len >= SEGMENT_BYTES || now.saturating_sub(a.seg) >= SEGMENT_AGE_US,
        };
        if rotate && !events.is_empty() {
            if let Some(old) = guard.take() {
                old.file
                    .sync_data()
                    .map_err(io(&seg_file(&self.0.dir, old.seg)))?;
                drop(old.index);
                self.seal(old.seg)?;
            }
            // Segment ids ascend even if the clock steps back.
            let last = self.segments()?.last().copied().unwrap_or(0);
            let seg = now.max(last + 1);
            let path = seg_file(&self.0.dir, seg);
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(io(&path))?;
            // The new file's name must survive a crash too.
            if let Ok(d) = File::open(&self.0.dir) {
                let _ = d.sync_all();
            }
            *guard = Some(Active {
                seg,
                file,
                len: 0,
                index: Vec::new(),
            });
        }
        let Some(a) = guard.as_mut() else {
            return Ok(());
        };
        let path = seg_file(&self.0.dir, a.seg);
        // Records are framed straight into one buffer: no allocation per record.
        let mut buf = Vec::with_capacity(events.len() * 160);
        let mut index = Vec::with_capacity(events.len());
        let mut ip = String::with_capacity(40);
        for e in events {
            let at = buf.len();
            buf.extend_from_slice(&[0u8; 8]);
            ip.clear();
            if let Some(c) = e.client {
                push_ip(&mut ip, c);
            }
            let stored = StoredRef {
                time_us: e.time_us,
                module: &e.module,
                version: &e.version,
                client: e.client.map(|_| ip.as_str()),
                forwarded_for: e.forwarded_for.as_deref(),
                user: e.user.as_deref(),
                kind: e.kind,
                cache: e.cache,
                status: e.status,
                reason: e.reason.as_deref(),
                tree_size: e.tree_size,
            };
            serde_json::to_writer(&mut buf, &stored)
                .map_err(|x| AuditError::Usage(x.to_string()))?;
            let len = (buf.len() - at - 8) as u32;
            let crc = crc32fast::hash(&buf[at + 8..]);
            buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
            buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            index.push((module_hash(&e.module), a.len + at as u64));
        }
        if let Err(e) = a.file.write_all(&buf) {
            // The in-memory index must not name what did not reach the
            // file: rebuild it from the file at the next open (drop it now).
            let seg = a.seg;
            *guard = None;
            return Err(io(&seg_file(&self.0.dir, seg))(e));
        }
        // Only what reached the file is indexed.
        a.index.extend(index);
        if sync {
            a.file.sync_data().map_err(io(&path))?;
        }
        a.len += buf.len() as u64;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.write(&[], true)
    }

    /// Every record of `module` (or only of `module@version`) at or after
    /// `since` (µs), by version, then time. Reads only that module's index
    /// entries and records.
    pub fn who(
        &self,
        module: &str,
        version: Option<&str>,
        since_us: u64,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), AuditError> {
        let prefix = name_prefix(module, version);
        // (names, segment, offsets), sealed segments first, then the active one.
        let mut found: Vec<(Vec<u8>, u64, Vec<u64>)> = Vec::new();
        let active_seg = self.active().as_ref().map(|a| a.seg);
        for seg in self.segments()? {
            if Some(seg) == active_seg {
                continue;
            }
            for (names, offsets) in self.lookup(seg, &prefix) {
                found.push((names, seg, offsets));
            }
        }
        // The active segment: every record of a module with M's hash (read
        // below and checked by name: a hash names no version, and may collide).
        if let Some(a) = self.active().as_ref() {
            let h = module_hash(module);
            let offs: Vec<u64> = a
                .index
                .iter()
                .filter(|(mh, _)| *mh == h)
                .map(|(_, off)| *off)
                .collect();
            if !offs.is_empty() {
                found.push((prefix.clone(), a.seg, offs));
            }
        }
        // By version, then segment (time).
        found.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
        let mut open: Option<(u64, File)> = None;
        let mut records = Vec::new();
        for (_, seg, offsets) in found {
            if open.as_ref().is_none_or(|(s, _)| *s != seg) {
                let path = seg_file(&self.0.dir, seg);
                match File::open(&path) {
                    Ok(f) => open = Some((seg, f)),
                    // Removed by retention since the index was read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(&path)(e)),
                }
            }
            let Some((_, f)) = &open else { continue };
            records.extend(
                offsets
                    .into_iter()
                    .filter_map(|off| read_at(f, off))
                    .filter(|s| {
                        s.time_us >= since_us
                            && s.module == module
                            && version.is_none_or(|v| s.version == v)
                    }),
            );
        }
        // Appended in arrival order: put each version's records in time order.
        records.sort_by(|a, b| (&a.version, a.time_us).cmp(&(&b.version, b.time_us)));
        for s in records {
            if !each(s.into_record()) {
                break;
            }
        }
        Ok(())
    }

    /// Records with `since <= time < until`, in the order they were written:
    /// time order, but for records answered within the same few milliseconds
    /// (a batch is queued in arrival order, each stamped when answered).
    pub fn export(
        &self,
        since_us: u64,
        until_us: u64,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), AuditError> {
        let segs = self.segments()?;
        for (i, seg) in segs.iter().enumerate() {
            // A segment holds records from its id up to the next one's.
            let end = segs.get(i + 1).copied().unwrap_or(u64::MAX);
            if end.saturating_add(SLACK_US) <= since_us || *seg >= until_us.saturating_add(SLACK_US)
            {
                continue;
            }
            let path = seg_file(&self.0.dir, *seg);
            // Streamed: a segment's records are never all in memory at once.
            let mut stopped = false;
            let read = scan_with(&path, |_, s| {
                if s.time_us < since_us || s.time_us >= until_us {
                    return true;
                }
                stopped = !each(s.into_record());
                !stopped
            });
            match read {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            }
            if stopped {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Deletes sealed segments whose records are all older than `cutoff_us`
    /// (a segment ends where the next begins); returns how many records went.
    pub fn prune(&self, cutoff_us: u64) -> Result<u64, AuditError> {
        let segs = self.segments()?;
        let active = self.active().as_ref().map(|a| a.seg);
        let mut removed = 0u64;
        for (i, seg) in segs.iter().enumerate() {
            let Some(&end) = segs.get(i + 1) else { break };
            if end.saturating_add(SLACK_US) > cutoff_us
                || Some(*seg) == active
                || !self.is_sealed(*seg)?
            {
                continue;
            }
            let path = seg_file(&self.0.dir, *seg);
            let mut n = 0u64;
            let _ = scan_with(&path, |_, _| {
                n += 1;
                true
            });
            removed += n;
            // The records go first; an index left by a crash here names no
            // file and is removed at the next prune.
            std::fs::remove_file(&path).map_err(io(&path))?;
            let idx = idx_file(&self.0.dir, *seg);
            let _ = std::fs::remove_file(&idx);
            self.0
                .fences
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(seg);
        }
        // Indexes whose segment is gone.
        if let Ok(rd) = std::fs::read_dir(&self.0.dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(seg) = name
                    .strip_suffix(".idx")
                    .and_then(|n| seg_id(&format!("{n}.log")))
                    && !seg_file(&self.0.dir, seg).exists()
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(removed)
    }

    /// Records in the trail (reads every segment: for tests and measurements).
    pub fn len(&self) -> usize {
        let mut n = 0;
        let _ = self.export(0, u64::MAX, |_| {
            n += 1;
            true
        });
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seals the active segment now (tests and measurements; the writer
    /// seals by size and age).
    pub fn seal_active(&self) -> Result<(), AuditError> {
        let mut guard = self.active();
        if let Some(old) = guard.take() {
            old.file
                .sync_data()
                .map_err(io(&seg_file(&self.0.dir, old.seg)))?;
            drop(old.index);
            self.seal(old.seg)?;
        }
        Ok(())
    }

    /// Bytes the trail's files take on disk (segments and index).
    pub fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.0.dir)
    }
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some(if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            })
        })
        .sum()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |e| AuditError::Db {
        dir: path.to_owned(),
        msg: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_and_sealed_segments_answer_alike() {
        // Modules that are prefixes of one another, versions of several
        // modules: the active segment's hash index must name exactly what
        // the sealed index names, for a module and for one version.
        let d = tempfile::tempdir().unwrap();
        let t = Trail::open(d.path()).unwrap();
        let mods = ["a.com/m", "a.com/m/v2", "a.com/mm", "b.com/m"];
        let mut evs = Vec::new();
        for i in 0..400u64 {
            evs.push(Event {
                time_us: 1000 + i,
                module: mods[(i % 4) as usize].to_string(),
                version: format!("v1.{}.0", i % 5),
                kind: "mod",
                cache: "hit",
                status: 200,
                ..Event::default()
            });
        }
        t.write(&evs, true).unwrap();
        let ask = |t: &Trail| {
            let mut out = Vec::new();
            for m in mods {
                for v in [None, Some("v1.0.0"), Some("v1.3.0"), Some("v9.9.9")] {
                    let mut got = Vec::new();
                    t.who(m, v, 0, |r| {
                        got.push((r.module, r.version, r.time_us));
                        true
                    })
                    .unwrap();
                    let want = evs
                        .iter()
                        .filter(|e| e.module == m && v.is_none_or(|v| e.version == v))
                        .count();
                    assert_eq!(got.len(), want, "{m} {v:?}");
                    out.push(got);
                }
            }
            out
        };
        let active = ask(&t);
        drop(t);
        // Reopened: the active segment's index is rebuilt from its file.
        let t = Trail::open(d.path()).unwrap();
        assert_eq!(ask(&t), active);
        t.seal_active().unwrap();
        assert_eq!(ask(&t), active);
    }

    #[test]
    fn sealed_index_finds_exactly_a_modules_records() {
        let d = tempfile::tempdir().unwrap();
        let t = Trail::open(d.path()).unwrap();
        assert!(Trail::open(d.path()).is_err(), "one process at a time");
        let mut evs = Vec::new();
        for i in 0..3000u64 {
            evs.push(Event {
                time_us: 1000 + i,
                module: format!("a.com/m{}", i % 300),
                version: format!("v1.{}.0", i % 7),
                kind: "mod",
                cache: "hit",
                status: 200,
                ..Event::default()
            });
        }
        t.write(&evs, true).unwrap();
        t.seal_active().unwrap();
        t.write(&evs[..10], true).unwrap();
        drop(t);
        let t = Trail::open(d.path()).unwrap();
        for m in [0, 1, 10, 100, 150, 299] {
            let want = evs
                .iter()
                .filter(|e| e.module == format!("a.com/m{m}"))
                .count()
                + usize::from(m < 10);
            let mut n = 0;
            t.who(&format!("a.com/m{m}"), None, 0, |r| {
                assert_eq!(r.module, format!("a.com/m{m}"));
                n += 1;
                true
            })
            .unwrap();
            assert_eq!(n, want, "a.com/m{m}");
        }
        let mut n = 0;
        t.who("a.com/m1", Some("v1.1.0"), 0, |r| {
            assert_eq!(r.version, "v1.1.0");
            n += 1;
            true
        })
        .unwrap();
        assert!(n > 0);
        assert_eq!(t.len(), 3010);
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for a in ["0.0.0.0", "127.0.0.2", "10.200.9.255", "::1", "2001:db8::7"] {
            let ip: std::net::IpAddr = a.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    #[test]
    fn varints_round_trip() {
        let offs = vec![0, 1, 127, 128, 300, 1 << 20, (1 << 40) + 5];
        assert_eq!(varints(&pack(&offs)), offs);
        assert_eq!(varints(&[]), Vec::<u64>::new());
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let ev = |t: u64| Event {
            time_us: t,
            module: "a.com/m".into(),
            version: "v1.0.0".into(),
            kind: "zip",
            cache: "hit",
            status: 200,
            ..Event::default()
        };
        let t = Trail::open(d.path()).unwrap();
        t.write(&[ev(10), ev(11)], true).unwrap();
        drop(t);
        // A crash mid-append: half a record at the end.
        let seg = std::fs::read_dir(d.path().join("audit"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("seg-"))
            .unwrap()
            .path();
        let whole = std::fs::metadata(&seg).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&frame(b"{\"T\":12,\"m\":\"a.com/m\"")[..15])
            .unwrap();
        drop(f);
        let t = Trail::open(d.path()).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), whole);
        t.write(&[ev(13)], true).unwrap();
        let mut times = vec![];
        t.who("a.com/m", None, 0, |r| {
            times.push(r.time_us);
            true
        })
        .unwrap();
        assert_eq!(times, vec![10, 11, 13]);
        // Sealed and reopened: the same answer, now from the sled index.
        t.seal_active().unwrap();
        t.write(&[ev(14)], true).unwrap();
        drop(t);
        let t = Trail::open(d.path()).unwrap();
        let mut times = vec![];
        t.who("a.com/m", Some("v1.0.0"), 11, |r| {
            times.push(r.time_us);
            true
        })
        .unwrap();
        assert_eq!(times, vec![11, 13, 14]);
    }
}
