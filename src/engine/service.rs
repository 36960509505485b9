//! Sending files, the same way for every front end (`udpix send`, the TUI, the demo): files
//! read ahead from disk (or given in memory), carried over one login by [`send_files`],
//! cancellable, summed up once at the end. A front end only shows the events and the
//! [`Summary`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::UdpSocket;

use super::send::{CancelSignal, Outgoing, ReadOptions, queue, read_ahead, send_files};
use super::{Publisher, Reports, TransferId};
use crate::proto::sender::SenderConfig;

/// What to send.
pub enum Files {
    /// Files on disk, each with the id its events will carry; read and hashed one ahead.
    Paths(Vec<(TransferId, PathBuf)>, ReadOptions),
    /// Files already in memory, offers made.
    Ready(Vec<Outgoing>),
    /// Files on disk as they come (a watched folder), each with its id, read as `Paths`;
    /// the send goes on until the sending end is dropped or it is cancelled. With a
    /// deadline, a file not delivered within it of coming gives way to a newer one.
    Stream(
        tokio::sync::mpsc::Receiver<(TransferId, PathBuf)>,
        ReadOptions,
    ),
}

impl Files {
    /// How many files, when that is known before they are sent.
    fn len(&self) -> Option<usize> {
        match self {
            Files::Paths(p, _) => Some(p.len()),
            Files::Ready(r) => Some(r.len()),
            Files::Stream(..) => None,
        }
    }
}

/// How a send ended, file by file.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Files asked for.
    pub total: usize,
    /// Each file's end, counted, and the newest reports, in the order the verdicts came.
    pub reports: Reports,
    /// Files that could not be read (each told to `unreadable` as it came).
    pub unreadable: usize,
    /// True when the send was cancelled.
    pub cancelled: bool,
}

impl Summary {
    /// Files the receiver verified.
    pub fn delivered(&self) -> usize {
        self.reports.delivered()
    }

    /// Files that did not arrive, for any reason (failed, unreadable, never sent).
    pub fn failed(&self) -> usize {
        self.total - self.delivered()
    }

    /// Files never offered: the send stopped before them.
    pub fn not_sent(&self) -> usize {
        self.total - self.reports.len() - self.unreadable
    }

    /// True when the send stopped early because the rest would fail the same way (a wrong
    /// passphrase, a refused login), not by a cancel.
    pub fn stopped_as_futile(&self) -> bool {
        !self.cancelled
            && self.not_sent() > 0
            && self.reports.last().is_some_and(|r| r.ends_session)
    }
}

/// Sends `files` to `peer` over `socket` until each has its verdict, the rest would fail
/// alike, or `cancel` fires. Unreadable files are passed to `unreadable` and skipped.
pub async fn send_all(
    socket: &UdpSocket,
    peer: SocketAddr,
    config: SenderConfig,
    files: Files,
    publisher: Publisher,
    cancel: CancelSignal,
    unreadable: impl Fn(&Path, std::io::Error) + Send + 'static,
) -> std::io::Result<Summary> {
    let total = files.len();
    let mut stream_stop = None;
    let watch = cancel.clone();
    let (mut queue, reader) = match files {
        Files::Paths(paths, options) => {
            let (q, r) = read_ahead(paths, config.clone(), options, unreadable);
            (q, Some(r))
        }
        Files::Stream(rx, options) => {
            let (tx, mut paths) = tokio::sync::mpsc::channel(1);
            let (stop, stopped) = tokio::sync::oneshot::channel();
            stream_stop = Some(stop);
            tokio::spawn(forward_until(rx, tx, stopped));
            let paths = std::iter::from_fn(move || paths.blocking_recv());
            let (q, r) = read_ahead(paths, config.clone(), options, unreadable);
            (q, Some(r))
        }
        Files::Ready(ready) => (queue(ready), None),
    };
    let reports = send_files(socket, peer, config, &mut queue, publisher, cancel).await?;
    // The reader stops at its next file once nobody takes them; a stream's, at once.
    drop(queue);
    drop(stream_stop);
    let unreadable = match reader {
        Some(r) => r.await.unwrap_or(0),
        None => 0,
    };
    Ok(Summary {
        total: total.unwrap_or(reports.len() + unreadable),
        reports,
        unreadable,
        cancelled: watch.is_cancelled(),
    })
}

/// Passes paths from a stream to the reader until `stop` fires (or is dropped), then drops
/// both ends: the reader, waiting for its next path, ends, and so does the stream's source
/// (a watched folder) once it sees nobody listens.
async fn forward_until<T>(
    mut from: tokio::sync::mpsc::Receiver<T>,
    to: tokio::sync::mpsc::Sender<T>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let item = tokio::select! {
            _ = &mut stop => return,
            item = from.recv() => item,
        };
        let Some(item) = item else { return };
        tokio::select! {
            _ = &mut stop => return,
            sent = to.send(item) => if sent.is_err() { return },
        }
    }
}
