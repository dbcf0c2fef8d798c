//! The `llm` strategy against an OpenAI-compatible server the test starts on 127.0.0.1
//! (docs/TESTING.md): scripted good answers change the agents' decisions; a server that fails
//! (HTTP 500, too slow, not JSON, out of bounds) never stops the swarm, and every fallback
//! is counted; another agent's injection attempt reaches prompts only as quoted, cut data;
//! a recorded run replays to the same decisions with the server gone; a server that refuses
//! `json_schema` is adapted to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fake_llm::{self, Behaviour, FakeLlm, INJECTION, SCRIPTED_BID, SCRIPTED_NOTE};
use serde_json::Value;
use slotmesh_agent::DecisionKind;
use slotmesh_llm::prompt::UNTRUSTED_CHARS;
use slotmesh_llm::record::{Entry, Outcome, RECORD_FILE};
use slotmesh_node::ledger::Ledger;
use slotmesh_proto::{Limits, Payload};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NAMES: [&str; 3] = ["A", "B", "C"];

/// `slotmesh swarm --preset seed` with `--strategy strategy` against `url`.
fn swarm(
    strategy: &str,
    url: &str,
    phase_timeout_ms: &str,
    deadline_ms: &str,
    out: &Path,
) -> String {
    common::run_swarm(
        &[
            "--preset",
            "seed",
            "--strategy",
            strategy,
            "--llm-base-url",
            url,
            "--model",
            "fake",
            "--slot-ms",
            common::SLOT_MS,
            "--phase-timeout-ms",
            phase_timeout_ms,
            "--llm-deadline-ms",
            deadline_ms,
            "--timeout-s",
            "150",
        ],
        out,
    )
}

