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
use crate::report::count;
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

/// `12.5`, `20`, `0.05`: a figure without trailing zeros.
fn figure(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// One direction's impairments, readably: `20 Mbit/s, 20 ms delay, 10 % loss, queue 100
/// packets`.
pub fn describe_link(l: &LinkSpec) -> String {
    let percent = |p: f64| format!("{} %", figure(p * 100.0));
    let ms = |d: Duration| format!("{} ms", figure(d.as_secs_f64() * 1e3));
    let mut parts = vec![match l.rate {
        Some(r) => format!("{} Mbit/s", figure(r * 8.0 / 1e6)),
        None => "unlimited rate".to_owned(),
    }];
    parts.push(if l.delay.is_zero() {
        "no delay".to_owned()
    } else {
        format!("{} delay", ms(l.delay))
    });
    if !l.jitter.is_zero() {
        parts.push(format!("up to {} jitter", ms(l.jitter)));
    }
    if l.loss > 0.0 {
        let mut loss = format!("{} loss", percent(l.loss));
        if l.burst > 1.0 {
            loss.push_str(&format!(" in bursts of {} packets", figure(l.burst)));
        }
        parts.push(loss);
    } else {
        parts.push("no loss".to_owned());
    }
    for (p, what) in [
        (l.reorder, "reordered"),
        (l.duplicate, "duplicated"),
        (l.corrupt, "corrupted"),
    ] {
        if p > 0.0 {
            parts.push(format!("{} {what}", percent(p)));
        }
    }
    if l.rate.is_some() {
        parts.push(format!(
            "queue {}",
            count(l.queue as u64, "packet", "packets")
        ));
    }
    parts.join(", ")
}

/// Both directions: one description when they are alike, else `up: ...; down: ...`.
pub fn describe(up: &LinkSpec, down: &LinkSpec) -> String {
    let (u, d) = (describe_link(up), describe_link(down));
    if u == d {
        format!("{u} (up and down)")
    } else {
        format!("up: {u}; down: {d}")
    }
}

impl std::fmt::Display for NetsimCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, c) in [("up", &self.up), ("down", &self.down)] {
            writeln!(
                f,
                "netsim {name:>4}: {} in, {} delivered, {} lost, {}, {} duplicated, {} corrupted, {} reordered",
                c.offered,
                c.delivered,
                c.lost,
                count(c.queue_drops, "queue drop", "queue drops"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_reads_as_words() {
        let link = LinkSpec {
            loss: 0.1,
            burst: 1.0,
            delay: Duration::from_millis(20),
            rate: Some(20e6 / 8.0),
            queue: 100,
            ..LinkSpec::default()
        };
        assert_eq!(
            describe(&link, &link),
            "20 Mbit/s, 20 ms delay, 10 % loss, queue 100 packets (up and down)"
        );
        let down = LinkSpec {
            loss: 0.0,
            jitter: Duration::from_micros(1500),
            duplicate: 0.02,
            rate: None,
            ..link.clone()
        };
        assert_eq!(
            describe(&link, &down),
            "up: 20 Mbit/s, 20 ms delay, 10 % loss, queue 100 packets; \
             down: unlimited rate, 20 ms delay, up to 1.5 ms jitter, no loss, 2 % duplicated"
        );
        let bursty = LinkSpec {
            burst: 3.0,
            queue: 1,
            ..link
        };
        assert_eq!(
            describe_link(&bursty),
            "20 Mbit/s, 20 ms delay, 10 % loss in bursts of 3 packets, queue 1 packet"
        );
    }
}
