//! How a finished transfer is told to a person (one line) or a script (one JSON object).

use serde::Serialize;

use crate::engine::{Direction, Report};
use crate::proto::stats::TransferStats;

/// `1.5 MB`, `241.5 kB`, `418 B`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// `6.2 Mbit/s`.
pub fn human_rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1} Mbit/s", bps / 1e6)
    } else {
        format!("{:.0} kbit/s", bps / 1e3)
    }
}

/// Percentage of packets lost as this side saw it.
pub fn loss_percent(r: &Report) -> f64 {
    percent(r.stats.lost, loss_base(&r.stats, r.direction))
}

/// The datagrams a side's losses are counted against: those it sent (sender), or those it
/// should have received, that is received plus never seen (receiver).
pub fn loss_base(s: &TransferStats, direction: Direction) -> u64 {
    match direction {
        Direction::Send => s.datagrams_sent,
        Direction::Receive => s.datagrams_received + s.lost,
    }
}

/// `part` of `whole` in percent; 0 of nothing is 0 %.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One line for a person.
pub fn human_line(r: &Report) -> String {
    let s = &r.stats;
    let name = &r.offer.name;
    let head = match r.direction {
        Direction::Send => format!("sent {name} ({}) to {}", human_bytes(r.offer.size), r.peer),
        Direction::Receive => format!(
            "received {name} ({}) from {}",
            human_bytes(r.offer.size),
            r.peer
        ),
    };
    let mut line = format!(
        "{head} in {:.2} s: {}, {:.1}% loss, {} recovered",
        r.duration.as_secs_f64(),
        human_rate(r.goodput_bps()),
        loss_percent(r),
        s.recovered
    );
    if !s.rtt.is_zero() {
        line.push_str(&format!(", rtt {:.1} ms", s.rtt.as_secs_f64() * 1e3));
    }
    if let Some(p) = &r.path {
        line.push_str(&format!(" -> {}", p.display()));
    }
    line
}

#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    error: Option<&'a str>,
    direction: &'static str,
    peer: String,
    name: &'a str,
    path: Option<String>,
    bytes: u64,
    chunks: u32,
    datagrams_sent: u64,
    datagrams_received: u64,
    duplicates: u64,
    lost: u64,
    retransmitted: u64,
    recovered: u64,
    duration_ms: f64,
    goodput_bps: f64,
    rtt_ms: f64,
    blake3: String,
    format: &'a str,
    width: u32,
    height: u32,
}

/// One JSON object (a single line) for a script.
pub fn json_line(r: &Report) -> String {
    let s = &r.stats;
    let j = JsonReport {
        ok: r.result.is_ok(),
        error: r.result.as_ref().err().map(String::as_str),
        direction: match r.direction {
            Direction::Send => "send",
            Direction::Receive => "receive",
        },
        peer: r.peer.to_string(),
        name: &r.offer.name,
        path: r.path.as_ref().map(|p| p.display().to_string()),
        bytes: r.offer.size,
        chunks: r.offer.chunk_count,
        datagrams_sent: s.datagrams_sent,
        datagrams_received: s.datagrams_received,
        duplicates: s.duplicates,
        lost: s.lost,
        retransmitted: s.retransmitted,
        recovered: s.recovered,
        duration_ms: r.duration.as_secs_f64() * 1e3,
        goodput_bps: r.goodput_bps(),
        rtt_ms: s.rtt.as_secs_f64() * 1e3,
        blake3: blake3::Hash::from_bytes(r.offer.blake3)
            .to_hex()
            .to_string(),
        format: &r.offer.format,
        width: r.offer.width,
        height: r.offer.height,
    };
    serde_json::to_string(&j).unwrap_or_else(|e| format!("{{\"ok\":false,\"error\":\"{e}\"}}"))
}
