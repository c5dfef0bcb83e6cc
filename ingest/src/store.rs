//! The endpoint's store: de-duplication by (run, alert) and the write-ahead ledger file that an
//! acknowledgement stands on.
//!
//! With a ledger file, one writer thread owns the file and the de-duplication set. Streams hand it
//! batches ([`Store::store`]) and wait for its answer; it takes every batch waiting at that moment
//! as one group, formats their new alerts as CSV lines (into one reused buffer), writes the group with one
//! `write`, and, under [`Durability::Fsync`], makes it durable with one `fdatasync` (group commit:
//! the busier the endpoint, the more alerts share a sync). Only then does it answer, and only then
//! may the caller acknowledge.
//!
//! A group is written whole or not at all: if the write or the sync fails, the file is truncated
//! back to its last committed length, the group's ids leave the de-duplication set again and every
//! batch of it is refused (the caller REJECTs with `STORAGE_FAILURE`); nothing of it is kept in a
//! buffer to reach the file later. After any failure the file's length is checked (and repaired)
//! before anything else is stored, so an acknowledged line is never glued to a torn fragment.
//!
//! Opening re-reads the ledger (line by line, each line bounded, through the `csv` crate) for the
//! ids it holds, cuts off a torn last line (never acknowledged: the write it belonged to did not
//! complete), and refuses anything that is not a regular file starting with the ledger header.
//!
//! It must never acknowledge — return `Ok` for — a batch whose lines are not in the file (and, under
//! `fsync`, synced), and never store an alert twice for one run.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};
use wire::{AlertHeader, RunId};

/// First line of the endpoint's ledger file.
pub const LEDGER_HEADER: &str =
    "run_id,alert_id,code,device_id,region,event_ms,seq,received_unix_ms";

/// Fields of a complete ledger line.
const LEDGER_FIELDS: usize = 8;

/// Longest ledger line accepted when reading (a real one is under 140 bytes): a longer one means
/// the file is not a ledger this endpoint wrote, and reading stops before it allocates more.
pub const MAX_LEDGER_LINE: usize = 1024;

/// Most bytes one group commit writes at once (the rest waits for the next group).
const MAX_GROUP_BYTES: usize = 4 << 20;

/// What an acknowledgement waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// The group's lines are written and `fdatasync`ed before any of them is acknowledged: an ACK
    /// survives a power cut (on storage that honours cache flushes).
    #[default]
    Fsync,
    /// The group's lines are written to the operating system (`write` returned) before any of them
    /// is acknowledged: an ACK survives the endpoint's process being killed, not the machine
    /// losing power.
    Flush,
}

/// What storing a batch did: the ids stored now and the ids stored before (for this run).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Stored now (acknowledge with ACK).
    pub new: Vec<u64>,
    /// Stored before, for this run (acknowledge with DUPLICATE).
    pub duplicates: Vec<u64>,
}

/// Why a batch was not stored. Nothing of it is in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Writing, syncing or checking the ledger file failed.
    #[error("{0}")]
    Io(String),
    /// The store has been closed (the endpoint is shutting down).
    #[error("the store is closed")]
    Closed,
}

/// The file the writer thread appends to: a real [`File`], or, in tests, one that fails on
/// purpose.
pub trait LedgerFile: Send {
    /// Appends every byte of `bytes` (or fails, possibly after writing some of them).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was appended durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// The file's length now.
    fn size(&mut self) -> io::Result<u64>;
    /// Cuts the file back to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl LedgerFile for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// (run, alert) keys, grouped by run so an alert's key costs one lookup of its id.
#[derive(Debug, Default)]
pub struct Seen(HashMap<RunId, IdSet>);

/// One run's alert ids, kept as 64-bit words of a bitmap in a hash map keyed by `id / 64`.
///
/// A run's ids are dense (the harness numbers a hub's alerts `hub × 2 + kind`), so an id costs
/// about a quarter of a byte instead of the ~10 of a plain hash set, the map stays small enough
/// for the CPU caches, and consecutive ids of a batch land in one word: with a plain set, one
/// cache miss per insert was the writer thread's largest cost. Scattered ids cost one 16-byte
/// entry each (about twice a plain set). Keys are hashed with foldhash, seeded at random per map,
/// so a peer cannot choose ids that collide.
#[derive(Debug, Default)]
struct IdSet {
    words: HashMap<u64, u64, foldhash::fast::RandomState>,
    len: usize,
}

impl IdSet {
    /// Adds `id`; `false` if it was there already.
    fn insert(&mut self, id: u64) -> bool {
        let word = self.words.entry(id >> 6).or_insert(0);
        let bit = 1u64 << (id & 63);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.len += 1;
        true
    }

