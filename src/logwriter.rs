//! Where `modgate serve`'s log lines go: to stderr, written by a thread of
//! their own in batches, so a request pays for formatting its access line and
//! copying it into a shared buffer, not for a `write(2)` (nor for waking a
//! thread: see below).
//!
//! A request appends its line to one buffer under a mutex. The writer thread
//! takes the whole buffer every [`INTERVAL`] (sooner once it is half full),
//! writes it with one `write(2)`, and parks when there is nothing to write;
//! only a line that finds it parked wakes it. Under load, requests never wake
//! it. That is why this is not `tracing-appender`'s non-blocking writer
//! (tried first): its worker blocks on a channel per line, so with lines
//! coming one at a time each one woke it — measured on small hits at 1
//! connection, 5.4–10 system calls per request (futex wake-ups and the
//! channel's `sched_yield` back-off) against 4.0 with a `write(2)` per line
//! and 3.05 with this writer (BENCHMARKS.md, 2026-11-30).
//!
//! # What can be lost
//!
//! The buffer is **lossless and bounded** ([`BUFFER_BYTES`]): a line that
//! finds it full waits for the writer (back-pressure: if whatever reads
//! stderr stalls for good, requests stall with it, as they did when each
//! request wrote its own line; the buffer only adds slack). No line is
//! dropped to keep serving: a company mirror's access log is part of its
//! record of who fetched what.
//!
//! - **Clean shutdown** (SIGTERM, ctrl-c, or `serve` returning an error):
//!   dropping the [`LogGuard`] has the writer write everything buffered and
//!   waits for it — as long as stderr keeps accepting bytes; it gives up
//!   after [`STALL_LIMIT`] without progress. Lines logged after that are
//!   written directly. Nothing is lost unless stderr's reader is stuck.
//! - **`kill -9`** (or a crash that kills the process, OOM kill included)
//!   loses what is still in the process: the buffer — at most
//!   [`BUFFER_BYTES`] (2 MiB: 6,000–9,000 access lines of 230–330 bytes)
//!   — plus the rest of the batch being written, at most as much again
//!   (one line longer than the buffer is taken alone). Normally that is the lines
//!   of the last [`INTERVAL`] (10 ms) before the kill; more only while the
//!   writer is behind (`modgate_log_lines_queued` shows how many lines are
//!   waiting). The audit trail, not this log, is the durable record of who
//!   fetched what (see [`crate::audit`]).
//! - A write to stderr that fails (its reader gone: `EPIPE`) loses that
//!   batch; its lines are counted in `modgate_log_lines_dropped_total`.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// The most bytes of lines the buffer holds before a new line waits.
pub const BUFFER_BYTES: usize = 2 << 20;

/// How long the writer gathers lines before writing them (unless the buffer
/// is half full first).
pub const INTERVAL: Duration = Duration::from_millis(10);

/// How long a clean shutdown waits for a writer that makes no progress.
pub const STALL_LIMIT: Duration = Duration::from_secs(5);

/// Lines appended to the buffer; lines written (or lost to a failed write).
static QUEUED: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Lines not yet written to stderr (what a `kill -9` would lose now). Zero
/// in a process that does not log through this writer.
pub fn lines_queued() -> u64 {
    QUEUED
        .load(Ordering::Relaxed)
        .saturating_sub(DONE.load(Ordering::Relaxed))
}

/// Lines lost because writing them to stderr failed.
pub fn lines_dropped() -> u64 {
    FAILED.load(Ordering::Relaxed)
}

struct State {
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    /// The writer waits for a first line (any line wakes it).
    parked: bool,
    /// The writer gathers lines for [`INTERVAL`] (a half-full buffer wakes it).
    napping: bool,
    /// Shutdown: the writer writes what is left and stops.
    closing: bool,
    /// The writer has stopped and handed its output back: lines are written
    /// by whoever logs them.
    direct: Option<Box<dyn Write + Send>>,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines.
    wake: Condvar,
    /// Lines wait here for room in a full buffer.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the buffer consistent
        // (appends are whole lines), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, line: &[u8]) {
        let mut st = self.lock();
        while !st.buf.is_empty() && st.buf.len() + line.len() > BUFFER_BYTES && st.direct.is_none()
        {
            self.wake.notify_one();
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(out) = &mut st.direct {
            let _ = write_batch(out, line);
            return;
        }
        st.buf.extend_from_slice(line);
        st.lines += 1;
        QUEUED.fetch_add(1, Ordering::Relaxed);
        if st.parked || (st.napping && st.buf.len() >= BUFFER_BYTES / 2) {
            st.parked = false;
            st.napping = false;
            self.wake.notify_one();
        }
    }

