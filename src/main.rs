//! The `udpix` binary: parses the command line and runs a subcommand.

mod cli;

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
    let result = runtime.block_on(async {
        match args.command {
            cli::Command::Recv(a) => cli::recv::run(a).await,
            cli::Command::Send(a) => cli::send::run(a).await,
            cli::Command::Netsim(a) => cli::netsim::run(*a).await,
            cli::Command::Demo(a) => cli::demo::run(a).await,
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
