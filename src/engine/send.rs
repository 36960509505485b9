//! The sending engine: files over one session per login, driven by the same steps as the
//! receiver (take files, transmit, publish, wait, then receive or run timers) until the
//! last verdict.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::sync::Arc;
use tokio::net::UdpSocket;

use tokio::sync::{mpsc, watch};

use super::lineup::{self, Lineup};
use super::reports::Reports;
use super::{
    ChunkWhat, Direction, Event, Outlet, Progress, Publisher, Report, Snapshot, TransferId,
    drain_batch, is_transient, sleep_until,
};
use crate::proto::sender::{SendError, Sender, SenderConfig, SenderEvent};
use crate::proto::wire::Offer;

/// What the user asked to stop: the whole send, or single files by id, each with the
/// reason the receiver reports ("cancelled by the sender: …").
#[derive(Debug, Clone, Default, PartialEq)]
struct Cancels {
    all: Option<String>,
    files: BTreeMap<TransferId, String>,
}

/// Stops a running [`send_files`] from outside (Ctrl-C, the TUI's cancel keys), all of it
/// or one file: for all, the receiver is told at once by a CLOSE, the files in flight end
/// as cancelled, and those not yet taken stay in the queue; for one file, it is abandoned
/// (ABANDON) and the others go on.
#[derive(Debug, Clone)]
pub struct Canceller(Arc<watch::Sender<Cancels>>);

impl Canceller {
    /// Cancels the whole send with `reason`. Only the first call counts.
    pub fn cancel(&self, reason: &str) {
        self.0.send_if_modified(|c| {
            let first = c.all.is_none();
            if first {
                c.all = Some(reason.to_owned());
            }
            first
        });
    }

    /// Cancels the file sent as `id` alone, with `reason`: one in flight is abandoned, one
    /// not yet taken is never offered. Only the first call per file counts.
    pub fn cancel_file(&self, id: TransferId, reason: &str) {
        self.0.send_if_modified(|c| {
            let first = !c.files.contains_key(&id);
            if first {
                c.files.insert(id, reason.to_owned());
            }
            first
        });
    }

    /// True once [`Canceller::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.borrow().all.is_some()
    }

    /// True once the engine it drives is gone (the send ended).
    pub fn is_done(&self) -> bool {
        self.0.is_closed()
    }
}

/// The engine's end of a [`Canceller`].
#[derive(Debug, Clone)]
pub struct CancelSignal(Option<watch::Receiver<Cancels>>);

impl CancelSignal {
    /// For a send nobody cancels.
    pub fn never() -> Self {
        Self(None)
    }

    /// True once the whole send is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    fn reason(&self) -> Option<String> {
        self.0.as_ref().and_then(|rx| rx.borrow().all.clone())
    }

    /// Why the file sent as `id` was cancelled alone, if it was.
    fn file_reason(&self, id: TransferId) -> Option<String> {
        self.0
            .as_ref()
            .and_then(|rx| rx.borrow().files.get(&id).cloned())
    }

    /// Resolves with the reason once the whole send is cancelled.
    async fn cancelled(&mut self) -> String {
        loop {
            if let Some(r) = self.reason() {
                return r;
            }
            self.changed().await;
        }
    }

    /// Resolves when something more was cancelled; never, if the canceller is gone.
    async fn changed(&mut self) {
        if let Some(rx) = &mut self.0
            && rx.changed().await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}

/// A canceller and the signal it drives.
pub fn cancellation() -> (Canceller, CancelSignal) {
    let (tx, rx) = watch::channel(Cancels::default());
    (Canceller(Arc::new(tx)), CancelSignal(Some(rx)))
}

/// Where a file's bytes come from.
#[derive(Debug)]
pub enum Content {
    /// Held in memory already.
    Bytes(Bytes),
    /// Read from this open file as it is sent, so memory stays bounded whatever its size
    /// (see [`crate::proto::sender::READ_AHEAD`]). Its first `offer.size` bytes are sent.
    File(std::fs::File),
}

/// A file to send: its offer (see [`super::offer_file`]), its bytes, and its id in events.
#[derive(Debug)]
pub struct Outgoing {
    /// Names the transfer in events and its report.
    pub id: TransferId,
    /// What is offered.
    pub offer: Offer,
    /// The content.
    pub content: Content,
    /// Deliver by then, or give way to a newer file once one is ready (see `lineup`).
    pub deadline: Option<Instant>,
}

