//! The `udpix` binary: parses the command line and runs a subcommand.

mod cli;

use std::io::IsTerminal;

use clap::Parser;
use udpix::config;
use udpix::logging::{self, Target};

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let command = match args.command {
        Some(c) => c,
        None if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() => {
            cli::Command::Tui(cli::TuiArgs::default())
        }
        None => {
            let _ = <cli::Cli as clap::CommandFactory>::command().print_help();
            return std::process::ExitCode::from(2);
        }
    };
    cli::set_quiet(args.quiet);
    // The TUI owns the terminal: its diagnostics go to a file.
    let target = match (&args.log_file, &command) {
        (Some(path), _) => Target::File(path.clone()),
        (None, cli::Command::Tui(_)) => {
            logging::default_log_file(&|k| std::env::var(k).ok()).map_or(Target::Off, Target::File)
        }
        (None, _) => Target::Stderr,
    };
    if let Err(e) = logging::init(&target, args.verbose, args.quiet) {
        let Target::File(path) = &target else {
            unreachable!("only a file can fail to open")
        };
        eprintln!(
            "udpix: error: cannot write the log to {}: {e}",
            path.display()
        );
        if args.log_file.is_some() {
            return std::process::ExitCode::FAILURE;
        }
        // The default location: the TUI runs without a log rather than not at all.
    }
    if let Target::File(path) = &target {
        tracing::debug!(path = %path.display(), "logging to this file");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("udpix: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let config_file = args.config;
    let result = runtime.block_on(async {
        match command {
            cli::Command::Tui(a) => cli::tui::run_tui(a, config_file).await,
            cli::Command::Recv(a) => cli::recv::run(a, config_file).await,
            cli::Command::Send(mut a) => match cli::resolve_send(&mut a, config_file) {
                Ok(()) => cli::send::run(a).await,
                Err(e) => Err(e),
            },
            cli::Command::Netsim(a) => cli::netsim::run(*a).await,
            cli::Command::Demo(a) => cli::demo::run(a).await,
            cli::Command::Bench(a) => cli::bench::run(a).await,
            cli::Command::Completions(a) => cli::manual::completions(a.shell),
            cli::Command::Man => cli::manual::man(),
            cli::Command::Config => config::resolve(&config::CliConfig {
                config: config_file,
                ..config::CliConfig::default()
            })
            .map(|r| {
                print!("{}", r.describe());
                std::process::ExitCode::SUCCESS
            })
            .map_err(anyhow::Error::from),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::debug!(error = ?e, "exiting with an error");
            eprintln!("udpix: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
