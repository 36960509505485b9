//! The `udpix` binary: parses the command line and runs a subcommand.

mod cli;

use std::io::IsTerminal;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
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
    let result = runtime.block_on(async {
        match command {
            cli::Command::Tui(a) => cli::tui::run_tui(a).await,
            cli::Command::Recv(a) => cli::recv::run(a).await,
            cli::Command::Send(a) => cli::send::run(a).await,
            cli::Command::Netsim(a) => cli::netsim::run(*a).await,
            cli::Command::Demo(a) => cli::demo::run(a).await,
            cli::Command::Bench(a) => cli::bench::run(a).await,
            cli::Command::Completions(a) => cli::manual::completions(a.shell),
            cli::Command::Man => cli::manual::man(),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("udpix: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
