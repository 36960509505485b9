//! `udpix send`: send files one after another over one login; succeed only if every one
//! verified.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use udpix::engine::{self, Event, Report};
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
    let peer = udpix::addr::resolve_peer(&args.to).await?;
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
    let paths: Vec<(u64, PathBuf)> = (0u64..).zip(args.files.iter().cloned()).collect();
    // Files are read (and hashed) one ahead of the transfer, on a thread of their own.
    let (mut queue, reader) = engine::read_ahead(paths, config.clone(), |path, e| {
        eprintln!("udpix: error: cannot read {}: {e}", path.display());
    });
    let (publisher, mut sub) = engine::channel(1024);
    let mut shutdown = super::shutdown::Shutdown::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let reports = {
        let transfer = engine::send_files(&socket, peer, config.clone(), &mut queue, publisher);
        tokio::pin!(transfer);
        loop {
            tokio::select! {
                r = &mut transfer => break r.context("sending failed")?,
                _ = tick.tick() => bars.borrow().update(&sub.snapshot.borrow()),
                Some(ev) = sub.events.recv() => show(&mut bars.borrow_mut(), ev, &args.files, args.common.json),
                _ = shutdown.recv() => {
                    eprintln!("udpix: interrupted");
                    return Ok(ExitCode::from(130));
                }
            }
        }
    };
    // What the engine published last, after the transfer returned.
    while let Ok(ev) = sub.events.try_recv() {
        show(&mut bars.borrow_mut(), ev, &args.files, args.common.json);
    }
    drop(queue);
    let unreadable = reader.await.unwrap_or(0);
    let left = args.files.len() - reports.len() - unreadable;
    if left > 0 && reports.last().is_some_and(|r: &Report| r.ends_session) {
        eprintln!("udpix: not sending the {left} remaining file(s): they would fail the same way");
    }
    let failed = reports.iter().filter(|r| r.result.is_err()).count() + unreadable + left;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
