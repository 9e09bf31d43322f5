//! A minimal zip reader with Go `archive/zip` (go1.19) semantics, written for hostile input:
//! raw (byte) names, duplicate entries kept in central-directory order, zip64, data
//! descriptors, store/deflate only, and streaming content with size and CRC-32 checks.
//!
//! Every offset and size read from the file is checked before use; nothing is allocated
//! from a size field except the name/extra/comment of one central-directory record
//! (at most 3 × 64 KiB).

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use flate2::{Decompress, FlushDecompress, Status};

use super::error::ZipError;

const FILE_HEADER_SIG: u32 = 0x0403_4b50;
const DIR_HEADER_SIG: u32 = 0x0201_4b50;
const DIR64_LOC_SIG: u32 = 0x0706_4b50;
const DIR64_END_SIG: u32 = 0x0606_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const FILE_HEADER_LEN: u64 = 30;
const DIR_HEADER_LEN: usize = 46;
const DIR_END_LEN: usize = 22;
const DIR64_LOC_LEN: u64 = 20;
const DIR64_END_LEN: usize = 56;
const ZIP64_EXTRA_ID: u16 = 0x0001;

pub(crate) const METHOD_STORE: u16 = 0;
pub(crate) const METHOD_DEFLATE: u16 = 8;

/// One central-directory record.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: Vec<u8>,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Absolute offset of the local file header (base offset applied); may be out of range.
    pub header_offset: i128,
}

