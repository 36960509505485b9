//! `udpix bench`: runs the matrix and prints a table (or JSON lines).

use std::process::ExitCode;

use anyhow::{Context, bail};
use udpix::bench::{self, Sample, TABLE_HEADING};

use super::BenchArgs;

#[derive(serde::Serialize)]
struct RunLine<'a> {
    case: &'a str,
    seed: u64,
    #[serde(flatten)]
    sample: &'a Sample,
}

/// Runs every selected case `--reps` times; fails when a run did not deliver its files.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let cases: Vec<_> = bench::matrix(args.quick)
        .into_iter()
        .filter(|c| args.case.is_empty() || args.case.iter().any(|s| c.name.contains(s.as_str())))
        .map(|mut c| {
            if let Some(m) = args.mtu {
                c.datagram = usize::from(m);
            }
            c
        })
        .collect();
    if cases.is_empty() {
        let names: Vec<_> = bench::matrix(args.quick)
            .into_iter()
            .map(|c| c.name)
            .collect();
        bail!(
            "no case matches {:?}; the cases are: {}",
            args.case,
            names.join(", ")
        );
    }
    let scratch = bench::scratch_dir();
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    if !args.json {
        println!("{TABLE_HEADING}");
    }
    let mut failed = 0;
    for case in &cases {
        let mut samples = Vec::new();
        for k in 0..u64::from(args.reps) {
            let seed = args.seed + k;
            let sample = if args.sim {
                bench::run_case_sim(case, seed)
            } else {
                bench::run_case(case, seed, &scratch).await?
            };
            if args.runs {
                let line = RunLine {
                    case: &case.name,
                    seed,
                    sample: &sample,
                };
                if args.json {
                    println!("{}", serde_json::to_string(&line)?);
                } else {
                    eprintln!("  {} seed {seed}: {sample:?}", case.name);
                }
            }
            samples.push(sample);
        }
        let summary = bench::summarize(case, &samples);
        failed += summary.runs - summary.ok_runs;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            println!("{}", bench::table_line(&summary));
            for e in &summary.errors {
                println!("    failed: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if failed > 0 {
        bail!("{failed} run(s) did not deliver every file");
    }
    Ok(ExitCode::SUCCESS)
}
