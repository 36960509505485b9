//! The receiving engine: one socket serving many senders. Each turn of its loop is the same
//! named steps: transmit what the core queued, publish figures, wait; then receive a batch
//! (feeding each datagram to the core, applying its events, storing its chunk), run timers,
//! or apply a verification verdict.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::{
    ChunkWhat, Direction, Event, Notice, Outlet, Progress, Publisher, Report, Snapshot, TransferId,
    drain_batch, sleep_until,
};
use crate::proto::receiver::{FileKey, Placement, Receiver, ReceiverConfig, ReceiverEvent};
use crate::proto::stats::TransferStats;
use crate::proto::wire::{self, Offer};
use crate::store::{IncomingFile, StoreError, VerifiedFile};

/// Options of a receiving engine.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Protocol limits and timers.
    pub config: ReceiverConfig,
    /// Folder where images are written.
    pub out_dir: PathBuf,
}

struct Incoming {
    id: TransferId,
    file: Option<IncomingFile>,
    started: Instant,
    offer: Offer,
}

type Verdict = (FileKey, Result<VerifiedFile, StoreError>);

/// Everything the receiving loop owns besides its socket.
struct Engine {
    core: Receiver,
    out: Outlet,
    out_dir: PathBuf,
    incoming: HashMap<FileKey, Incoming>,
    /// Sessions whose every chunk is in: verified once this batch's chunks are written.
    to_verify: Vec<FileKey>,
    verdicts: mpsc::UnboundedSender<Verdict>,
    next_id: TransferId,
}

/// Serves senders on `socket` until `shutdown` turns true (or its sender is dropped).
pub async fn run_receiver(
    socket: UdpSocket,
    options: ReceiveOptions,
    publisher: Publisher,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (verdicts, mut verdict_rx) = mpsc::unbounded_channel::<Verdict>();
    let mut e = Engine {
        core: Receiver::new(options.config.clone()),
        out: Outlet::new(publisher),
        out_dir: options.out_dir,
        incoming: HashMap::new(),
        to_verify: Vec::new(),
        verdicts,
        next_id: 1,
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        let now = Instant::now();
        e.transmit(&socket, now).await;
        e.apply_events(now);
        e.start_verifications();
        e.publish(now);
        let deadline = Some(e.out.wake_at(e.core.poll_timeout()));
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let now = Instant::now();
                drain_batch(&socket, &mut buf, r, |d, from| e.feed(now, from, d))?;
            }
            _ = sleep_until(deadline) => e.core.handle_timeout(Instant::now()),
            Some((key, verified)) = verdict_rx.recv() => e.conclude(Instant::now(), key, verified),
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    e.stop(&socket).await;
                    return Ok(());
                }
            }
        }
    }
}

impl Engine {
    /// Stopping: every sender is told at once (CLOSE, cancelled), its files end as failed,
    /// and a last snapshot lets whoever reads the counters after us see them all.
    async fn stop(&mut self, socket: &UdpSocket) {
        let now = Instant::now();
        self.core
            .close_all(wire::reason::CANCELLED, "the receiver was stopped");
        self.apply_events(now);
        self.transmit(socket, now).await;
        self.out.publish(
            now,
            Snapshot {
                transfers: Vec::new(),
                endpoint: self.core.stats().clone(),
                dropped_events: 0,
            },
        );
        self.out.flush();
    }

    async fn transmit(&mut self, socket: &UdpSocket, now: Instant) {
        while let Some(t) = self.core.poll_transmit(now) {
            if let Err(err) = socket.send_to(&t.payload, t.dest).await {
                self.out.lifecycle(Event::Notice(Notice::SendFailed {
                    to: t.dest,
                    error: err.to_string(),
                }));
            }
        }
    }

    /// One datagram: the core first, then what it decided (an accepted offer gets its file
    /// before its first chunk, which may ride in the same batch), then the chunk itself.
    fn feed(&mut self, now: Instant, from: std::net::SocketAddr, d: &mut [u8]) {
        let placement = self.core.handle(now, from, d);
        self.apply_events(now);
        if let Some(p) = placement {
            self.store_chunk(p, now);
        }
    }

    fn apply_events(&mut self, now: Instant) {
        while let Some(ev) = self.core.poll_event() {
            self.apply(ev, now);
        }
    }

    fn apply(&mut self, ev: ReceiverEvent, now: Instant) {
        match ev {
            ReceiverEvent::Accepted { key, offer } => self.open_file(key, offer, now),
            ReceiverEvent::Duplicate { key, chunk } => {
                if let Some(inc) = self.incoming.get(&key) {
                    self.out.chunk(inc.id, chunk, ChunkWhat::Duplicate);
                }
            }
            ReceiverEvent::Repaired {
                key,
                chunk,
                offset,
                data,
            } => {
                let p = Placement {
                    key,
                    chunk,
                    offset,
                    data: &data,
                    recovered: true,
                };
                self.store_chunk(p, now);
            }
            // The last chunk is written after this event: verify after the batch.
            ReceiverEvent::Complete { key } => self.to_verify.push(key),
            ReceiverEvent::Failed { key, reason } => {
                if let Some(inc) = self.incoming.remove(&key) {
                    let stats = self.core.session_stats(&key).unwrap_or_default();
                    let ev = finished(inc, key.peer, None, stats, now, Err(reason));
                    self.out.lifecycle(ev);
                }
            }
            ReceiverEvent::AuthFailed { peer } => {
                self.out
                    .lifecycle(Event::Notice(Notice::AuthFailed { peer }));
            }
            ReceiverEvent::Refused { peer, reason } => {
                self.out
                    .lifecycle(Event::Notice(Notice::Refused { peer, reason }));
            }
        }
    }

