//! `roentgen run [daemon flags] -- CMD ARGS…`: the daemon in this process, CMD as the
//! child. Signals are blocked before any thread starts, so the runner's loop is their
//! only reader; when CMD exits, the daemon gets a moment for the last datagrams, flushes
//! within `--flush-timeout`, and the process exits with CMD's status.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use roentgen_daemon::Daemon;
use roentgen_runner::{Event, Options, Signals};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::cli::{EX_USAGE, RunArgs};
use crate::daemon::{init_logging, settings};

/// Time after CMD exits for datagrams still on their way (a grandchild's last words).
const LAST_DATAGRAMS: Duration = Duration::from_millis(50);

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // First, before any thread exists: every thread inherits the blocked mask.
    let signals = Signals::block().context("set up signal handling")?;
    let resolved = settings(&args.daemon).and_then(|mut s| {
        s.flush_timeout = args.flush_timeout()?;
        Ok((s, args.daemon.telemetry_interval()?))
    });
    let (settings, telemetry_interval) = match resolved {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roentgen run: {e:#}");
            return Ok(ExitCode::from(EX_USAGE));
        }
    };
    init_logging(&settings)?;
    let flush_timeout = settings.flush_timeout;
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let daemon = Daemon::bind(settings)
        .context("start the daemon")?
        .with_telemetry_interval(telemetry_interval)
        .with_credentials_from(&env, home);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("roentgen-run")
        .build()
        .context("start the async runtime")?;
    let cancel = CancellationToken::new();
    let daemon_task = runtime.spawn(daemon.run(cancel.clone()));

    let options = Options {
        to_group: args.process_group,
    };
    let mut child = match roentgen_runner::spawn(&args.command, &signals, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roentgen run: {e}");
            cancel.cancel();
            let _ = runtime.block_on(daemon_task);
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    info!(pid = child.pid().as_raw(), "started the application");
    let code = child.supervise(&signals, |event| match event {
        Event::Forwarded(s) => debug!(signal = %s, "forwarded"),
        Event::Exited(code) => info!(code, "the application exited"),
    })?;

    std::thread::sleep(LAST_DATAGRAMS);
    cancel.cancel();
    let finished = runtime.block_on(async {
        tokio::time::timeout(flush_timeout + Duration::from_secs(3), daemon_task).await
    });
    match finished {
        Ok(Ok(Ok(report))) => {
            if report.dropped > 0 {
                eprintln!(
                    "roentgen run: {} segments could not be delivered and were lost",
                    report.dropped
                );
            }
            if report.left_in_spool_bytes > 0 {
                eprintln!(
                    "roentgen run: {} bytes of segments wait in the spool for the next start",
                    report.left_in_spool_bytes
                );
            }
        }
        Ok(Ok(Err(e))) => eprintln!("roentgen run: the daemon failed: {e}"),
        Ok(Err(e)) => eprintln!("roentgen run: the daemon task failed: {e}"),
        Err(_) => eprintln!("roentgen run: the daemon did not stop within the flush timeout"),
    }
    child.reap_remaining(Duration::from_millis(50));
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(ExitCode::from(code))
}
