//! `udpix tui` (and `udpix` alone on a terminal): the full-screen UI.

use std::io::IsTerminal;
use std::process::ExitCode;

use udpix::tui::{TuiOptions, run};
use udpix::{config, passphrase};

use super::TuiArgs;

/// Opens the UI; returns when the user quits. Its settings are layered with the environment
/// and the config file (`config_file`, else the default one).
pub async fn run_tui(
    args: TuiArgs,
    config_file: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let pass = if args.insecure {
        None
    } else {
        passphrase::text_from_sources(args.passphrase_file.as_deref())?
    };
    let settings = config::resolve(&config::CliConfig {
        config: config_file,
        listen: args.listen.clone(),
        connect: args.connect.clone(),
        out: args.out.clone(),
        image_protocol: args.image_protocol,
        colors: None,
        mouse: args.no_mouse.then_some(false),
    })?;
    // Checked after the arguments and files, so their errors show here too.
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!(
            "udpix: error: udpix tui needs a terminal; use udpix recv / udpix send for scripts"
        );
        return Ok(ExitCode::from(2));
    }
    let no_color = settings.colors.value == config::Colors::Never
        || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing::info!(
        listen = %settings.listen.value,
        listen_from = %settings.listen.source,
        out = %settings.out.value.display(),
        out_from = %settings.out.source,
        image_protocol = ?settings.image_protocol.value,
        "starting the TUI"
    );
    // Only --listen starts receiving at once; the other layers pre-fill the field.
    let cli_listen = settings.listen.source == config::Source::Cli("--listen");
    let opts = TuiOptions {
        listen: cli_listen.then(|| listen_addr(settings.listen.value.clone())),
        connect: settings.connect.map(|c| peer_addr(c.value)),
        default_listen: (!cli_listen).then(|| listen_addr(settings.listen.value)),
        out: shown_path(settings.out.value),
        passphrase: pass,
        insecure: args.insecure,
        cwd: std::env::current_dir()?,
        image_protocol: settings.image_protocol.value,
        no_color,
        mouse: settings.mouse.value,
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
