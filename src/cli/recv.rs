//! `udpix recv`: serve senders until interrupted (or after one transfer with `--once`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::shutdown::Shutdown;
use tokio::sync::watch;
use udpix::display::safe;
use udpix::engine::{self, Event, ReceiveOptions};
use udpix::proto::crypto::Passphrase;
use udpix::proto::receiver::ReceiverConfig;
use udpix::report::{count, human_line, json_line};
use udpix::{config, passphrase, store};

use super::RecvArgs;
use super::progress::Bars;
use super::show::Shower;

/// Runs the receiver; the exit code follows `--once` semantics. `--listen` and `--out` are
/// layered with the environment and the config file (`config_file`, else the default one).
pub async fn run(args: RecvArgs, config_file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = config::resolve(&config::CliConfig {
        config: config_file,
        listen: args.listen.clone(),
        out: args.out.clone(),
        image_protocol: args.image_protocol,
        ..config::CliConfig::default()
    })?;
    let listen = udpix::addr::listen(&settings.listen.value).map_err(|e| {
        anyhow::anyhow!(
            "invalid listen address {:?} (from {}): {e}",
            settings.listen.value,
            settings.listen.source
        )
    })?;
    let out = settings.out.value;
    let out_from = &settings.out.source;
    tracing::info!(%listen, from = %settings.listen.source, "listen address");
    tracing::info!(out = %out.display(), from = %out_from, "output folder");
    let meta = std::fs::metadata(&out).with_context(|| {
        format!(
            "output folder {} (from {out_from}) is not usable",
            out.display()
        )
    })?;
    if !meta.is_dir() {
        bail!(
            "{} (from {out_from}) is not a folder: pass an existing folder with --out",
            out.display()
        );
    }
    if let Err(e) = store::check_writable(&out) {
        bail!("{}: pick a folder you can write to with --out", e.brief());
    }
    match store::remove_stale_parts(&out) {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => {
            tracing::info!(count = removed.len(), "removed partial files");
            if !super::quiet() {
                eprintln!(
                    "{}",
                    safe(&format!("udpix: {}", store::stale_parts_notice(&removed)))
                );
            }
        }
        Err(e) => eprintln!(
            "udpix: warning: cannot look for partial files left in {}: {e}",
            out.display()
        ),
    }
    let socket = engine::bind(listen).with_context(|| {
        format!(
            "cannot listen on {listen} (from {}; port in use? try --listen with another port)",
            settings.listen.source
        )
    })?;
    let local = socket.local_addr()?;
    tracing::info!(%local, "socket bound");
    let passphrase = if args.common.insecure {
        eprintln!("{}", super::INSECURE_WARNING);
        None
    } else {
        match passphrase::from_sources(args.common.passphrase_file.as_deref())? {
            Some(p) => Some(p),
            None => {
                let words = passphrase::generate();
                eprintln!(
                    "udpix: passphrase: {words}\n       give it to the sender (UDPIX_PASSPHRASE or --passphrase-file, or type it at its prompt)"
                );
                Some(Passphrase::new(&words))
            }
        }
    };
    // From here on a SIGTERM or Ctrl-C ends the run with its summary, whenever it comes.
    let mut shutdown = Shutdown::new();
    if !super::quiet() {
        eprintln!(
            "udpix: listening on {local}, writing images to {}",
            out.display()
        );
    }
    let options = ReceiveOptions {
        config: ReceiverConfig {
            max_size: args.max_size,
            max_sessions: args.max_sessions.max(1),
            idle_timeout: args.idle_timeout.max(Duration::from_millis(100)),
            passphrase,
            max_handshakes: args.max_handshakes.max(1),
            max_sessions_per_addr: args.max_sessions_per_addr.max(1),
            min_rate: args.min_rate as u64,
            max_failures: args.max_failures.max(1),
            max_session_memory: usize::try_from(args.max_session_memory).unwrap_or(usize::MAX),
            ..ReceiverConfig::default()
        },
        out_dir: out.clone(),
    };
    let mut keeper = udpix::keep::Keeper::new(
        &out,
        args.latest.clone(),
        args.keep.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    );
    let shower = match (
        args.show,
        Shower::new(settings.image_protocol.value, args.common.json),
    ) {
        (false, _) => None,
        (true, Ok(s)) => Some(s),
        (true, Err(why)) => {
            eprintln!("udpix: warning: {why}; images are written but not shown");
            None
        }
    };
    let (publisher, mut sub) = engine::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut task = tokio::spawn(engine::run_receiver(socket, options, publisher, stop_rx));
    let mut bars = Bars::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let code = loop {
        tokio::select! {
            ev = sub.events.recv() => {
                let Some(ev) = ev else { break ExitCode::FAILURE };
                match ev {
                    Event::Started { id, offer, .. } => bars.start(id, &offer.name, offer.size, offer.chunk_size),
                    Event::Finished(r) => {
                        bars.finish(r.id);
                        match (&r.result, args.common.json) {
                            (_, true) => bars.println(&json_line(&r)),
                            (Ok(()), false) => bars.println(&human_line(&r)),
                            (Err(_), false) => {}
                        }
                        if let (Some(shower), Ok(()), Some(path)) = (&shower, &r.result, &r.path) {
                            show(&bars, shower, path);
                        }
                        if let (Ok(()), Some(path)) = (&r.result, &r.path) {
                            keep_after(&mut keeper, path, &bars);
                        }
                        if let Err(e) = &r.result {
                            // Name and reason are the sender's words.
                            bars.eprintln(&safe(&format!("udpix: transfer of {} from {} failed: {e}", r.offer.name, r.peer)));
                        }
                        if args.once {
                            break if r.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
                        }
                    }
                    // Notices quote offered names and reasons as they came.
                    Event::Notice(n) => bars.eprintln(&safe(&format!("udpix: {n}"))),
                    Event::Chunk(_) | Event::Connected { .. } => {}
                }
            }
            _ = tick.tick() => bars.update(&sub.snapshot.borrow()),
            r = &mut task => {
                match r {
                    Ok(Ok(())) => break ExitCode::SUCCESS,
                    Ok(Err(e)) => bail!("receiver stopped: {e}"),
                    Err(e) => bail!("receiver task failed: {e}"),
                }
            }
            _ = shutdown.recv() => {
                eprintln!("udpix: interrupted, stopping");
                break ExitCode::from(130);
            }
        }
    };
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    let e = sub.snapshot.borrow().endpoint.clone();
    tracing::debug!(?e, "receiver totals");
    if super::quiet() {
        return Ok(code);
    }
    eprintln!(
        "udpix: {}, {} failed; dropped {} malformed, {} unauthentic, {} replayed datagrams; \
         {}, {} throttled, {}, {}, {}, {}",
        count(e.completed, "image received", "images received"),
        e.failed,
        e.malformed,
        e.unauthentic,
        e.replayed,
        count(e.auth_failures, "failed login", "failed logins"),
        e.throttled,
        count(e.retries_sent, "cookie sent", "cookies sent"),
        count(
            e.bad_tokens,
            "confirmation without a token of ours",
            "confirmations without a token of ours"
        ),
        count(
            e.handshakes_dropped,
            "login over its address's budget",
            "logins over their address's budget"
        ),
        count(
            e.too_slow,
            "transfer dropped as too slow",
            "transfers dropped as too slow"
        )
    );
    Ok(code)
}

/// Prints a verified image below its line; a failure to draw it is told, never fatal (the
/// file is written either way).
fn show(bars: &Bars, shower: &Shower, path: &std::path::Path) {
    // Decoding a large image takes a while: the engine runs on other threads meanwhile.
    let shown = tokio::task::block_in_place(|| bars.suspend(|| shower.show(path)));
    if let Err(e) = shown {
        bars.eprintln(&safe(&format!("udpix: {} is written; {e}", path.display())));
    }
}

/// Keeps `path` as the latest image and lets the oldest go, as --latest and --keep ask;
/// a failure is told, and the image itself stays.
fn keep_after(keeper: &mut udpix::keep::Keeper, path: &std::path::Path, bars: &Bars) {
    match keeper.saved(path) {
        Ok(gone) => {
            for g in gone {
                tracing::debug!(path = %g.display(), "deleted: more than --keep images");
            }
        }
        Err(e) => bars.eprintln(&safe(&format!(
            "udpix: warning: keeping {} as --latest or under --keep: {e}",
            path.display()
        ))),
    }
}
