//! `udpix send`: send files one after another over one login; succeed only if every one
//! verified.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use udpix::engine::service::{self, Files};
use udpix::engine::{self, Event};
use udpix::passphrase;
use udpix::proto::sender::SenderConfig;
use udpix::report::{count, human_line, json_line, json_unreadable};

use super::SendArgs;
use super::progress::Bars;

/// Sends every file; exit 0 only when the receiver confirmed each one's hash.
pub async fn run(mut args: SendArgs) -> anyhow::Result<ExitCode> {
    if args.repeat || args.interval.or(args.fps).is_some() {
        // Folders listed once, here: a report's path is then the id-th file, round and round.
        args.files = stream_files(&args.files)?;
    }
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
    let files = files_to_send(&args)?;
    let stream = args.watch || args.repeat || args.interval.or(args.fps).is_some();
    let started = std::time::Instant::now();
    let bars = RefCell::new(Bars::new());
    // Unreadable files are told on the main task, in turn with the other files' lines.
    let (unreadable_tx, mut unreadable) = tokio::sync::mpsc::unbounded_channel();
    let (publisher, mut sub) = engine::channel(1024);
    let mut shutdown = super::shutdown::Shutdown::new();
    let (canceller, cancel) = engine::cancellation();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let summary = {
        let transfer = service::send_all(
            &socket,
            peer,
            config.clone(),
            files,
            publisher,
            cancel,
            move |path, e| {
                let _ = unreadable_tx.send((path.to_owned(), e));
            },
        );
        tokio::pin!(transfer);
        loop {
            tokio::select! {
                r = &mut transfer => break r.context("sending failed")?,
                _ = tick.tick() => bars.borrow().update(&sub.snapshot.borrow()),
                Some(ev) = sub.events.recv() => show(&mut bars.borrow_mut(), ev, &args, args.common.json),
                Some((path, e)) = unreadable.recv() => {
                    show_unreadable(&bars.borrow(), peer, &path, &e, args.common.json);
                }
                _ = shutdown.recv() => {
                    if canceller.is_cancelled() {
                        // A second Ctrl-C: the user will not wait for the receiver to be told.
                        return Ok(ExitCode::from(130));
                    }
                    bars.borrow().eprintln("udpix: interrupted, telling the receiver (Ctrl-C again to quit at once)");
                    canceller.cancel("udpix send was interrupted");
                }
            }
        }
    };
    // What the engine published last, after the transfer returned.
    while let Ok(ev) = sub.events.try_recv() {
        show(&mut bars.borrow_mut(), ev, &args, args.common.json);
    }
    while let Ok((path, e)) = unreadable.try_recv() {
        show_unreadable(&bars.borrow(), peer, &path, &e, args.common.json);
    }
    if stream {
        eprintln!("{}", stream_summary(&summary, started.elapsed()));
    }
    let left = summary.not_sent();
    if summary.cancelled {
        if left > 0 {
            eprintln!(
                "udpix: interrupted: {} not sent",
                count(left as u64, "file", "files")
            );
        }
        return Ok(ExitCode::from(130));
    }
    if summary.stopped_as_futile() {
        eprintln!(
            "udpix: not sending the {}: they would fail the same way",
            count(left as u64, "remaining file", "remaining files")
        );
    }
    let failed = summary.failed();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The files given, or with `--watch` the ones written into the folder given from now on,
/// or with `--loop`, `--interval` or `--fps` the files given as a paced, repeated stream.
fn files_to_send(args: &SendArgs) -> anyhow::Result<Files> {
    let pace = args.interval.or(args.fps);
    if args.repeat || pace.is_some() {
        let files = stream_files(&args.files)?;
        let paths = udpix::watch::paced(files, pace, args.repeat);
        return Ok(Files::Stream(paths, read_options(args)));
    }
    if !args.watch {
        if args.deadline.is_some() {
            anyhow::bail!("--deadline is for a stream: with --watch, --loop, --interval or --fps");
        }
        return Ok(Files::Paths(
            (0u64..).zip(args.files.iter().cloned()).collect(),
            read_options(args),
        ));
    }
    let [dir] = args.files.as_slice() else {
        anyhow::bail!(
            "--watch takes one folder, not {} arguments: udpix send HOST FOLDER --watch",
            args.files.len()
        );
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "--watch takes a folder to watch, and {} is not one",
            dir.display()
        );
    }
    let (paths, _watcher) = udpix::watch::watch(dir, args.settle, 0)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    eprintln!(
        "udpix: watching {} for new images (Ctrl-C to stop)",
        dir.display()
    );
    Ok(Files::Stream(paths, read_options(args)))
}