    fn open_file(&mut self, key: FileKey, offer: Offer, now: Instant) {
        let id = self.next_id;
        self.next_id += 1;
        self.out.lifecycle(Event::Started {
            id,
            direction: Direction::Receive,
            peer: key.peer,
            offer: offer.clone(),
        });
        let created = IncomingFile::create(&self.out_dir, offer.size);
        let mut inc = Incoming {
            id,
            file: None,
            started: now,
            offer,
        };
        match created {
            Ok(file) => {
                inc.file = Some(file);
                self.incoming.insert(key, inc);
            }
            Err(err) => {
                // A transfer that failed like any other, so `--once` ends and the TUI counts it.
                let stats = self.core.session_stats(&key).unwrap_or_default();
                self.core.abort(now, key, &err.peer_reason());
                let ev = finished(inc, key.peer, None, stats, now, Err(err.to_string()));
                self.out.lifecycle(ev);
            }
        }
    }

    /// Writes a placed chunk; a write error fails the file alone (DONE to the sender saying
    /// what happened, the local detail in the report here).
    fn store_chunk(&mut self, p: Placement<'_>, now: Instant) {
        let Some(inc) = self.incoming.get(&p.key) else {
            return;
        };
        let Some(file) = &inc.file else { return };
        if let Err(err) = file.write_at(p.offset, p.data) {
            let stats = self.core.session_stats(&p.key).unwrap_or_default();
            self.core.abort(now, p.key, &err.peer_reason());
            if let Some(inc) = self.incoming.remove(&p.key) {
                let ev = finished(inc, p.key.peer, None, stats, now, Err(err.to_string()));
                self.out.lifecycle(ev);
            }
            return;
        }
        let what = if p.recovered {
            ChunkWhat::Recovered
        } else {
            ChunkWhat::Received
        };
        self.out.chunk(inc.id, p.chunk, what);
    }

    /// Hashes complete files off the engine's thread; the verdict comes back on a channel.
    fn start_verifications(&mut self) {
        for key in std::mem::take(&mut self.to_verify) {
            let Some(inc) = self.incoming.get_mut(&key) else {
                continue;
            };
            let Some(file) = inc.file.take() else {
                continue;
            };
            let tx = self.verdicts.clone();
            let hash = inc.offer.blake3;
            tokio::task::spawn_blocking(move || {
                let _ = tx.send((key, file.verify(&hash)));
            });
        }
    }

    /// Applies a verification verdict. One verdict for both sides: the file takes its name
    /// only while the session still waits for it, and the sender learns the same by DONE.
    fn conclude(&mut self, now: Instant, key: FileKey, verified: Result<VerifiedFile, StoreError>) {
        if !self.core.is_verifying(&key) {
            // The session ended meanwhile (aborted, shut down): dropping `verified`
            // removes the temp file, and nobody is told it was saved.
            self.incoming.remove(&key);
            return;
        }
        let Some(inc) = self.incoming.remove(&key) else {
            return;
        };
        let result = verified.and_then(|v| v.persist(&inc.offer.name));
        let verdict = match &result {
            Ok(path) => Ok(format!(
                "saved as {}",
                path.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            )),
            Err(err @ StoreError::HashMismatch { .. }) => {
                Err((wire::done::HASH_MISMATCH, err.peer_reason()))
            }
            Err(err) => Err((wire::done::STORE_FAILED, err.peer_reason())),
        };
        self.core.finish(now, key, verdict);
        let stats = self.core.session_stats(&key).unwrap_or_default();
        let (path, res) = match result {
            Ok(p) => (Some(p), Ok(())),
            Err(err) => (None, Err(err.to_string())),
        };
        self.out
            .lifecycle(finished(inc, key.peer, path, stats, now, res));
    }

    fn publish(&mut self, now: Instant) {
        if self.out.snapshot_due(now) {
            let transfers = self
                .incoming
                .iter()
                .map(|(key, inc)| Progress {
                    id: inc.id,
                    name: inc.offer.name.clone(),
                    stats: self.core.session_stats(key).unwrap_or_default(),
                    elapsed: now.duration_since(inc.started),
                })
                .collect();
            let snap = Snapshot {
                transfers,
                endpoint: self.core.stats().clone(),
                dropped_events: 0,
            };
            self.out.publish(now, snap);
        }
        self.out.flush();
    }
}

fn finished(
    inc: Incoming,
    peer: std::net::SocketAddr,
    path: Option<PathBuf>,
    stats: TransferStats,
    now: Instant,
    result: Result<(), String>,
) -> Event {
    Event::Finished(Box::new(Report {
        id: inc.id,
        direction: Direction::Receive,
        peer,
        offer: inc.offer,
        path,
        stats,
        duration: now.duration_since(inc.started),
        result,
        ends_session: false,
    }))
}
