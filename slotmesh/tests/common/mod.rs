//! Helpers of the multi-process tests: daemon processes that are killed by pid when dropped,
//! swarms started one daemon after another, bounded waits.
#![allow(dead_code)]

pub(crate) mod fake_llm;

use slotmesh::history::{self, History};
use slotmesh_node::{DataDir, NodeStatus};
use slotmesh_proto::{MemberRecord, MemberStatus};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SLOT_MS: &str = "20";
pub(crate) const PHASE_TIMEOUT_MS: &str = "300";
/// Upper bound on any wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(90);

/// A daemon process, killed (by pid) when dropped.
pub(crate) struct Daemon {
    pub name: String,
    pub dir: PathBuf,
    pub child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub(crate) fn start(
        root: &Path,
        name: &str,
        burst: u32,
        peers: &[String],
        extra: &[&str],
    ) -> Daemon {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_slotmesh"));
        command
            .args(["daemon", "--name", name, "--burst", &burst.to_string()])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--phase-timeout-ms", PHASE_TIMEOUT_MS])
            .args(["--swarm", "test"])
            .args(extra)
            .args(if extra.contains(&"--slot-ms") {
                &[][..]
            } else {
                &["--slot-ms", SLOT_MS][..]
            })
            .env("RUST_LOG", "info,libp2p_gossipsub=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for peer in peers {
            command.args(["--peer", peer]);
        }
        Daemon {
            name: name.into(),
            dir,
            child: command.spawn().unwrap(),
        }
    }

    pub(crate) fn status(&self) -> Option<NodeStatus> {
        let bytes = std::fs::read(DataDir::status_path_of(&self.dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(crate) fn listen(&self) -> String {
        let started = Instant::now();
        loop {
            if let Some(address) = self.status().and_then(|s| s.listen.first().cloned()) {
                return address;
            }
            assert!(
                started.elapsed() < WAIT,
                "{} never listened; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the daemon's status satisfies `condition`.
    pub(crate) fn wait_until(&self, what: &str, condition: impl Fn(&NodeStatus) -> bool) {
        let started = Instant::now();
        while !self.status().is_some_and(|s| condition(&s)) {
            assert!(
                started.elapsed() < WAIT,
                "{}: never {what}; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit, bounded.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        match self.exit_within(WAIT) {
            Some(status) => status,
            None => panic!("{} did not exit; log:\n{}", self.name, self.log()),
        }
    }

    /// The process's exit status, if it exits within `limit`.
    fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the daemon's process (by its pid): SIGSTOP freezes it, SIGCONT
    /// thaws it.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

/// Starts daemons one after another, each dialing the ones before it.
pub(crate) fn start_swarm(root: &Path, agents: &[(&str, u32)], extra: &[&str]) -> Vec<Daemon> {
    let mut peers = Vec::new();
    let mut daemons = Vec::new();
    let founders = agents.len().to_string();
    for (name, burst) in agents {
        let mut args = vec!["--founders", founders.as_str()];
        args.extend_from_slice(extra);
        let daemon = Daemon::start(root, name, *burst, &peers, &args);
        peers.push(daemon.listen());
        daemons.push(daemon);
    }
    daemons
}

/// Runs `slotmesh swarm ARGS --out OUT`, asserts it succeeded, returns its stdout.
pub(crate) fn run_swarm(args: &[&str], out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .arg("swarm")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Waits for every daemon in turn to exit 0; a failure shows every daemon's log (a stalled
/// swarm is seldom explained by one member's).
pub(crate) fn assert_all_exit_ok(daemons: &mut [Daemon]) {
    let all: Vec<usize> = (0..daemons.len()).collect();
    assert_those_exit_ok(daemons, &all);
}

/// Waits for the daemons at `which` to exit 0; a failure shows every daemon's log.
pub(crate) fn assert_those_exit_ok(daemons: &mut [Daemon], which: &[usize]) {
    for &i in which {
        let failure = match daemons[i].exit_within(WAIT) {
            Some(status) if status.success() => continue,
            Some(status) => format!("{} exited {status}", daemons[i].name),
            None => format!("{} did not exit", daemons[i].name),
        };
        let logs: Vec<String> = daemons
            .iter()
            .map(|d| format!("----- {}:\n{}", d.name, d.log()))
            .collect();
        panic!("{failure}; logs:\n{}", logs.join("\n"));
    }
}

pub(crate) fn assert_exits_ok(daemon: &mut Daemon) {
    let status = daemon.wait_exit();
    assert!(
        status.success(),
        "{} exited {status}; log:\n{}",
        daemon.name,
        daemon.log()
    );
}

pub(crate) fn verify(daemons: &[&Daemon]) -> history::Verdict {
    let dirs: Vec<PathBuf> = daemons.iter().map(|d| d.dir.clone()).collect();
    history::verify(&dirs)
}

/// The ledger of the daemon that finished last: it holds everyone's end.
pub(crate) fn longest_history(daemons: &[&Daemon]) -> History {
    daemons
        .iter()
        .map(|d| History::load(&d.dir).unwrap())
        .max_by_key(|h| h.rounds.len())
        .unwrap()
}

/// The record of the member called `name`.
pub(crate) fn member<'a>(history: &'a History, name: &str) -> &'a MemberRecord {
    history
        .state
        .members
        .values()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} is not a member"))
}

pub(crate) fn member_status(history: &History, name: &str) -> (MemberStatus, u32) {
    let member = member(history, name);
    (member.status, member.used_slots)
}
