//! `udpix demo`: a whole loopback session in one command, for a first look: a receiver, a
//! `netsim` link with loss between, and a sender, all in this process.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use tokio::sync::watch;
use udpix::engine::service::{self, Files};
use udpix::engine::{self, Event, ReceiveOptions};
use udpix::netsim::{NetsimOptions, run as run_proxy};
use udpix::proto::crypto::Passphrase;
use udpix::proto::receiver::ReceiverConfig;
use udpix::proto::sender::SenderConfig;
use udpix::report::{count, human_line};
use udpix::sim::LinkSpec;

use super::DemoArgs;

/// A seeded 1024×768 PNG (colour gradients and rings), so the demo needs no input file.
fn generated_image() -> anyhow::Result<Vec<u8>> {
    let (w, h) = (1024u32, 768u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let d = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt();
        let ring = ((d * 60.0).sin() * 0.5 + 0.5) * 255.0;
        let noise = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 24) as f32 * 0.2;
        image::Rgb([(fx * 255.0) as u8, ring as u8, ((fy * 200.0) + noise) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("encoding the demo image")?;
    Ok(out.into_inner())
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // From the start, so a Ctrl-C at any point still removes the temp folder.
    let mut shutdown = super::shutdown::Shutdown::new();
    // Without --out the images go to a temp folder that is removed when the demo ends,
    // interrupted or not (it is dropped on every way out of this function).
    let (out_dir, temp) = match &args.out {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("udpix-demo-")
                .tempdir()
                .context("cannot create a temp folder for the demo (or pass --out DIR)")?;
            (t.path().to_owned(), Some(t))
        }
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let kept = if temp.is_some() {
        " (removed at the end; --out DIR keeps the images)"
    } else {
        ""
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for f in &args.files {
        let data = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let name = engine::offered_name(f);
        files.push((name, data));
    }
    if files.is_empty() {
        files.push(("udpix-demo.png".to_owned(), generated_image()?));
    }

    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let recv_socket = engine::bind(loopback)?;
    let recv_addr = recv_socket.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (recv_pub, mut recv_sub) = engine::channel(1024);
    let pass = Passphrase::new(&udpix::passphrase::generate());
    let options = ReceiveOptions {
        config: ReceiverConfig {
            passphrase: Some(pass.clone()),
            ..ReceiverConfig::default()
        },
        out_dir: out_dir.clone(),
    };
    let mut receiver = tokio::spawn(engine::run_receiver(
        recv_socket,
        options,
        recv_pub,
        stop_rx.clone(),
    ));

    let link = LinkSpec {
        loss: args.loss,
        burst: 3.0,
        delay: Duration::from_millis(10),
        rate: Some(args.rate_mbit * 1e6 / 8.0),
        queue: 100,
        ..LinkSpec::default()
    };
    let proxy_socket = engine::bind(loopback)?;
    let proxy_addr = proxy_socket.local_addr()?;
    let netsim = NetsimOptions {
        listen: proxy_addr,
        to: recv_addr,
        up: link.clone(),
        down: link,
        seed: 1,
    };
    let proxy = tokio::spawn(run_proxy(proxy_socket, netsim, stop_rx, None, |_| {}));
    eprintln!(
        "udpix demo: receiver on {recv_addr} writing to {}{kept}; link {proxy_addr} -> {recv_addr}: \
         {} Mbit/s, 10 ms each way, {:.0}% loss in bursts; passphrase login and encryption on",
        out_dir.display(),
        args.rate_mbit,
        args.loss * 100.0
    );

    let socket = engine::bind(loopback)?;
    let config = SenderConfig {
        passphrase: Some(pass),
        ..SenderConfig::default()
    };
    let total = files.len();
    let ready = files
        .into_iter()
        .enumerate()
        .map(|(i, (name, data))| {
            let offer = engine::offer_file(&config, &name, &data);
            engine::Outgoing::bytes(i as u64, offer, Bytes::from(data))
        })
        .collect();
    // One login carries every file; each side's line is printed as its verdict comes.
    let (publisher, mut send_sub) = engine::channel(1024);
    let sending = service::send_all(
        &socket,
        proxy_addr,
        config.clone(),
        Files::Ready(ready),
        publisher,
        engine::CancelSignal::never(),
        |_, _| {},
    );
    tokio::pin!(sending);
    let mut sent: Option<service::Summary> = None;
    let mut received = 0;
    // The receiver's verdicts, for the sender's line of the same file.
    let mut verdicts = Verdicts::default();
    while sent.is_none() || received < total {
        tokio::select! {
            _ = shutdown.recv() => {
                let _ = stop_tx.send(true);
                // Stopped before its folder goes, so it writes nothing there afterwards.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut receiver).await;
                eprintln!("udpix demo: interrupted");
                return Ok(ExitCode::from(130));
            }
            r = &mut sending, if sent.is_none() => sent = Some(r?),
            Some(ev) = send_sub.events.recv() => {
                if let Event::Finished(r) = ev {
                    verdicts.print(&r);
                }
            }
            ev = tokio::time::timeout(Duration::from_secs(5), recv_sub.events.recv()) => match ev {
                Ok(Some(Event::Finished(r))) => {
                    verdicts.print(&r);
                    received += 1;
                }
                Ok(Some(_)) => {}
                // The receiver is quiet: files that failed on the way have no line there.
                _ if sent.is_some() => break,
                _ => {}
            },
        }
    }
    while let Ok(ev) = send_sub.events.try_recv() {
        if let Event::Finished(r) = ev {
            verdicts.print(&r);
        }
    }
    let failed = sent.map_or(total, |s| s.failed());
    let _ = stop_tx.send(true);
    if let Ok(Ok(Ok(c))) = tokio::time::timeout(Duration::from_secs(2), proxy).await {
        eprint!("{c}");
    }
    if failed > 0 {
        bail!("{} failed", count(failed as u64, "transfer", "transfers"));
    }
    eprintln!(
        "udpix demo: done; try `udpix recv` and `udpix send HOST:PORT FILE` between two machines,\n\
         or `udpix` on its own for the full-screen UI"
    );
    Ok(ExitCode::SUCCESS)
}

/// The receiver's verified files so far: name, hash and its time for each.
#[derive(Default)]
struct Verdicts(Vec<(String, [u8; 32], Duration)>);

impl Verdicts {
    /// A transfer's line: its figures when it verified, why not otherwise (a failed transfer
    /// has no goodput to show). Each side's time is its own clock (docs/FIGURES.md): the
    /// receiver's from taking the offer to its hash check, the sender's from the file's start
    /// (the login, for the first) to the verdict's arrival, so it holds the receiver's. The
    /// sender's line says how much of it the receiver's part was, once that is known.
    fn print(&mut self, r: &engine::Report) {
        let Err(e) = &r.result else {
            let mut line = human_line(r);
            match r.direction {
                engine::Direction::Receive => {
                    self.0
                        .push((r.offer.name.clone(), r.offer.blake3, r.duration));
                }
                engine::Direction::Send => {
                    if let Some((.., d)) = self
                        .0
                        .iter()
                        .find(|(n, h, _)| *n == r.offer.name && *h == r.offer.blake3)
                    {
                        line.push_str(&udpix::report::sender_share(r.duration, *d));
                    }
                }
            }
            println!("{line}");
            return;
        };
        eprintln!(
            "{}",
            udpix::display::safe(&format!("udpix demo: {} failed: {e}", r.offer.name))
        );
    }
}
