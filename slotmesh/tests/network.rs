#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Multi-process tests: real `slotmesh daemon` processes on 127.0.0.1 with explicit peers and
//! mDNS off, as a user runs them. Every process is killed by its pid when its guard drops;
//! every wait is bounded.

mod common;

use common::*;
use slotmesh::history::History;
use slotmesh_node::NodeStatus;
use slotmesh_proto::MemberStatus;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn seed_preset_swarm_completes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("swarm");
    let stdout = run_swarm(
        &[
            "--preset",
            "seed",
            "--slot-ms",
            SLOT_MS,
            "--timeout-s",
            "90",
        ],
        &out,
    );
    assert!(stdout.contains("OK: 3 ledgers agree"), "{stdout}");
    assert!(
        stdout.contains("coalitions: "),
        "the summary counts coalitions: {stdout}"
    );
    // The completion order printed is the one the ledgers hold (the longest ledger: the
    // last daemon to finish).
    let history = ["A", "B", "C"]
        .iter()
        .map(|n| History::load(&out.join(n)).unwrap())
        .max_by_key(|h| h.rounds.len())
        .unwrap();
    let mut order: Vec<(u64, String)> = history
        .completed
        .iter()
        .map(|(id, round)| (*round, history.name(id)))
        .collect();
    order.sort();
    let names: Vec<String> = order.into_iter().map(|(_, n)| n).collect();
    assert!(
        stdout.contains(&format!("completion order: {}", names.join(", "))),
        "{stdout}"
    );
    for (name, burst) in [("A", 5), ("B", 5), ("C", 3)] {
        assert_eq!(
            member_status(&history, name),
            (MemberStatus::Completed, burst)
        );
        // The status file agrees: nothing remains of the job.
        let status: slotmesh_node::NodeStatus =
            serde_json::from_slice(&std::fs::read(out.join(name).join("status.json")).unwrap())
                .unwrap();
        assert_eq!(
            (status.burst, status.remaining, status.done),
            (burst, 0, true)
        );
    }
    // `verify` agrees, and a tampered ledger is caught.
    let verify = |dirs: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_slotmesh"))
            .arg("verify")
            .args(dirs)
            .output()
            .unwrap()
    };
    let dirs = [out.join("A"), out.join("B"), out.join("C")];
    let ok = verify(&[&dirs[0], &dirs[1], &dirs[2]]);
    assert!(ok.status.success());
    let ledger = dirs[1].join("ledger.log");
    let mut bytes = std::fs::read(&ledger).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&ledger, &bytes).unwrap();
    let bad = verify(&[&dirs[0], &dirs[1], &dirs[2]]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("FAIL"));
}

#[test]
fn eight_node_swarm_completes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("swarm");
    let stdout = run_swarm(
        &[
            "--nodes",
            "8",
            "--seed",
            "3",
            "--slot-ms",
            SLOT_MS,
            "--phase-timeout-ms",
            PHASE_TIMEOUT_MS,
            "--timeout-s",
            "120",
        ],
        &out,
    );
    assert!(stdout.contains("OK: 8 ledgers agree"), "{stdout}");
}

