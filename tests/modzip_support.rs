//! Test helpers shared by the `modzip_*` tests (included with `#[path]`): a tiny zip writer
//! that can produce hostile archives (lying sizes, bad CRCs, duplicate names) and a txtar reader.
#![allow(dead_code)]

use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

pub const STORE: u16 = 0;
pub const DEFLATE: u16 = 8;

/// One zip entry to write. `declared_size`/`crc` override the true values (to lie).
#[derive(Clone, Debug)]
pub struct ZEntry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub method: u16,
    pub declared_size: Option<u64>,
    pub crc: Option<u32>,
    pub descriptor: bool,
}

impl ZEntry {
    pub fn new(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        ZEntry {
            name: name.as_ref().to_vec(),
            data: data.as_ref().to_vec(),
            method: DEFLATE,
            declared_size: None,
            crc: None,
            descriptor: false,
        }
    }
    pub fn stored(mut self) -> Self {
        self.method = STORE;
        self
    }
    pub fn declared(mut self, n: u64) -> Self {
        self.declared_size = Some(n);
        self
    }
    pub fn crc(mut self, c: u32) -> Self {
        self.crc = Some(c);
        self
    }
    pub fn descriptor(mut self) -> Self {
        self.descriptor = true;
        self
    }
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Central-directory offsets of each entry's fields, to patch archives after writing.
pub struct Layout {
    pub central_offsets: Vec<usize>,
    pub data_offsets: Vec<usize>,
}

/// Writes a zip archive (no zip64) with entries in the given order.
pub fn build_zip_layout(entries: &[ZEntry]) -> (Vec<u8>, Layout) {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut layout = Layout {
        central_offsets: vec![],
        data_offsets: vec![],
    };
    for e in entries {
        let body = if e.method == DEFLATE {
            deflate(&e.data)
        } else {
            e.data.clone()
        };
        let crc = e.crc.unwrap_or_else(|| crc32fast::hash(&e.data));
        let usize_ = e.declared_size.unwrap_or(e.data.len() as u64) as u32;
        let csize = body.len() as u32;
        let flags: u16 = if e.descriptor { 0x8 | 0x800 } else { 0x800 };
        let offset = out.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0x21u16.to_le_bytes());
        let (lc, lcs, lus) = if e.descriptor {
            (0, 0, 0)
        } else {
            (crc, csize, usize_)
        };
        out.extend_from_slice(&lc.to_le_bytes());
        out.extend_from_slice(&lcs.to_le_bytes());
        out.extend_from_slice(&lus.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.name);
        layout.data_offsets.push(out.len());
        out.extend_from_slice(&body);
        if e.descriptor {
            out.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&csize.to_le_bytes());
            out.extend_from_slice(&usize_.to_le_bytes());
        }
        layout.central_offsets.push(central.len());
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&(20u16 | 3 << 8).to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&flags.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&csize.to_le_bytes());
        central.extend_from_slice(&usize_.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0u8; 8]); // extra len, comment len, disk, internal attrs
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
    }
    let cd_offset = out.len();
    for o in &mut layout.central_offsets {
        *o += cd_offset;
    }
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&(cd_offset as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    (out, layout)
}

pub fn build_zip(entries: &[ZEntry]) -> Vec<u8> {
    build_zip_layout(entries).0
}

/// A parsed txtar archive (golang.org/x/tools/txtar format).
pub struct Txtar {
    pub comment: String,
    pub files: Vec<(String, Vec<u8>)>,
}

fn marker_name(line: &str) -> Option<&str> {
    let l = line.strip_suffix('\n').unwrap_or(line);
    let inner = l.strip_prefix("-- ")?.strip_suffix(" --")?;
    let name = inner.trim();
    (!name.is_empty()).then_some(name)
}

pub fn parse_txtar(text: &str) -> Txtar {
    let mut comment = String::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = marker_name(line) {
            files.push((name.to_string(), Vec::new()));
        } else if let Some((_, data)) = files.last_mut() {
            data.extend_from_slice(line.as_bytes());
        } else {
            comment.push_str(line);
        }
    }
    for (_, data) in &mut files {
        if !data.is_empty() && !data.ends_with(b"\n") {
            data.push(b'\n');
        }
    }
    Txtar { comment, files }
}

/// `key=value` header lines of an x/mod zip test (comments after `#` dropped).
pub fn header(t: &Txtar, key: &str) -> Option<String> {
    t.comment.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("").trim();
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}
