//! The engine over real loopback sockets: a consumer that never reads must not stall a transfer.

mod common;

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use udpix::engine::{self, Event, ReceiveOptions};
use udpix::proto::receiver::ReceiverConfig;
use udpix::proto::sender::{Sender, SenderConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_never_stalls_the_transfer() {
    let out = tempfile::tempdir().expect("tempdir");
    let rsock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let raddr = rsock.local_addr().expect("addr");
    // Capacity 1 and nobody reading: nearly every chunk event must be dropped, not waited on.
    let (rpub, rsub) = engine::channel(1);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let options = ReceiveOptions {
        config: ReceiverConfig::default(),
        out_dir: out.path().to_owned(),
    };
    tokio::spawn(engine::run_receiver(rsock, options, rpub, stop_rx));

    let data = common::seeded_bytes(8 << 20, 42);
    let config = SenderConfig::default();
    let offer = Sender::offer_for(&config, "stall.bin", &data, "", None);
    let ssock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let (spub, ssub) = engine::channel(1);
    let report = tokio::time::timeout(
        common::WAIT,
        engine::send(
            &ssock,
            raddr,
            config,
            offer,
            Bytes::from(data.clone()),
            7,
            spub,
        ),
    )
    .await
    .expect("transfer finished in time")
    .expect("no socket error");
    assert_eq!(report.result, Ok(()));
    assert!(
        ssub.snapshot.borrow().dropped_events > 1000,
        "sender events were not dropped?"
    );

    // The receiver has written the file even though its consumer never read an event.
    // It appears under its name only once verified (renamed from its temp file).
    let path = out.path().join("stall.bin");
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < common::WAIT,
            "the receiver never saved stall.bin"
        );
        // Polling for the file, with the timeout above.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read(&path).expect("received file"), data);
    drop(rsub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_and_snapshots_reach_a_reader() {
    let out = tempfile::tempdir().expect("tempdir");
    let rsock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let raddr = rsock.local_addr().expect("addr");
    let (rpub, mut rsub) = engine::channel(64);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let options = ReceiveOptions {
        config: ReceiverConfig::default(),
        out_dir: out.path().to_owned(),
    };
    tokio::spawn(engine::run_receiver(rsock, options, rpub, stop_rx));
    let img = std::fs::read(common::testdata().join("astronaut.png")).expect("image");
    let config = SenderConfig::default();
    let (format, dims) = engine::image_info(&img);
    assert_eq!((format.as_str(), dims), ("png", Some((512, 512))));
    let offer = Sender::offer_for(&config, "astronaut.png", &img, &format, dims);
    let ssock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let (spub, mut ssub) = engine::channel(64);
    // The sender's side tells the login and offer apart from the data: Started, then
    // Connected (the receiver accepted), then Finished.
    let sender_events = tokio::spawn(async move {
        let mut order = Vec::new();
        while let Some(ev) = ssub.events.recv().await {
            match ev {
                Event::Started { .. } => order.push("started".to_owned()),
                Event::Connected { peer, .. } => order.push(format!("connected {peer}")),
                Event::Finished(_) => order.push("finished".to_owned()),
                Event::Chunk(_) | Event::Notice(_) => {}
            }
        }
        order
    });
    let report = engine::send(
        &ssock,
        raddr,
        config,
        offer,
        Bytes::from(img.clone()),
        1,
        spub,
    )
    .await
    .expect("send");
    assert_eq!(report.result, Ok(()));
    let mut started = false;
    let mut chunks = 0;
    loop {
        let ev = tokio::time::timeout(common::WAIT, rsub.events.recv())
            .await
            .expect("event in time")
            .expect("channel open");
        match ev {
            Event::Started { offer, .. } => {
                started = true;
                assert_eq!(offer.width, 512);
            }
            Event::Chunk(_) => chunks += 1,
            Event::Finished(r) => {
                assert_eq!(r.result, Ok(()));
                assert_eq!(r.stats.chunks_done, r.offer.chunk_count);
                assert!(r.path.is_some());
                break;
            }
            Event::Notice(_) | Event::Connected { .. } => {}
        }
    }
    assert!(started && chunks > 0);
    let order = sender_events.await.expect("reader");
    assert_eq!(
        order,
        [
            "started".to_owned(),
            format!("connected {raddr}"),
            "finished".to_owned()
        ]
    );
}

/// Six files in one `send_files`: one login carries them all, and the one the receiver
/// refuses (over its size limit) fails alone while those after it arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_files_share_one_login_and_a_refused_one_fails_alone() {
    use udpix::proto::crypto::Passphrase;
    let out = tempfile::tempdir().expect("tempdir");
    let rsock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let raddr = rsock.local_addr().expect("addr");
    let (rpub, rsub) = engine::channel(4096);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let options = ReceiveOptions {
        config: ReceiverConfig {
            passphrase: Some(Passphrase::new(common::PASSPHRASE)),
            max_size: 300_000,
            ..ReceiverConfig::default()
        },
        out_dir: out.path().to_owned(),
    };
    tokio::spawn(engine::run_receiver(rsock, options, rpub, stop_rx));
    let sizes = [100_000, 200_000, 400_000, 50_000, 0, 150_000];
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(common::PASSPHRASE)),
        ..SenderConfig::default()
    };
    let contents: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| common::seeded_bytes(n, i as u64 + 100))
        .collect();
    // Read from disk one ahead, as `udpix send` does.
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<(u64, std::path::PathBuf)> = contents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let path = dir.path().join(format!("f{i}.bin"));
            std::fs::write(&path, d).expect("write");
            (i as u64, path)
        })
        .collect();
    let (mut queue, reader) = engine::read_ahead(
        paths,
        config.clone(),
        engine::ReadOptions::default(),
        |p, e| panic!("cannot read {}: {e}", p.display()),
    );
    let ssock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let (spub, _ssub) = engine::channel(4096);
    let reports = tokio::time::timeout(
        common::WAIT,
        engine::send_files(
            &ssock,
            raddr,
            config.clone(),
            &mut queue,
            spub,
            engine::CancelSignal::never(),
        ),
    )
    .await
    .expect("sent in time")
    .expect("no socket error");
    drop(queue);
    assert_eq!(reader.await.expect("reader"), 0, "no file was unreadable");
    let mut by_id: Vec<_> = reports.iter().map(|r| (r.id, r.result.clone())).collect();
    by_id.sort_by_key(|(id, _)| *id);
    assert_eq!(by_id.len(), sizes.len(), "{by_id:?}");
    for (id, result) in &by_id {
        if *id == 2 {
            let e = result.as_ref().expect_err("the large file is refused");
            assert!(e.contains("over the receiver's limit"), "{e}");
        } else {
            assert_eq!(result, &Ok(()), "file {id}");
        }
    }
    // Every file but the refused one is on disk, byte for byte.
    for (i, d) in contents.iter().enumerate() {
        let path = out.path().join(format!("f{i}.bin"));
        if i == 2 {
            assert!(!path.exists(), "the refused file was written");
        } else {
            let written = common::wait_for("the file saved", common::WAIT, || {
                std::fs::read(&path).ok().filter(|w| w.len() == d.len())
            });
            assert!(written == *d, "f{i}.bin differs");
        }
    }
    // One login did it: the SPAKE2 runs of one login's HELLO copies at the receiver, not
    // one login per file.
    let mut snap = rsub.snapshot;
    let stats = common::wait_for("the receiver's counters", common::WAIT, || {
        let s = snap.borrow_and_update().endpoint.clone();
        (s.completed == 5).then_some(s)
    });
    let one_login = udpix::proto::sender::LOGIN_COPIES as u64;
    assert!(stats.pake_runs <= one_login, "{stats:?}");
    assert_eq!((stats.refused, stats.failed), (1, 0), "{stats:?}");
}

