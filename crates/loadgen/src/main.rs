//! `roentgen-loadgen`: `udp` sends paced daemon-protocol datagrams; `sink` answers
//! `PutTraceSegments` cheaply and counts documents.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roentgen_loadgen::{Load, SinkCounts, pin_to_cpu, send, sink_router};

#[derive(Parser)]
#[command(version, about = "Load generator for Roentgen benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send X-Ray daemon datagrams at a fixed rate and print what was sent.
    Udp {
        /// Where to send (a daemon's UDP address).
        #[arg(long, default_value = "127.0.0.1:2000")]
        target: SocketAddr,
        /// Datagrams per second.
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Seconds to send.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Document size in bytes (at least ~1.2 KB).
        #[arg(long, default_value_t = 1000)]
        size: usize,
        /// Segments per trace.
        #[arg(long, default_value_t = 5)]
        segments_per_trace: u64,
        /// Pin the sender to this CPU.
        #[arg(long)]
        cpu: Option<usize>,
    },
    /// Answer PutTraceSegments on an address and count documents (GET /count).
    Sink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:2772")]
        listen: SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Udp {
            target,
            rate,
            seconds,
            size,
            segments_per_trace,
            cpu,
        } => {
            if let Some(cpu) = cpu
                && !pin_to_cpu(cpu)
            {
                eprintln!("roentgen-loadgen: could not pin to CPU {cpu}; running unpinned");
            }
            let load = Load {
                rate,
                duration: Duration::from_secs(seconds),
                segments_per_trace,
                size,
            };
            let grams = load.datagrams();
            let sent = send(target, &load, &grams).context("send")?;
            println!(
                r#"{{"sent":{},"errors":{},"seconds":{:.3},"avg_bytes":{}}}"#,
                sent.sent, sent.errors, sent.seconds, sent.avg_bytes
            );
            Ok(())
        }
        Command::Sink { listen } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("bind {listen}"))?;
                eprintln!(
                    "roentgen-loadgen sink listening on {}",
                    listener.local_addr()?
                );
                axum::serve(listener, sink_router(Arc::new(SinkCounts::default())))
                    .await
                    .context("serve")
            })
        }
    }
}