#[test]
fn a_daemon_killed_for_many_rounds_restarts_on_its_data_dir_rejoins_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(dir.path(), &[("A", 14), ("B", 14), ("C", 8)], &[]);
    daemons[2].wait_until("reached round 3", |s| s.round >= 3);
    let killed_at = daemons[2].status().map_or(3, |s| s.round);
    daemons[2].kill9();
    // Down for longer than the suspension threshold: the others carry on and suspend it.
    daemons[0].wait_until("suspended C and went on", |s| s.round >= killed_at + 8);
    let peers = vec![daemons[0].listen(), daemons[1].listen()];
    daemons[2] = Daemon::start(dir.path(), "C", 8, &peers, &["--founders", "3"]);
    assert_all_exit_ok(&mut daemons);
    let verdict = verify(&[&daemons[0], &daemons[1], &daemons[2]]);
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&[&daemons[0], &daemons[1], &daemons[2]]);
    for (name, burst) in [("A", 14), ("B", 14), ("C", 8)] {
        assert_eq!(
            member_status(&history, name),
            (MemberStatus::Completed, burst)
        );
    }
    let c = member(&history, "C");
    assert!(c.rejoins >= 1, "C came back by a rejoin: {c:?}");
    // A crash is not an offence: no lie on its return, no contradiction, no equivocation.
    // (A kill between its commit and its reveal forfeits the deposit as a withheld bid: the
    // record cannot tell a crash from a withholder. A pledge can break without any crash
    // when a member supports a partner before it holds every partner's claim: not counted.)
    let offences = c.offences;
    assert_eq!(
        (
            offences.lies,
            offences.contradictions,
            offences.equivocations,
            offences.bad_reveals
        ),
        (0, 0, 0, 0),
        "no offence a crash could cause: {c:?}"
    );
}

/// Founders that chose `--absence-limit 3`: a daemon killed and kept away for longer is
/// removed for good; started again on its data dir it syncs, finds itself removed, says so
/// and exits 1, while the others finish.
#[test]
fn a_daemon_away_past_the_absence_limit_is_removed_and_exits_1_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let limit = ["--absence-limit", "3"];
    let mut daemons = start_swarm(dir.path(), &[("A", 60), ("B", 60), ("C", 8)], &limit);
    daemons[2].wait_until("reached round 3", |s| s.round >= 3);
    daemons[2].kill9();
    daemons[0].wait_until("removed C", |s| {
        s.members
            .iter()
            .any(|m| m.name == "C" && m.status == "Removed")
    });
    let peers = vec![daemons[0].listen(), daemons[1].listen()];
    let mut extra = vec!["--founders", "3"];
    extra.extend(limit);
    daemons[2] = Daemon::start(dir.path(), "C", 8, &peers, &extra);
    let status = daemons[2].wait_exit();
    let log = daemons[2].log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("removed this agent for good"), "{log}");
    assert_all_exit_ok(&mut daemons[..2]);
    let history = longest_history(&[&daemons[0], &daemons[1]]);
    assert_eq!(history.state.absence_limit, 3);
    assert_eq!(member_status(&history, "C").0, MemberStatus::Removed);
}

#[test]
fn survivors_finish_after_a_kill_9_and_a_restarted_daemon_with_a_torn_ledger_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(dir.path(), &[("A", 6), ("B", 6), ("C", 6), ("D", 6)], &[]);
    // Kill C mid-run, while everyone still has work.
    daemons[2].wait_until("reached round 4", |s| s.round >= 4);
    assert!(daemons.iter().all(|d| d.status().unwrap().remaining > 0));
    let killed_at = daemons[2].status().map_or(4, |s| s.round);
    daemons[2].kill9();
    // Once C's missed round has taken its vote away (a majority of the voters is then
    // A, B and D), D is killed too, its ledger tail torn as by a crash mid-write, and
    // restarted at once. D takes no part in the agreement of the round it was killed in
    // (its votes there died with it): A and B are a majority of that round's voters.
    daemons[3].wait_until("went on without C", |s| s.round >= killed_at + 3);
    daemons[3].kill9();
    let ledger = daemons[3].dir.join("ledger.log");
    let bytes = std::fs::read(&ledger).unwrap();
    std::fs::write(&ledger, &bytes[..bytes.len() - 5]).unwrap();
    let peers = vec![daemons[0].listen(), daemons[1].listen()];
    let restarted = Daemon::start(dir.path(), "D", 6, &peers, &["--founders", "4"]);
    daemons[3] = restarted;
    for i in [0, 1, 3] {
        assert_exits_ok(&mut daemons[i]);
    }
    let log = daemons[3].log();
    assert!(log.contains("torn"), "the torn tail is reported:\n{log}");
    let verdict = verify(&[&daemons[0], &daemons[1], &daemons[3]]);
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&[&daemons[0], &daemons[1], &daemons[3]]);
    assert_eq!(member_status(&history, "A"), (MemberStatus::Completed, 6));
    assert_eq!(member_status(&history, "B"), (MemberStatus::Completed, 6));
    assert_eq!(
        member_status(&history, "D"),
        (MemberStatus::Completed, 6),
        "the restarted daemon finished its whole job, nothing lost"
    );
    // C never came back: suspended, its record kept (it could still rejoin).
    assert_eq!(member_status(&history, "C").0, MemberStatus::Suspended);
    // The restarted daemon never equivocated: no offences beyond what it was before.
    let d = member(&history, "D");
    assert_eq!(d.offences.equivocations, 0);
}

