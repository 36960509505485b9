//! The tokio driver: the only place with sockets and clocks. It feeds datagrams and timer
//! expiries into the sans-IO core, sends what the core asks for, stores received chunks, and
//! publishes what happens for the CLI or TUI.
//!
//! Publishing never stalls the transfer: per-chunk log events go on a bounded channel with
//! `try_send` and are dropped (and counted) when the consumer lags; lifecycle events
//! ([`Event::Started`], [`Event::Finished`]) are queued and flushed as space frees up; live
//! figures go on a `watch` channel, whose latest value is always there to read.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

mod lineup;
mod receive;
mod reports;
mod send;
pub mod service;

pub use receive::{ReceiveOptions, run_receiver};
pub use reports::{Reports, gave_way};
pub use send::{
    CancelSignal, Canceller, Content, Outgoing, ReadOptions, cancellation, queue, read_ahead, send,
    send_files,
};

use crate::proto::receiver::EndpointStats;
use crate::proto::sender::{Sender, SenderConfig};
use crate::proto::stats::TransferStats;
use crate::proto::wire::Offer;

/// How often live figures are published at most.
const STATS_INTERVAL: Duration = Duration::from_millis(100);
/// Datagrams read in one go before the engine looks at its timers again.
const RECV_BATCH: usize = 64;
/// Lifecycle events held back for a lagging consumer before the oldest are dropped.
const MAX_PENDING_LIFECYCLE: usize = 4096;
/// Socket buffer size asked of the kernel (best effort).
const SOCKET_BUFFER: usize = 4 << 20;

/// Identifies one transfer in events (unique within one engine).
pub type TransferId = u64;

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This side sends.
    Send,
    /// This side receives.
    Receive,
}

/// What happened to one chunk; the TUI's chunk log shows these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkWhat {
    /// Sent for the first time.
    Sent,
    /// Sent again after a loss.
    Retransmitted,
    /// Its packet was declared lost.
    Lost,
    /// The receiver acknowledged it.
    Acked,
    /// Arrived (first copy).
    Received,
    /// Arrived by a retransmission after a loss.
    Recovered,
    /// Arrived again; dropped.
    Duplicate,
}

/// One line of the chunk log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkEvent {
    /// The transfer.
    pub id: TransferId,
    /// Chunk index.
    pub chunk: u32,
    /// What happened.
    pub what: ChunkWhat,
}

/// The summary of a finished transfer.
#[derive(Debug, Clone)]
pub struct Report {
    /// The transfer.
    pub id: TransferId,
    /// Which way it went.
    pub direction: Direction,
    /// The other side.
    pub peer: SocketAddr,
    /// What was offered.
    pub offer: Offer,
    /// Where the file was written (receiver, on success).
    pub path: Option<PathBuf>,
    /// This side's counters.
    pub stats: TransferStats,
    /// From offer (sender) or acceptance (receiver) to the verdict.
    pub duration: Duration,
    /// `Ok` when the content hash verified; otherwise why not.
    pub result: Result<(), String>,
    /// True when the failure would repeat for every further file to this receiver (wrong
    /// passphrase, mode mismatch, throttled): a sender stops instead of trying each one.
    pub ends_session: bool,
}

impl Report {
    /// Content bits per second over the transfer's duration.
    pub fn goodput_bps(&self) -> f64 {
        self.offer.size as f64 * 8.0 / self.duration.as_secs_f64().max(1e-6)
    }
}

/// What the engine publishes.
#[derive(Debug, Clone)]
pub enum Event {
    /// A transfer began.
    Started {
        /// The transfer.
        id: TransferId,
        /// Which way it goes.
        direction: Direction,
        /// The other side.
        peer: SocketAddr,
        /// What is being transferred.
        offer: Offer,
    },
    /// The receiver accepted a sender's offer (after the login, when there is one): data
    /// starts flowing. Lets a sender's screen tell "handshaking" from "connected".
    Connected {
        /// The transfer.
        id: TransferId,
        /// The receiver.
        peer: SocketAddr,
    },
    /// A chunk log line (may be dropped under load).
    Chunk(ChunkEvent),
    /// A transfer ended.
    Finished(Box<Report>),
    /// Something worth a line in the log that is not tied to a transfer (a refused offer).
    Notice(Notice),
}