impl Entry {
    pub(crate) fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn not_zip(reason: &'static str) -> ZipError {
    ZipError::NotAZip { reason }
}

/// Reads exactly `buf.len()` bytes at `off`; `Ok(false)` if the file ends first.
fn read_at<R: Read + Seek>(r: &mut R, size: u64, off: i128, buf: &mut [u8]) -> io::Result<bool> {
    if off < 0 || off + buf.len() as i128 > size as i128 {
        return Ok(false);
    }
    r.seek(SeekFrom::Start(off as u64))?;
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn find_signature_in_block(b: &[u8]) -> Option<usize> {
    if b.len() < DIR_END_LEN {
        return None;
    }
    (0..=b.len() - DIR_END_LEN).rev().find(|&i| {
        b[i..i + 4] == [b'P', b'K', 5, 6] && {
            let n = le16(b, i + DIR_END_LEN - 2) as usize;
            n + DIR_END_LEN + i <= b.len()
        }
    })
}

struct DirEnd {
    records: u64,
    dir_size: u64,
    dir_offset: u64,
}

fn read_directory_end<R: Read + Seek>(r: &mut R, size: u64) -> Result<(DirEnd, i128), ZipError> {
    let mut found = None;
    for (i, want) in [1024u64, 65 * 1024].into_iter().enumerate() {
        let blen = want.min(size);
        let mut buf = vec![0u8; blen as usize];
        if !read_at(r, size, (size - blen) as i128, &mut buf)? {
            return Err(not_zip("cannot read end of file"));
        }
        if let Some(p) = find_signature_in_block(&buf) {
            found = Some((
                buf[p..p + DIR_END_LEN].to_vec(),
                (size - blen + p as u64) as i128,
            ));
            break;
        }
        if i == 1 || blen == size {
            return Err(not_zip("end of central directory record not found"));
        }
    }
    let Some((b, mut end_offset)) = found else {
        return Err(not_zip("end of central directory record not found"));
    };
    let mut d = DirEnd {
        records: le16(&b, 10) as u64,
        dir_size: le32(&b, 12) as u64,
        dir_offset: le32(&b, 16) as u64,
    };
    // Go compares directorySize with 0xffff (sic); kept for identical behaviour.
    if d.records == 0xffff || d.dir_size == 0xffff || d.dir_offset == 0xffff_ffff {
        let loc_offset = end_offset - DIR64_LOC_LEN as i128;
        if loc_offset >= 0 {
            let mut loc = [0u8; DIR64_LOC_LEN as usize];
            if !read_at(r, size, loc_offset, &mut loc)? {
                return Err(not_zip("cannot read zip64 locator"));
            }
            if le32(&loc, 0) == DIR64_LOC_SIG && le32(&loc, 4) == 0 && le32(&loc, 16) == 1 {
                let p = le64(&loc, 8);
                if p <= i64::MAX as u64 {
                    end_offset = p as i128;
                    let mut e = [0u8; DIR64_END_LEN];
                    if !read_at(r, size, end_offset, &mut e)? {
                        return Err(not_zip("cannot read zip64 end of central directory"));
                    }
                    if le32(&e, 0) != DIR64_END_SIG {
                        return Err(not_zip("bad zip64 end of central directory signature"));
                    }
                    d.records = le64(&e, 32);
                    d.dir_size = le64(&e, 40);
                    d.dir_offset = le64(&e, 48);
                }
            }
        }
    }
    let base = end_offset - d.dir_size as i128 - d.dir_offset as i128;
    let o = base + d.dir_offset as i128;
    if o < 0 || o >= size as i128 {
        return Err(not_zip("central directory offset out of range"));
    }
    Ok((d, base))
}

enum Header {
    Entry(Entry),
    /// Go's ErrFormat: bad signature or unusable zip64 fields.
    Format,
    /// The file ended inside a record.
    Eof,
}

fn read_dir_header<B: Read>(r: &mut B) -> io::Result<Header> {
    let mut h = [0u8; DIR_HEADER_LEN];
    match r.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Header::Eof),
        Err(e) => return Err(e),
    }
    if le32(&h, 0) != DIR_HEADER_SIG {
        return Ok(Header::Format);
    }
    let flags = le16(&h, 8);
    let method = le16(&h, 10);
    let crc32 = le32(&h, 16);
    let csize32 = le32(&h, 20);
    let usize32 = le32(&h, 24);
    let name_len = le16(&h, 28) as usize;
    let extra_len = le16(&h, 30) as usize;
    let comment_len = le16(&h, 32) as usize;
    let offset32 = le32(&h, 42);
    let mut d = vec![0u8; name_len + extra_len + comment_len];
    match r.read_exact(&mut d) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Header::Eof),
        Err(e) => return Err(e),
    }
    let mut e = Entry {
        name: d[..name_len].to_vec(),
        flags,
        method,
        crc32,
        compressed_size: csize32 as u64,
        uncompressed_size: usize32 as u64,
        header_offset: offset32 as i128,
    };
    let mut need_usize = usize32 == u32::MAX;
    let mut need_csize = csize32 == u32::MAX;
    let mut need_offset = offset32 == u32::MAX;
    let mut extra = &d[name_len..name_len + extra_len];
    while extra.len() >= 4 {
        let tag = le16(extra, 0);
        let size = le16(extra, 2) as usize;
        extra = &extra[4..];
        if extra.len() < size {
            break;
        }
        let mut field = &extra[..size];
        extra = &extra[size..];
        if tag != ZIP64_EXTRA_ID {
            continue;
        }
        let mut take64 = |need: &mut bool| -> Option<Option<u64>> {
            if !*need {
                return Some(None);
            }
            *need = false;
            if field.len() < 8 {
                return None;
            }
            let v = le64(field, 0);
            field = &field[8..];
            Some(Some(v))
        };
        match take64(&mut need_usize) {
            None => return Ok(Header::Format),
            Some(Some(v)) => e.uncompressed_size = v,
            Some(None) => {}
        }
        match take64(&mut need_csize) {
            None => return Ok(Header::Format),
            Some(Some(v)) => e.compressed_size = v,
            Some(None) => {}
        }
        match take64(&mut need_offset) {
            None => return Ok(Header::Format),
            Some(Some(v)) => e.header_offset = v as i64 as i128,
            Some(None) => {}
        }
    }
    let _ = need_usize; // a 2^32-1 uncompressed size without zip64 is accepted (42.zip)
    if need_csize || need_offset {
        return Ok(Header::Format);
    }
    Ok(Header::Entry(e))
}