impl Outgoing {
    /// A file whose bytes are in memory.
    pub fn bytes(id: TransferId, offer: Offer, data: Bytes) -> Self {
        Self {
            id,
            offer,
            content: Content::Bytes(data),
            deadline: None,
        }
    }
}

/// Sends one file's bytes to `peer` and waits for the receiver's verdict.
pub async fn send(
    socket: &UdpSocket,
    peer: SocketAddr,
    config: SenderConfig,
    offer: Offer,
    data: Bytes,
    id: TransferId,
    publisher: Publisher,
) -> std::io::Result<Report> {
    let mut one = queue([Outgoing::bytes(id, offer, data)]);
    let reports = send_files(
        socket,
        peer,
        config,
        &mut one,
        publisher,
        CancelSignal::never(),
    )
    .await?;
    reports
        .into_iter()
        .next()
        .ok_or_else(|| std::io::Error::other("the transfer ended without a verdict"))
}

/// A channel holding `files`, for [`send_files`].
pub fn queue(files: impl IntoIterator<Item = Outgoing>) -> mpsc::Receiver<Outgoing> {
    let files: Vec<Outgoing> = files.into_iter().collect();
    let (tx, rx) = mpsc::channel(files.len().max(1));
    for f in files {
        // Room for every one was made above.
        let _ = tx.try_send(f);
    }
    rx
}

/// How files read from disk are turned into what is offered.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Each file is to be delivered within this long of the moment its path came.
    pub deadline: Option<Duration>,
    /// Scale down or re-encode each image first (the bytes sent are then the new ones).
    pub reencode: Option<crate::reencode::Reencode>,
}

/// Opens and hashes `paths` on a blocking thread, one file ahead of the sender, so neither
/// a slow disk nor hashing a large file stalls a transfer; their bytes are read again as
/// they are sent. Only regular files are sent. A file that cannot be read is passed to
/// `unreadable` and skipped. `options` may give each a deadline or have it re-encoded.
/// The task returns how many were unreadable.
pub fn read_ahead(
    paths: impl IntoIterator<Item = (TransferId, std::path::PathBuf)> + Send + 'static,
    config: SenderConfig,
    options: ReadOptions,
    unreadable: impl Fn(&std::path::Path, std::io::Error) + Send + 'static,
) -> (mpsc::Receiver<Outgoing>, tokio::task::JoinHandle<usize>) {
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::task::spawn_blocking(move || {
        let mut failed = 0;
        for (id, path) in paths {
            let deadline = options.deadline.map(|d| Instant::now() + d);
            let opened = match &options.reencode {
                Some(r) => reencode_and_offer(&config, &path, r),
                None => open_and_offer(&config, &path).map(|(o, f)| (o, Content::File(f))),
            };
            let (offer, content) = match opened {
                Ok(o) => o,
                Err(e) => {
                    failed += 1;
                    unreadable(&path, e);
                    continue;
                }
            };
            let o = Outgoing {
                id,
                offer,
                content,
                deadline,
            };
            if tx.blocking_send(o).is_err() {
                break;
            }
        }
        failed
    });
    (rx, task)
}

/// Decodes, scales down and re-encodes the image at `path` as `r` says, and offers that.
fn reencode_and_offer(
    config: &SenderConfig,
    path: &std::path::Path,
    r: &crate::reencode::Reencode,
) -> std::io::Result<(Offer, Content)> {
    let name = super::offered_name(path);
    let out = crate::reencode::reencode(path, &name, r)?;
    let offer = Sender::offer_for(config, &out.name, &out.bytes, out.format, Some(out.dims));
    Ok((offer, Content::Bytes(Bytes::from(out.bytes))))
}

/// Opens a regular file and makes its offer, hashing it in one streaming pass.
fn open_and_offer(
    config: &SenderConfig,
    path: &std::path::Path,
) -> std::io::Result<(Offer, std::fs::File)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so opening a FIFO with no writer returns (to be turned away below)
    // instead of waiting for one; reads of a regular file are not affected.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let why = if meta.is_dir() {
            "it is a folder: give the files in it (e.g. DIR/*)"
        } else {
            "it is not a regular file (a pipe, socket or device): udpix sends regular files only"
        };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    }
    let size = meta.len();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    while read < size {
        let want = buf.len().min((size - read) as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(shrank(size, read));
        }
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    let (format, dims) = super::image_info_path(path);
    let name = super::offered_name(path);
    let hash = *hasher.finalize().as_bytes();
    let offer = Sender::offer_hashed(config, &name, size, hash, &format, dims);
    Ok((offer, file))
}