/// One file cancelled alone while it is sent, another before it is taken: each ends as
/// cancelled on both sides (nothing of them written), the others arrive whole, over the
/// same login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cancelled_alone_ends_alone() {
    let (out, raddr, mut rsub, _stop) = receiver();
    let config = SenderConfig::default();
    // File 1 is large, so it is still being sent when its cancel comes.
    let sizes = [50_000, 32 << 20, 60_000, 70_000, 80_000];
    let contents: Vec<Bytes> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| Bytes::from(common::seeded_bytes(n, i as u64 + 7)))
        .collect();
    let outgoing = contents.iter().enumerate().map(|(i, d)| {
        let offer = Sender::offer_for(&config, &format!("f{i}.bin"), d, "", None);
        engine::Outgoing::bytes(i as u64, offer, d.clone())
    });
    let mut queue = engine::queue(outgoing);
    let ssock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let (spub, mut ssub) = engine::channel(1 << 16);
    let (canceller, cancel) = engine::cancellation();
    let watcher = tokio::spawn(async move {
        while let Some(ev) = ssub.events.recv().await {
            if matches!(ev, Event::Started { id: 1, .. }) {
                canceller.cancel_file(1, "not that one");
                canceller.cancel_file(3, "nor that one");
            }
        }
    });
    let reports = tokio::time::timeout(
        common::WAIT,
        engine::send_files(&ssock, raddr, config, &mut queue, spub, cancel),
    )
    .await
    .expect("sent in time")
    .expect("no socket error");
    let mut by_id: Vec<_> = reports.iter().map(|r| (r.id, r.result.clone())).collect();
    by_id.sort_by_key(|(id, _)| *id);
    assert_eq!(
        by_id,
        vec![
            (0, Ok(())),
            (1, Err("cancelled: not that one".to_owned())),
            (2, Ok(())),
            (3, Err("cancelled: nor that one".to_owned())),
            (4, Ok(())),
        ]
    );
    for (i, d) in contents.iter().enumerate() {
        let path = out.path().join(format!("f{i}.bin"));
        if i == 1 || i == 3 {
            assert!(!path.exists(), "f{i}.bin was written");
        } else {
            let written = common::wait_for("the file saved", common::WAIT, || {
                std::fs::read(&path).ok().filter(|w| w.len() == d.len())
            });
            assert!(written == *d, "f{i}.bin differs");
        }
    }
    // The receiver was told: file 1 failed as cancelled by the sender, file 3 never began.
    let mut names = Vec::new();
    let mut cancelled = None;
    while names.len() < 4 {
        let ev = tokio::time::timeout(common::WAIT, rsub.events.recv())
            .await
            .expect("receiver events in time")
            .expect("receiver running");
        match ev {
            Event::Started { offer, .. } => names.push(offer.name),
            Event::Finished(r) if r.offer.name == "f1.bin" => cancelled = Some(r.result),
            _ => {}
        }
    }
    assert_eq!(names, ["f0.bin", "f1.bin", "f2.bin", "f4.bin"]);
    let cancelled = common::wait_for("f1.bin's end", common::WAIT, || {
        cancelled.clone().or_else(|| match rsub.events.try_recv() {
            Ok(Event::Finished(r)) if r.offer.name == "f1.bin" => Some(r.result),
            _ => None,
        })
    });
    assert_eq!(
        cancelled,
        Err("cancelled by the sender: not that one".to_owned())
    );
    // Nothing of the cancelled file is left in the folder, not even a partial file.
    assert_eq!(common::files_in(out.path()), ["f0.bin", "f2.bin", "f4.bin"]);
    watcher.abort();
}