/// Something worth a line in the log that is not tied to a transfer; typed, so a front end
/// counts failed logins without reading the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A sender's login failed: the passphrases differ.
    AuthFailed {
        /// The sender.
        peer: SocketAddr,
    },
    /// An offer refused before it became a transfer.
    Refused {
        /// The sender.
        peer: SocketAddr,
        /// Why, as the sender is told.
        reason: String,
    },
    /// A datagram could not be sent.
    SendFailed {
        /// Where it was going.
        to: SocketAddr,
        /// The system's words.
        error: String,
    },
    /// Anything else, in words.
    Text(String),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::AuthFailed { peer } => write!(
                f,
                "authentication failed from {peer}: wrong passphrase? (repeated failures from that address are slowed down)"
            ),
            Notice::Refused { peer, reason } => {
                write!(f, "refused an offer from {peer}: {reason}")
            }
            Notice::SendFailed { to, error } => write!(f, "send to {to} failed: {error}"),
            Notice::Text(t) => f.write_str(t),
        }
    }
}

impl From<String> for Notice {
    fn from(text: String) -> Self {
        Notice::Text(text)
    }
}

/// Live figures of one transfer.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The transfer.
    pub id: TransferId,
    /// File name as offered.
    pub name: String,
    /// Counters so far.
    pub stats: TransferStats,
    /// Time since the transfer started.
    pub elapsed: Duration,
}

/// The latest live figures; published on a `watch` channel.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Transfers in progress.
    pub transfers: Vec<Progress>,
    /// Receiver endpoint counters (zero on a sender).
    pub endpoint: EndpointStats,
    /// Chunk log events dropped because the consumer lagged.
    pub dropped_events: u64,
}

/// Where events go. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    events: mpsc::Sender<Event>,
    snapshot: Arc<watch::Sender<Snapshot>>,
}

impl Publisher {
    /// Publishes a notice line; false (and nothing queued) when the consumer lags.
    pub fn notice(&self, text: String) -> bool {
        self.events
            .try_send(Event::Notice(Notice::Text(text)))
            .is_ok()
    }
}

/// The consuming ends of a [`Publisher`].
#[derive(Debug)]
pub struct Subscriber {
    /// Lifecycle and chunk events.
    pub events: mpsc::Receiver<Event>,
    /// Live figures.
    pub snapshot: watch::Receiver<Snapshot>,
}

/// A publisher and its subscriber; `capacity` bounds the event channel.
pub fn channel(capacity: usize) -> (Publisher, Subscriber) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (stx, srx) = watch::channel(Snapshot::default());
    (
        Publisher {
            events: tx,
            snapshot: Arc::new(stx),
        },
        Subscriber {
            events: rx,
            snapshot: srx,
        },
    )
}

/// Per-engine publishing state: lifecycle backlog and drop counter.
struct Outlet {
    publisher: Publisher,
    pending: VecDeque<Event>,
    dropped: u64,
    last_snapshot: Option<Instant>,
}

impl Outlet {
    fn new(publisher: Publisher) -> Self {
        Self {
            publisher,
            pending: VecDeque::new(),
            dropped: 0,
            last_snapshot: None,
        }
    }

    fn chunk(&mut self, id: TransferId, chunk: u32, what: ChunkWhat) {
        if !self.pending.is_empty() {
            self.dropped += 1;
            return;
        }
        let ev = Event::Chunk(ChunkEvent { id, chunk, what });
        if self.publisher.events.try_send(ev).is_err() {
            self.dropped += 1;
        }
    }

    fn lifecycle(&mut self, ev: Event) {
        if self.pending.len() >= MAX_PENDING_LIFECYCLE {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(ev);
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(ev) = self.pending.pop_front() {
            match self.publisher.events.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.pending.push_front(ev);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.pending.clear();
                    break;
                }
            }
        }
    }

    fn snapshot_due(&self, now: Instant) -> bool {
        self.last_snapshot
            .is_none_or(|t| now.duration_since(t) >= STATS_INTERVAL)
    }

    fn publish(&mut self, now: Instant, mut snap: Snapshot) {
        snap.dropped_events = self.dropped;
        self.last_snapshot = Some(now);
        self.publisher.snapshot.send_replace(snap);
    }

    fn next_snapshot(&self) -> Instant {
        self.last_snapshot
            .map_or_else(Instant::now, |t| t + STATS_INTERVAL)
    }

    /// When the engine must wake: the core's next timer, or the next snapshot if sooner.
    fn wake_at(&self, core_timeout: Option<Instant>) -> Instant {
        let snapshot = self.next_snapshot();
        core_timeout.map_or(snapshot, |t| t.min(snapshot))
    }
}

