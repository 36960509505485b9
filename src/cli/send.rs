//! `udpix send`: send files one after another over one login; succeed only if every one
//! verified.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use udpix::engine::{self, Event, Outgoing, Report};
use udpix::passphrase;
use udpix::proto::sender::SenderConfig;
use udpix::report::{human_line, json_line};

use super::SendArgs;
use super::progress::Bars;

/// Sends every file; exit 0 only when the receiver confirmed each one's hash.
pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let passphrase = if args.common.insecure {
        eprintln!("{}", super::INSECURE_WARNING);
        None
    } else {
        Some(passphrase::for_sender(
            args.common.passphrase_file.as_deref(),
        )?)
    };
    let peer = engine::resolve(&args.to).await?;
    let socket = engine::bind_for(peer).context("cannot open a UDP socket")?;
    let config = SenderConfig {
        max_datagram: usize::from(args.mtu),
        idle_timeout: args.timeout,
        offer_timeout: args
            .timeout
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(500)),
        max_rate: args.max_rate,
        passphrase,
    };
    let bars = RefCell::new(Bars::new());
    let unreadable = Cell::new(0usize);
    let taken = Cell::new(0usize);
    let paths = &args.files;
    // Files are read when the session has room for them, so only a few are in memory.
    let next = || {
        while let Some(path) = paths.get(taken.get()) {
            let id = taken.get() as u64;
            taken.set(taken.get() + 1);
            match read(&config, path, id) {
                Ok(o) => return Some(o),
                Err(e) => {
                    bars.borrow().eprintln(&format!("udpix: error: {e}"));
                    unreadable.set(unreadable.get() + 1);
                }
            }
        }
        None
    };
    let (publisher, mut sub) = engine::channel(1024);
    let transfer = engine::send_files(&socket, peer, config.clone(), next, publisher);
    tokio::pin!(transfer);
    let mut shutdown = super::shutdown::Shutdown::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let reports = loop {
        tokio::select! {
            r = &mut transfer => break r.context("sending failed")?,
            _ = tick.tick() => bars.borrow().update(&sub.snapshot.borrow()),
            Some(ev) = sub.events.recv() => show(&mut bars.borrow_mut(), ev, &args.files, args.common.json),
            _ = shutdown.recv() => {
                eprintln!("udpix: interrupted");
                return Ok(ExitCode::from(130));
            }
        }
    };
    // What the engine published last, after the transfer returned.
    while let Ok(ev) = sub.events.try_recv() {
        show(&mut bars.borrow_mut(), ev, &args.files, args.common.json);
    }
    let left = args.files.len() - taken.get();
    if left > 0 && reports.last().is_some_and(|r: &Report| r.ends_session) {
        eprintln!("udpix: not sending the {left} remaining file(s): they would fail the same way");
    }
    let failed = reports.iter().filter(|r| r.result.is_err()).count() + unreadable.get() + left;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read(config: &SenderConfig, path: &Path, id: u64) -> anyhow::Result<Outgoing> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = engine::offered_name(path);
    let offer = engine::offer_file(config, &name, &data);
    Ok(Outgoing {
        id,
        offer,
        data: Bytes::from(data),
    })
}

/// Shows one engine event: a bar for a file that started, its line when it ended.
fn show(bars: &mut Bars, ev: Event, files: &[PathBuf], json: bool) {
    match ev {
        Event::Started { id, offer, .. } => {
            bars.start(id, &offer.name, offer.size, offer.chunk_size);
        }
        Event::Finished(report) => {
            bars.finish(report.id);
            if json {
                bars.println(&json_line(&report));
            } else if report.result.is_ok() {
                bars.println(&human_line(&report));
            }
            let Err(e) = &report.result else { return };
            let path = files
                .get(report.id as usize)
                .map_or_else(|| report.offer.name.clone(), |p| p.display().to_string());
            // The reason may be the receiver's own words: shown escaped.
            let line = format!("udpix: error: {path}: {e}");
            bars.eprintln(&udpix::display::safe(&line));
        }
        _ => {}
    }
}
