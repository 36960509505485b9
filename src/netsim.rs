//! `udpix netsim`: a UDP proxy that impairs traffic like a bad link, for assessing udpix (or
//! anything over UDP) on loopback. Each datagram's fate comes from the same [`Link`] model the
//! in-memory simulator uses: a rate-limited drop-tail queue, then loss (Bernoulli or bursty),
//! duplication, corruption, delay, jitter and reordering, seeded for repeatable runs.
//!
//! Clients send to `--listen`; each client gets its own upstream socket towards `--to`, so
//! replies find their way back. "Up" is client → `--to`, "down" is the way back.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::engine::{bind, sleep_until};
use crate::sim::{Link, LinkCounters, LinkSpec, flip_bit};

/// Clients remembered at once; the longest idle is forgotten beyond this.
const MAX_CLIENTS: usize = 1024;
/// Datagrams held in the delay line at most (memory bound when no rate limit is set).
const MAX_IN_FLIGHT: usize = 200_000;
/// IPv4 + UDP header bytes counted against the link rate per datagram.
pub const IP_UDP_OVERHEAD: usize = 28;

/// What the proxy does.
#[derive(Debug, Clone)]
pub struct NetsimOptions {
    /// Where clients send.
    pub listen: SocketAddr,
    /// Where their datagrams go.
    pub to: SocketAddr,
    /// Impairments client → `to`.
    pub up: LinkSpec,
    /// Impairments `to` → client.
    pub down: LinkSpec,
    /// Seed of every random choice.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    Up,
    Down,
}

type Scheduled = Reverse<(Instant, u64, Way, SocketAddr, Vec<u8>)>;

struct Client {
    upstream: Arc<UdpSocket>,
    last_seen: Instant,
    reader: tokio::task::JoinHandle<()>,
}

/// Counters of both directions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetsimCounters {
    /// Client → target.
    pub up: LinkCounters,
    /// Target → client.
    pub down: LinkCounters,
}

impl std::fmt::Display for NetsimCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, c) in [("up", &self.up), ("down", &self.down)] {
            writeln!(
                f,
                "netsim {name:>4}: {} in, {} delivered, {} lost, {} queue drops, {} duplicated, {} corrupted, {} reordered",
                c.offered,
                c.delivered,
                c.lost,
                c.queue_drops,
                c.duplicated,
                c.corrupted,
                c.reordered
            )?;
        }
        Ok(())
    }
}

/// Runs the proxy on `listener` until `shutdown` turns true; `stats` receives the counters
/// every `interval` (if any) and the final ones are returned.
pub async fn run(
    listener: UdpSocket,
    options: NetsimOptions,
    mut shutdown: watch::Receiver<bool>,
    interval: Option<Duration>,
    mut stats: impl FnMut(&NetsimCounters),
) -> std::io::Result<NetsimCounters> {
    let listener = Arc::new(listener);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut up = Link::new(options.up.clone());
    let mut down = Link::new(options.down.clone());
    let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
    let mut heap: BinaryHeap<Scheduled> = BinaryHeap::new();
    let mut seq = 0u64;
    let (back_tx, mut back_rx) = mpsc::channel::<(SocketAddr, Vec<u8>)>(4096);
    let mut buf = vec![0u8; 65_536];
    let mut next_stats = interval.map(|i| Instant::now() + i);
    let counters = |up: &Link, down: &Link| NetsimCounters {
        up: up.counters.clone(),
        down: down.counters.clone(),
    };
    let mut schedule = |link: &mut Link,
                        heap: &mut BinaryHeap<Scheduled>,
                        rng: &mut StdRng,
                        way: Way,
                        client: SocketAddr,
                        data: Vec<u8>| {
        let now = Instant::now();
        for (at, corrupt) in link.admit(now, data.len() + IP_UDP_OVERHEAD, rng) {
            if heap.len() >= MAX_IN_FLIGHT {
                link.counters.queue_drops += 1;
                continue;
            }
            let mut d = data.clone();
            if corrupt {
                flip_bit(&mut d, rng);
            }
            seq += 1;
            heap.push(Reverse((at, seq, way, client, d)));
        }
    };
    loop {
        let next_delivery = heap.peek().map(|Reverse((t, ..))| *t);
        let wake = [next_delivery, next_stats].into_iter().flatten().min();
        tokio::select! {
            r = listener.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(v) => v,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
                        || e.kind() == std::io::ErrorKind::ConnectionReset => continue,
                    Err(e) => return Err(e),
                };
                if !clients.contains_key(&from) {
                    if clients.len() >= MAX_CLIENTS {
                        evict_idlest(&mut clients);
                    }
                    let local: SocketAddr = if options.to.is_ipv6() {
                        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                    } else {
                        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                    };
                    let upstream = Arc::new(bind(local)?);
                    upstream.connect(options.to).await?;
                    let reader = spawn_reader(upstream.clone(), from, back_tx.clone());
                    clients.insert(from, Client { upstream, last_seen: Instant::now(), reader });
                }
                if let Some(c) = clients.get_mut(&from) {
                    c.last_seen = Instant::now();
                }
                schedule(&mut up, &mut heap, &mut rng, Way::Up, from, buf[..n].to_vec());
            }
            Some((client, data)) = back_rx.recv() => {
                schedule(&mut down, &mut heap, &mut rng, Way::Down, client, data);
            }
            _ = sleep_until(wake) => {
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
                    let Some(Reverse((_, _, way, client, data))) = heap.pop() else { break };
                    match way {
                        Way::Up => {
                            if let Some(c) = clients.get(&client) {
                                let _ = c.upstream.send(&data).await;
                            }
                        }
                        Way::Down => {
                            let _ = listener.send_to(&data, client).await;
                        }
                    }
                }
                if let (Some(t), Some(i)) = (next_stats, interval)
                    && now >= t
                {
                    stats(&counters(&up, &down));
                    next_stats = Some(now + i);
                }
            }
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    for c in clients.values() {
                        c.reader.abort();
                    }
                    return Ok(counters(&up, &down));
                }
            }
        }
    }
}

fn evict_idlest(clients: &mut HashMap<SocketAddr, Client>) {
    if let Some(addr) = clients
        .iter()
        .min_by_key(|(_, c)| c.last_seen)
        .map(|(a, _)| *a)
        && let Some(c) = clients.remove(&addr)
    {
        c.reader.abort();
    }
}

fn spawn_reader(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            match socket.recv(&mut buf).await {
                Ok(n) => {
                    if tx.send((client, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        || e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(_) => return,
            }
        }
    })
}
