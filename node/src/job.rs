//! Real work (`--exec CMD`): the agent's job is a real process that runs only in the slots
//! the swarm awards it.
//!
//! The job runs as `sh -c 'kill -STOP $$; eval "$CMD"'` in its own process group: the shell
//! stops itself before the command starts, so the job never runs before its first slot, and
//! signalling the group (SIGCONT at a slot's start, SIGSTOP at its end) takes every process
//! the command starts along.
//!
//! Between the daemon and the job stands a small guard (`slotmesh __exec-guard CMD`, this
//! same binary): it starts the job, reports its pid and, when the job ends, its exit status.
//! The guard reads its stdin, a pipe whose only writer is the daemon: when the daemon dies
//! for any reason (kill -9 included), the pipe closes and the guard kills the job's whole
//! group. So a dead daemon never leaves its job running, or stopped forever.

use crate::error::{NodeError, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// How long the job's shell may take to stop itself before its first slot.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The guard's side: runs the job, reports it, and kills it if the daemon goes away.
/// Prints `pid N` once the job is stopped and waiting for its first slot, then `exit CODE`
/// (or `signal N`) when it ends.
pub fn run_guard(command: &str) -> ExitCode {
    match guard(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("slotmesh exec guard: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn guard(command: &str) -> Result<()> {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "kill -STOP $$; eval \"$1\"", "slotmesh-job", command])
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| NodeError::Process {
            action: "cannot start the job's shell",
            source,
        })?;
    let pid = child.id();
    let started = Instant::now();
    while process_state(pid) != Some('T') {
        if let Some(status) = child.try_wait()? {
            return Err(NodeError::Job(format!(
                "the job ended before its first slot: {status}"
            )));
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return Err(NodeError::Job("the job's shell did not stop itself".into()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "pid {pid}")?;
    stdout.flush()?;
    // The daemon never writes; end of input means it is gone.
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        let group = Pid::from_raw(pid as i32);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = killpg(group, Signal::SIGCONT);
    });
    let status = child.wait()?;
    // Whatever the command left behind in its group goes with it.
    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => writeln!(stdout, "exit {code}")?,
        (None, Some(signal)) => writeln!(stdout, "signal {signal}")?,
        (None, None) => writeln!(stdout, "exit -1")?,
    }
    stdout.flush()?;
    Ok(())
}

/// A process's `/proc/PID/stat`: its state letter and the numeric fields after it
/// (index 0 is ppid, 1 pgrp, 10 utime, 11 stime, 12 cutime, 13 cstime).
fn stat(pid: u32) -> Option<(char, Vec<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(") ")?.1;
    let mut parts = rest.split_whitespace();
    let state = parts.next()?.chars().next()?;
    Some((state, parts.map(|f| f.parse().unwrap_or(0)).collect()))
}

/// Clock ticks to ms (USER_HZ is 100 on every Linux we run on).
const MS_PER_TICK: u64 = 10;

/// The state letter of a process (`R`, `S`, `T`, ...).
pub fn process_state(pid: u32) -> Option<char> {
    stat(pid).map(|(state, _)| state)
}

/// CPU time (user + system) used so far by the process group `pgid`, in ms: every live
/// member's, plus what the leader's finished children used. `None` once the group is gone.
pub fn group_cpu_ms(pgid: u32) -> Option<u64> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut ticks = 0u64;
    let mut members = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((_, fields)) = stat(pid) else {
            continue;
        };
        if fields.get(1) != Some(&u64::from(pgid)) {
            continue;
        }
        members += 1;
        let own: u64 = fields.get(10..12).map_or(0, |f| f.iter().sum());
        let children: u64 = if pid == pgid {
            fields.get(12..14).map_or(0, |f| f.iter().sum())
        } else {
            0
        };
        ticks += own + children;
    }
    (members > 0).then_some(ticks * MS_PER_TICK)
}