    fn remove(&mut self, id: u64) {
        let key = id >> 6;
        if let Some(word) = self.words.get_mut(&key) {
            let bit = 1u64 << (id & 63);
            if *word & bit != 0 {
                *word &= !bit;
                self.len -= 1;
                if *word == 0 {
                    self.words.remove(&key);
                }
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().flat_map(|(&key, &word)| {
            (0..64u64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| key << 6 | b)
        })
    }
}

impl Seen {
    fn insert(&mut self, run: RunId, id: u64) -> bool {
        self.0.entry(run).or_default().insert(id)
    }

    fn remove_all(&mut self, run: RunId, ids: &[u64]) {
        if let Some(set) = self.0.get_mut(&run) {
            for id in ids {
                set.remove(*id);
            }
        }
    }

    fn dedup(&mut self, run: RunId, batch: &[AlertHeader]) -> Stored {
        let set = self.0.entry(run).or_default();
        // Sized once: growing it alert by alert reallocated it a handful of times per batch.
        let mut out = Stored {
            new: Vec::with_capacity(batch.len()),
            duplicates: Vec::new(),
        };
        for h in batch {
            if set.insert(h.alert_id) {
                out.new.push(h.alert_id);
            } else {
                out.duplicates.push(h.alert_id);
            }
        }
        out
    }

    /// Every (run, alert) key.
    pub fn keys(&self) -> HashSet<(RunId, u64)> {
        self.0
            .iter()
            .flat_map(|(run, ids)| ids.iter().map(move |id| (*run, id)))
            .collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.values().map(|ids| ids.len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counters of the store.
#[derive(Debug, Default)]
pub(crate) struct StoreCounters {
    /// Group commits that reached the file (one write each).
    pub(crate) writes: AtomicU64,
    /// `fdatasync` calls that succeeded.
    pub(crate) syncs: AtomicU64,
    /// Groups refused because writing, syncing or checking the file failed.
    pub(crate) failures: AtomicU64,
}

/// The de-duplicating, write-ahead alert store.
#[derive(Debug)]
pub struct Store {
    inner: Inner,
    counters: Arc<StoreCounters>,
}

#[derive(Debug)]
enum Inner {
    /// No ledger file: de-duplication in memory only.
    Memory(Mutex<Seen>),
    /// A ledger file owned by the writer thread.
    Ledger {
        tx: mpsc::Sender<Msg>,
        thread: Mutex<Option<JoinHandle<()>>>,
    },
}

enum Msg {
    Commit(Request),
    Stop,
}

struct Request {
    run: RunId,
    batch: Vec<AlertHeader>,
    reply: tokio::sync::oneshot::Sender<Result<Stored, StoreError>>,
}

impl Store {
    /// A store without a ledger file (de-duplication in memory only).
    pub fn memory() -> Store {
        Store {
            inner: Inner::Memory(Mutex::new(Seen::default())),
            counters: Arc::default(),
        }
    }

    /// Opens (creating if needed) the ledger file at `path` and starts its writer thread.
    pub fn open(path: &Path, durability: Durability) -> io::Result<Store> {
        let (file, seen, len) = open_ledger(path)?;
        Ok(Store::with_file(Box::new(file), seen, len, durability))
    }

    /// A store appending to `file`, whose first `len` bytes are committed and hold `seen`.
    pub fn with_file(
        file: Box<dyn LedgerFile>,
        seen: Seen,
        len: u64,
        durability: Durability,
    ) -> Store {
        let counters = Arc::new(StoreCounters::default());
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            file,
            committed: len,
            suspect: false,
            seen,
            durability,
            buf: Vec::with_capacity(64 * 1024),
            counters: counters.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ingest-ledger".into())
            .spawn(move || writer.run(rx));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // Without its thread every store fails (Closed): the endpoint refuses, never acks.
                tracing::error!("cannot start the ledger writer thread: {e}");
                None
            }
        };
        Store {
            inner: Inner::Ledger {
                tx,
                thread: Mutex::new(thread),
            },
            counters,
        }
    }

    /// Stores the new alerts of `batch` for `run`; `Ok` only once they are in the ledger (as
    /// durable as the store's [`Durability`]). On an error nothing of the batch is stored.
    pub async fn store(&self, run: RunId, batch: Vec<AlertHeader>) -> Result<Stored, StoreError> {
        self.submit(run, batch).await
    }

    /// Hands `batch` to the store now and returns its answer to come, as [`Store::store`] would
    /// (so a caller can read on while the batch waits for its group commit). The batch joins
    /// the writer's queue at once, whether or not the answer is ever awaited.
    pub fn submit(&self, run: RunId, batch: Vec<AlertHeader>) -> Pending {
        match &self.inner {
            Inner::Memory(seen) => Pending(Some(PendingInner::Ready(Ok(seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .dedup(run, &batch))))),
            Inner::Ledger { tx, .. } => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                match tx.send(Msg::Commit(Request { run, batch, reply })) {
                    Ok(()) => Pending(Some(PendingInner::Waiting(answer))),
                    Err(_) => Pending(Some(PendingInner::Ready(Err(StoreError::Closed)))),
                }
            }
        }
    }

    /// Answers every batch handed in so far, then stops the writer (later batches fail with
    /// [`StoreError::Closed`]). Blocks until the writer has stopped.
    pub fn close(&self) {
        if let Inner::Ledger { tx, thread } = &self.inner {
            let _ = tx.send(Msg::Stop);
            let handle = thread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
    }

    /// The same counters, shared (for a probe that outlives the server).
    pub(crate) fn counters_shared(&self) -> Arc<StoreCounters> {
        self.counters.clone()
    }

    pub(crate) fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// The store's answer to a batch handed in with [`Store::submit`].
#[derive(Debug)]
pub struct Pending(Option<PendingInner>);

#[derive(Debug)]
enum PendingInner {
    Ready(Result<Stored, StoreError>),
    Waiting(tokio::sync::oneshot::Receiver<Result<Stored, StoreError>>),
}

impl std::future::Future for Pending {
    type Output = Result<Stored, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let answer = match &mut self.0 {
            // Answered already: polled again after completion.
            None => Err(StoreError::Closed),
            Some(PendingInner::Waiting(rx)) => match std::pin::Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.unwrap_or(Err(StoreError::Closed)),
            },
            Some(PendingInner::Ready(_)) => match self.0.take() {
                Some(PendingInner::Ready(r)) => r,
                _ => Err(StoreError::Closed),
            },
        };
        self.0 = None;
        Poll::Ready(answer)
    }
}

/// The writer thread's state: the file, what of it is committed, and the de-duplication set.
struct Writer {
    file: Box<dyn LedgerFile>,
    /// Length of the file up to the end of the last group that was acknowledged.
    committed: u64,
    /// A write or sync failed since the file was last checked: check it before the next group.
    suspect: bool,
    seen: Seen,
    durability: Durability,
    /// The group's lines, reused from group to group.
    buf: Vec<u8>,
    counters: Arc<StoreCounters>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut group = Vec::new();
        let mut stop = false;
        while !stop {
            match rx.recv() {
                Ok(Msg::Commit(r)) => group.push(r),
                Ok(Msg::Stop) | Err(_) => stop = true,
            }
            // Everything that arrived meanwhile joins this group.
            let mut alerts: usize = group.iter().map(|r| r.batch.len()).sum();
            while !stop && alerts * 160 < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(Msg::Commit(r)) => {
                        alerts += r.batch.len();
                        group.push(r);
                    }
                    Ok(Msg::Stop) => stop = true,
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit(&mut group);
            }
        }
    }