/// A live stream's rule (`--deadline`): a file past its deadline gives way as soon as a newer
/// one is ready. The one being sent is abandoned (the receiver keeps nothing of it), those
/// waiting that are late are never offered, and the newest arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_wins_once_a_file_is_past_its_deadline() {
    use std::time::Instant;
    let (out, raddr, _rsub, _stop) = receiver();
    // 2 MB/s: the first file takes two seconds, far past its deadline.
    let config = SenderConfig {
        max_rate: Some(2e6),
        ..SenderConfig::default()
    };
    let now = Instant::now();
    let late = now - Duration::from_secs(1);
    let plan = [
        (4 << 20, Some(now + Duration::from_millis(100))),
        (50_000, Some(late)),
        (60_000, Some(late)),
        (70_000, Some(now + Duration::from_secs(600))),
    ];
    let contents: Vec<Bytes> = plan
        .iter()
        .enumerate()
        .map(|(i, (n, _))| Bytes::from(common::seeded_bytes(*n, i as u64 + 40)))
        .collect();
    let outgoing = contents
        .iter()
        .zip(plan)
        .enumerate()
        .map(|(i, (d, (_, by)))| {
            let offer = Sender::offer_for(&config, &format!("f{i}.bin"), d, "", None);
            let mut o = engine::Outgoing::bytes(i as u64, offer, d.clone());
            o.deadline = by;
            o
        });
    let mut queue = engine::queue(outgoing);
    let reports = send_queue(raddr, config, &mut queue, engine::CancelSignal::never()).await;
    let mut by_id: Vec<_> = reports.iter().map(|r| (r.id, r.result.clone())).collect();
    by_id.sort_by_key(|(id, _)| *id);
    let gave_way = Err("cancelled: past its deadline, and a newer image was ready".to_owned());
    assert_eq!(
        by_id,
        vec![
            (0, gave_way.clone()),
            (1, gave_way.clone()),
            (2, gave_way),
            (3, Ok(()))
        ]
    );
    // The first gave way at its deadline, not after its two seconds.
    let first = reports.iter().find(|r| r.id == 0).expect("report");
    assert!(
        first.stats.chunks_done < first.stats.chunks,
        "{:?}",
        first.stats
    );
    let written = common::wait_for("the newest saved", common::WAIT, || {
        std::fs::read(out.path().join("f3.bin")).ok()
    });
    assert!(written == contents[3], "f3.bin differs");
    assert_eq!(
        common::files_in(out.path()),
        ["f3.bin"],
        "nothing of the others is kept"
    );
}