fn shrank(size: u64, read: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!(
            "the file shrank from {size} to {read} bytes while it was sent; send it again once it is complete"
        ),
    )
}

/// Reads `file`'s first `size` bytes, in order, on a blocking thread, a few segments ahead.
fn start_reader(file: std::fs::File, size: u64, chunk_size: u16) -> Feed {
    use std::os::unix::fs::FileExt;
    let (tx, rx) = mpsc::channel(4);
    let segment = crate::proto::sender::segment_len(chunk_size) as u64;
    tokio::task::spawn_blocking(move || {
        let mut at = 0u64;
        while at < size {
            let len = segment.min(size - at) as usize;
            let mut buf = vec![0u8; len];
            let got = file
                .read_exact_at(&mut buf, at)
                .map(|()| Bytes::from(buf))
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => shrank(size, at),
                    _ => e,
                });
            let failed = got.is_err();
            if tx.blocking_send(got).is_err() || failed {
                return;
            }
            at += len as u64;
        }
    });
    rx
}

/// Segments of one file as its reader reads them.
type Feed = mpsc::Receiver<std::io::Result<Bytes>>;

/// The readers of the files being sent from disk, by their place in the session.
#[derive(Default)]
struct Feeds(HashMap<u32, Feed>);

impl Feeds {
    /// Gives the core the bytes it wants that have been read; a read that failed ends the
    /// session, since the receiver could never complete the file.
    fn give(&mut self, core: &mut Sender) {
        self.0
            .retain(|&file, _| core.outcome_of(file).is_none() && !core.is_abandoned(file));
        while let Some((file, _)) = core.wants_data() {
            let Some(rx) = self.0.get_mut(&file) else {
                return;
            };
            match rx.try_recv() {
                Ok(got) => self.take(core, file, got),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    let e = std::io::Error::other("the file's reader stopped");
                    self.take(core, file, Err(e));
                }
            }
        }
    }

    fn take(&mut self, core: &mut Sender, file: u32, got: std::io::Result<Bytes>) {
        let taken = got.and_then(|b| core.push_data(file, b).map_err(std::io::Error::other));
        if let Err(e) = taken {
            let name = core
                .offer_of(file)
                .map(|o| o.name.clone())
                .unwrap_or_default();
            core.cancel(&format!("reading {name}: {e}"));
            self.0.clear();
        }
    }

    /// The next segment of the file the core wants bytes of; never ready when it wants
    /// none or they come from memory.
    async fn next(&mut self, wanted: Option<(u32, u64)>) -> (u32, std::io::Result<Bytes>) {
        let Some(rx) = wanted.and_then(|(file, _)| Some((file, self.0.get_mut(&file)?))) else {
            return std::future::pending().await;
        };
        let (file, rx) = rx;
        let got = rx.recv().await;
        (
            file,
            got.unwrap_or_else(|| Err(std::io::Error::other("the file's reader stopped"))),
        )
    }
}

/// The bytes to give the core with a file's offer: all of them from memory, none from disk
/// (a reader of `offer`'s bytes then gives them as asked).
fn split(content: Content, offer: &Offer) -> (Bytes, Option<Feed>) {
    match content {
        Content::Bytes(b) => (b, None),
        Content::File(f) => (
            Bytes::new(),
            Some(start_reader(f, offer.size, offer.chunk_size)),
        ),
    }
}

/// Queues `o` in the session, with a reader when it comes from disk.
fn push(core: &mut Sender, feeds: &mut Feeds, now: Instant, o: Outgoing) -> (u32, TransferId) {
    let (data, feed) = split(o.content, &o.offer);
    let file = core.push_file(now, o.offer, data);
    feeds.0.extend(feed.map(|f| (file, f)));
    (file, o.id)
}

