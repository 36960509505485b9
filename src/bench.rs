//! `udpix bench`: how close a transfer comes to the time the link allows. Each case runs a
//! real receiver, a `netsim` link and a real sender on loopback sockets in this process, with
//! login and encryption on, and times from the sender's start until the receiver has written
//! the last file after its hash verified.
//!
//! The limit of a case is the image bits over the rate the link delivers under its loss, plus
//! one one-way delay: `bits / (rate × (1 − loss)) + delay`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;
use tokio::sync::watch;

use crate::engine::{self, ChunkWhat, Direction, Event, ReceiveOptions};
use crate::netsim::{self, NetsimCounters, NetsimOptions};
use crate::proto::crypto::Passphrase;
use crate::proto::receiver::ReceiverConfig;
use crate::proto::sender::SenderConfig;
use crate::sim::LinkSpec;

/// Longest a single run may take before it counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// One row of the matrix: a link and the files sent over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Short name, as printed and as `--case` selects it.
    pub name: String,
    /// Link rate in bits per second, each way.
    pub rate_bps: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Mean loss each way.
    pub loss: f64,
    /// Mean loss burst (1 = independent losses).
    pub burst: f64,
    /// Bottleneck queue in datagrams.
    pub queue: usize,
    /// Sizes of the files sent, in order, in one `send` session.
    pub files: Vec<usize>,
    /// Largest UDP payload the sender uses.
    pub datagram: usize,
    /// Senders sending `files` at once through the one link, each in its own session.
    pub flows: usize,
}

impl Case {
    fn link(name: &str, mbit: f64, delay_ms: u64, loss: f64, files: Vec<usize>) -> Self {
        Self {
            name: name.to_owned(),
            rate_bps: mbit * 1e6,
            delay: Duration::from_millis(delay_ms),
            loss,
            burst: 1.0,
            queue: 100,
            files,
            datagram: crate::proto::DEFAULT_MAX_DATAGRAM,
            flows: 1,
        }
    }

    /// Total image bytes of the case, every flow's.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|&n| n as u64).sum::<u64>() * self.flows as u64
    }

    /// The time the link allows: the bits at the rate loss leaves, plus one one-way delay.
    pub fn limit(&self) -> Duration {
        let goodput = self.rate_bps * (1.0 - self.loss);
        Duration::from_secs_f64(self.bytes() as f64 * 8.0 / goodput) + self.delay
    }

    fn spec(&self) -> LinkSpec {
        LinkSpec {
            loss: self.loss,
            burst: self.burst,
            delay: self.delay,
            rate: Some(self.rate_bps / 8.0),
            queue: self.queue,
            ..LinkSpec::default()
        }
    }
}

const MIB: usize = 1 << 20;

/// Sizes of a folder of `n` images of 40–400 KB, the same for the same seed.
fn folder(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(40_000..=400_000)).collect()
}

/// The matrix: the full one the targets are stated for, or a small one that runs in seconds.
pub fn matrix(quick: bool) -> Vec<Case> {
    if quick {
        return vec![
            Case::link("quick 0%", 50.0, 5, 0.0, vec![256 << 10]),
            Case::link("quick 10%", 50.0, 5, 0.10, vec![256 << 10]),
            Case::link("quick folder 5%", 50.0, 5, 0.05, vec![30_000, 70_000, 1]),
        ];
    }
    let two = vec![2 * MIB];
    let mut cases: Vec<Case> = [0.0, 0.01, 0.05, 0.10, 0.20, 0.30]
        .into_iter()
        .map(|p| Case::link(&format!("2MiB {:.0}%", p * 100.0), 20.0, 20, p, two.clone()))
        .collect();
    let mut ge = Case::link("2MiB GE 5% burst 4", 20.0, 20, 0.05, two);
    ge.burst = 4.0;
    cases.push(ge);
    for p in [0.0, 0.05] {
        let name = format!("8MiB sat {:.0}%", p * 100.0);
        cases.push(Case::link(&name, 100.0, 100, p, vec![8 * MIB]));
    }
    for p in [0.0, 0.10] {
        let name = format!("50 files {:.0}%", p * 100.0);
        cases.push(Case::link(&name, 20.0, 20, p, folder(50, 50)));
    }
    let mut two_flows = Case::link("2 flows 2×4MiB 0%", 20.0, 20, 0.0, vec![4 * MIB]);
    two_flows.flows = 2;
    cases.push(two_flows);
    cases
}