#[test]
fn a_late_joiner_syncs_the_ledger_and_takes_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(dir.path(), &[("A", 8), ("B", 8)], &[]);
    daemons[0].wait_until("reached round 3", |s| s.round >= 3);
    let peers = vec![daemons[0].listen()];
    let mut late = Daemon::start(
        dir.path(),
        "L",
        2,
        &peers,
        &["--join", "--log-format", "json"],
    );
    assert_exits_ok(&mut late);
    assert_all_exit_ok(&mut daemons);
    let verdict = verify(&[&daemons[0], &daemons[1], &late]);
    assert!(verdict.ok, "{}", verdict.line);
    let history = History::load(&late.dir).unwrap();
    assert_eq!(
        history.rounds[0].round, 0,
        "the late joiner holds the founding round"
    );
    let late = member(&history, "L");
    assert!(late.joined_round >= 3);
    assert_eq!((late.status, late.used_slots), (MemberStatus::Completed, 2));
}

/// Validly signed messages of no use: an outsider's claims, one of them far ahead.
fn useless_messages(round: u64) -> Vec<Vec<u8>> {
    use slotmesh_proto::{Claim, Identity, Payload, SwarmId};
    let intruder = Identity::from_secret([0x66; 32]);
    let swarm = SwarmId::from_name("test");
    [round, round + 1_000]
        .into_iter()
        .map(|r| {
            intruder
                .sign(swarm, r, Payload::Claim(Claim { remaining: 1 }))
                .bytes()
                .to_vec()
        })
        .collect()
}

/// Garbage, forged signatures and another swarm's messages, as an intruder publishes them.
fn hostile_messages(victim: slotmesh_proto::AgentId, round: u64) -> Vec<Vec<u8>> {
    use slotmesh_proto::codec;
    use slotmesh_proto::Claim;
    use slotmesh_proto::{Envelope, Identity, Message, Payload, SwarmId};
    let intruder = Identity::from_secret([0x66; 32]);
    let swarm = SwarmId::from_name("test");
    // Signed by the intruder, then re-addressed as if the victim had sent it.
    let honest = intruder.sign(swarm, round, Payload::Claim(Claim { remaining: 1 }));
    let mut message: Message = codec::decode(honest.body(), 4096).unwrap();
    message.sender = victim;
    let forged = Envelope {
        body: codec::encode(&message),
        signature: honest.signature(),
    };
    let other_swarm = intruder.sign(
        SwarmId::from_name("elsewhere"),
        round,
        Payload::Claim(Claim { remaining: 1 }),
    );
    vec![
        b"\xff\xfe garbage that decodes to nothing".to_vec(),
        codec::encode(&forged),
        other_swarm.bytes().to_vec(),
        vec![0u8; 3],
    ]
}