/// Sends the files that come on `files`, one after another, each with its own verdict,
/// over one session: one login, the next file's offer going out as the previous one's last
/// chunk leaves. A file is taken whenever the session has room for one, so at most a few
/// are held in memory. A session that fails in a way the next file would not (the receiver
/// restarted, went silent) is followed by a new one for the files left; one that fails in a
/// way every file would ([`Report::ends_session`]: wrong passphrase, refused login) stops
/// there, with the files not yet taken left in `files`; so does a cancel. Returns the
/// reports in the order the verdicts came.
pub async fn send_files(
    socket: &UdpSocket,
    peer: SocketAddr,
    config: SenderConfig,
    files: &mut mpsc::Receiver<Outgoing>,
    publisher: Publisher,
    mut cancel: CancelSignal,
) -> std::io::Result<Reports> {
    let mut out = Outlet::new(publisher);
    let mut reports = Reports::default();
    loop {
        let first = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            f = files.recv() => f,
        };
        let Some(first) = first else { break };
        let Some(first) = unless_cancelled(first, &cancel, &mut out, peer, &mut reports) else {
            continue;
        };
        let session = Session {
            socket,
            peer,
            config: &config,
        };
        if session
            .run(first, files, &mut out, &mut reports, &mut cancel)
            .await?
        {
            break;
        }
    }
    // Give a lagging consumer a moment to take the final events.
    for _ in 0..50 {
        if out.pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        out.flush();
    }
    Ok(reports)
}

/// A file of the running session, as the engine knows it.
struct Active {
    id: TransferId,
    offer: Offer,
    started: Instant,
    /// Deliver by then, or give way to a newer file.
    deadline: Option<Instant>,
}

/// Where a session runs.
struct Session<'a> {
    socket: &'a UdpSocket,
    peer: SocketAddr,
    config: &'a SenderConfig,
}

impl Session<'_> {
    /// One session, from `first` until its last verdict; true when it ended in a way that
    /// would end any further session too, or was cancelled.
    async fn run(
        &self,
        first: Outgoing,
        files: &mut mpsc::Receiver<Outgoing>,
        out: &mut Outlet,
        reports: &mut Reports,
        cancel: &mut CancelSignal,
    ) -> std::io::Result<bool> {
        let Session {
            socket,
            peer,
            config,
        } = *self;
        let session = rand::random::<u64>() | 1;
        let start = Instant::now();
        let mut feeds = Feeds::default();
        let first_deadline = first.deadline;
        let mut lineup = Lineup::after(&first);
        let (data, feed) = split(first.content, &first.offer);
        feeds.0.extend(feed.map(|f| (0, f)));
        let mut core = Sender::new(start, config.clone(), session, first.offer, data);
        core.keep_open();
        let mut active: HashMap<u32, Active> = HashMap::new();
        start_file(&core, &mut active, out, peer, 0, first.id, start);
        if let Some(a) = active.get_mut(&0) {
            a.deadline = first_deadline;
        }
        let mut stop = false;
        let mut cancelled = false;
        if let Some(reason) = cancel.reason() {
            core.cancel(&reason);
            cancelled = true;
        }
        let mut buf = vec![0u8; 65_536];
        let mut tx = Vec::with_capacity(2048);
        loop {
            let now = Instant::now();
            lineup.refill(files, core.wants_file());
            for late in lineup.skip(now, pace_of(&core)) {
                never_offered(late, lineup::LATE.to_owned(), out, peer, reports);
            }
            give_way(&mut core, &active, &lineup, now);
            while core.wants_file() {
                let Some(o) = lineup.take() else { break };
                if let Some(o) = unless_cancelled(o, cancel, out, peer, reports) {
                    let deadline = o.deadline;
                    let (file, id) = push(&mut core, &mut feeds, now, o);
                    start_file(&core, &mut active, out, peer, file, id, now);
                    if let Some(a) = active.get_mut(&file) {
                        a.deadline = deadline;
                    }
                }
            }
            if lineup.exhausted && !lineup.newer_ready() {
                core.close_input();
            }
            feeds.give(&mut core);
            while core.poll_transmit(now, &mut tx) {
                match socket.send_to(&tx, peer).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        core.port_closed();
                    }
                    Err(e) if is_transient(&e) => {}
                    Err(e) if super::too_large_for_the_path(&e) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!(
                                "a {}-byte datagram does not fit the path to {peer} (its MTU is \
                             smaller, and udpix does not let IP fragment it): lower --mtu \
                             (1200 fits virtually every path)",
                                tx.len()
                            ),
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            while let Some(ev) = core.poll_event() {
                if let Some(report) = apply(&core, &mut active, out, peer, now, ev) {
                    stop |= report.ends_session;
                    reports.push(report);
                }
            }
            if core.is_finished() || out.snapshot_due(now) {
                publish(&core, &active, out, now);
            }
            if core.is_finished() {
                return Ok(stop || cancelled);
            }
            out.flush();
            let due = [lineup.next_deadline(), late_wake(&core, &active, &lineup)];
            let timer = due
                .into_iter()
                .flatten()
                .fold(core.poll_timeout(), |t, d| Some(t.map_or(d, |t| t.min(d))));
            let deadline = Some(out.wake_at(timer));
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let now = Instant::now();
                    if r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused) {
                        core.port_closed();
                    }
                    drain_batch(socket, &mut buf, r, |d, from| {
                        if from == peer {
                            core.handle(now, d);
                        }
                    })?;
                }
                _ = sleep_until(deadline) => core.handle_timeout(Instant::now()),
                _ = cancel.changed(), if !cancelled => match cancel.reason() {
                    Some(reason) => {
                        core.cancel(&reason);
                        cancelled = true;
                    }
                    None => abandon_cancelled(&mut core, &active, cancel, Instant::now()),
                },
                (file, got) = feeds.next(core.wants_data()) => feeds.take(&mut core, file, got),
                o = files.recv(), if lineup.wants(core.wants_file()) => lineup.got(o),
            }
        }
    }
}

