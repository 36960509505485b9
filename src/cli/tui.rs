//! `udpix tui` (and `udpix` alone on a terminal): the full-screen UI.

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
    let path = args.config.clone().or_else(config::default_path);
    let file = match &path {
        Some(p) => config::load(p)?,
        None => config::FileConfig::default(),
    };
    let no_color = file.colors == Some(config::Colors::Never)
        || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let opts = TuiOptions {
        listen: args.listen,
        connect: args.connect.or(file.connect),
        default_listen: file.listen,
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
