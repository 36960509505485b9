//! The sending engine: one transfer over a socket the caller owns, driven by the same steps
//! as the receiver (transmit, publish, wait, then receive or run timers) until the verdict.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::{
    ChunkWhat, Direction, Event, Outlet, Progress, Publisher, Report, Snapshot, TransferId,
    drain_batch, is_transient, sleep_until,
};
use crate::proto::sender::{SendError, Sender, SenderConfig, SenderEvent};
use crate::proto::wire::Offer;

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
    let session = rand::random::<u64>() | 1;
    let start = Instant::now();
    let mut core = Sender::new(start, config, session, offer.clone(), data);
    let mut out = Outlet::new(publisher);
    out.lifecycle(Event::Started {
        id,
        direction: Direction::Send,
        peer,
        offer: offer.clone(),
    });
    let mut buf = vec![0u8; 65_536];
    let mut tx = Vec::with_capacity(2048);
    loop {
        let now = Instant::now();
        while core.poll_transmit(now, &mut tx) {
            match socket.send_to(&tx, peer).await {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
        while let Some(ev) = core.poll_event() {
            match ev {
                SenderEvent::ChunkSent { chunk, retransmit } => out.chunk(
                    id,
                    chunk,
                    if retransmit {
                        ChunkWhat::Retransmitted
                    } else {
                        ChunkWhat::Sent
                    },
                ),
                SenderEvent::ChunkLost { chunk } => out.chunk(id, chunk, ChunkWhat::Lost),
                SenderEvent::ChunkAcked { chunk, .. } => out.chunk(id, chunk, ChunkWhat::Acked),
                SenderEvent::Accepted => out.lifecycle(Event::Connected { id, peer }),
                SenderEvent::Delivered(_) | SenderEvent::Failed(_) => {}
            }
        }
        if core.is_finished() || out.snapshot_due(now) {
            let snap = Snapshot {
                transfers: vec![Progress {
                    id,
                    name: offer.name.clone(),
                    stats: core.stats(),
                    elapsed: now.duration_since(start),
                }],
                ..Snapshot::default()
            };
            out.publish(now, snap);
        }
        if core.is_finished() {
            let result = match core.outcome() {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(describe(e, peer)),
                None => Err("transfer ended without a verdict".to_owned()),
            };
            let ends_session = matches!(core.outcome(), Some(Err(e)) if e.ends_session());
            let report = Report {
                id,
                direction: Direction::Send,
                peer,
                offer,
                path: None,
                stats: core.stats(),
                duration: now.duration_since(start),
                result,
                ends_session,
            };
            out.lifecycle(Event::Finished(Box::new(report.clone())));
            // Give a lagging consumer a moment to take the final event.
            for _ in 0..50 {
                if out.pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                out.flush();
            }
            return Ok(report);
        }
        out.flush();
        let deadline = Some(out.wake_at(core.poll_timeout()));
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let now = Instant::now();
                drain_batch(socket, &mut buf, r, |d, from| {
                    if from == peer {
                        core.handle(now, d);
                    }
                })?;
            }
            _ = sleep_until(deadline) => core.handle_timeout(Instant::now()),
        }
    }
}

fn describe(e: &SendError, peer: SocketAddr) -> String {
    match e {
        SendError::NoAnswer(t) => format!(
            "no answer from {peer} within {:.0} s: is `udpix recv` running there, and is UDP port {} open?",
            t.as_secs_f64(),
            peer.port()
        ),
        other => other.to_string(),
    }
}