/// `o`, unless its user cancelled it before it was taken: then it ends here, never offered,
/// with the report a cancelled file gets.
fn unless_cancelled(
    o: Outgoing,
    cancel: &CancelSignal,
    out: &mut Outlet,
    peer: SocketAddr,
    reports: &mut Reports,
) -> Option<Outgoing> {
    let Some(reason) = cancel.file_reason(o.id) else {
        return Some(o);
    };
    never_offered(o, reason, out, peer, reports);
    None
}

/// Ends `o` without offering it, for `reason` (as [`SendError::Abandoned`] tells it).
fn never_offered(
    o: Outgoing,
    reason: String,
    out: &mut Outlet,
    peer: SocketAddr,
    reports: &mut Reports,
) {
    out.lifecycle(Event::Started {
        id: o.id,
        direction: Direction::Send,
        peer,
        offer: o.offer.clone(),
    });
    let report = Report {
        id: o.id,
        direction: Direction::Send,
        peer,
        stats: crate::proto::stats::TransferStats {
            bytes: o.offer.size,
            chunks: o.offer.chunk_count,
            ..Default::default()
        },
        offer: o.offer,
        path: None,
        duration: Duration::ZERO,
        result: Err(SendError::Abandoned(reason).to_string()),
        ends_session: false,
    };
    out.lifecycle(Event::Finished(Box::new(report.clone())));
    reports.push(report);
}

/// A file in flight past its deadline gives way to a newer one waiting that can make its
/// own deadline: it is abandoned, and the receiver keeps nothing of it. A newer one
/// already in flight behind it is no reason (it follows as soon as the older's chunks
/// have all left once, and would be as late), nor is one that could not make it either:
/// a late image beats none.
fn give_way(core: &mut Sender, active: &HashMap<u32, Active>, lineup: &Lineup, now: Instant) {
    if !lineup.newer_in_time(now, pace_of(core)) {
        return;
    }
    let late: Vec<u32> = active
        .iter()
        .filter(|(file, a)| a.deadline.is_some_and(|d| d <= now) && !core.is_abandoned(**file))
        .map(|(file, _)| *file)
        .collect();
    for file in late {
        core.abandon(now, file, lineup::LATE);
    }
}

/// The session's pace, for judging whether a waiting file can make its deadline: the
/// rate it is sending at and its round trip, once it has measured them.
fn pace_of(core: &Sender) -> Option<(f64, Duration)> {
    core.pace().filter(|(rate, _)| *rate > 0.0)
}

/// When the next file in flight would give way, if a newer one is ready.
fn late_wake(core: &Sender, active: &HashMap<u32, Active>, lineup: &Lineup) -> Option<Instant> {
    if !lineup.newer_ready() {
        return None;
    }
    active
        .iter()
        .filter(|(file, _)| !core.is_abandoned(**file))
        .filter_map(|(_, a)| a.deadline)
        .min()
}