    /// Stores one group whole or not at all and answers each of its batches.
    fn commit(&mut self, group: &mut Vec<Request>) {
        let now = unix_ms();
        let mut results = Vec::with_capacity(group.len());
        for r in group.iter() {
            let stored = self.seen.dedup(r.run, &r.batch);
            results.push(stored);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        format_lines(&mut buf, group, &results, now);
        let written = self.persist(&buf);
        // Nothing of a failed group stays in the buffer to reach the file later.
        buf.clear();
        self.buf = buf;
        match written {
            Ok(()) => {
                for (r, stored) in group.drain(..).zip(results) {
                    let _ = r.reply.send(Ok(stored));
                }
            }
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                // Nothing of the group stays: not in the file (truncated back), not in the
                // buffer (cleared), not among the ids already seen.
                for (r, stored) in group.iter().zip(&results) {
                    self.seen.remove_all(r.run, &stored.new);
                }
                let text = e.to_string();
                for r in group.drain(..) {
                    let _ = r.reply.send(Err(StoreError::Io(text.clone())));
                }
            }
        }
    }
}

/// Formats the group's new alerts as ledger lines (CSV) into `buf`.
///
/// Written byte by byte rather than through the `csv` crate (which reads the file back): every
/// field is hex, decimal digits or a fixed name (alert codes, region names: lower-case letters,
/// digits and '-'), so no field ever needs quoting and the bytes are exactly what the `csv` crate
/// writes (a test checks it). That crate's per-field state machine cost more per alert than the
/// rest of the line together.
fn format_lines(buf: &mut Vec<u8>, group: &[Request], results: &[Stored], now: u64) {
    let mut now_buf = itoa::Buffer::new();
    let now = now_buf.format(now).as_bytes();
    let new_alerts: usize = results.iter().map(|s| s.new.len()).sum();
    buf.reserve(new_alerts * LINE_ESTIMATE);
    for (r, stored) in group.iter().zip(results) {
        if stored.new.is_empty() {
            continue;
        }
        let mut run = [0u8; 32];
        hex(&r.run.0, &mut run);
        // The batch's headers in the order stored: new ids are a sub-sequence of the batch.
        let mut new = stored.new.iter().peekable();
        for h in &r.batch {
            if new.peek() != Some(&&h.alert_id) {
                continue;
            }
            new.next();
            push_line(buf, &run, h, now);
        }
    }
}

/// A ledger line's usual length (the buffer is reserved for this many bytes per new alert).
const LINE_ESTIMATE: usize = 112;

/// Appends one ledger line (the fields of [`LEDGER_HEADER`], then a newline).
fn push_line(buf: &mut Vec<u8>, run_hex: &[u8; 32], h: &AlertHeader, now: &[u8]) {
    let mut digits = itoa::Buffer::new();
    let mut device = [0u8; 16];
    hex(&h.device_id.to_be_bytes(), &mut device);
    buf.extend_from_slice(run_hex);
    buf.push(b',');
    buf.extend_from_slice(digits.format(h.alert_id).as_bytes());
    buf.push(b',');
    buf.extend_from_slice(h.alert_code().map_or("?", |c| c.as_str()).as_bytes());
    buf.push(b',');
    buf.extend_from_slice(&device);
    buf.push(b',');
    buf.extend_from_slice(h.region().map_or("?", |r| r.as_str()).as_bytes());
    buf.push(b',');
    buf.extend_from_slice(digits.format(h.event_ms).as_bytes());
    buf.push(b',');
    buf.extend_from_slice(digits.format(h.seq).as_bytes());
    buf.push(b',');
    buf.extend_from_slice(now);
    buf.push(b'\n');
}

impl Writer {
    /// Appends `bytes` (and syncs them under `fsync`), or leaves the file as it was.
    fn persist(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.suspect {
            self.check()?;
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let fsync = self.durability == Durability::Fsync;
        let done = self
            .file
            .append(bytes)
            .and_then(|()| if fsync { self.file.sync() } else { Ok(()) });
        if let Err(e) = done {
            self.suspect = true;
            if let Err(t) = self.cut_back() {
                tracing::error!(
                    "ledger: cannot cut the file back to {} bytes after a failed write: {t}; \
                     nothing is acknowledged until it can be",
                    self.committed
                );
            }
            return Err(e);
        }
        self.committed += bytes.len() as u64;
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if fsync {
            self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn cut_back(&mut self) -> io::Result<()> {
        self.file.truncate(self.committed)?;
        if self.durability == Durability::Fsync {
            self.file.sync()?;
        }
        Ok(())
    }

    /// After a failure: the file must be exactly what was committed (repaired if it is longer).
    fn check(&mut self) -> io::Result<()> {
        let len = self.file.size()?;
        if len < self.committed {
            return Err(io::Error::other(format!(
                "the ledger file shrank under the endpoint ({len} bytes, {} committed): \
                 acknowledged alerts are missing from it",
                self.committed
            )));
        }
        if len > self.committed {
            self.cut_back()?;
            let now = self.file.size()?;
            if now != self.committed {
                return Err(io::Error::other(format!(
                    "the ledger file is {now} bytes after cutting it back to {}",
                    self.committed
                )));
            }
        }
        self.suspect = false;
        Ok(())
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes the lower-case hex of `bytes` into `out` (twice as long).
fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xF)];
    }
}

fn invalid(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// Opens (creating if needed) a ledger file for appending: refuses anything but a regular file
/// that starts with [`LEDGER_HEADER`], cuts off a torn last line, and returns the file, the keys
/// it holds and its length.
pub fn open_ledger(path: &Path) -> io::Result<(File, Seen, u64)> {
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, pipe or directory cannot hold a ledger)",
        )
    };
    // Checked before opening too: opening some special files blocks or has side effects.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(not_regular()),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let len = file.metadata()?.len();
    if len == 0 {
        writeln!(file, "{LEDGER_HEADER}")?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        return Ok((file, Seen::default(), len));
    }
    check_header(&mut file)?;
    let complete = complete_len(&mut file, len)?;
    if complete < len {
        tracing::warn!(
            "ledger {}: cutting off a torn last line ({} bytes; never acknowledged)",
            path.display(),
            len - complete
        );
        file.set_len(complete)?;
        file.sync_all()?;
    }
    file.seek(SeekFrom::Start(0))?;
    let seen = read_keys(BufReader::new(&mut file))?;
    if complete <= LEDGER_HEADER.len() as u64 {
        // Only (part of) the header was ever written: write it whole.
        file.set_len(0)?;
        writeln!(file, "{LEDGER_HEADER}")?;
        file.sync_all()?;
    }
    let len = file.metadata()?.len();
    Ok((file, seen, len))
}