#[test]
fn a_foreign_peer_publishing_garbage_and_forgeries_is_rejected_and_the_swarm_completes() {
    use futures::StreamExt;
    use slotmesh_node::{build_swarm, keypair, Topics};
    use slotmesh_proto::{AgentId, Identity, SwarmId};

    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(dir.path(), &[("A", 4), ("B", 4), ("C", 4)], &[]);
    let victim = AgentId(
        hex::decode(daemons[0].status().unwrap().id)
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let addresses: Vec<libp2p::Multiaddr> = daemons
        .iter()
        .map(|d| d.listen().parse().unwrap())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let published = runtime.block_on(async {
        let topics = Topics::new(SwarmId::from_name("test"));
        let key = keypair(&Identity::from_secret([0x66; 32])).unwrap();
        let mut swarm = build_swarm(key, &topics, false, Duration::from_secs(5), None).unwrap();
        for address in addresses {
            swarm.dial(address).unwrap();
        }
        let mut published = 0u32;
        let mut round = 0;
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(30));
        // Publish until the swarm is done (or the bound).
        while started.elapsed() < WAIT && round < 1_000 {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                _ = tick.tick() => {
                    round += 1;
                    // Messages of no use on their own topic first: they are dropped
                    // unverified, not held against the sender; the rest soon cut it off.
                    let claims = topics.for_kind(slotmesh_proto::PayloadKind::Claim).clone();
                    for bytes in useless_messages(round / 10) {
                        if swarm.behaviour_mut().gossipsub.publish(claims.clone(), bytes).is_ok() {
                            published += 1;
                        }
                    }
                    for bytes in hostile_messages(victim, round / 10) {
                        for topic in topics.all() {
                            if swarm.behaviour_mut().gossipsub.publish(topic.clone(), bytes.clone()).is_ok() {
                                published += 1;
                            }
                        }
                    }
                    if daemons.iter().all(|d| d.status().is_some_and(|s| s.done)) {
                        break;
                    }
                }
            }
        }
        published
    });
    assert!(published > 0, "the intruder got its messages out");
    assert_all_exit_ok(&mut daemons);
    let rejected: u64 = daemons
        .iter()
        .map(|d| d.status().unwrap().rejected_messages)
        .sum();
    assert!(rejected > 0, "the daemons rejected the intruder's messages");
    let ignored: u64 = daemons
        .iter()
        .map(|d| d.status().unwrap().ignored_messages)
        .sum();
    assert!(
        ignored > 0,
        "the daemons dropped the useless ones unverified"
    );
    let verdict = verify(&[&daemons[0], &daemons[1], &daemons[2]]);
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&[&daemons[0], &daemons[1], &daemons[2]]);
    assert_eq!(
        history.state.members.len(),
        3,
        "the intruder never became a member"
    );
    assert!(daemons[0].log().contains("rejected a message"));
}

#[test]
fn sigterm_leaves_cleanly_and_the_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(dir.path(), &[("A", 5), ("B", 5), ("C", 5)], &[]);
    daemons[1].wait_until("reached round 3", |s| s.round >= 3);
    let pid = daemons[1].child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_all_exit_ok(&mut daemons);
    let verdict = verify(&[&daemons[0], &daemons[1], &daemons[2]]);
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&[&daemons[0], &daemons[1], &daemons[2]]);
    let (status, used) = member_status(&history, "B");
    assert_eq!(status, MemberStatus::Departed);
    assert!(used < 5);
    assert_eq!(member_status(&history, "C").0, MemberStatus::Completed);
}

