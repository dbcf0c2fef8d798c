#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario files as a user gives them: `sim --scenario` runs what the file says (the shipped
//! seed file is the seed preset), a bad file exits 1 naming its line, and `swarm --scenario`
//! starts real daemons on 127.0.0.1 with an adversary among them, whose lies the shared
//! record punishes.

mod common;

use common::*;
use slotmesh::history::History;
use slotmesh_proto::MemberStatus;
use std::process::{Command, Output};

fn slotmesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn transcript(args: &[&str]) -> String {
    let output = slotmesh(args);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    report["transcript"].as_str().unwrap().to_string()
}

#[test]
fn the_shipped_seed_scenario_runs_the_seed_preset() {
    let common = ["--seed", "4", "--lying-samples", "0", "--json"];
    let preset: Vec<&str> = ["sim", "--preset", "seed"]
        .iter()
        .chain(&common)
        .copied()
        .collect();
    let file: Vec<&str> = ["sim", "--scenario", "../scenarios/seed.toml"]
        .iter()
        .chain(&common)
        .copied()
        .collect();
    assert_eq!(transcript(&preset), transcript(&file));
}

#[test]
fn a_bad_scenario_file_exits_1_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[agent]]\nname = \"A\"\nburst = 2\nstrategy = \"liar\"\n",
            "bad.toml:1: unknown strategy `liar`",
        ),
        (
            "[[agent]]\nname = \"A\"\nburst = 2\n\n[[group]]\ncount = 2\nburst = [3, 1]\n",
            "bad.toml:5: burst must be at least 1",
        ),
        (
            "[[agent]]\nname = \"A\"\nburst = 2\n\n[[agent]]\nname = \"B\"\nbias = 0.5\n",
            "bad.toml:5: missing field `burst`",
        ),
        ("[[agent]]\nname = \"A\"\nburst = \"two\"\n", "bad.toml:3:"),
    ];
    for (text, said) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for command in ["sim", "swarm"] {
            let output = slotmesh(&[command, "--scenario", path.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{command}: {stderr}");
            let shown = format!("{}: {said}", dir.path().display());
            let first = stderr.lines().next().unwrap_or("");
            assert!(
                first.starts_with(&format!("slotmesh: {}/", dir.path().display()))
                    && first.contains(said),
                "{command}: {first} (wanted {shown})"
            );
        }
    }
}

/// Two heuristic daemons and an under-claimer (`--adversary underclaim`, started by `swarm`
/// from the file): every job completes, the ledgers agree, and the record caught the
/// under-claimer's lies and took its trust below the honest members'.
#[test]
fn a_swarm_from_a_scenario_file_plays_its_adversary_and_the_record_punishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.toml");
    std::fs::write(
        &file,
        "[[agent]]\nname = \"A\"\nburst = 3\n\n[[agent]]\nname = \"B\"\nburst = 4\n\n\
         [[agent]]\nname = \"X\"\nburst = 4\nstrategy = \"underclaim\"\n",
    )
    .unwrap();
    let out = dir.path().join("swarm");
    let stdout = run_swarm(
        &[
            "--scenario",
            file.to_str().unwrap(),
            "--slot-ms",
            SLOT_MS,
            "--timeout-s",
            "90",
        ],
        &out,
    );
    assert!(stdout.contains("OK: 3 ledgers agree"), "{stdout}");
    // The summary gives each strategy's figures.
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row: {stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("heuristic")[1..3], ["2", "2"], "{stdout}");
    assert_eq!(row("underclaim")[1..3], ["1", "1"], "{stdout}");
    let history = ["A", "B", "X"]
        .iter()
        .map(|n| History::load(&out.join(n)).unwrap())
        .max_by_key(|h| h.rounds.len())
        .unwrap();
    for (name, burst) in [("A", 3), ("B", 4), ("X", 4)] {
        assert_eq!(
            member_status(&history, name),
            (MemberStatus::Completed, burst)
        );
    }
    let x = member(&history, "X");
    assert!(x.offences.lies >= 1, "{x:?}");
    for honest in ["A", "B"] {
        let m = member(&history, honest);
        assert_eq!(m.offences.lies, 0, "{honest}: {m:?}");
        assert!(
            x.trust < m.trust,
            "X {} against {honest} {}",
            x.trust,
            m.trust
        );
    }
}
