//! PID-1 duties for `roentgen run`: start the application as a child, forward signals
//! to it, reap every zombie, and end with the child's exit status.
//!
//! The loop is tini's, written in Rust: signals are blocked in every thread and read
//! from a `signalfd` by one owner, which forwards each to the child (or to its process
//! group) and reaps with `waitpid(-1, WNOHANG)` until none is left. The child starts in
//! its own process group with the signal mask the runner inherited (restored between
//! fork and exec) and default dispositions, and gets the terminal's foreground when
//! there is one. When not
//! PID 1 the runner makes itself a child subreaper, so orphaned grandchildren are reaped
//! here too. Exit statuses follow the shell: the child's code, `128 + N` when it died of
//! signal N, `127` when the command was not found and `126` when it could not be run.
//!
//! This crate knows nothing about tracing: the binary decides what happens around the
//! child's life.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Signals forwarded to the child. SIGCHLD is the runner's own; SIGTTIN and SIGTTOU
/// are swallowed (a container init must not be stopped by terminal I/O); signals that
/// mean the runner itself crashed (SIGSEGV, SIGBUS, …) are left alone.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGWINCH,
    Signal::SIGURG,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGIO,
    Signal::SIGPWR,
];

/// Signals the runner blocks and reads but never forwards.
const SWALLOWED: &[Signal] = &[Signal::SIGTTIN, Signal::SIGTTOU];

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// No command was given.
    #[error("no command to run")]
    NoCommand,
    /// The command does not exist (exit 127, as a shell).
    #[error("{command}: command not found")]
    NotFound {
        /// The command.
        command: String,
    },
    /// The command exists but cannot be executed (exit 126, as a shell).
    #[error("{command}: cannot execute: {source}")]
    NotExecutable {
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// Setting up signals or reaping failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: Errno,
    },
}

impl RunnerError {
    /// The exit status a shell would give for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } => 127,
            Self::NotExecutable { .. } => 126,
            Self::NoCommand | Self::Sys { .. } => 125,
        }
    }
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> RunnerError {
    move |source| RunnerError::Sys { what, source }
}

/// The signals the runner owns, blocked in the calling thread (and so in every thread
/// it starts afterwards) and readable from a `signalfd`. Call it first thing in `main`,
/// before any other thread exists.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
    /// The mask the runner had before, which the child gets.
    previous: SigSet,
}

impl Signals {
    /// Blocks the forwarded signals, SIGCHLD and the swallowed ones.
    pub fn block() -> Result<Self, RunnerError> {
        let mut set = SigSet::empty();
        for s in FORWARDED.iter().chain(SWALLOWED) {
            set.add(*s);
        }
        set.add(Signal::SIGCHLD);
        let mut previous = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous))
            .map_err(sys("block signals"))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(sys("create a signalfd"))?;
        Ok(Self { fd, previous })
    }

    /// Waits up to `timeout` for a signal.
    fn next(&self, timeout: Duration) -> Result<Option<Signal>, RunnerError> {
        if let Some(info) = self.fd.read_signal().map_err(sys("read a signal"))? {
            return Ok(Signal::try_from(info.ssi_signo as i32).ok());
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys("wait for signals")(e)),
        }
        match self.fd.read_signal().map_err(sys("read a signal"))? {
            Some(info) => Ok(Signal::try_from(info.ssi_signo as i32).ok()),
            None => Ok(None),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// How the child is run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Forward signals to the child's whole process group (tini's `-g`).
    pub to_group: bool,
}

/// The running application.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    options: Options,
    exited: Option<i32>,
}

/// Starts `command` as a child in its own process group, with stdin, stdout and stderr
/// passed through. Become a child subreaper first (when not PID 1) so grandchildren
/// orphaned by the application are reaped here.
pub fn spawn(
    command: &[OsString],
    signals: &Signals,
    options: Options,
) -> Result<Child, RunnerError> {
    let (program, args) = command.split_first().ok_or(RunnerError::NoCommand)?;
    if std::process::id() != 1 {
        nix::sys::prctl::set_child_subreaper(true).map_err(sys("become a child subreaper"))?;
    }
    let name = program.to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).process_group(0);
    let inherited = signals.previous;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only calls
    // `pthread_sigmask`, which is async-signal-safe; it allocates nothing and takes no
    // lock. It gives the application the signal mask the runner itself inherited
    // instead of the runner's blocked set.
    unsafe {
        cmd.pre_exec(move || {
            pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&inherited), None)
                .map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RunnerError::NotFound {
            command: name.clone(),
        },
        _ => RunnerError::NotExecutable {
            command: name.clone(),
            source: e,
        },
    })?;
    let pid = Pid::from_raw(child.id() as i32);
    // The std handle is not used to wait: the reaper below owns every waitpid.
    drop(child);
    // With a terminal, the child's group gets the foreground (SIGTTOU is blocked here).
    let stdin = std::io::stdin();
    if std::io::IsTerminal::is_terminal(&stdin) {
        let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), pid);
    }
    Ok(Child {
        pid,
        options,
        exited: None,
    })
}

/// What the supervision loop saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A signal arrived and was forwarded.
    Forwarded(Signal),
    /// The child exited; the status to exit with.
    Exited(u8),
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends `signal` to the child, or its group.
    pub fn signal(&self, signal: Signal) -> Result<(), RunnerError> {
        let sent = if self.options.to_group {
            killpg(self.pid, signal)
        } else {
            kill(self.pid, signal)
        };
        match sent {
            // Already gone: nothing to forward to.
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(sys("forward a signal")(e)),
        }
    }

    /// Reaps every exited process; records the child's status when it is among them.
    fn reap(&mut self) -> Result<(), RunnerError> {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(()),
                Ok(WaitStatus::Exited(pid, code)) if pid == self.pid => self.exited = Some(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.pid => {
                    self.exited = Some(128 + sig as i32);
                }
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(e) => return Err(sys("reap children")(e)),
            }
        }
    }

    /// Forwards signals and reaps until the child exits; `on_event` hears about each
    /// forwarded signal. Returns the exit status (the child's code, or 128 + signal).
    pub fn supervise(
        &mut self,
        signals: &Signals,
        mut on_event: impl FnMut(Event),
    ) -> Result<u8, RunnerError> {
        loop {
            self.reap()?;
            if let Some(code) = self.exited {
                let code = u8::try_from(code).unwrap_or(255);
                on_event(Event::Exited(code));
                return Ok(code);
            }
            match signals.next(Duration::from_millis(500))? {
                Some(Signal::SIGCHLD) | None => {}
                Some(s) if SWALLOWED.contains(&s) => {}
                Some(s) => {
                    self.signal(s)?;
                    on_event(Event::Forwarded(s));
                }
            }
        }
    }

    /// Reaps what is left for up to `timeout` (orphans the child left behind), then
    /// returns.
    pub fn reap_remaining(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

impl Drop for Child {
    /// Never leave the application running: if the runner ends before the child did
    /// (an error, a panic), the child's group is killed.
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = killpg(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}