#[test]
fn status_reads_a_running_daemon_and_ctrl_c_on_swarm_stops_every_child() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("swarm");
    // Slow slots, so the swarm is still running when it is interrupted.
    let mut swarm = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args([
            "swarm",
            "--nodes",
            "3",
            "--slot-ms",
            "300",
            "--timeout-s",
            "60",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let statuses = loop {
        let statuses: Vec<NodeStatus> = ["a0000", "a0001", "a0002"]
            .iter()
            .filter_map(|n| std::fs::read(out.join(n).join("status.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        if statuses.len() == 3 && statuses.iter().all(|s| s.round >= 2) {
            break statuses;
        }
        assert!(started.elapsed() < WAIT, "the swarm did not get going");
        std::thread::sleep(Duration::from_millis(20));
    };
    // `slotmesh status` shows the running daemon and its members.
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(["status", "--data-dir"])
        .arg(out.join("a0000"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(table.starts_with("a0000 ("), "{table}");
    for name in ["a0000", "a0001", "a0002"] {
        assert!(table.contains(name), "{table}");
    }
    // Ctrl-C (SIGINT) on the swarm command stops every daemon it started.
    assert!(Command::new("kill")
        .args(["-INT", &swarm.id().to_string()])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    while swarm.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < WAIT, "swarm did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !swarm.wait().unwrap().success(),
        "an interrupted swarm is not a success"
    );
    for status in statuses {
        let alive = std::fs::read_to_string(format!("/proc/{}/stat", status.pid))
            .is_ok_and(|stat| !stat.contains(") Z "));
        assert!(
            !alive,
            "daemon {} (pid {}) still runs",
            status.name, status.pid
        );
    }
}

#[test]
fn a_private_swarm_keeps_out_a_node_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("swarm.key");
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(["keygen", "--swarm-key", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(output.status.success());
    let key = key.to_str().unwrap();
    let mut daemons = start_swarm(dir.path(), &[("A", 40), ("B", 40)], &["--swarm-key", key]);
    daemons[0].wait_until("reached round 2", |s| s.round >= 2);
    // An outsider without the key dials A and asks to join, while A runs.
    let peers = vec![daemons[0].listen()];
    let outsider = Daemon::start(dir.path(), "X", 1, &peers, &["--join"]);
    outsider.wait_until("started", |s| !s.listen.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        daemons[0].child.try_wait().unwrap().is_none(),
        "A must still run while the outsider tries (or the test proves nothing)"
    );
    assert_eq!(outsider.status().unwrap().peers, 0);
    assert_all_exit_ok(&mut daemons);
    let status = outsider.status().unwrap();
    assert_eq!(status.peers, 0, "the outsider never got a connection");
    let history = longest_history(&[&daemons[0], &daemons[1]]);
    assert_eq!(history.state.members.len(), 2, "the outsider never joined");
    assert!(
        History::load(&outsider.dir).unwrap().rounds.is_empty(),
        "the outsider synced nothing"
    );
    let verdict = verify(&[&daemons[0], &daemons[1]]);
    assert!(verdict.ok, "{}", verdict.line);
}

/// A second daemon told to listen on the port a running daemon holds exits 1 with one
/// sentence (libp2p's listeners set SO_REUSEPORT, so without the node's own check both
/// would "listen" on it).
#[test]
fn a_second_daemon_on_a_port_a_daemon_holds_exits_1_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    // A daemon told to listen on `address`: its stderr, after it exited 1.
    let refused = |name: &str, address: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
            .args(["daemon", "--name", name, "--burst", "2", "--no-mdns"])
            .args(["--listen", address])
            .arg("--data-dir")
            .arg(dir.path().join(name))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
        stderr
    };
    let first = Daemon::start(dir.path(), "A", 3, &[], &["--founders", "2"]);
    let address = first.listen();
    let address = address.split("/p2p/").next().unwrap().to_string();
    let stderr = refused("B", &address);
    let expected = format!(
        "slotmesh: cannot listen on {address}: the port is in use by another daemon or program\n"
    );
    assert!(stderr.ends_with(&expected), "{stderr}");
    assert!(first.status().is_some());
    // The same when another program holds the port: one sentence, the cause said once.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("/ip4/127.0.0.1/tcp/{}", held.local_addr().unwrap().port());
    let stderr = refused("C", &address);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}

/// `slotmesh status` of a daemon stopped before its swarm was founded says "(stopped)", not
/// "(finished)": its job never ran.
#[test]
fn status_of_a_daemon_that_never_joined_says_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut lone = Daemon::start(dir.path(), "A", 3, &[], &["--founders", "2"]);
    lone.wait_until("status written", |s| !s.done);
    lone.signal(nix::sys::signal::Signal::SIGTERM);
    let _ = lone.wait_exit();
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(["status", "--data-dir"])
        .arg(dir.path().join("A"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("(stopped)") && !stdout.contains("(finished)"),
        "{stdout}"
    );
}

/// Four daemons started as the docs show, each given only the first node's address (a
/// star): the first has the shortest job, finishes and exits, or is killed with -9; the
/// other three, which never had each other's addresses, found them through it (identify and
/// Kademlia), carry on, complete and agree.
#[test]
fn a_star_swarm_carries_on_when_its_centre_leaves_or_dies() {
    for kill_centre in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let extra = ["--founders", "4"];
        let mut centre = Daemon::start(dir.path(), "A", 1, &[], &extra);
        let address = centre.listen();
        let mut others: Vec<Daemon> = ["B", "C", "D"]
            .iter()
            .map(|name| Daemon::start(dir.path(), name, 3, std::slice::from_ref(&address), &extra))
            .collect();
        if kill_centre {
            others[0].wait_until("reached round 2", |s| s.round >= 2);
            centre.kill9();
        } else {
            assert_exits_ok(&mut centre);
        }
        assert_all_exit_ok(&mut others);
        let verdict = verify(&others.iter().collect::<Vec<_>>());
        assert!(verdict.ok, "kill {kill_centre}: {}", verdict.line);
        let history = longest_history(&others.iter().collect::<Vec<_>>());
        for name in ["B", "C", "D"] {
            assert_eq!(
                member_status(&history, name),
                (MemberStatus::Completed, 3),
                "kill {kill_centre}: {name}"
            );
        }
        // Each remembers the others' addresses for a restart.
        let book = std::fs::read_to_string(others[0].dir.join("peers.json")).unwrap();
        assert!(book.matches("/p2p/").count() >= 2, "{book}");
    }
}

/// Founding by known keys, as a user sets it up: `slotmesh keygen` into each data dir
/// prints the ids, every daemon gets them all with `--founder`; one of the three founders
/// never starts, and the other two found the swarm (a majority) and finish. A daemon whose
/// own id is not among them exits 1 and says so.
#[test]
fn two_of_three_known_founders_found_the_swarm_when_the_third_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|name| {
            let data = dir.path().join(name);
            std::fs::create_dir_all(&data).unwrap();
            let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
                .args(["keygen", "--out"])
                .arg(data.join("identity.key"))
                .output()
                .unwrap();
            assert!(output.status.success());
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            let id = stdout
                .lines()
                .find_map(|line| line.strip_prefix("agent id: "))
                .unwrap_or_else(|| panic!("keygen printed no id: {stdout}"));
            id.trim().to_string()
        })
        .collect();
    let founders = ids.join(",");
    let extra = ["--founder", founders.as_str()];
    let mut a = Daemon::start(dir.path(), "A", 2, &[], &extra);
    let address = a.listen();
    let mut b = Daemon::start(dir.path(), "B", 3, std::slice::from_ref(&address), &extra);
    assert_exits_ok(&mut a);
    assert_exits_ok(&mut b);
    let verdict = verify(&[&a, &b]);
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&[&a, &b]);
    assert_eq!(member_status(&history, "A"), (MemberStatus::Completed, 2));
    assert_eq!(member_status(&history, "B"), (MemberStatus::Completed, 3));
    assert_eq!(history.state.founders.len(), 3);
    // A daemon that is not one of the founders it names.
    let mut stranger = Daemon::start(dir.path(), "D", 1, &[], &["--founder", &ids[0]]);
    let status = stranger.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", stranger.log());
    assert!(
        stranger.log().contains("is not among the --founder ids"),
        "{}",
        stranger.log()
    );
}