/// CPU time (user + system) of one process, ms.
fn process_cpu_ms(pid: u32) -> u64 {
    stat(pid).map_or(0, |(_, fields)| {
        fields.get(10..12).map_or(0, |f| f.iter().sum::<u64>()) * MS_PER_TICK
    })
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
    /// The guard went away without saying.
    Lost,
}

/// The daemon's side: the guard process and the job's process group.
pub struct Job {
    guard: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pid: u32,
    running: bool,
    ended: bool,
}

impl Job {
    /// Starts the guard for `command` and waits until the job is stopped before its first
    /// slot.
    pub async fn start(command: &str) -> Result<Job> {
        let exe = std::env::current_exe().map_err(|source| NodeError::Process {
            action: "cannot find the slotmesh binary",
            source,
        })?;
        let mut guard = tokio::process::Command::new(exe)
            .args(["__exec-guard", command])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NodeError::Process {
                action: "cannot start the job guard",
                source,
            })?;
        let stdout = guard
            .stdout
            .take()
            .ok_or_else(|| NodeError::Job("the job guard has no stdout".into()))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| NodeError::Job("the job did not start in time".into()))??;
        let pid = first
            .as_deref()
            .and_then(|l| l.strip_prefix("pid "))
            .and_then(|p| p.trim().parse::<u32>().ok())
            .ok_or_else(|| {
                NodeError::Job(format!("the job did not start (guard said {first:?})"))
            })?;
        Ok(Job {
            guard,
            lines,
            pid,
            running: false,
            ended: false,
        })
    }

    /// The job's pid (its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the job has ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Lets the job run (a won slot starts).
    pub fn resume(&mut self) {
        if !self.ended && !self.running {
            self.running = true;
            self.signal(Signal::SIGCONT);
        }
    }

    /// Stops the job (the slot ends).
    pub fn pause(&mut self) {
        if !self.ended && self.running {
            self.running = false;
            self.signal(Signal::SIGSTOP);
        }
    }

    fn signal(&self, signal: Signal) {
        if let Err(error) = killpg(Pid::from_raw(self.pid as i32), signal) {
            tracing::debug!(%error, ?signal, "cannot signal the job");
        }
    }

    /// The next thing the guard says: the job's end.
    pub async fn next_end(&mut self) -> JobEnd {
        loop {
            match self.lines.next_line().await {
                Ok(Some(line)) => {
                    let parse = |prefix: &str| {
                        line.strip_prefix(prefix)
                            .and_then(|c| c.trim().parse::<i32>().ok())
                    };
                    if let Some(code) = parse("exit ") {
                        self.ended = true;
                        return JobEnd::Exited(code);
                    }
                    if let Some(signal) = parse("signal ") {
                        self.ended = true;
                        return JobEnd::Signalled(signal);
                    }
                }
                Ok(None) | Err(_) => {
                    self.ended = true;
                    return JobEnd::Lost;
                }
            }
        }
    }

    /// Ends the job now (the daemon stops before it finished).
    pub fn kill(&mut self) {
        if !self.ended {
            self.signal(Signal::SIGKILL);
            self.signal(Signal::SIGCONT);
            self.ended = true;
        }
        let _ = self.guard.start_kill();
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CPU-bound demo and test job (`slotmesh __burn`): spins until this process has used
/// `cpu_ms` of CPU time, appending the wall-clock time (Unix ms) to `progress` about every
/// 5 ms of running, so that one can see exactly when it ran.
pub fn burn(cpu_ms: u64, progress: Option<&std::path::Path>) -> ExitCode {
    let mut file = match progress.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    }) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            eprintln!("cannot open the progress file: {e}");
            return ExitCode::FAILURE;
        }
        None => None,
    };
    let me = std::process::id();
    let mut last_note = Instant::now();
    let mut spin = 0u64;
    loop {
        for _ in 0..20_000 {
            spin = std::hint::black_box(spin.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        if last_note.elapsed() >= Duration::from_millis(5) {
            last_note = Instant::now();
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{}", slotmesh_agent::sys::unix_ms());
            }
            if process_cpu_ms(me) >= cpu_ms {
                return ExitCode::SUCCESS;
            }
        }
    }
}