/// Past its deadline, a file in flight goes on when the newer one waiting could not make
/// its own deadline either: a late image beats none. Both arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_file_goes_on_when_the_newer_one_would_be_late_too() {
    use std::time::Instant;
    let (_out, raddr, _rsub, _stop) = receiver();
    // 1 MB/s: each file takes a second, far past both deadlines.
    let config = SenderConfig {
        max_rate: Some(1e6),
        ..SenderConfig::default()
    };
    let now = Instant::now();
    let contents: Vec<Bytes> = (0..2)
        .map(|i| Bytes::from(common::seeded_bytes(1 << 20, 60 + i)))
        .collect();
    let outgoing = contents.iter().enumerate().map(|(i, d)| {
        let offer = Sender::offer_for(&config, &format!("g{i}.bin"), d, "", None);
        let mut o = engine::Outgoing::bytes(i as u64, offer, d.clone());
        o.deadline = Some(now + Duration::from_millis(100 + 50 * i as u64));
        o
    });
    let mut queue = engine::queue(outgoing);
    let reports = send_queue(raddr, config, &mut queue, engine::CancelSignal::never()).await;
    let mut by_id: Vec<_> = reports.iter().map(|r| (r.id, r.result.clone())).collect();
    by_id.sort_by_key(|(id, _)| *id);
    assert_eq!(by_id, vec![(0, Ok(())), (1, Ok(()))]);
}

/// A receiving engine with default limits on loopback, writing into a fresh folder: the
/// folder, its address, its events, and the handle that keeps it running.
fn receiver() -> (
    tempfile::TempDir,
    std::net::SocketAddr,
    engine::Subscriber,
    watch::Sender<bool>,
) {
    let out = tempfile::tempdir().expect("tempdir");
    let rsock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let raddr = rsock.local_addr().expect("addr");
    let (rpub, rsub) = engine::channel(1 << 16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = ReceiveOptions {
        config: ReceiverConfig::default(),
        out_dir: out.path().to_owned(),
    };
    tokio::spawn(engine::run_receiver(rsock, options, rpub, stop_rx));
    (out, raddr, rsub, stop_tx)
}

/// Sends what `queue` holds to `to` over one engine, its events unread, until each file has
/// its verdict.
async fn send_queue(
    to: std::net::SocketAddr,
    config: SenderConfig,
    queue: &mut tokio::sync::mpsc::Receiver<engine::Outgoing>,
    cancel: engine::CancelSignal,
) -> engine::Reports {
    let ssock = engine::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let (spub, _ssub) = engine::channel(1 << 16);
    tokio::time::timeout(
        common::WAIT,
        engine::send_files(&ssock, to, config, queue, spub, cancel),
    )
    .await
    .expect("sent in time")
    .expect("no socket error")
}