/// A daemon killed with -9 and started again on its data dir finds the swarm through the
/// members it knew (`peers.json`), even when the only node it was told about is gone too.
/// The centre finishes its job and leaves first: the restarted daemon takes no part in the
/// agreement of the round it was killed in (its votes of that round died with it), so the
/// other two must be a majority of that round's voters without it.
#[test]
fn a_restarted_daemon_finds_the_swarm_when_its_peer_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--founders", "4"];
    let mut centre = Daemon::start(dir.path(), "A", 1, &[], &extra);
    let address = centre.listen();
    let mut others: Vec<Daemon> = [("B", 6), ("C", 6), ("D", 6)]
        .iter()
        .map(|(name, burst)| {
            Daemon::start(
                dir.path(),
                name,
                *burst,
                std::slice::from_ref(&address),
                &extra,
            )
        })
        .collect();
    assert_exits_ok(&mut centre);
    others[0].wait_until("reached round 3", |s| s.round >= 3 && s.peers >= 2);
    others[0].kill9();
    // Started again with only the dead centre's address: the book has C's and D's.
    others[0] = Daemon::start(dir.path(), "B", 6, std::slice::from_ref(&address), &extra);
    assert_all_exit_ok(&mut others);
    let verdict = verify(&others.iter().collect::<Vec<_>>());
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&others.iter().collect::<Vec<_>>());
    assert_eq!(member_status(&history, "B"), (MemberStatus::Completed, 6));
}

