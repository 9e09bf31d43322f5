//! The audit trail on disk: append-only segment files of records, and a sled index by module per sealed segment.
//!
//! ```text
//! <data-dir>/audit/seg-<start µs, 16 hex>.log   records: [len u32 LE][crc32 u32 LE][JSON], appended
//! <data-dir>/audit/index/                       sled:
//!     m module \0 version \0 seg(8, BE) -> offsets of that version's records in seg (delta varints)
//!     s seg(8, BE) module \0 version \0 -> ()    (which index keys a segment owns, for retention)
//!     z seg(8, BE)                       -> ()    (the segment is sealed: its index is complete)
//! ```
//!
//! Records are only ever appended to the newest ("active") segment; its index
//! lives in memory. When it reaches [`SEGMENT_BYTES`] or [`SEGMENT_AGE`] it is
//! *sealed*: its index is written to sled in one batch (one key per module
//! version, not per record, so the index stays small and sled's write
//! amplification with it), flushed, and marked sealed; a new segment starts.
//!
//! - **Who fetched M[@V]**: one sled prefix scan (`mM\0` or `mM\0V\0`) gives
//!   the offsets of M's records in each sealed segment; each is read with one
//!   positioned read. Plus M's records in the active segment, from memory.
//!   Nothing else is read, however large the trail.
//! - **Crash safety**: a record is appended whole with its CRC; at open, the
//!   active segment is read from the start and cut after its last whole,
//!   matching record (a torn tail from a crash mid-append is dropped); its
//!   in-memory index is rebuilt from what it holds. A segment whose seal was
//!   interrupted is sealed again (the batch is idempotent).
//! - **Retention** deletes whole sealed segments whose newest record is older
//!   than the cutoff (records are kept up to one segment age longer than the
//!   retention), and their index keys.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
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
/// The index database's page cache (it is written once a day and read by queries).
const INDEX_CACHE_BYTES: u64 = 16 << 20;
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

/// Reads a segment from the start: every whole record with its offset, and
/// the length of the good prefix (anything after it is a torn tail).
fn scan(path: &Path) -> std::io::Result<(Vec<(u64, Stored)>, u64)> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let (mut out, mut off) = (Vec::new(), 0u64);
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
        match serde_json::from_slice::<Stored>(&payload) {
            Ok(s) => out.push((off, s)),
            Err(_) => break,
        }
        off += 8 + u64::from(len);
    }
    Ok((out, off))
}

/// The segment being appended to, indexed in memory.
struct Active {
    seg: u64,
    file: File,
    len: u64,
    /// names → offsets of their records in this segment, ascending.
    index: BTreeMap<Vec<u8>, Vec<u64>>,
}

struct Inner {
    dir: PathBuf,
    index: sled::Db,
    active: Mutex<Option<Active>>,
}

/// The on-disk trail: opened by a server (which writes) or by the CLI on a stopped data dir.
#[derive(Clone)]
pub struct Trail(Arc<Inner>);