/// What one run of a case measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Every file arrived and verified.
    pub ok: bool,
    /// Why not, when not.
    pub error: Option<String>,
    /// From the sender's start until the receiver wrote the last file.
    #[serde(rename = "time_s", serialize_with = "secs")]
    pub time: Duration,
    /// From the sender's start until the receiver held the first image bytes.
    #[serde(rename = "first_bytes_s", serialize_with = "opt_secs")]
    pub first_bytes: Option<Duration>,
    /// UDP payload bytes both sides sent.
    pub wire_bytes: u64,
    /// Datagrams the sender's side offered to the link.
    pub datagrams_up: u64,
    /// Of those, dropped because the bottleneck queue was full.
    pub queue_drops_up: u64,
    /// Chunks the sender sent again.
    pub retransmitted: u64,
    /// Chunks that reached the receiver more than once (sent again needlessly).
    pub duplicates: u64,
    /// With several flows: the smallest share of the image bytes the receiver held that any
    /// flow had when the first flow completed (0.5 each for two flows sharing fairly).
    pub min_share: Option<f64>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Seeded incompressible bytes (like a compressed image) of `len`.
fn content(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    Bytes::from(data)
}

/// Runs `case` once with randomness from `seed`; received files go under `scratch`.
pub async fn run_case(case: &Case, seed: u64, scratch: &Path) -> std::io::Result<Sample> {
    let out_dir = scratch.join(format!("run-{seed}"));
    std::fs::create_dir_all(&out_dir)?;
    let result = tokio::time::timeout(RUN_TIMEOUT, run_in(case, seed, &out_dir)).await;
    let _ = std::fs::remove_dir_all(&out_dir);
    match result {
        Ok(r) => r,
        Err(_) => Ok(Sample {
            ok: false,
            error: Some(format!("did not finish within {RUN_TIMEOUT:?}")),
            time: RUN_TIMEOUT,
            ..Sample::default()
        }),
    }
}

async fn run_in(case: &Case, seed: u64, out_dir: &Path) -> std::io::Result<Sample> {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let pass = Passphrase::new("bench correct horse battery");
    let (stop_tx, stop_rx) = watch::channel(false);

    let recv_socket = engine::bind(loopback)?;
    let recv_addr = recv_socket.local_addr()?;
    let (recv_pub, mut recv_sub) = engine::channel(1 << 16);
    let options = ReceiveOptions {
        config: ReceiverConfig {
            passphrase: Some(pass.clone()),
            ..ReceiverConfig::default()
        },
        out_dir: out_dir.to_path_buf(),
    };
    let receiver = tokio::spawn(engine::run_receiver(
        recv_socket,
        options,
        recv_pub,
        stop_rx.clone(),
    ));

    let proxy_socket = engine::bind(loopback)?;
    let proxy_addr = proxy_socket.local_addr()?;
    let link = NetsimOptions {
        listen: proxy_addr,
        to: recv_addr,
        up: case.spec(),
        down: case.spec(),
        seed,
    };
    let proxy = tokio::spawn(netsim::run(proxy_socket, link, stop_rx, None, |_| {}));

    let config = SenderConfig {
        passphrase: Some(pass),
        max_datagram: case.datagram,
        ..SenderConfig::default()
    };
    // Content and offers (hashes) are made before the clock starts, as a sender reads
    // ahead of its transfer.
    let mut queues = Vec::new();
    for flow in 0..case.flows {
        let files = (0..case.files.len()).map(|i| {
            let data = content(
                case.files[i],
                seed ^ ((i as u64) << 32) ^ ((flow as u64) << 48),
            );
            let name = format!("bench-{flow}-{i}.bin");
            let offer = engine::offer_file(&config, &name, &data);
            engine::Outgoing::bytes(i as u64, offer, data)
        });
        queues.push((engine::queue(files), engine::bind(loopback)?));
    }
    let start = Instant::now();
    let mut senders = Vec::new();
    for (mut files, socket) in queues {
        let config = config.clone();
        senders.push(tokio::spawn(async move {
            // Nobody reads the sender's events: a subscriber kept alive unread would make
            // the engine wait for it to take the last one.
            let (publisher, unread) = engine::channel(1);
            drop(unread);
            engine::send_files(
                &socket,
                proxy_addr,
                config,
                &mut files,
                publisher,
                engine::CancelSignal::never(),
            )
            .await
        }));
    }

    let mut first_bytes = None;
    let mut received = Vec::new();
    let mut error = None;
    // Bytes held per sender (by its address), for the flows' shares.
    let mut held: HashMap<SocketAddr, u64> = HashMap::new();
    let mut transfers: HashMap<u64, (SocketAddr, u64)> = HashMap::new();
    let mut min_share = None;
    while received.len() < case.files.len() * case.flows {
        let Some(event) = recv_sub.events.recv().await else {
            error = Some("the receiver stopped".to_owned());
            break;
        };
        match event {
            Event::Started {
                id, peer, offer, ..
            } => {
                transfers.insert(id, (peer, u64::from(offer.chunk_size)));
            }
            Event::Chunk(c) if matches!(c.what, ChunkWhat::Received | ChunkWhat::Recovered) => {
                first_bytes.get_or_insert(start.elapsed());
                if let Some(&(peer, size)) = transfers.get(&c.id) {
                    *held.entry(peer).or_default() += size;
                }
            }
            Event::Finished(r) if r.direction == Direction::Receive => {
                if case.flows > 1 && min_share.is_none() {
                    let total: u64 = held.values().sum();
                    let least = held.values().copied().min().unwrap_or(0);
                    let least = if held.len() < case.flows { 0 } else { least };
                    min_share = Some(least as f64 / total.max(1) as f64);
                }
                if let Err(e) = &r.result {
                    error = Some(format!("{}: {e}", r.offer.name));
                    break;
                }
                received.push(*r);
            }
            _ => {}
        }
    }
    let time = start.elapsed();
    let mut sent = Vec::new();
    for s in senders {
        sent.extend(s.await.map_err(std::io::Error::other)??);
    }
    if error.is_none()
        && let Some(Err(e)) = sent.iter().map(|r| &r.result).find(|r| r.is_err())
    {
        error = Some(e.clone());
    }
    let _ = stop_tx.send(true);
    let counters: NetsimCounters = proxy.await.map_err(std::io::Error::other)??;
    let _ = receiver.await;
    let wire_bytes = sent
        .iter()
        .chain(&received)
        .map(|r| r.stats.wire_bytes_sent)
        .sum();
    Ok(Sample {
        ok: error.is_none(),
        error,
        time,
        first_bytes,
        wire_bytes,
        datagrams_up: counters.up.offered,
        queue_drops_up: counters.up.queue_drops,
        retransmitted: sent.iter().map(|r| r.stats.retransmitted).sum(),
        duplicates: received.iter().map(|r| r.stats.duplicates).sum(),
        min_share,
    })
}