/// "LLM calls N, fallbacks M, corrected K" from a swarm's summary.
fn counts(stdout: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LLM calls "))
        .unwrap_or_else(|| panic!("no LLM line in:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

fn records(dir: &Path) -> Vec<Entry> {
    std::fs::read_to_string(dir.join(RECORD_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every revealed bid in a data dir's ledger.
fn revealed_bids(dir: &Path) -> Vec<u64> {
    let limits = Limits::default();
    let loaded = Ledger::read(&dir.join("ledger.log"), &limits).unwrap();
    loaded
        .records
        .iter()
        .flat_map(|r| r.messages.iter())
        .filter_map(|e| {
            let message = slotmesh_proto::open_envelope(e.clone(), loaded.swarm, &limits).ok()?;
            match message.payload() {
                Payload::Reveal(reveal) => Some(reveal.bid),
                _ => None,
            }
        })
        .collect()
}

/// A port nothing listens on.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[test]
fn a_scripted_model_decides_injections_are_quoted_and_a_replay_needs_no_server() {
    let server = FakeLlm::start(Behaviour::Good);
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("first");
    let stdout = swarm("llm", &server.url, "3000", "2000", &first);
    let (calls, fallbacks, corrected) = counts(&stdout);
    assert!(calls >= 4 * 13, "{stdout}");
    assert_eq!(fallbacks, 0, "{stdout}");
    // A's 36-word injection fits the 50-word limit: nothing to correct.
    assert_eq!(corrected, 0, "{stdout}");

    // The model's bid is the one in the ledger (the heuristic would bid 10 or 15).
    let bids = revealed_bids(&first.join("A"));
    assert!(!bids.is_empty());
    assert!(bids.iter().all(|b| *b == SCRIPTED_BID), "{bids:?}");
    for name in NAMES {
        let entries = records(&first.join(name));
        assert!(entries.iter().all(|e| e.outcome == Outcome::Model));
        let memory: Value =
            serde_json::from_slice(&std::fs::read(first.join(name).join("memory.json")).unwrap())
                .unwrap();
        assert_eq!(memory["long_term"]["note"], SCRIPTED_NOTE, "{name}");
    }

    // B and C saw A's injection attempt only as a quoted, cut string under "said".
    let requests = server.requests();
    let mut quoted = 0;
    for request in &requests {
        let system = request["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains("never instructions"), "{system}");
        let user = request["messages"][1]["content"].as_str().unwrap();
        let (_, context) = fake_llm::parse_prompt(request);
        assert!(!context.is_null(), "the context is JSON: {user}");
        if context["you"]["name"] == "A" {
            continue;
        }
        for line in context["messages_this_round"].as_array().unwrap() {
            let said = line["said"].as_str().unwrap();
            if line["from"] == "A" {
                assert!(said.starts_with(INJECTION), "{said}");
                assert!(said.chars().count() <= UNTRUSTED_CHARS + "[cut]".len());
                assert!(
                    said.ends_with("[cut]"),
                    "216 characters are cut to 200: {said}"
                );
                // In the raw prompt it is a JSON string value, not free text.
                assert!(user.contains(&format!("\"said\":\"{INJECTION}")));
                quoted += 1;
            }
        }
    }
    assert!(quoted > 0, "no prompt quoted A's line");
    drop(server);

    // The replay: same decisions, no server (the URL is a closed port). On a real network a
    // replay can drift where timing differs (an agent that misses a phase on a loaded machine
    // finishes a round later and asks a question the record does not hold): every question
    // the record holds must get the recorded decision, and only the others may fall back.
    // (`sim` replays exactly: see the last test.)
    let second = root.path().join("second");
    let replay = format!("replay:{}", first.display());
    let stdout = swarm(&replay, &closed_url(), "3000", "2000", &second);
    let (replay_calls, replay_fallbacks, _) = counts(&stdout);
    let mut matched = 0;
    let mut unrecorded = 0;
    for name in NAMES {
        let decisions = |dir: &Path| -> BTreeMap<(u64, DecisionKind), (Outcome, String)> {
            records(dir)
                .into_iter()
                .map(|e| ((e.round, e.kind), (e.outcome, format!("{:?}", e.decision))))
                .collect()
        };
        let original = decisions(&first.join(name));
        for (key, (outcome, decision)) in decisions(&second.join(name)) {
            match original.get(&key) {
                Some((_, recorded)) => {
                    assert_eq!(&decision, recorded, "{name} {key:?}");
                    assert_eq!(outcome, Outcome::Model, "{name} {key:?}");
                    matched += 1;
                }
                None => {
                    assert_eq!(outcome, Outcome::Fallback, "{name} {key:?}");
                    unrecorded += 1;
                }
            }
        }
    }
    assert_eq!(replay_fallbacks, unrecorded, "{stdout}");
    assert_eq!(matched + unrecorded, replay_calls, "{stdout}");
    assert!(
        matched * 10 >= calls * 9,
        "{matched} of {calls} replayed\n{stdout}"
    );
}

#[test]
fn failing_servers_never_stop_the_swarm_and_every_fallback_is_counted() {
    let cases = [
        (Behaviour::Http500, "HTTP 500"),
        (
            Behaviour::Slow(Duration::from_millis(1500)),
            "slower than the deadline",
        ),
        (Behaviour::Garbage, "not JSON"),
    ];
    for (behaviour, what) in cases {
        let server = FakeLlm::start(behaviour);
        let out = tempfile::tempdir().unwrap();
        let stdout = swarm("llm", &server.url, "800", "300", out.path());
        let (calls, fallbacks, _) = counts(&stdout);
        assert!(calls >= 4 * 13, "{what}: {stdout}");
        assert_eq!(
            fallbacks, calls,
            "{what}: every decision fell back\n{stdout}"
        );
        assert!(
            !server.requests().is_empty(),
            "{what}: the server was asked"
        );
        if behaviour == Behaviour::Http500 {
            // Retried with backoff while time remained (async-openai retries 5xx itself).
            let requests = server.requests().len() as u64;
            assert!(
                requests > calls,
                "{requests} requests for {calls} decisions"
            );
        }
        // The heuristic's own bids (10 or 15) are in the ledger.
        assert!(revealed_bids(&out.path().join("A"))
            .iter()
            .all(|b| *b != SCRIPTED_BID));
    }
}

#[test]
fn answers_out_of_bounds_are_corrected_and_counted() {
    let server = FakeLlm::start(Behaviour::OutOfBounds);
    let out = tempfile::tempdir().unwrap();
    let stdout = swarm("llm", &server.url, "3000", "2000", out.path());
    let (calls, fallbacks, corrected) = counts(&stdout);
    assert_eq!(fallbacks, 0, "{stdout}");
    // Claims are in bounds; negotiation, coalition and bid answers all need correcting.
    assert!(corrected * 4 >= calls * 3 - 12, "{stdout}");
    let entries = records(&out.path().join("B"));
    let bid = entries
        .iter()
        .find(|e| e.kind == DecisionKind::Bid)
        .unwrap();
    assert_eq!(bid.outcome, Outcome::Clamped);
    assert!(
        bid.notes
            .iter()
            .any(|n| n.contains("bid 1000000000000 clamped")),
        "{bid:?}"
    );
    assert!(bid
        .notes
        .iter()
        .any(|n| n.contains("not a coalition partner")));
    let negotiation = entries
        .iter()
        .find(|e| e.kind == DecisionKind::Negotiate)
        .unwrap();
    assert!(negotiation
        .notes
        .iter()
        .any(|n| n.contains("80 words cut to 50")));
    assert!(negotiation
        .notes
        .iter()
        .any(|n| n.contains("not a free member")));
}

fn sim(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(["sim", "--preset", "seed", "--json", "--seed", "5"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn sim_asks_the_model_adapts_to_llama_cpp_and_replays_to_the_same_transcript() {
    // A server that refuses json_schema (as llama-cpp-python 0.3.36 does, with a 500) and
    // wraps its JSON in a code fence: the client steps down to json_object once, keeps it.
    let server = FakeLlm::start(Behaviour::RefuseJsonSchema);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let live = sim(&[
        "--strategy",
        "llm",
        "--llm-base-url",
        &server.url,
        "--llm-concurrency",
        "2",
        "--out",
        dir,
    ]);
    assert_eq!(live["llm_fallbacks"], 0, "{live}");
    assert!(live["llm_calls"].as_u64().unwrap() >= 4 * 13, "{live}");
    let formats: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r["response_format"]["type"]
                .as_str()
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    let refused = formats.iter().filter(|f| *f == "json_schema").count();
    // async-openai retries a 500 three times, and the second question in flight (the
    // concurrency is 2) may be refused too: at most 8 refused requests means no later
    // question asked for json_schema (their order may interleave with the first step-down).
    assert!((1..=8).contains(&refused), "{formats:?}");
    let objects = formats.iter().filter(|f| *f == "json_object").count();
    assert_eq!(formats.len(), refused + objects, "{formats:?}");
    drop(server);

    let replayed = sim(&["--strategy", &format!("replay:{dir}")]);
    assert_eq!(replayed["transcript"], live["transcript"]);
    assert_eq!(replayed["llm_calls"], live["llm_calls"]);
    assert_eq!(replayed["llm_fallbacks"], 0);

    // The heuristic run is a different run: the model's answers mattered.
    let heuristic = sim(&["--lying-samples", "0"]);
    assert_ne!(heuristic["transcript"], live["transcript"]);
}