/// Abandons each file in flight whose user cancelled it alone.
fn abandon_cancelled(
    core: &mut Sender,
    active: &HashMap<u32, Active>,
    cancel: &CancelSignal,
    now: Instant,
) {
    for (&file, a) in active {
        if let Some(reason) = cancel.file_reason(a.id) {
            core.abandon(now, file, &reason);
        }
    }
}

fn start_file(
    core: &Sender,
    active: &mut HashMap<u32, Active>,
    out: &mut Outlet,
    peer: SocketAddr,
    file: u32,
    id: TransferId,
    now: Instant,
) {
    let Some(offer) = core.offer_of(file).cloned() else {
        return;
    };
    out.lifecycle(Event::Started {
        id,
        direction: Direction::Send,
        peer,
        offer: offer.clone(),
    });
    active.insert(
        file,
        Active {
            id,
            offer,
            started: now,
            deadline: None,
        },
    );
}

/// Publishes what a core event means; a file's report when it was its verdict.
fn apply(
    core: &Sender,
    active: &mut HashMap<u32, Active>,
    out: &mut Outlet,
    peer: SocketAddr,
    now: Instant,
    ev: SenderEvent,
) -> Option<Report> {
    let id_of = |file: u32| active.get(&file).map(|a| a.id);
    match ev {
        SenderEvent::ChunkSent {
            file,
            chunk,
            retransmit,
        } => {
            let what = if retransmit {
                ChunkWhat::Retransmitted
            } else {
                ChunkWhat::Sent
            };
            out.chunk(id_of(file)?, chunk, what);
        }
        SenderEvent::ChunkLost { file, chunk } => out.chunk(id_of(file)?, chunk, ChunkWhat::Lost),
        SenderEvent::ChunkAcked { file, chunk, .. } => {
            out.chunk(id_of(file)?, chunk, ChunkWhat::Acked);
        }
        SenderEvent::Accepted { file } => out.lifecycle(Event::Connected {
            id: id_of(file)?,
            peer,
        }),
        SenderEvent::Delivered { file, .. } => {
            return conclude(core, active, out, peer, now, file, Ok(()));
        }
        SenderEvent::Failed { file, error } => {
            let ends_session = error.ends_session();
            let mut report = conclude(
                core,
                active,
                out,
                peer,
                now,
                file,
                Err(describe(&error, peer)),
            )?;
            report.ends_session = ends_session;
            return Some(report);
        }
    }
    None
}

fn conclude(
    core: &Sender,
    active: &mut HashMap<u32, Active>,
    out: &mut Outlet,
    peer: SocketAddr,
    now: Instant,
    file: u32,
    result: Result<(), String>,
) -> Option<Report> {
    let a = active.remove(&file)?;
    let ends_session = matches!(core.outcome_of(file), Some(Err(e)) if e.ends_session());
    let report = Report {
        id: a.id,
        direction: Direction::Send,
        peer,
        offer: a.offer,
        path: None,
        stats: core.stats_of(file).unwrap_or_default(),
        duration: now.duration_since(a.started),
        result,
        ends_session,
    };
    out.lifecycle(Event::Finished(Box::new(report.clone())));
    Some(report)
}

fn publish(core: &Sender, active: &HashMap<u32, Active>, out: &mut Outlet, now: Instant) {
    let mut transfers: Vec<Progress> = active
        .iter()
        .map(|(&file, a)| Progress {
            id: a.id,
            name: a.offer.name.clone(),
            stats: core.stats_of(file).unwrap_or_default(),
            elapsed: now.duration_since(a.started),
        })
        .collect();
    transfers.sort_by_key(|p| p.id);
    let snap = Snapshot {
        transfers,
        ..Snapshot::default()
    };
    out.publish(now, snap);
}

fn describe(e: &SendError, peer: SocketAddr) -> String {
    match e {
        SendError::PortClosed => format!(
            "nothing listens on {peer}: its host says UDP port {} is closed; is `udpix recv` \
             running there, on that port?",
            peer.port()
        ),
        SendError::NoAnswer(t) => format!(
            "no answer from {peer} within {:.0} s: is `udpix recv` running there, and is UDP port {} open?",
            t.as_secs_f64(),
            peer.port()
        ),
        other => other.to_string(),
    }
}
