//! `roentgen daemon`: gather the configuration sources, start the daemon, stop it on
//! SIGTERM/SIGINT (a second signal exits at once with 130).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use roentgen_daemon::config::{CONFIG_SEARCH_PATHS, find_config_file, host_memory_bytes};
use roentgen_daemon::{Daemon, Settings};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::{DaemonArgs, EX_USAGE};

/// Resolves flags, config file and environment; `Err` is a usage error.
pub(crate) fn settings(args: &DaemonArgs) -> anyhow::Result<Settings> {
    let overrides = args.overrides();
    let file = find_config_file(overrides.config.as_deref(), CONFIG_SEARCH_PATHS)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::resolve_with(
        &overrides,
        file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
        &env,
        host_memory_bytes(),
        &|| roentgen_daemon::metadata::region(&env),
    )?;
    Ok(settings)
}

pub(crate) fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},hyper=warn,reqwest=warn",
        settings.log_level.directive()
    ))
    .context("set up the log filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match &settings.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open --log-file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("set up logging: {e}"))
}

pub(crate) fn run(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let (settings, telemetry_interval) =
        match settings(&args).and_then(|s| Ok((s, args.telemetry_interval()?))) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("roentgen daemon: {e:#}");
                return Ok(ExitCode::from(EX_USAGE));
            }
        };
    init_logging(&settings)?;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        "starting roentgen daemon"
    );
    if settings.no_verify_ssl {
        warn!("NoVerifySSL is set: the endpoint's TLS certificate is not checked");
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("roentgen-daemon")
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let daemon = Daemon::bind(settings)?
            .with_telemetry_interval(telemetry_interval)
            .with_credentials_from(&env, home);
        let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
        let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
        let cancel = CancellationToken::new();
        let running = tokio::spawn(daemon.run(cancel.clone()));
        tokio::select! {
            _ = sigterm.recv() => info!(signal = "SIGTERM", "shutting down"),
            _ = sigint.recv() => info!(signal = "SIGINT", "shutting down"),
        }
        cancel.cancel();
        tokio::select! {
            finished = running => {
                let report = finished.context("daemon task")??;
                if report.dropped > 0 {
                    eprintln!(
                        "roentgen daemon: {} segments could not be delivered and were dropped",
                        report.dropped
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            _ = sigterm.recv() => {
                warn!("second signal: exiting without finishing the flush");
                Ok(ExitCode::from(130))
            }
            _ = sigint.recv() => {
                warn!("second signal: exiting without finishing the flush");
                Ok(ExitCode::from(130))
            }
        }
    })
}