impl Trail {
    /// Opens (creating) `<data-dir>/audit`: recovers the active segment and
    /// seals any segment a crash left unsealed.
    pub fn open(data_dir: &Path) -> Result<Trail, AuditError> {
        let dir = data_dir.join("audit");
        let index_dir = dir.join("index");
        if crate::admin::lock::held(&index_dir) {
            return Err(AuditError::Locked(data_dir.to_owned()));
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let index = sled::Config::new()
            .path(&index_dir)
            .cache_capacity(INDEX_CACHE_BYTES)
            .open()
            .map_err(db(&dir))?;
        let trail = Trail(Arc::new(Inner {
            dir,
            index,
            active: Mutex::new(None),
        }));
        let segs = trail.segments()?;
        let unsealed: Vec<u64> = segs
            .iter()
            .copied()
            .filter(|s| !trail.is_sealed(*s).unwrap_or(false))
            .collect();
        for (i, seg) in unsealed.iter().enumerate() {
            let path = seg_file(&trail.0.dir, *seg);
            let (records, good) = scan(&path).map_err(io(&path))?;
            let mut idx: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
            for (off, s) in &records {
                idx.entry(names(&s.module, &s.version))
                    .or_default()
                    .push(*off);
            }
            if i + 1 == unsealed.len() && Some(seg) == segs.last() {
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
                    index: idx,
                });
            } else {
                trail.seal(*seg, &idx)?;
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
        let mut k = vec![b'z'];
        k.extend_from_slice(&seg.to_be_bytes());
        self.0.index.contains_key(k).map_err(db(&self.0.dir))
    }

    /// Writes a segment's index to sled in one batch, flushes, marks it sealed.
    fn seal(&self, seg: u64, idx: &BTreeMap<Vec<u8>, Vec<u64>>) -> Result<(), AuditError> {
        let mut batch = sled::Batch::default();
        for (names, offsets) in idx {
            let mut m = vec![b'm'];
            m.extend_from_slice(names);
            m.extend_from_slice(&seg.to_be_bytes());
            batch.insert(m, pack(offsets));
            let mut s = vec![b's'];
            s.extend_from_slice(&seg.to_be_bytes());
            s.extend_from_slice(names);
            batch.insert(s, &[] as &[u8]);
        }
        let mut z = vec![b'z'];
        z.extend_from_slice(&seg.to_be_bytes());
        batch.insert(z, &[] as &[u8]);
        let d = db(&self.0.dir);
        self.0.index.apply_batch(batch).map_err(&d)?;
        self.0.index.flush().map_err(&d)?;
        Ok(())
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
                self.seal(old.seg, &old.index)?;
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
                index: BTreeMap::new(),
            });
        }
        let Some(a) = guard.as_mut() else {
            return Ok(());
        };
        let path = seg_file(&self.0.dir, a.seg);
        let mut buf = Vec::with_capacity(events.len() * 160);
        let mut placed = Vec::with_capacity(events.len());
        for e in events {
            let stored = Stored {
                time_us: e.time_us,
                module: e.module.clone(),
                version: e.version.clone(),
                client: e.client.map(|c| c.to_string()),
                forwarded_for: e.forwarded_for.clone(),
                user: e.user.clone(),
                kind: e.kind.to_string(),
                cache: e.cache.to_string(),
                status: e.status,
                reason: e.reason.clone(),
                tree_size: e.tree_size,
            };
            let payload =
                serde_json::to_vec(&stored).map_err(|x| AuditError::Usage(x.to_string()))?;
            placed.push((names(&e.module, &e.version), a.len + buf.len() as u64));
            buf.extend_from_slice(&frame(&payload));
        }
        a.file.write_all(&buf).map_err(io(&path))?;
        if sync {
            a.file.sync_data().map_err(io(&path))?;
        }
        a.len += buf.len() as u64;
        for (k, off) in placed {
            a.index.entry(k).or_default().push(off);
        }
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
        let mut m = vec![b'm'];
        m.extend_from_slice(&prefix);
        for item in self.0.index.scan_prefix(&m) {
            let (k, v) = item.map_err(db(&self.0.dir))?;
            if k.len() < 1 + 8 {
                continue;
            }
            let (names, seg) = k[1..].split_at(k.len() - 1 - 8);
            let seg = u64::from_be_bytes(seg.try_into().unwrap_or_default());
            found.push((names.to_vec(), seg, varints(&v)));
        }
        if let Some(a) = self.active().as_ref() {
            for (k, offs) in a.index.range(prefix.clone()..) {
                if !k.starts_with(&prefix) {
                    break;
                }
                found.push((k.clone(), a.seg, offs.clone()));
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
                    .filter(|s| s.time_us >= since_us),
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

    /// Records with `since <= time < until`, in time order.
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
            let (records, _) = match scan(&path) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            };
            let mut in_range: Vec<Stored> = records
                .into_iter()
                .map(|(_, s)| s)
                .filter(|s| s.time_us >= since_us && s.time_us < until_us)
                .collect();
            // Batches are written in arrival order; keep times ordered anyway.
            in_range.sort_by_key(|s| s.time_us);
            for s in in_range {
                if !each(s.into_record()) {
                    return Ok(());
                }
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
            removed += scan(&path).map(|(r, _)| r.len() as u64).unwrap_or(0);
            let mut s = vec![b's'];
            s.extend_from_slice(&seg.to_be_bytes());
            let mut batch = sled::Batch::default();
            for item in self.0.index.scan_prefix(&s) {
                let (k, _) = item.map_err(db(&self.0.dir))?;
                let mut m = vec![b'm'];
                m.extend_from_slice(&k[s.len()..]);
                m.extend_from_slice(&seg.to_be_bytes());
                batch.remove(m);
                batch.remove(k);
            }
            // The index goes first: a crash after it leaves a file that the
            // next prune deletes (its seal marker goes last).
            self.0.index.apply_batch(batch).map_err(db(&self.0.dir))?;
            std::fs::remove_file(&path).map_err(io(&path))?;
            let mut z = vec![b'z'];
            z.extend_from_slice(&seg.to_be_bytes());
            self.0.index.remove(z).map_err(db(&self.0.dir))?;
        }
        self.0.index.flush().map_err(db(&self.0.dir))?;
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
            self.seal(old.seg, &old.index)?;
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

fn db(dir: &Path) -> impl Fn(sled::Error) -> AuditError + '_ {
    move |e| AuditError::Db {
        dir: dir.to_owned(),
        msg: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