/// The file must start with the ledger header (or a torn part of it): anything else is someone
/// else's file, never to be appended to or cut.
fn check_header(file: &mut File) -> io::Result<()> {
    let want = format!("{LEDGER_HEADER}\n");
    let mut head = Vec::with_capacity(want.len());
    file.seek(SeekFrom::Start(0))?;
    Read::by_ref(file)
        .take(want.len() as u64)
        .read_to_end(&mut head)?;
    if !want.as_bytes().starts_with(&head) {
        return Err(invalid(format!(
            "does not start with the ledger header '{LEDGER_HEADER}': not a ledger this \
             endpoint wrote (give a new or empty file)"
        )));
    }
    Ok(())
}

/// Length of the file up to the end of its last complete line (a line longer than
/// [`MAX_LEDGER_LINE`] at the end is an error).
fn complete_len(file: &mut File, len: u64) -> io::Result<u64> {
    let back = len.min(MAX_LEDGER_LINE as u64 + 1);
    file.seek(SeekFrom::Start(len - back))?;
    let mut tail = Vec::with_capacity(back as usize);
    Read::by_ref(file).take(back).read_to_end(&mut tail)?;
    match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => Ok(len - back + i as u64 + 1),
        None if back == len => Ok(0),
        None => Err(invalid(format!(
            "its last line is over {MAX_LEDGER_LINE} bytes: not a ledger this endpoint wrote"
        ))),
    }
}

