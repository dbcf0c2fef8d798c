//! The `slotmesh` binary as a user runs it: `sim` output and exit codes, `keygen`, and the
//! refusals of bad strategies and LLM settings, and the daemon's refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn slotmesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run slotmesh")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `slotmesh sim ARGS --json`, which must succeed, and returns its last line's report.
fn sim_report(args: &[&str]) -> serde_json::Value {
    let args: Vec<&str> = ["sim"]
        .iter()
        .chain(args)
        .chain(&["--json"])
        .copied()
        .collect();
    let output = slotmesh(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = stdout(&output);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// Same seed, same run: these transcripts cover the engine, the minds, the simulated network
/// and its faults, one host per agent and several agents per host. A change that alters any
/// decision, message or schedule alters them; such a change must say so and record the new
/// ones. Recorded again for protocol version 2 (per-round Paxos): every message id changed
/// with the version byte, and a replica that sees a round decided while still in its turns
/// stops sending them, and the equivocator sends three variants of its commit instead of
/// two; the round counts stayed, and the printed summaries of the preset and of seed 7 are
/// the same as version 1's line for line. Recorded again for protocol version 3 (sealed
/// bids: a seal agreement before the reveals): every message id changed with the version
/// byte, reveals wait for the seal, and a newcomer asks to join in the next round as well
/// (the arrivals of the fault seed); the round counts stayed. Recorded again for protocol
/// version 4 (accountable certificates: proposals name the vote they are bound to, voters
/// vote only for justified proposals and send the justification with their votes): every
/// message id changed with the version byte; the round counts stayed but for the fault
/// seed (61 to 62; its invariant checks still find no violation). Recorded again for
/// version 5 (evidence payloads, the contradiction offence and founders in the state): the
/// same round counts. Recorded again for version 6 (suspension and rejoin, earned voters,
/// pacing by the members that take part): the same round counts but for the fault seed (62
/// to 73: its crashed and cut-off members are suspended, 29 suspensions and 28 rejoins, and
/// the cut-off ones now finish). Recorded again after the membership review (admission in
/// the order of the round's revealed nonces, voters kept through a first miss while those
/// that took part are a majority, the voters' record of the last round they voted in): the
/// same round counts, suspensions and rejoins. Recorded again for version 7 (a liar ranked on
/// the record's expectation, punished in the round its lie is proven, by a severity that grows
/// with its size and the liar's record, and slowly repaired; pledges owed from the round after a
/// coalition forms): the same round counts but for the fault seed (73 to 77). Recorded again
/// for version 8 (slots bought by an understatement, and a restarted job's, added to the
/// member's rank; a serial liar's repair slowed per lie; a proven liar below trust 0.5 ranked
/// on the round's longest claim): the same round counts but for the fault seed (77 to 73).
/// Recorded again for version 9 (a claim in the round a restart counts not ranked; the longest
/// claim a liar is ranked on that of the candidates in good standing; no pledge owed for a
/// liar not believed): every message id changed with the version byte; the same round counts
/// but for the fault seed (73 to 71).
#[test]
fn pinned_seeds_give_the_recorded_transcripts() {
    let pinned: [(&[&str], &str, u64); 4] = [
        (
            &["--preset", "seed", "--seed", "1"],
            "be1c950fe217270ee2d746c76c42d255fc2aa19b4a0518a221d7d3390b8bb1ac",
            15,
        ),
        (
            &["--agents", "30", "--liars", "0.3", "--seed", "7"],
            "28fd519fa18bab4b67b836a5563c8c998aee036c60dc3582a039c0d1af723aa2",
            159,
        ),
        (
            &[
                "--agents",
                "20",
                "--loss",
                "0.1",
                "--crash",
                "2",
                "--partition",
                "6:3",
                "--equivocators",
                "1",
                "--withholders",
                "1",
                "--arrivals",
                "--seed",
                "3",
            ],
            "6933461c4ab53293bfdcbf5f5c97f5a27300086c3ec7014d3b9f3cad2cae11d2",
            71,
        ),
        (
            &["--agents", "12", "--hosts", "3", "--seed", "5"],
            "740b66a1fb74323a34ea94a15da6ab1b15a710c8fba78c66bda5ed9433d0056d",
            41,
        ),
    ];
    for (args, transcript, rounds) in pinned {
        let report = sim_report(args);
        assert_eq!(report["transcript"], transcript, "{args:?}");
        assert_eq!(report["rounds"], rounds, "{args:?}");
        assert_eq!(report["invariant_violations"], 0, "{args:?}");
    }
}

#[test]
fn sim_json_prints_every_measure_as_the_last_line() {
    let report = sim_report(&["--preset", "seed", "--lying-samples", "1"]);
    for field in [
        "turnaround_ratio",
        "lying_gain",
        "trust_auc",
        "agreement",
        "invariant_violations",
        "rounds",
        "slots_per_sec",
        "wall_ms",
        "peak_rss_kib",
        "llm_calls",
        "llm_fallbacks",
    ] {
        assert!(report.get(field).is_some(), "missing {field} in {report}");
    }
    assert_eq!(report["invariant_violations"], 0);
    assert_eq!(report["agreement"], 1.0);
    assert_eq!(report["per_agent"].as_array().unwrap().len(), 3);
}

#[test]
fn sim_summary_is_readable_and_seeded() {
    let first = stdout(&slotmesh(&[
        "sim",
        "--agents",
        "6",
        "--seed",
        "9",
        "--lying-samples",
        "0",
    ]));
    let again = stdout(&slotmesh(&[
        "sim",
        "--agents",
        "6",
        "--seed",
        "9",
        "--lying-samples",
        "0",
    ]));
    assert!(first.contains("completion order:"), "{first}");
    assert!(first.contains("invariant violations 0"), "{first}");
    // The summary ends with the wall time, which varies; everything before it is the same.
    let schedule = |s: &str| {
        s.lines()
            .take_while(|l| !l.starts_with("agreement"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(schedule(&first), schedule(&again));
    // Injected faults are named on their agents' lines: why one failed, who misbehaved.
    let faults = stdout(&slotmesh(&[
        "sim",
        "--agents",
        "9",
        "--crash",
        "1",
        "--equivocators",
        "1",
        "--withholders",
        "1",
        "--partition",
        "6:3",
        "--seed",
        "2",
        "--lying-samples",
        "0",
    ]));
    for label in [
        "(crashed in round ",
        "(equivocator)",
        "(withholder)",
        "(cut off by the partition)",
    ] {
        assert!(faults.contains(label), "{label} in:\n{faults}");
    }
    let truthful = stdout(&slotmesh(&["sim", "--agents", "4", "--liars", "0"]));
    assert!(
        truthful.contains("trust AUC - (no liars, or no truthful agents, to separate)"),
        "{truthful}"
    );
}

/// `--hosts` places the agents on that many replicas, `--max-rounds` stops the run early and
/// says so, and a partition needs three hosts to cut a third of them off.
#[test]
fn sim_hosts_and_max_rounds_as_a_user_gives_them() {
    let report = sim_report(&[
        "--agents",
        "40",
        "--hosts",
        "4",
        "--max-rounds",
        "5",
        "--lying-samples",
        "0",
    ]);
    assert_eq!(report["hosts"], 4);
    assert_eq!(report["rounds"], 5);
    assert_eq!(report["truncated"], true);
    assert_eq!(report["invariant_violations"], 0);
    let summary = stdout(&slotmesh(&["sim", "--agents", "12", "--max-rounds", "3"]));
    assert!(
        summary.contains("truncated: stopped at --max-rounds"),
        "{summary}"
    );
    let output = slotmesh(&[
        "sim",
        "--agents",
        "10",
        "--hosts",
        "2",
        "--partition",
        "3:2",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 3 hosts"));
}

/// `sim --slot-ms` makes hosts execute their slots as daemons do: every won slot runs, and
/// the run takes at least as long as its slots but the last.
#[test]
fn sim_slot_ms_executes_every_won_slot() {
    let report = sim_report(&[
        "--agents",
        "6",
        "--liars",
        "0",
        "--slot-ms",
        "250",
        "--phase-timeout-ms",
        "1000",
    ]);
    let won: u64 = report["per_agent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slots"].as_array().unwrap().len() as u64)
        .sum();
    assert!(won > 0);
    assert_eq!(report["slots_executed"], won);
    assert!(report["simulated_ms"].as_u64().unwrap() >= (won - 1) * 250);
    assert_eq!(report["invariant_violations"], 0);
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let output = slotmesh(&["sim", "--loss", "1.5"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--loss must be in [0, 1)"));
    let output = slotmesh(&["sim", "--partition", "ten"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ROUND:DURATION"));
    let output = slotmesh(&["sim", "--strategy", "oracle"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected heuristic, llm or replay:DIR")
    );
    let output = slotmesh(&["sim", "--strategy", "replay:/nonexistent/run"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no llm-record.jsonl in /nonexistent/run")
    );
    let output = slotmesh(&[
        "swarm",
        "--strategy",
        "llm",
        "--phase-timeout-ms",
        "500",
        "--llm-deadline-ms",
        "900",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("must be above 0 and below the phase timeout"));
}

#[test]
fn flags_are_also_read_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(["sim", "--agents", "4", "--lying-samples", "0", "--json"])
        .env("SLOTMESH_SEED", "77")
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(stdout(&output).lines().last().unwrap()).unwrap();
    assert_eq!(report["seed"], 77);
}

#[test]
fn keygen_writes_a_key_once_and_prints_its_id() {
    let dir = std::env::temp_dir().join(format!("slotmesh-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("identity.key");
    let _ = std::fs::remove_file(&key);
    let path = key.to_str().unwrap();
    let output = slotmesh(&["keygen", "--out", path]);
    assert!(output.status.success());
    let text = stdout(&output);
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("agent id: "))
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let again = slotmesh(&["keygen", "--out", path]);
    assert!(
        !again.status.success(),
        "an existing key must not be overwritten"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run longer than the rounds the simulator holds unencoded (64): `--out` writes every
/// round, the older ones encoded (and signed) as they left the window, and the ledger
/// verifies from genesis.
#[test]
fn sim_out_writes_every_round_of_a_long_run_and_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run = run.to_str().unwrap();
    let report = sim_report(&[
        "--agents",
        "24",
        "--seed",
        "5",
        "--lying-samples",
        "0",
        "--out",
        run,
    ]);
    let rounds = report["rounds"].as_u64().unwrap();
    assert!(
        rounds > 64,
        "only {rounds} rounds: the test needs a longer run"
    );
    let verdict = slotmesh(&["verify", run]);
    let line = stdout(&verdict);
    assert!(verdict.status.success(), "{line}");
    // Every final round is in the ledger, each with its certificate verified.
    assert!(
        line.contains(&format!(
            "OK: the ledger verifies: {rounds} final rounds; {rounds} certificates verified"
        )),
        "{line} for {rounds} rounds"
    );
    // One replica speaking for all three agents of the seed preset: each agent signs and
    // votes for itself, and the records it certifies verify from genesis like any other.
    let alone = dir.path().join("alone");
    let alone = alone.to_str().unwrap();
    let report = sim_report(&["--preset", "seed", "--hosts", "1", "--out", alone]);
    assert_eq!(report["invariant_violations"], 0);
    let verdict = slotmesh(&["verify", alone]);
    assert!(verdict.status.success(), "{}", stdout(&verdict));
}

/// A ledger that cannot be written is an error the user sees, not a silent loss.
#[test]
fn sim_out_that_cannot_be_written_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ledger.log")).unwrap();
    let output = slotmesh(&[
        "sim",
        "--preset",
        "seed",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot write") && stderr.contains("ledger.log"),
        "{stderr}"
    );
}

#[test]
fn report_of_a_sim_run_and_of_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run = run.to_str().unwrap();
    assert!(slotmesh(&["sim", "--preset", "seed", "--out", run])
        .status
        .success());
    assert!(slotmesh(&["verify", run]).status.success());
    let out = dir.path().join("report");
    let output = slotmesh(&["report", run, "--out", out.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    let sim = stdout(&slotmesh(&["sim", "--preset", "seed"]));
    // The sim's own summary and the report of its ledger give the same schedule.
    let schedule = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("schedule"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(schedule(&summary), schedule(&sim));
    let output = slotmesh(&[
        "report",
        dir.path().join("empty").to_str().unwrap(),
        "--out",
        "x",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no ledger.log found"));
}

#[test]
fn daemon_refuses_bad_flags_and_unusable_data_dirs_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();
    let base = [
        "daemon",
        "--name",
        "x",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        slotmesh(&args)
    };
    let output = run(&["--burst", "0", "--data-dir", data]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--burst must be at least 1"));
    let output = run(&["--burst", "2", "--bias", "3", "--data-dir", data]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bias must be in [0, 1]"));
    // A data dir that is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let output = run(&["--burst", "2", "--data-dir", file.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot create data dir"));
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = slotmesh(&[
        "daemon",
        "--name",
        "x",
        "--burst",
        "2",
        "--no-mdns",
        "--data-dir",
        data,
        "--listen",
        &format!("/ip4/127.0.0.1/tcp/{port}"),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the port is in use"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A ledger that is not a ledger.
    std::fs::write(dir.path().join("d/ledger.log"), b"garbage!").unwrap();
    let output = run(&["--burst", "2", "--data-dir", data]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a slotmesh ledger"));
}

/// A ledger written by protocol version 8 (a restarted member's lost claim checked, a liar's
/// rank set by any claim of the round) is refused with a sentence that says so, by `verify`
/// and by the daemon alike.
#[test]
fn a_version_8_ledger_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("old");
    std::fs::create_dir_all(&data).unwrap();
    let mut bytes = b"SLMLEDG8".to_vec();
    bytes.extend_from_slice(&[7u8; 32]);
    std::fs::write(data.join("ledger.log"), bytes).unwrap();
    let output = slotmesh(&["verify", data.to_str().unwrap()]);
    assert!(!output.status.success());
    let said = format!(
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("protocol version 8") && said.contains("version 9"),
        "{said}"
    );
    let output = slotmesh(&[
        "daemon",
        "--name",
        "old",
        "--burst",
        "2",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("protocol version 8").count(),
        1,
        "said once: {stderr}"
    );
}

/// `sim --nemesis` as a user types it: every nemesis acts, and the run still agrees.
#[test]
fn sim_nemeses_act_and_the_run_agrees() {
    let report = sim_report(&[
        "--agents",
        "12",
        "--seed",
        "4",
        "--nemesis",
        "one-way,slow-votes,pause",
        "--lying-samples",
        "0",
    ]);
    assert_eq!(report["invariant_violations"], 0);
    assert_eq!(report["agreement"], 1.0);
    let network = &report["network"];
    assert!(network["one_way"].as_u64().unwrap() > 0, "{network}");
    assert!(network["delayed_votes"].as_u64().unwrap() > 0, "{network}");
    let all = sim_report(&["--agents", "12", "--seed", "4", "--nemesis", "all"]);
    assert_eq!(all["invariant_violations"], 0);
    let output = slotmesh(&["sim", "--nemesis", "gremlins"]);
    assert!(!output.status.success());
}

#[test]
fn sim_mix_spreads_strategies_and_reports_each() {
    let report = sim_report(&[
        "--agents",
        "10",
        "--mix",
        "heuristic:60,underclaim:20,late-commit:20",
        "--lying-samples",
        "0",
    ]);
    let agents = report["per_agent"].as_array().unwrap();
    let playing = |name: &str| agents.iter().filter(|a| a["strategy"] == name).count();
    assert_eq!(
        (
            playing("heuristic"),
            playing("underclaim"),
            playing("late-commit")
        ),
        (6, 2, 2),
        "{report}"
    );
    for (name, agents) in [("heuristic", 6), ("underclaim", 2), ("late-commit", 2)] {
        assert_eq!(
            report["by_strategy"][name]["agents"], agents,
            "{}",
            report["by_strategy"]
        );
    }
    assert_eq!(report["invariant_violations"], 0);
    let summary = stdout(&slotmesh(&[
        "sim",
        "--agents",
        "10",
        "--mix",
        "heuristic:60,underclaim:20,late-commit:20",
        "--lying-samples",
        "0",
    ]));
    assert!(
        summary.contains("underclaim") && summary.contains("late-commit"),
        "{summary}"
    );
    for (mix, says) in [
        ("heuristic:x", "is not NAME:WEIGHT"),
        ("oracle:10", "unknown strategy `oracle`"),
        ("heuristic:0", "needs a weight above 0"),
        ("underclaim:5,underclaim:5", "named twice"),
    ] {
        let output = slotmesh(&["sim", "--mix", mix]);
        assert_eq!(output.status.code(), Some(2), "--mix {mix}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "--mix {mix}: {stderr}");
    }
}
