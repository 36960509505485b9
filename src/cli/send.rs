//! `udpix send`: send files one after another; succeed only if every one verified.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use udpix::engine;
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
    let mut failures = 0usize;
    let mut shutdown = super::shutdown::Shutdown::new();
    for (i, path) in args.files.iter().enumerate() {
        let data = match std::fs::read(path) {
            Ok(d) => Bytes::from(d),
            Err(e) => {
                eprintln!("udpix: error: cannot read {}: {e}", path.display());
                failures += 1;
                continue;
            }
        };
        let name = engine::offered_name(path);
        let offer = engine::offer_file(&config, &name, &data);
        let (publisher, mut sub) = engine::channel(1024);
        let mut bars = Bars::new();
        bars.start(i as u64, &name, offer.size, offer.chunk_size);
        let transfer = engine::send(
            &socket,
            peer,
            config.clone(),
            offer,
            data,
            i as u64,
            publisher,
        );
        tokio::pin!(transfer);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let report = loop {
            tokio::select! {
                r = &mut transfer => break r,
                _ = tick.tick() => bars.update(&sub.snapshot.borrow()),
                _ = sub.events.recv() => {}
                _ = shutdown.recv() => {
                    bars.finish(i as u64);
                    eprintln!("udpix: interrupted");
                    return Ok(ExitCode::from(130));
                }
            }
        };
        bars.finish(i as u64);
        let report = report.with_context(|| format!("sending {} failed", path.display()))?;
        if args.common.json {
            println!("{}", json_line(&report));
        } else if report.result.is_ok() {
            println!("{}", human_line(&report));
        }
        if let Err(e) = &report.result {
            // The reason may be the receiver's own words: shown escaped.
            let line = format!("udpix: error: {}: {e}", path.display());
            eprintln!("{}", udpix::display::safe(&line));
            failures += 1;
            if report.ends_session {
                let left = args.files.len() - i - 1;
                if left > 0 {
                    eprintln!(
                        "udpix: not sending the {left} remaining file(s): they would fail the same way"
                    );
                }
                failures += left;
                break;
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
