//! `udpix netsim`: the impairment proxy.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use tokio::sync::watch;
use udpix::engine;
use udpix::netsim::{NetsimOptions, run as run_proxy};
use udpix::sim::LinkSpec;
use udpix::units::{duration, per_direction, probability, rate};

use super::NetsimArgs;

fn specs(a: &NetsimArgs) -> anyhow::Result<(LinkSpec, LinkSpec)> {
    fn e(what: &'static str) -> impl Fn(String) -> anyhow::Error {
        move |m| anyhow!("--{what}: {m}")
    }
    let (lu, ld) = per_direction(&a.loss, probability).map_err(e("loss"))?;
    let (bu, bd) = per_direction(&a.burst, |s| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number of packets"))
    })
    .map_err(e("burst"))?;
    let (du, dd) = per_direction(&a.delay, duration).map_err(e("delay"))?;
    let (ju, jd) = per_direction(&a.jitter, duration).map_err(e("jitter"))?;
    let (ru, rd) = match &a.rate {
        Some(r) => {
            let (u, d) = per_direction(r, rate).map_err(e("rate"))?;
            (Some(u), Some(d))
        }
        None => (None, None),
    };
    let (qu, qd) = per_direction(&a.queue, |s| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}` is not a packet count"))
    })
    .map_err(e("queue"))?;
    let (ou, od) = per_direction(&a.reorder, probability).map_err(e("reorder"))?;
    let (pu, pd) = per_direction(&a.duplicate, probability).map_err(e("duplicate"))?;
    let (cu, cd) = per_direction(&a.corrupt, probability).map_err(e("corrupt"))?;
    let spec = |loss, burst, delay, jitter, rate, queue, reorder, duplicate, corrupt| LinkSpec {
        loss,
        burst,
        delay,
        jitter,
        rate,
        queue,
        reorder,
        duplicate,
        corrupt,
    };
    Ok((
        spec(lu, bu, du, ju, ru, qu, ou, pu, cu),
        spec(ld, bd, dd, jd, rd, qd, od, pd, cd),
    ))
}

/// Runs the proxy until SIGINT/SIGTERM, then prints its counters.
pub async fn run(args: NetsimArgs) -> anyhow::Result<ExitCode> {
    let (up, down) = match specs(&args) {
        Ok(s) => s,
        // A value clap could not check: a usage error all the same.
        Err(e) => {
            eprintln!("udpix: error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let listener =
        engine::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "udpix netsim: {} -> {}, {}",
        listener.local_addr()?,
        args.to,
        udpix::netsim::describe(&up, &down)
    );
    let options = NetsimOptions {
        listen: args.listen,
        to: args.to,
        up,
        down,
        seed: args.seed,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = super::shutdown::Shutdown::new();
    tokio::spawn(async move {
        shutdown.recv().await;
        let _ = stop_tx.send(true);
    });
    let counters = run_proxy(listener, options, stop_rx, args.stats_interval, |c| {
        eprint!("{c}");
    })
    .await?;
    eprint!("{counters}");
    Ok(ExitCode::SUCCESS)
}