/// Binds a UDP socket with large buffers; `[::]` binds accept IPv4 too where the OS allows.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::from_std(bound(addr)?.into())
}

/// A socket bound to `addr`, set up as [`bind`] says.
fn bound(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    forbid_fragmentation(&socket, addr.is_ipv6());
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Sets don't-fragment on the socket (Linux): a datagram larger than the path allows is then
/// refused by the kernel (EMSGSIZE, see [`too_large_for_the_path`]) or dropped on the way,
/// instead of going out in IP fragments, where losing any fragment loses the datagram.
/// Best effort: where the option is missing, datagrams may fragment as before.
fn forbid_fragmentation(socket: &socket2::Socket, ipv6: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
            // SAFETY: a plain setsockopt on a socket we own, with a pointer to an int that
            // lives for the call and its exact size.
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    level,
                    name,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        // An IPv6 socket also carries IPv4 (mapped addresses): both options, where they apply.
        set(
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        );
        if ipv6 {
            set(
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_DO,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, ipv6);
}

/// True for the error a send gets when its datagram is larger than the path's MTU as the
/// kernel knows it (don't-fragment is set).
pub(crate) fn too_large_for_the_path(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EMSGSIZE)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Sleeps until `t`, or forever when there is no deadline.
pub(crate) async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Handles the datagram `first` (already received) and then whatever else is waiting, up to
/// [`RECV_BATCH`], without blocking; transient socket errors are skipped.
pub(crate) fn drain_batch(
    socket: &UdpSocket,
    buf: &mut [u8],
    first: std::io::Result<(usize, SocketAddr)>,
    mut handle: impl FnMut(&mut [u8], SocketAddr),
) -> std::io::Result<()> {
    let mut r = first;
    for taken in 1.. {
        match r {
            Ok((n, from)) => handle(&mut buf[..n], from),
            // ICMP errors from earlier sends surface here on some systems: ignore.
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        // Stop before taking a datagram this batch has no turn left to handle.
        if taken == RECV_BATCH {
            break;
        }
        r = match socket.try_recv_from(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            other => other,
        };
    }
    Ok(())
}

pub(crate) fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    )
}

/// Format label and dimensions of an image in memory, from its content (see
/// [`crate::formats`]): an empty label for anything udpix does not decode.
pub fn image_info(data: &[u8]) -> (String, Option<(u32, u32)>) {
    let Some(format) = crate::formats::sniff(data) else {
        return (String::new(), None);
    };
    let reader = image::ImageReader::with_format(std::io::Cursor::new(data), format);
    (
        crate::formats::label(format).to_owned(),
        reader.into_dimensions().ok(),
    )
}

/// [`image_info`] of a file, reading only its header.
pub fn image_info_path(path: &std::path::Path) -> (String, Option<(u32, u32)>) {
    crate::formats::info_path(path)
}

/// The offer for a file's bytes: geometry from `config`, format and size from its header.
pub fn offer_file(config: &SenderConfig, name: &str, data: &[u8]) -> Offer {
    let (format, dims) = image_info(data);
    Sender::offer_for(config, name, data, &format, dims)
}

/// The name a path is offered under: its last component.
pub fn offered_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// An ephemeral socket of the peer's address family, to send from, connected to the peer:
/// it hears only from there, and the kernel reports a closed port (ICMP port unreachable)
/// as "connection refused", so a send to a port where nothing listens fails at once.
pub fn bind_for(peer: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if peer.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = bound(local)?;
    socket.connect(&peer.into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[tokio::test]
    async fn sockets_forbid_fragmentation() {
        use std::os::fd::AsRawFd;
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(socket) = super::bind(addr.parse().expect("addr")) else {
                continue; // no IPv6 on this machine
            };
            let (level, name) = if addr.starts_with('[') {
                (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
            } else {
                (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
            };
            let mut value: libc::c_int = -1;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt into an int of the size given, on a socket we own.
            let rc = unsafe {
                libc::getsockopt(
                    socket.as_raw_fd(),
                    level,
                    name,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0, "{addr}");
            assert_eq!(value, 2, "{addr}: PMTUDISC_DO (2), so nothing fragments");
        }
    }
}
