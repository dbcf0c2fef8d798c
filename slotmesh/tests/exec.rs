#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Real work (`--exec`): daemons whose jobs are real CPU-bound processes that note the time
//! as they run. Only the slot winner's job makes progress in a slot, every job completes, and
//! a daemon killed with kill -9 takes its job with it.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Slack around a slot's edges for a job's last note before SIGSTOP lands, ms.
const EDGE_MS: u64 = 50;

fn burn_job(cpu_ms: u64, progress: &Path) -> String {
    format!(
        "'{}' __burn --cpu-ms {cpu_ms} --progress '{}'",
        env!("CARGO_BIN_EXE_slotmesh"),
        progress.display()
    )
}

fn notes(progress: &Path) -> Vec<u64> {
    std::fs::read_to_string(progress)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn jobs_run_only_in_the_slots_their_agent_won_and_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let agents = [("A", 3u32), ("B", 2), ("C", 2)];
    let mut daemons = Vec::new();
    let mut peers = Vec::new();
    for (name, burst) in agents {
        let progress = dir.path().join(format!("{name}.progress"));
        // More CPU than the estimate's slots give: each job needs slots beyond its streak,
        // so the agents' slots interleave and a job left running would show.
        let job = burn_job(u64::from(burst) * 150, &progress);
        let daemon = Daemon::start(
            dir.path(),
            name,
            burst,
            &peers,
            &["--founders", "3", "--slot-ms", "150", "--exec", &job],
        );
        peers.push(daemon.listen());
        daemons.push(daemon);
    }
    for daemon in &mut daemons {
        let status = daemon.wait_exit();
        assert!(status.success(), "{}", daemon.log());
    }
    let verdict =
        slotmesh::history::verify(&daemons.iter().map(|d| d.dir.clone()).collect::<Vec<_>>());
    assert!(verdict.ok, "{}", verdict.line);
    for daemon in &daemons {
        let status = daemon.status().unwrap();
        assert_eq!(
            status.job_exit.as_deref(),
            Some("exit 0"),
            "{}",
            daemon.log()
        );
        let slots: Vec<(u64, u64)> = status
            .slots
            .iter()
            .map(|s| (s.start_unix_ms, s.end_unix_ms))
            .collect();
        assert!(!slots.is_empty());
        let times = notes(&dir.path().join(format!("{}.progress", daemon.name)));
        assert!(times.len() > 10, "{} made progress", daemon.name);
        for t in &times {
            assert!(
                slots
                    .iter()
                    .any(|(start, end)| *t + EDGE_MS >= *start && *t <= end + EDGE_MS),
                "{}'s job ran at {t}, outside its slots {slots:?}",
                daemon.name
            );
        }
        // A job never gets more CPU in a slot than the slot lasts (and is measured only in
        // slots it outlived).
        for slot in &status.slots {
            let length = slot.end_unix_ms - slot.start_unix_ms;
            assert!(
                slot.job_cpu_ms.is_none_or(|cpu| cpu <= length + EDGE_MS),
                "{slot:?}"
            );
        }
    }
}

#[test]
fn a_daemon_killed_with_kill_9_takes_its_job_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let progress = dir.path().join("job.progress");
    let job = burn_job(600_000, &progress);
    let mut daemons = start_swarm(
        dir.path(),
        &[("A", 50), ("B", 50)],
        &["--exec", &job, "--slot-ms", "100"],
    );
    daemons[0].wait_until("running its job", |s| s.job_pid.is_some() && s.round >= 2);
    let pid = daemons[0].status().unwrap().job_pid.unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    daemons[0].kill9();
    let started = Instant::now();
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "));
        if !alive {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job {pid} outlived its daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `--exec` daemon killed after its job ran in a won slot, restarted on its data dir: its
/// job starts over from the beginning, the record says so (a restart counted, the next claim,
/// the whole estimate again, checked afresh), and it finishes and exits 0 with the others.
#[test]
fn a_restarted_exec_daemon_says_its_job_started_over_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let agents = [("A", 3u32), ("B", 3), ("C", 3)];
    let args = |name: &str, burst: u32| -> Vec<String> {
        let job = burn_job(
            u64::from(burst) * 150,
            &dir.path().join(format!("{name}.progress")),
        );
        ["--founders", "3", "--slot-ms", "150", "--exec", &job]
            .map(String::from)
            .to_vec()
    };
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut peers = Vec::new();
    for (name, burst) in agents {
        let extra = args(name, burst);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let daemon = Daemon::start(dir.path(), name, burst, &peers, &extra);
        peers.push(daemon.listen());
        daemons.push(daemon);
    }
    daemons[0].wait_until("ran its job in a won slot", |s| !s.slots.is_empty());
    daemons[0].kill9();
    let extra = args("A", 3);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    daemons[0] = Daemon::start(dir.path(), "A", 3, &peers[1..], &extra);
    assert_all_exit_ok(&mut daemons);
    let log = daemons[0].log();
    assert!(log.contains("its job starts over"), "{log}");
    assert_eq!(
        daemons[0].status().unwrap().job_exit.as_deref(),
        Some("exit 0")
    );
    let all: Vec<&Daemon> = daemons.iter().collect();
    let verdict = verify(&all);
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&all);
    let a = member(&history, "A");
    assert_eq!(a.status, slotmesh_proto::MemberStatus::Completed, "{a:?}");
    assert!(a.restarts >= 1, "the record counts the restart: {a:?}");
    // (Whether its claims were lies depends on how well the burst estimated the job's slots,
    // restart or not: docs/OPERATING.md, *Real work*.)
}
