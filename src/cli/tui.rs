//! `udpix tui` (and `udpix` alone on a terminal): the full-screen UI.

use std::io::IsTerminal;
use std::process::ExitCode;

use udpix::tui::{TuiOptions, run};
use udpix::{config, passphrase};

use super::TuiArgs;

/// Opens the UI; returns when the user quits.
pub async fn run_tui(args: TuiArgs) -> anyhow::Result<ExitCode> {
    let pass = if args.insecure {
        None
    } else {
        passphrase::text_from_sources(args.passphrase_file.as_deref())?
    };
    let file = match (&args.config, config::default_path()) {
        (Some(given), _) => config::load_given(given)?,
        (None, Some(default)) => config::load(&default)?,
        (None, None) => config::FileConfig::default(),
    };
    // Checked after the arguments and files, so their errors show here too.
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!(
            "udpix: error: udpix tui needs a terminal; use udpix recv / udpix send for scripts"
        );
        return Ok(ExitCode::from(2));
    }
    let no_color = file.colors == Some(config::Colors::Never)
        || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let opts = TuiOptions {
        listen: args.listen.map(listen_addr),
        connect: args.connect.or(file.connect).map(peer_addr),
        default_listen: file.listen.map(listen_addr),
        out: shown_path(args.out.or(file.out).unwrap_or_else(|| ".".into())),
        passphrase: pass,
        insecure: args.insecure,
        cwd: std::env::current_dir()?,
        image_protocol: args
            .image_protocol
            .or(file.image_protocol)
            .unwrap_or_default(),
        no_color,
        mouse: !args.no_mouse && file.mouse.unwrap_or(true),
    };
    run(opts).await?;
    Ok(ExitCode::SUCCESS)
}

/// The folder as the screen shows it: absolute when it exists (`.` says little on a remote
/// machine), as given otherwise (the Connection pane then reports it missing on Listen).
fn shown_path(p: std::path::PathBuf) -> std::path::PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// A listen address as the UI takes it (IP:PORT): port 7878 if left out, a name resolved.
/// One that does not parse is passed on as typed, for the Connection pane to report.
fn listen_addr(a: String) -> String {
    udpix::addr::listen(&a).map_or(a, |s| s.to_string())
}

/// A receiver's address with its port filled in (7878 if left out); resolved on Connect.
fn peer_addr(a: String) -> String {
    udpix::addr::with_port(&a).unwrap_or(a)
}
