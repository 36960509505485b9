//! How a finished transfer is told to a person (one line) or a script (one JSON object).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::display::{needs_escape, safe};
use crate::engine::{Direction, Report};
use crate::figures;

/// `1 image`, `2 images`, `0 images`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

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

/// The figures of a verified transfer, as [`human_line`] and the TUI's chunk log tell them:
/// `in 0.41 s: 14.8 Mbit/s, 8.6% datagram loss, 42 chunks recovered`, each as [`figures`]
/// defines it: loss is of datagrams, recoveries are of chunks, so the line names both units.
pub fn verdict_figures(r: &Report) -> String {
    let s = &r.stats;
    let mut line = format!(
        "in {:.2} s: {}, {:.1}% datagram loss, {} chunks recovered",
        r.duration.as_secs_f64(),
        human_rate(goodput(r).unwrap_or(0.0)),
        figures::loss_percent(s, r.direction),
        figures::recovered(s, r.direction)
    );
    if !s.rtt.is_zero() {
        line.push_str(&format!(", rtt {:.1} ms", s.rtt.as_secs_f64() * 1e3));
    }
    line
}

/// A finished transfer's goodput: the image over this side's clock; `None` when it failed
/// (content that did not arrive was not put through).
pub fn goodput(r: &Report) -> Option<f64> {
    r.result
        .is_ok()
        .then(|| figures::goodput_bps(r.offer.size, r.duration))
}

/// What a sender's line adds when the receiver's time for the same file is known (the demo
/// has both): `; receiver's part 0.41 s, +0.05 s login, offer and verdict's return`. The
/// receiver's clock runs inside the sender's, so its part is never more; the two parts add
/// up to the sender's time as printed (both taken in hundredths of a second).
pub fn sender_share(sent: Duration, received: Duration) -> String {
    let cs = |d: Duration| (d.as_secs_f64() * 100.0).round() as u64;
    let (sent, received) = (cs(sent), cs(received));
    let rest = sent.saturating_sub(received);
    format!(
        "; receiver's part {}.{:02} s, +{}.{:02} s login, offer and verdict's return",
        received / 100,
        received % 100,
        rest / 100,
        rest % 100
    )
}

/// One line for a person; the peer's name for the image is shown [`safe`]ly.
pub fn human_line(r: &Report) -> String {
    let name = safe(&r.offer.name);
    let head = match r.direction {
        Direction::Send => format!("sent {name} ({}) to {}", human_bytes(r.offer.size), r.peer),
        Direction::Receive => format!(
            "received {name} ({}) from {}",
            human_bytes(r.offer.size),
            r.peer
        ),
    };
    let mut line = format!("{head} {}", verdict_figures(r));
    if let Some(p) = &r.path {
        line.push_str(&format!(" -> {}", safe(&p.display().to_string())));
    }
    line
}

/// The JSON object of one file. Field names are stable; a figure that is unknown (a failed
/// transfer's goodput, an RTT never measured, the size of a file that could not be read) is
/// `null`, never a made-up number.
#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    error: Option<&'a str>,
    direction: &'static str,
    peer: String,
    name: &'a str,
    path: Option<String>,
    bytes: Option<u64>,
    chunks: Option<u32>,
    datagrams_sent: u64,
    datagrams_received: u64,
    duplicates: u64,
    lost: u64,
    retransmitted: u64,
    recovered: u64,
    loss_percent: f64,
    duration_ms: Option<f64>,
    goodput_bps: Option<f64>,
    rtt_ms: Option<f64>,
    blake3: Option<String>,
    format: Option<&'a str>,
    width: Option<u32>,
    height: Option<u32>,
}

/// Writes JSON strings with every character [`safe`] would escape as a `\uXXXX` escape,
/// beyond the control characters JSON itself escapes (DEL, C1, bidi overrides...): the line
/// is then safe on a terminal while a parser still reads back the exact string.
struct TerminalSafeJson;

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(needs_escape) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(writer, "\\u{:04x}", u)?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// One JSON object (a single line) for a script. Strings are exact (a name holding a newline
/// or an escape sequence reads back as sent) and escaped so the line is safe on a terminal.
pub fn json_line(r: &Report) -> String {
    let s = &r.stats;
    to_line(&JsonReport {
        ok: r.result.is_ok(),
        error: r.result.as_ref().err().map(String::as_str),
        direction: direction_name(r.direction),
        peer: r.peer.to_string(),
        name: &r.offer.name,
        path: r.path.as_ref().map(|p| p.display().to_string()),
        bytes: Some(r.offer.size),
        chunks: Some(r.offer.chunk_count),
        datagrams_sent: s.datagrams_sent,
        datagrams_received: s.datagrams_received,
        duplicates: s.duplicates,
        lost: s.lost,
        retransmitted: s.retransmitted,
        recovered: figures::recovered(s, r.direction),
        loss_percent: figures::loss_percent(s, r.direction),
        duration_ms: Some(r.duration.as_secs_f64() * 1e3),
        goodput_bps: goodput(r),
        rtt_ms: (!s.rtt.is_zero()).then_some(s.rtt.as_secs_f64() * 1e3),
        blake3: Some(
            blake3::Hash::from_bytes(r.offer.blake3)
                .to_hex()
                .to_string(),
        ),
        format: Some(&r.offer.format),
        width: Some(r.offer.width),
        height: Some(r.offer.height),
    })
}

