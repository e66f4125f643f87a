//! `roentgen`: the command line. Thin glue: parse and validate flags, wire the crates
//! together, run until a signal, shut down in order.

mod cli;
mod client;
mod daemon;
mod run;
mod serve;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: ingest allocates many small strings per segment; it is measurably faster
/// than the system allocator there (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::go_style_args(std::env::args_os().collect()));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("roentgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Serve(args) => {
            let config = match args.validate() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("roentgen serve: {e:#}");
                    return Ok(ExitCode::from(cli::EX_USAGE));
                }
            };
            serve::run(config)
        }
        cli::Command::Daemon(args) => daemon::run(args),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Traces(args) => {
            let since = match args.since() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("roentgen traces: {e:#}");
                    return Ok(ExitCode::from(cli::EX_USAGE));
                }
            };
            client::traces(&args.api.endpoint, args.filter, since, args.limit.max(1))
        }
        cli::Command::Trace(args) => client::trace(&args.api.endpoint, &args.id),
        cli::Command::Map(args) => match humantime::parse_duration(&args.since) {
            Ok(since) => client::map(&args.api.endpoint, since),
            Err(e) => {
                eprintln!("roentgen map: --since {:?}: {e}", args.since);
                Ok(ExitCode::from(cli::EX_USAGE))
            }
        },
    }
}