/// What a stream came to: `udpix: stream: 8 delivered, 42 gave way to newer images, 0
/// failed, in 5.1 s (1.6 images/s delivered)`.
fn stream_summary(summary: &service::Summary, took: Duration) -> String {
    let r = &summary.reports;
    let failed = r.len() - r.delivered() - r.gave_way() + summary.unreadable;
    let secs = took.as_secs_f64().max(1e-3);
    format!(
        "udpix: stream: {} delivered, {} gave way to newer images, {} failed, in {secs:.1} s \
         ({:.1} images/s delivered)",
        r.delivered(),
        r.gave_way(),
        failed,
        r.delivered() as f64 / secs
    )
}

/// The deadline and the re-encoding the options ask for.
fn read_options(args: &SendArgs) -> engine::ReadOptions {
    let asked = args.max_dim.is_some() || args.format.is_some() || args.quality.is_some();
    engine::ReadOptions {
        deadline: args.deadline,
        reencode: asked.then_some(udpix::reencode::Reencode {
            max_dim: args.max_dim,
            format: args.format,
            quality: args.quality.unwrap_or(85),
        }),
    }
}

/// The files of a repeated or paced stream: those given, a folder standing for the regular
/// files in it, in name order.
fn stream_files(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in given {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        anyhow::bail!("nothing to send: the folders given hold no files");
    }
    Ok(files)
}

/// Where the file sent as `id` is: the `id`-th file given, one of the stream's, or in the
/// watched folder.
fn path_of(args: &SendArgs, id: u64, name: &str) -> Option<PathBuf> {
    if args.watch {
        return args.files.first().map(|dir| dir.join(name));
    }
    if args.repeat || args.interval.or(args.fps).is_some() {
        return args
            .files
            .get(id as usize % args.files.len().max(1))
            .cloned();
    }
    args.files.get(id as usize).cloned()
}

/// Shows one engine event: a bar for a file that started, its line when it ended.
fn show(bars: &mut Bars, ev: Event, args: &SendArgs, json: bool) {
    match ev {
        Event::Started { id, offer, .. } => {
            bars.start(id, &offer.name, offer.size, offer.chunk_size);
        }
        Event::Finished(report) => {
            bars.finish(report.id);
            if json {
                // The sender's `path` is the file it sent.
                let mut report = report.clone();
                report.path = path_of(args, report.id, &report.offer.name);
                bars.println(&json_line(&report));
            } else if report.result.is_ok() {
                bars.println(&human_line(&report));
            }
            let Err(e) = &report.result else { return };
            let path = path_of(args, report.id, &report.offer.name)
                .map_or_else(|| report.offer.name.clone(), |p| p.display().to_string());
            if engine::gave_way(&report) {
                // A stream's ordinary course on a slow link, not an error.
                bars.eprintln(&udpix::display::safe(&format!(
                    "udpix: skipped {path}: {}",
                    e.trim_start_matches("cancelled: ")
                )));
                return;
            }
            // The reason may be the receiver's own words: shown escaped.
            let line = format!("udpix: error: {path}: {e}");
            bars.eprintln(&udpix::display::safe(&line));
        }
        _ => {}
    }
}

/// Tells of a file that could not be read: a line on stderr, and its JSON object too.
fn show_unreadable(
    bars: &Bars,
    peer: std::net::SocketAddr,
    path: &std::path::Path,
    e: &std::io::Error,
    json: bool,
) {
    let error = format!("cannot read {}: {e}", path.display());
    if json {
        bars.println(&json_unreadable(peer, path, &error));
    }
    bars.eprintln(&udpix::display::safe(&format!("udpix: error: {error}")));
}