/// A reader that fails once a line runs past [`MAX_LEDGER_LINE`] bytes, so that what reads
/// through it never buffers more than one bounded line.
struct LineBound<R> {
    inner: R,
    since_newline: usize,
    line: u64,
}

impl<R: Read> Read for LineBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for b in &buf[..n] {
            if *b == b'\n' {
                self.since_newline = 0;
                self.line += 1;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LEDGER_LINE {
                    return Err(invalid(format!(
                        "line {} is over {MAX_LEDGER_LINE} bytes: not a ledger this endpoint wrote",
                        self.line + 1
                    )));
                }
            }
        }
        Ok(n)
    }
}

/// The (run, alert) keys of a ledger's complete lines (the header and lines that do not parse as
/// ledger lines are skipped), reading line by line with a bound on each line.
pub fn read_keys(reader: impl Read) -> io::Result<Seen> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineBound {
            inner: reader,
            since_newline: 0,
            line: 0,
        });
    let mut seen = Seen::default();
    let mut record = csv::ByteRecord::new();
    let mut skipped = 0u64;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(io) => io,
                    other => invalid(format!("{other:?}")),
                });
            }
        }
        let key = (record.len() == LEDGER_FIELDS)
            .then(|| {
                let run = std::str::from_utf8(&record[0])
                    .ok()?
                    .parse::<RunId>()
                    .ok()?;
                let id = std::str::from_utf8(&record[1]).ok()?.parse::<u64>().ok()?;
                Some((run, id))
            })
            .flatten();
        match key {
            Some((run, id)) => {
                seen.insert(run, id);
            }
            None if record.as_slice().starts_with(b"run_id") => {}
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!("ledger: {skipped} lines that are not ledger lines were skipped");
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: u64) -> AlertHeader {
        AlertHeader {
            alert_id: id,
            code: ledger::AlertCode::Ad1.wire(),
            device_id: 0x00AB_CDEF_0001_2345,
            region: 1,
            event_ms: 2,
            seq: 1,
        }
    }

    fn headers(ids: impl IntoIterator<Item = u64>) -> Vec<AlertHeader> {
        ids.into_iter().map(header).collect()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("csp-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn ledger_survives_restart_and_a_torn_line_is_cut_off() {
        let p = tmp("restart.csv");
        let run = RunId([1; 16]);
        let other = RunId([2; 16]);
        block_on(async {
            let s = Store::open(&p, Durability::Flush).unwrap();
            let r = s.store(run, headers([1, 2, 2])).await.unwrap();
            assert_eq!((r.new, r.duplicates), (vec![1, 2], vec![2]));
        });
        // A torn line from a crash mid-write: never acknowledged, cut off on open.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(format!("{run},3,AD1").as_bytes())
            .unwrap();
        block_on(async {
            let s = Store::open(&p, Durability::Fsync).unwrap();
            let r = s.store(run, headers([1, 3])).await.unwrap();
            assert_eq!((r.new, r.duplicates), (vec![3], vec![1]));
            // Another run's alert 1 is a different alert.
            let r = s.store(other, headers([1])).await.unwrap();
            assert_eq!((r.new, r.duplicates), (vec![1], vec![]));
            s.close();
            assert_eq!(s.counters().syncs.load(Ordering::Relaxed), 2);
        });
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(LEDGER_HEADER));
        let first = lines.next().unwrap();
        assert!(
            first.starts_with(&format!("{run},1,AD1,00abcdef00012345,north,2,1,")),
            "{first}"
        );
        for line in text.lines().skip(1) {
            assert_eq!(line.split(',').count(), LEDGER_FIELDS, "{line}");
            assert!(line.contains(",AD1,00abcdef00012345,"), "{line}");
        }
        let keys = read_keys(text.as_bytes()).unwrap().keys();
        assert_eq!(
            keys,
            HashSet::from([(run, 1), (run, 2), (run, 3), (other, 1)])
        );
        assert_eq!(text.lines().count(), 5, "{text}");
        let _ = std::fs::remove_file(&p);
    }

    /// The hand-written ledger lines are byte for byte what the `csv` crate writes for the same
    /// fields (the format the reader, and every older ledger, uses), for every code and region
    /// and for extreme numbers; only new alerts get a line, in batch order.
    #[test]
    fn ledger_lines_are_what_the_csv_crate_writes() {
        let mut batch = Vec::new();
        for (i, code) in [0x0AD1u16, 0x8F35, 0x8F36, 0xFFFF].into_iter().enumerate() {
            for region in [1u8, 2, 0] {
                batch.push(AlertHeader {
                    alert_id: u64::MAX - i as u64 * 7 - u64::from(region),
                    code,
                    device_id: u64::from(region) << 60 | i as u64,
                    region,
                    event_ms: if region == 0 { u64::MAX } else { 0 },
                    seq: u32::MAX - i as u32,
                });
            }
        }
        let run = RunId([0xA5; 16]);
        let (reply, _answer) = tokio::sync::oneshot::channel();
        let new: Vec<u64> = batch.iter().map(|h| h.alert_id).step_by(2).collect();
        let stored = Stored {
            new: new.clone(),
            duplicates: vec![],
        };
        let group = [Request { run, batch, reply }];
        let mut fast = Vec::new();
        format_lines(
            &mut fast,
            &group,
            std::slice::from_ref(&stored),
            1_764_504_000_123,
        );
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for h in group[0].batch.iter().filter(|h| new.contains(&h.alert_id)) {
            csv.write_record([
                run.to_string(),
                h.alert_id.to_string(),
                h.alert_code().map_or("?", |c| c.as_str()).to_string(),
                format!("{:016x}", h.device_id),
                h.region().map_or("?", |r| r.as_str()).to_string(),
                h.event_ms.to_string(),
                h.seq.to_string(),
                "1764504000123".to_string(),
            ])
            .unwrap();
        }
        let want = csv.into_inner().unwrap();
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    /// The bitmap id set agrees with a plain set through inserts, repeats and removals, for dense
    /// ids, ids across word edges, scattered ids and the extremes.
    #[test]
    fn id_set_agrees_with_a_plain_set() {
        let mut ids: Vec<u64> = (0..300).chain(1000..1010).collect();
        ids.extend([
            63,
            64,
            127,
            128,
            u64::MAX,
            u64::MAX - 63,
            1 << 40,
            0xDEAD_BEEF,
        ]);
        ids.extend((0..200u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let (mut set, mut plain) = (IdSet::default(), HashSet::new());
        for (i, &id) in ids.iter().chain(&ids).enumerate() {
            assert_eq!(set.insert(id), plain.insert(id), "insert {id} (#{i})");
            if i % 3 == 0 {
                set.remove(id ^ 1);
                plain.remove(&(id ^ 1));
            }
            assert_eq!(set.len, plain.len());
        }
        assert_eq!(set.iter().collect::<HashSet<_>>(), plain);
        for &id in &ids {
            set.remove(id);
        }
        assert_eq!((set.len, set.words.len(), set.iter().count()), (0, 0, 0));
    }

    /// What a [`FaultyFile`] holds and how it fails, shared with the test.
    #[derive(Default)]
    struct Disk {
        bytes: Vec<u8>,
        /// Space left for the file (a full disk: writes stop part-way).
        capacity: usize,
        fail_truncate: u32,
        fail_sync: u32,
    }

    /// A file on a disk that fills up like a small tmpfs: a write that does not fit writes what
    /// fits, then fails with "no space left".
    struct FaultyFile(Arc<Mutex<Disk>>);

    impl LedgerFile for FaultyFile {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            let room = d.capacity.saturating_sub(d.bytes.len());
            let n = room.min(bytes.len());
            d.bytes.extend_from_slice(&bytes[..n]);
            if n < bytes.len() {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            if d.fail_sync > 0 {
                d.fail_sync -= 1;
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            Ok(())
        }
        fn size(&mut self) -> io::Result<u64> {
            Ok(self.0.lock().unwrap().bytes.len() as u64)
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            if d.fail_truncate > 0 {
                d.fail_truncate -= 1;
                return Err(io::Error::from_raw_os_error(5));
            }
            d.bytes.truncate(len as usize);
            Ok(())
        }
    }

    fn faulty_store(durability: Durability) -> (Store, Arc<Mutex<Disk>>) {
        let header = format!("{LEDGER_HEADER}\n").into_bytes();
        let len = header.len() as u64;
        let disk = Arc::new(Mutex::new(Disk {
            bytes: header,
            capacity: 1 << 20,
            ..Disk::default()
        }));
        let store = Store::with_file(
            Box::new(FaultyFile(disk.clone())),
            Seen::default(),
            len,
            durability,
        );
        (store, disk)
    }

    /// Issue 10 item 1, in process (tests/real_faults.rs does it with a real tmpfs): the disk
    /// fills and is freed mid-run. Every acknowledged id parses back, no refused id is stored,
    /// every line is whole, and refused alerts stored later are stored once.
    #[test]
    fn disk_full_then_freed_keeps_whole_batches_only() {
        for durability in [Durability::Flush, Durability::Fsync] {
            let (store, disk) = faulty_store(durability);
            let run = RunId([7; 16]);
            let (mut acked, mut refused) = (Vec::new(), Vec::new());
            block_on(async {
                let mut next = 0u64;
                for round in 0..60 {
                    match round {
                        // Fill the disk up to a little more than now: the next batch is torn.
                        20 => {
                            let mut d = disk.lock().unwrap();
                            d.capacity = d.bytes.len() + 150;
                        }
                        // Free it.
                        40 => disk.lock().unwrap().capacity = 1 << 20,
                        _ => {}
                    }
                    let ids: Vec<u64> = (next..next + 7).collect();
                    next += 7;
                    match store.store(run, headers(ids.clone())).await {
                        Ok(s) => {
                            assert!(s.duplicates.is_empty());
                            acked.extend(s.new);
                        }
                        Err(StoreError::Io(e)) => {
                            assert!(e.contains("No space left"), "{e}");
                            refused.extend(ids);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                // Refused alerts sent again once there is room are stored, once.
                let again = store.store(run, headers(refused.clone())).await.unwrap();
                assert_eq!(again.new, refused);
                let twice = store.store(run, headers(refused.clone())).await.unwrap();
                assert_eq!(twice.duplicates, refused);
            });
            assert!(!refused.is_empty() && acked.len() > 200, "{durability:?}");
            let text = String::from_utf8(disk.lock().unwrap().bytes.clone()).unwrap();
            for line in text.lines().skip(1) {
                assert_eq!(line.split(',').count(), LEDGER_FIELDS, "torn: {line:?}");
            }
            let stored: Vec<u64> = text
                .lines()
                .skip(1)
                .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
                .collect();
            let mut want = acked.clone();
            want.extend(&refused);
            assert_eq!(
                stored, want,
                "{durability:?}: the ledger holds exactly what was acked"
            );
            assert_eq!(store.counters().failures.load(Ordering::Relaxed), 20);
        }
    }

    #[test]
    fn a_failed_sync_or_cut_back_refuses_until_the_file_is_checked() {
        let (store, disk) = faulty_store(Durability::Fsync);
        let run = RunId([3; 16]);
        block_on(async {
            store.store(run, headers(0..5)).await.unwrap();
            // fsync fails: refused, cut back, ids forgotten.
            disk.lock().unwrap().fail_sync = 1;
            assert!(store.store(run, headers(5..10)).await.is_err());
            // A full disk whose cut-back fails too: the torn bytes stay until the check.
            let committed = {
                let mut d = disk.lock().unwrap();
                d.capacity = d.bytes.len() + 30;
                d.fail_truncate = 2;
                d.bytes.len()
            };
            assert!(store.store(run, headers(10..15)).await.is_err());
            assert_eq!(disk.lock().unwrap().bytes.len(), committed + 30);
            // Room again, but the check's cut-back fails once more: still refused.
            disk.lock().unwrap().capacity = 1 << 20;
            assert!(store.store(run, headers(15..20)).await.is_err());
            // Now the check repairs the file and the batch is stored.
            let s = store.store(run, headers(5..20)).await.unwrap();
            assert_eq!(s.new, (5..20).collect::<Vec<_>>());
        });
        let text = String::from_utf8(disk.lock().unwrap().bytes.clone()).unwrap();
        let keys = read_keys(text.as_bytes()).unwrap();
        assert_eq!(keys.len(), 20);
        assert_eq!(text.lines().count(), 21, "{text}");
    }

    #[test]
    fn concurrent_batches_store_each_alert_once() {
        let p = tmp("concurrent.csv");
        let store = Arc::new(Store::open(&p, Durability::Flush).unwrap());
        let run = RunId([9; 16]);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let new: u64 = rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..8u64 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut new = 0;
                    for i in 0..50u64 {
                        // Every task sends overlapping ids.
                        let first = (i * 10 + t * 3) % 400;
                        let s = store.store(run, headers(first..first + 10)).await.unwrap();
                        new += s.new.len() as u64;
                    }
                    new
                }));
            }
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        });
        store.close();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count() as u64 - 1, new);
        assert_eq!(read_keys(text.as_bytes()).unwrap().len() as u64, new);
        assert!(
            store.counters().writes.load(Ordering::Relaxed) <= 400,
            "group commits"
        );
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn special_files_and_foreign_files_are_refused() {
        for dev in ["/dev/zero", "/dev/full", "/dev/null"] {
            if Path::new(dev).exists() {
                let e = open_ledger(Path::new(dev)).unwrap_err();
                assert!(e.to_string().contains("not a regular file"), "{dev}: {e}");
            }
        }
        let e = open_ledger(&std::env::temp_dir()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let p = tmp("foreign.csv");
        std::fs::write(&p, "name,value\nx,1\n").unwrap();
        let e = open_ledger(&p).unwrap_err().to_string();
        assert!(e.contains("does not start with the ledger header"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "name,value\nx,1\n");
        // A ledger with an endless line: refused, nothing allocated beyond one bounded line.
        let mut text = format!("{LEDGER_HEADER}\n").into_bytes();
        text.extend(std::iter::repeat_n(b'x', 10 * MAX_LEDGER_LINE));
        text.push(b'\n');
        std::fs::write(&p, &text).unwrap();
        let e = open_ledger(&p).unwrap_err().to_string();
        assert!(e.contains("line 2 is over 1024 bytes"), "{e}");
        text.truncate(text.len() - 1);
        std::fs::write(&p, &text).unwrap();
        let e = open_ledger(&p).unwrap_err().to_string();
        assert!(e.contains("last line is over"), "{e}");
        // A header torn by a crash at creation: rewritten whole.
        std::fs::write(&p, &LEDGER_HEADER[..10]).unwrap();
        let (_, seen, len) = open_ledger(&p).unwrap();
        assert!(seen.is_empty());
        assert_eq!(len, LEDGER_HEADER.len() as u64 + 1);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{LEDGER_HEADER}\n")
        );
        let _ = std::fs::remove_file(&p);
    }
}