/// Runs `case` once in the in-memory simulator instead of over sockets: the same link model
/// and protocol core in virtual time, so deterministic for a seed, exact in its timing, and
/// fast. The files go one after another in one session, as `udpix send` sends them; the
/// flows of a case run at once through the one path.
pub fn run_case_sim(case: &Case, seed: u64) -> Sample {
    let pass = Passphrase::new("bench correct horse battery");
    let sender = SenderConfig {
        passphrase: Some(pass.clone()),
        max_datagram: case.datagram,
        ..SenderConfig::default()
    };
    let receiver = ReceiverConfig {
        passphrase: Some(pass),
        ..ReceiverConfig::default()
    };
    let mut sample = Sample {
        ok: true,
        ..Sample::default()
    };
    let flows: Vec<Vec<Bytes>> = (0..case.flows)
        .map(|flow| {
            (0..case.files.len())
                .map(|i| {
                    let seed = seed ^ ((i as u64) << 32) ^ ((flow as u64) << 48);
                    content(case.files[i], seed)
                })
                .collect()
        })
        .collect();
    let link = (case.spec(), case.spec());
    let runs = crate::sim::run_concurrent(&flows, link, (sender, receiver), seed, RUN_TIMEOUT);
    sample.first_bytes = runs.iter().filter_map(|r| r.first_bytes).min();
    // Until the receiver holds the last file, as on loopback; its DONE is half an RTT on.
    sample.time = runs
        .iter()
        .map(|r| r.completed.unwrap_or(r.elapsed))
        .max()
        .unwrap_or_default();
    if case.flows > 1 {
        let held: Vec<u64> = runs.iter().map(|r| r.held_when_first_done).collect();
        let total: u64 = held.iter().sum();
        let least = held.iter().copied().min().unwrap_or(0);
        sample.min_share = Some(least as f64 / total.max(1) as f64);
    }
    for (n, r) in runs.iter().enumerate() {
        sample.wire_bytes += r
            .files
            .iter()
            .map(|f| f.sender.wire_bytes_sent)
            .sum::<u64>()
            + r.receiver.as_ref().map_or(0, |s| s.wire_bytes_sent);
        sample.retransmitted += r.files.iter().map(|f| f.sender.retransmitted).sum::<u64>();
        sample.duplicates += r.receiver.as_ref().map_or(0, |s| s.duplicates);
        let failed = r.files.iter().enumerate().find(|(_, f)| f.outcome.is_err());
        if let Some((i, f)) = failed {
            sample.ok = false;
            sample.error = f
                .outcome
                .as_ref()
                .err()
                .map(|e| format!("flow {n} file {i}: {e}"));
        } else if r.files.len() < case.files.len() {
            sample.ok = false;
            let ended = r.files.len();
            sample.error = Some(format!(
                "flow {n}: only {ended} of {} files ended",
                case.files.len()
            ));
        }
    }
    if let Some(r) = runs.first() {
        sample.datagrams_up = r.up.offered;
        sample.queue_drops_up = r.up.queue_drops;
    }
    sample
}

