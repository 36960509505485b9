//! `udpix tui` (and `udpix` alone on a terminal): the full-screen UI.

use std::process::ExitCode;

use udpix::passphrase;
use udpix::tui::{TuiOptions, run};

use super::TuiArgs;

/// Opens the UI; returns when the user quits.
pub async fn run_tui(args: TuiArgs) -> anyhow::Result<ExitCode> {
    let pass = if args.insecure {
        None
    } else {
        passphrase::text_from_sources(args.passphrase_file.as_deref())?
    };
    let opts = TuiOptions {
        listen: args.listen,
        connect: args.connect,
        out: args.out,
        passphrase: pass,
        insecure: args.insecure,
        cwd: std::env::current_dir()?,
    };
    run(opts).await?;
    Ok(ExitCode::SUCCESS)
}