/// The JSON object of a file the sender could not read: the same fields as [`json_line`]'s,
/// `ok` false, nothing sent, and what is not known `null`.
pub fn json_unreadable(peer: SocketAddr, path: &Path, error: &str) -> String {
    to_line(&JsonReport {
        ok: false,
        error: Some(error),
        direction: direction_name(Direction::Send),
        peer: peer.to_string(),
        name: &crate::engine::offered_name(path),
        path: Some(path.display().to_string()),
        bytes: None,
        chunks: None,
        datagrams_sent: 0,
        datagrams_received: 0,
        duplicates: 0,
        lost: 0,
        retransmitted: 0,
        recovered: 0,
        loss_percent: 0.0,
        duration_ms: None,
        goodput_bps: None,
        rtt_ms: None,
        blake3: None,
        format: None,
        width: None,
        height: None,
    })
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Send => "send",
        Direction::Receive => "receive",
    }
}

fn to_line(j: &JsonReport<'_>) -> String {
    let mut out = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, TerminalSafeJson);
    match j.serialize(&mut ser) {
        // The serializer writes only valid UTF-8 (escapes are ASCII; the rest is copied).
        Ok(()) => String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Err(e) => format!("{{\"ok\":false,\"error\":\"{e}\"}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::Offer;

    fn report(name: &str, result: Result<(), String>) -> Report {
        Report {
            id: 1,
            direction: Direction::Receive,
            peer: "192.0.2.7:40000".parse().expect("addr"),
            offer: Offer {
                name: name.to_owned(),
                size: 3,
                chunk_size: 1166,
                chunk_count: 1,
                blake3: [0; 32],
                format: "png\u{1b}[2J".to_owned(),
                width: 0,
                height: 0,
                file: 0,
                first_chunk: 0,
            },
            path: Some(std::path::PathBuf::from("/in/x.png")),
            stats: crate::proto::stats::TransferStats::default(),
            duration: std::time::Duration::from_millis(5),
            result,
            ends_session: false,
        }
    }

    const HOSTILE: &str = "evil\u{1b}[31m\nFAKE \u{9b}2J \u{7f} cat\u{202e}gnp.exe \u{e0041}";

    #[test]
    fn the_human_line_escapes_the_peers_name() {
        let line = human_line(&report(HOSTILE, Ok(())));
        assert!(
            line.starts_with(
                "received evil\\e[31m\\nFAKE \\u{9b}2J \\x7f cat\\u{202e}gnp.exe \\u{e0041} (3 B)"
            ),
            "{line}"
        );
        assert!(!line.chars().any(crate::display::needs_escape), "{line}");
    }

    #[test]
    fn an_unreadable_file_has_the_same_fields_with_nothing_made_up() {
        let line = json_unreadable(
            "192.0.2.7:7878".parse().expect("addr"),
            Path::new("/no/such/x.png"),
            "cannot read /no/such/x.png: No such file or directory",
        );
        let j: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        let sent: serde_json::Value =
            serde_json::from_str(&json_line(&report("x.png", Ok(())))).expect("valid JSON");
        let keys = |v: &serde_json::Value| {
            v.as_object()
                .expect("object")
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&j), keys(&sent));
        assert_eq!(j["ok"], false);
        assert_eq!(j["name"], "x.png");
        assert_eq!(j["path"], "/no/such/x.png");
        assert_eq!(j["direction"], "send");
        assert!(j["bytes"].is_null() && j["goodput_bps"].is_null() && j["blake3"].is_null());
        assert_eq!(j["datagrams_sent"], 0);
    }

    #[test]
    fn the_json_line_keeps_the_exact_strings_and_is_safe_on_a_terminal() {
        let reason = "sender closed the session: bye\u{1b}]0;pwned\u{7}\u{2066}";
        let line = json_line(&report(HOSTILE, Err(reason.to_owned())));
        assert!(!line.chars().any(crate::display::needs_escape), "{line}");
        let j: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(j["name"], HOSTILE);
        assert_eq!(j["error"], reason);
        assert_eq!(j["format"], "png\u{1b}[2J");
        assert_eq!(j["ok"], false);
        // A failed transfer has no goodput, and an RTT never measured is unknown, not 0.
        assert!(j["goodput_bps"].is_null(), "{line}");
        assert!(j["rtt_ms"].is_null(), "{line}");
        // Ordinary text is written as it is.
        let plain = json_line(&report("été.png", Ok(())));
        assert!(plain.contains("\"name\":\"été.png\""), "{plain}");
        let j: serde_json::Value = serde_json::from_str(&plain).expect("valid JSON");
        assert!(
            j["goodput_bps"].as_f64().is_some_and(|g| g > 0.0),
            "{plain}"
        );
        assert!(j["rtt_ms"].is_null(), "{plain}");
        let mut measured = report("x.png", Ok(()));
        measured.stats.rtt = std::time::Duration::from_micros(41_200);
        let j: serde_json::Value = serde_json::from_str(&json_line(&measured)).expect("valid JSON");
        assert_eq!(j["rtt_ms"].as_f64(), Some(41.2));
    }
}