/// A case's runs, summed up.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The case's name.
    pub case: String,
    /// Runs that delivered every file.
    pub ok_runs: usize,
    /// Runs in all.
    pub runs: usize,
    /// Median time of the runs that succeeded, seconds.
    pub median_s: f64,
    /// The link's limit, seconds.
    pub limit_s: f64,
    /// Median over limit.
    pub ratio: f64,
    /// Median of wire bytes (both ways) per image byte.
    pub wire_per_byte: f64,
    /// Median time to the first image bytes, in round trips.
    pub first_bytes_rtt: Option<f64>,
    /// Median share of the sender's datagrams the full queue dropped.
    pub queue_drop_fraction: f64,
    /// With several flows: the median of the smallest flow's share (see
    /// [`Sample::min_share`]).
    pub min_share: Option<f64>,
    /// Why runs failed, when some did.
    pub errors: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Sums up the samples of one case.
pub fn summarize(case: &Case, samples: &[Sample]) -> Summary {
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok).collect();
    let limit = case.limit().as_secs_f64();
    let median_s = median(ok.iter().map(|s| s.time.as_secs_f64()).collect());
    let bytes = case.bytes().max(1) as f64;
    let rtt = 2.0 * case.delay.as_secs_f64();
    let firsts: Vec<f64> = ok
        .iter()
        .filter_map(|s| s.first_bytes)
        .map(|t| t.as_secs_f64() / rtt.max(1e-6))
        .collect();
    Summary {
        case: case.name.clone(),
        ok_runs: ok.len(),
        runs: samples.len(),
        median_s,
        limit_s: limit,
        ratio: median_s / limit,
        wire_per_byte: median(ok.iter().map(|s| s.wire_bytes as f64 / bytes).collect()),
        first_bytes_rtt: (!firsts.is_empty()).then(|| median(firsts)),
        queue_drop_fraction: median(
            ok.iter()
                .map(|s| s.queue_drops_up as f64 / s.datagrams_up.max(1) as f64)
                .collect(),
        ),
        min_share: {
            let shares: Vec<f64> = ok.iter().filter_map(|s| s.min_share).collect();
            (!shares.is_empty()).then(|| median(shares))
        },
        errors: samples.iter().filter_map(|s| s.error.clone()).collect(),
    }
}

/// The table's heading line.
pub const TABLE_HEADING: &str = "case                  runs  median     limit    ratio  wire/image  first bytes  queue drops  least share";

/// One summary as a line of the table.
pub fn table_line(s: &Summary) -> String {
    let first = s
        .first_bytes_rtt
        .map_or_else(|| "-".to_owned(), |r| format!("{r:.2} RTT"));
    let share = s
        .min_share
        .map_or_else(|| "-".to_owned(), |x| format!("{:.0}%", x * 100.0));
    format!(
        "{:<21} {:>2}/{:<2} {:>7.3} s {:>7.3} s {:>6.2}× {:>10.3} {:>12} {:>11.2}% {:>12}",
        s.case,
        s.ok_runs,
        s.runs,
        s.median_s,
        s.limit_s,
        s.ratio,
        s.wire_per_byte,
        first,
        s.queue_drop_fraction * 100.0,
        share
    )
}

/// A fresh scratch folder for received files under the system temp dir.
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("udpix-bench-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_bits_at_the_rate_loss_leaves_plus_one_way() {
        let case = Case::link("x", 20.0, 20, 0.2, vec![2 * MIB]);
        let want = 2.0 * MIB as f64 * 8.0 / (20e6 * 0.8) + 0.020;
        assert!((case.limit().as_secs_f64() - want).abs() < 1e-9);
        // The table: 0.859 s for 2 MiB at 0 %.
        let lossless = Case::link("y", 20.0, 20, 0.0, vec![2 * MIB]);
        assert!((lossless.limit().as_secs_f64() - 0.859).abs() < 0.001);
    }

    #[test]
    fn a_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn the_folder_holds_fifty_sizes_within_range_and_repeats_by_seed() {
        let f = folder(50, 50);
        assert_eq!(f.len(), 50);
        assert!(f.iter().all(|&n| (40_000..=400_000).contains(&n)));
        assert_eq!(f, folder(50, 50));
        assert_ne!(f, folder(50, 51));
    }
}