    /// The writer thread: takes the buffer, writes it, repeats.
    fn run(&self, mut out: Box<dyn Write + Send>) {
        let mut batch = Vec::new();
        let mut st = self.lock();
        loop {
            while st.buf.is_empty() && !st.closing {
                st.parked = true;
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.parked = false;
            if st.buf.is_empty() {
                // Closing, and everything is written.
                st.direct = Some(out);
                self.room.notify_all();
                return;
            }
            std::mem::swap(&mut st.buf, &mut batch);
            let lines = std::mem::take(&mut st.lines);
            self.room.notify_all();
            drop(st);
            if write_batch(&mut out, &batch).is_err() {
                FAILED.fetch_add(lines, Ordering::Relaxed);
            }
            DONE.fetch_add(lines, Ordering::Relaxed);
            batch.clear();
            // Large batches, not a write per line: gather for a while.
            st = self.lock();
            if !st.closing && st.buf.len() < BUFFER_BYTES / 2 {
                st.napping = true;
                st = self
                    .wake
                    .wait_timeout(st, INTERVAL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                st.napping = false;
            }
        }
    }
}

/// `write_all`, then `flush`.
fn write_batch(out: &mut impl Write, batch: &[u8]) -> io::Result<()> {
    out.write_all(batch)?;
    out.flush()
}

/// The `MakeWriter` of the log subscriber: each formatted line, appended to
/// the buffer.
#[derive(Clone)]
pub struct Queue(Arc<Shared>);

/// One line's writer (tracing-subscriber hands over a whole line in one `write`).
pub struct Append<'a>(&'a Shared);

impl Write for Append<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Append<'a>;

    fn make_writer(&'a self) -> Append<'a> {
        Append(&self.0)
    }
}

/// Keeps the writer thread running; dropping it writes out every buffered
/// line (see the module docs). Keep it until the process is about to exit.
pub struct LogGuard {
    shared: Arc<Shared>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.closing = true;
            self.shared.wake.notify_one();
        }
        // Wait for the writer to finish, as long as it makes progress.
        let (mut done, mut progress) = (DONE.load(Ordering::Relaxed), Instant::now());
        loop {
            match self.done.recv_timeout(Duration::from_millis(10)) {
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            let now = DONE.load(Ordering::Relaxed);
            if now != done {
                (done, progress) = (now, Instant::now());
            } else if progress.elapsed() > STALL_LIMIT {
                return;
            }
        }
    }
}

/// Starts the writer thread on `out` (stderr for the server); the subscriber
/// writes through the returned [`Queue`].
pub fn start(out: impl Write + Send + 'static) -> (Queue, LogGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: Vec::with_capacity(64 << 10),
            lines: 0,
            parked: false,
            napping: false,
            closing: false,
            direct: None,
        }),
        wake: Condvar::new(),
        room: Condvar::new(),
    });
    let (tx, done) = std::sync::mpsc::channel();
    let writer = shared.clone();
    std::thread::Builder::new()
        .name("modgate-log".into())
        .spawn(move || {
            writer.run(Box::new(out));
            let _ = tx.send(());
        })
        .expect("starting the log writer thread");
    (Queue(shared.clone()), LogGuard { shared, done })
}

/// [`start`] on stderr.
pub fn stderr() -> (Queue, LogGuard) {
    start(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Collects what the writer thread writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn log(q: &Queue, line: &str) {
        q.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_comes_out_whole_and_in_order_by_shutdown() {
        let sink = Sink::default();
        let (q, guard) = start(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        log(&q, &format!("t{t} line {i} {}\n", "x".repeat(i % 300)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        let mut next = [0usize; 4];
        for l in text.lines() {
            let mut f = l.split(' ');
            let t: usize = f.next().unwrap()[1..].parse().unwrap();
            assert_eq!(f.next(), Some("line"));
            let i: usize = f.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            assert_eq!(f.next().unwrap().len(), i % 300);
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }

    #[test]
    fn lines_logged_after_shutdown_are_written_directly() {
        let sink = Sink::default();
        let (q, guard) = start(sink.clone());
        log(&q, "before\n");
        drop(guard);
        log(&q, "after\n");
        assert_eq!(sink.text(), "before\nafter\n");
    }

    /// A stderr whose reader has stalled until `open` is sent.
    struct Stalled {
        sink: Sink,
        open: Option<mpsc::Receiver<()>>,
    }

    impl Write for Stalled {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if let Some(rx) = self.open.take() {
                let _ = rx.recv();
            }
            self.sink.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_makes_lines_wait_never_drops_them() {
        let sink = Sink::default();
        let (open, rx) = mpsc::channel();
        let (q, guard) = start(Stalled {
            sink: sink.clone(),
            open: Some(rx),
        });
        // Three buffers' worth: the writer is stuck on the first batch, the
        // buffer fills, and the logging thread must wait.
        let line = format!("{}\n", "y".repeat(999));
        let n = 3 * BUFFER_BYTES / line.len();
        let (finished_tx, finished) = mpsc::channel();
        let logger = {
            let (q, line) = (q.clone(), line.clone());
            std::thread::spawn(move || {
                for _ in 0..n {
                    log(&q, &line);
                }
                finished_tx.send(()).unwrap();
            })
        };
        assert!(
            finished.recv_timeout(Duration::from_millis(300)).is_err(),
            "3 buffers' worth of lines fit in a stalled writer's buffer: some were dropped"
        );
        assert!(lines_queued() > 0);
        open.send(()).unwrap();
        finished.recv_timeout(Duration::from_secs(30)).unwrap();
        logger.join().unwrap();
        drop(guard);
        let text = sink.text();
        assert_eq!(text.len(), n * line.len());
        assert!(text.lines().all(|l| l.len() == 999));
    }
}