/// Reads the central directory: every record, in order, duplicates included.
pub(crate) fn read_directory<R: Read + Seek>(r: &mut R, size: u64) -> Result<Vec<Entry>, ZipError> {
    let (end, mut base) = read_directory_end(r, size)?;
    let start = |base: i128| (base + end.dir_offset as i128) as u64;
    r.seek(SeekFrom::Start(start(base)))?;
    let mut files: Vec<Entry> = Vec::new();
    let mut buf = BufReader::with_capacity(64 << 10, &mut *r);
    loop {
        match read_dir_header(&mut buf)? {
            Header::Entry(mut e) => {
                e.header_offset += base;
                files.push(e);
            }
            Header::Format if base != 0 && files.is_empty() => {
                // Like Go: retry the directory without the base offset.
                base = 0;
                if end.dir_offset >= size {
                    break;
                }
                buf.seek(SeekFrom::Start(start(0)))?;
            }
            Header::Format | Header::Eof => break,
        }
    }
    if files.len() as u16 != end.records as u16 {
        return Err(not_zip("central directory record count mismatch"));
    }
    Ok(files)
}

/// Receives an entry's decompressed content, chunk by chunk.
pub(crate) trait Sink {
    fn write(&mut self, chunk: &[u8]) -> Result<(), ZipError>;
}

/// Reusable I/O buffers and inflater for [`stream_entry`].
pub(crate) struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
    /// Reset before each entry: a new one per entry costs an allocation of
    /// its ~40 KiB state, which in a typical module zip (dozens of small
    /// files) was a tenth of the check's CPU.
    inflate: Decompress,
}

/// Largest read from the zip per call.
const INPUT_BUF: u64 = 64 << 10;
/// Largest inflate output per call.
const OUTPUT_BUF: u64 = 128 << 10;
/// Smallest buffer: below this a call's overhead outweighs the memory.
const MIN_BUF: u64 = 4 << 10;

impl Buffers {
    /// Buffers for a zip of `size` bytes whose largest entry declares
    /// `largest` uncompressed bytes: no bigger than those need (most module
    /// zips are tens of KiB; zeroing fixed 192 KiB per zip showed in profiles).
    pub(crate) fn for_zip(size: u64, largest: u64) -> Self {
        let len = |want: u64, max: u64| want.clamp(MIN_BUF, max) as usize;
        Buffers {
            input: vec![0u8; len(size, INPUT_BUF)],
            output: vec![0u8; len(largest.saturating_add(1), OUTPUT_BUF)],
            inflate: Decompress::new(false),
        }
    }
}

/// Counts, checks against the declared size and CRC-summs what goes to the sink.
struct Checked<'a, S: Sink> {
    sink: &'a mut S,
    crc: crc32fast::Hasher,
    nread: u64,
    declared: u64,
    file: &'a Entry,
}

impl<S: Sink> Checked<'_, S> {
    fn write(&mut self, chunk: &[u8]) -> Result<(), ZipError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.nread += chunk.len() as u64;
        if self.nread > self.declared {
            return Err(ZipError::LargerThanDeclared {
                file: self.file.display_name(),
                declared: self.declared,
            });
        }
        self.crc.update(chunk);
        self.sink.write(chunk)
    }
}