/// Voters frozen (SIGSTOP) for many phase timeouts and thawed (SIGCONT) while the swarm
/// runs, overlapping so that two of five are frozen at times: a thawed daemon wakes to stale
/// messages and timers long past. Every ledger verifies and all agree; the daemons never
/// frozen complete their jobs. Their jobs are long enough that the swarm still runs when
/// the last daemon thaws: one thawed after every other member has gone has nobody to learn
/// its fate from (a stranded member: membership that heals is still to come).
#[test]
fn voters_frozen_and_thawed_never_split_the_ledger() {
    use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(
        dir.path(),
        &[("A", 20), ("B", 6), ("C", 6), ("D", 6), ("E", 20)],
        &[],
    );
    daemons[0].wait_until("reached round 2", |s| s.round >= 2);
    let pause = Duration::from_millis(1_500); // five phase timeouts
    let mut frozen = Vec::new();
    for i in [1, 2, 3] {
        daemons[i].signal(SIGSTOP);
        frozen.push(i);
        std::thread::sleep(pause);
        if frozen.len() == 2 {
            daemons[frozen.remove(0)].signal(SIGCONT);
        }
    }
    std::thread::sleep(pause);
    for i in frozen {
        daemons[i].signal(SIGCONT);
    }
    assert_those_exit_ok(&mut daemons, &[0, 4]);
    for i in [1, 2, 3] {
        // A thawed daemon may have been failed for its silence, or be stranded behind once
        // the others left (membership that heals is still to come, issue 18): what this test
        // holds it to is that its ledger agrees. One that has not ended a while after the
        // others is stopped (by its pid) and its ledger checked as it stands.
        let started = std::time::Instant::now();
        while daemons[i].child.try_wait().ok().flatten().is_none()
            && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        if daemons[i].child.try_wait().ok().flatten().is_none() {
            eprintln!(
                "{} stranded after the others left: stopped",
                daemons[i].name
            );
            daemons[i].kill9();
        }
    }
    let verdict = verify(&daemons.iter().collect::<Vec<_>>());
    assert!(verdict.ok, "{}", verdict.line);
    let history = longest_history(&daemons.iter().collect::<Vec<_>>());
    assert_eq!(member_status(&history, "A"), (MemberStatus::Completed, 20));
    assert_eq!(member_status(&history, "E"), (MemberStatus::Completed, 20));
}