/// Streams one entry's content into `sink` with Go's `File.Open` + `checksumReader` checks:
/// never more than the declared uncompressed size (+ one output buffer) is inflated;
/// short content, bad data descriptor CRC and bad CRC-32 are errors. As in Go, a CRC of 0
/// without a data descriptor is taken as "not recorded".
pub(crate) fn stream_entry<R: Read + Seek, S: Sink>(
    r: &mut R,
    size: u64,
    e: &Entry,
    bufs: &mut Buffers,
    sink: &mut S,
) -> Result<(), ZipError> {
    let file = || e.display_name();
    let mut hdr = [0u8; FILE_HEADER_LEN as usize];
    if !read_at(r, size, e.header_offset, &mut hdr)? || le32(&hdr, 0) != FILE_HEADER_SIG {
        return Err(ZipError::BadLocalHeader { file: file() });
    }
    let body =
        e.header_offset + FILE_HEADER_LEN as i128 + le16(&hdr, 26) as i128 + le16(&hdr, 28) as i128;
    if e.method != METHOD_STORE && e.method != METHOD_DEFLATE {
        return Err(ZipError::UnsupportedMethod {
            file: file(),
            method: e.method,
        });
    }
    // The compressed section: [body, body + compressed_size) clipped to the file.
    let section_end = (body + e.compressed_size as i128).min(size as i128);
    let mut avail = (section_end - body).max(0) as u64;
    if avail > 0 {
        r.seek(SeekFrom::Start(body as u64))?;
    }
    let mut out = Checked {
        sink,
        crc: crc32fast::Hasher::new(),
        nread: 0,
        declared: e.uncompressed_size,
        file: e,
    };
    let read_some = |r: &mut R, buf: &mut [u8], avail: &mut u64| -> io::Result<usize> {
        let want = (buf.len() as u64).min(*avail) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match r.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        };
        *avail -= n as u64;
        if n == 0 {
            *avail = 0;
        }
        Ok(n)
    };
    if e.method == METHOD_STORE {
        loop {
            let n = read_some(r, &mut bufs.input, &mut avail)?;
            if n == 0 {
                break;
            }
            out.write(&bufs.input[..n])?;
        }
    } else {
        let inflate = &mut bufs.inflate;
        inflate.reset(false);
        let (mut lo, mut hi) = (0usize, 0usize);
        loop {
            if lo == hi {
                lo = 0;
                hi = read_some(r, &mut bufs.input, &mut avail)?;
            }
            let (in0, out0) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress(&bufs.input[lo..hi], &mut bufs.output, FlushDecompress::None)
                .map_err(|_| ZipError::CorruptData { file: file() })?;
            let consumed = (inflate.total_in() - in0) as usize;
            let produced = (inflate.total_out() - out0) as usize;
            lo += consumed;
            out.write(&bufs.output[..produced])?;
            if status == Status::StreamEnd {
                break;
            }
            if consumed == 0 && produced == 0 {
                if lo == hi && avail == 0 {
                    return Err(ZipError::Truncated { file: file() });
                }
                if lo < hi {
                    // Input present and output space free but no progress: compact and
                    // read more so the decoder sees a longer window; fail if none comes.
                    bufs.input.copy_within(lo..hi, 0);
                    hi -= lo;
                    lo = 0;
                    let n = {
                        let (_, tail) = bufs.input.split_at_mut(hi);
                        read_some(r, tail, &mut avail)?
                    };
                    if n == 0 {
                        return Err(ZipError::Truncated { file: file() });
                    }
                    hi += n;
                }
            }
        }
    }
    let Checked { crc, nread, .. } = out;
    if nread != e.uncompressed_size {
        if e.method == METHOD_STORE && body + e.compressed_size as i128 > size as i128 {
            // The stored data ran into the end of the file.
            return Err(ZipError::Truncated { file: file() });
        }
        return Err(ZipError::SmallerThanDeclared {
            file: file(),
            declared: e.uncompressed_size,
            actual: nread,
        });
    }
    let actual = crc.finalize();
    if e.flags & 0x8 != 0 {
        // Data descriptor right after the compressed data: optional signature, then CRC-32.
        let at = body + e.compressed_size as i128;
        let mut dd = [0u8; 12];
        if !read_at(r, size, at, &mut dd[..4])? {
            return Err(ZipError::Truncated { file: file() });
        }
        let crc_at = if le32(&dd, 0) == DATA_DESCRIPTOR_SIG {
            4
        } else {
            0
        };
        if !read_at(r, size, at + crc_at, &mut dd[..12])? {
            return Err(ZipError::Truncated { file: file() });
        }
        let dd_crc = le32(&dd, 0);
        if dd_crc != e.crc32 || actual != e.crc32 {
            return Err(ZipError::Checksum {
                file: file(),
                expected: e.crc32,
                actual,
            });
        }
    } else if e.crc32 != 0 && actual != e.crc32 {
        return Err(ZipError::Checksum {
            file: file(),
            expected: e.crc32,
            actual,
        });
    }
    Ok(())
}
