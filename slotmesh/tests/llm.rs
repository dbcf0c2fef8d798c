//! The `llm` strategy against an OpenAI-compatible server the test starts on 127.0.0.1
//! (docs/TESTING.md): scripted good answers change the agents' decisions; a server that fails
//! (HTTP 500, too slow, not JSON, out of bounds) never stops the swarm, and every fallback
//! is counted; another agent's injection attempt reaches prompts only as quoted, cut data;
//! a recorded run replays to the same decisions with the server gone; a server that refuses
//! `json_schema` is adapted to; a dead endpoint opens the breaker (a refused connection is
//! never retried, a refused key stops the asking) and a server that recovers closes it; each
//! question's schema carries its real bounds; `swarm` stops a swarm that makes no progress
//! and not one that is slow.

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
        &swarm_args(strategy, url, phase_timeout_ms, deadline_ms),
        out,
    )
}

fn swarm_args<'a>(
    strategy: &'a str,
    url: &'a str,
    phase_timeout_ms: &'a str,
    deadline_ms: &'a str,
) -> Vec<&'a str> {
    vec![
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
    ]
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

/// The decisions not asked because the breaker was open, from a swarm's summary.
fn breaker_open(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LLM calls "))
        .unwrap_or_else(|| panic!("no LLM line in:\n{stdout}"));
    let (_, rest) = line.split_once("breaker open ").unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
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
        for line in context["messages_this_round"]
            .as_array()
            .into_iter()
            .flatten()
        {
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

    // Each question's schema carries its real bounds: the claim is relative to the truth,
    // the partners are those that exist, the bid is at most the balance.
    let mut kinds = std::collections::BTreeSet::new();
    for request in &requests {
        let (kind, context) = fake_llm::parse_prompt(request);
        let schema = &request["response_format"]["json_schema"]["schema"];
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(properties.keys().next().unwrap(), "reasoning", "{schema}");
        let me = context["you"]["name"].as_str().unwrap();
        match kind.as_str() {
            "claim" => {
                let truth = context["you"]["true_remaining_slots"].as_u64().unwrap();
                assert_eq!(properties["understate_by"]["maximum"], truth - 1);
            }
            "negotiate" => {
                for partner in properties["propose_to"]["items"]["enum"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let partner = partner.as_str().unwrap();
                    assert!(NAMES.contains(&partner) && partner != me, "{schema}");
                }
            }
            "bid" => {
                let credits = context["you"]["credits"].as_u64().unwrap();
                assert_eq!(properties["bid"]["maximum"], credits, "{schema}");
            }
            _ => {}
        }
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
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
        if behaviour != Behaviour::Garbage {
            // A failing endpoint opens its breaker: most decisions are not asked at all.
            let requests = server.requests().len() as u64;
            assert!(breaker_open(&stdout) > 0, "{what}: {stdout}");
            assert!(
                requests * 2 < calls,
                "{what}: {requests} requests for {calls} decisions"
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
    // The second question in flight (the concurrency is 2) may be refused too: at most 2
    // refused requests means no later question asked for json_schema (each request is one:
    // async-openai's own retries are left out).
    assert!((1..=2).contains(&refused), "{formats:?}");
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

#[test]
fn a_refused_connection_is_never_retried_and_a_refused_key_stops_the_asking() {
    // Nothing listens: the start-up check says so on stderr, every failure names the
    // refusal, and each was one request.
    let out = tempfile::tempdir().unwrap();
    let url = closed_url();
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .arg("swarm")
        .args(swarm_args("llm", &url, "800", "300"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("warning: LLM endpoint:") && stderr.contains("is unreachable"),
        "{stderr}"
    );
    let (calls, fallbacks, _) = counts(&stdout);
    assert_eq!(fallbacks, calls, "{stdout}");
    assert!(breaker_open(&stdout) > 0, "{stdout}");
    let entries = records(&out.path().join("A"));
    let mut failed = 0;
    for entry in &entries {
        if let slotmesh_agent::model::Reply::Failed {
            reason, attempts, ..
        } = &entry.reply
        {
            assert_eq!(*attempts, 1, "{entry:?}");
            assert!(
                reason.to_lowercase().contains("connection refused"),
                "the root cause: {reason}"
            );
            failed += 1;
        }
    }
    assert!(failed >= 1, "{entries:?}");

    // A refused key: one request per daemon, then nothing more is asked.
    let server = FakeLlm::start(Behaviour::Http401);
    let out = tempfile::tempdir().unwrap();
    let stdout = swarm("llm", &server.url, "800", "300", out.path());
    let (calls, fallbacks, _) = counts(&stdout);
    assert_eq!(fallbacks, calls, "{stdout}");
    assert_eq!(server.requests().len(), NAMES.len(), "{stdout}");
    assert_eq!(
        breaker_open(&stdout),
        calls - NAMES.len() as u64,
        "{stdout}"
    );
}

#[test]
fn the_breaker_closes_when_the_server_recovers() {
    let server = std::sync::Arc::new(FakeLlm::start(Behaviour::Http500));
    let out = tempfile::tempdir().unwrap();
    // The server recovers once every daemon has failed often enough to open its breaker.
    let recovering = {
        let server = server.clone();
        std::thread::spawn(move || {
            for _ in 0..6000 {
                let asked_by = |name: &str| {
                    server
                        .requests()
                        .iter()
                        .filter(|r| fake_llm::parse_prompt(r).1["you"]["name"] == name)
                        .count()
                };
                if NAMES.iter().all(|name| asked_by(name) > 3) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            server.set(Behaviour::Good);
        })
    };
    let mut args = swarm_args("llm", &server.url, "800", "300");
    args.extend(["--llm-cool-down-ms", "40"]);
    let stdout = common::run_swarm(&args, out.path());
    recovering.join().unwrap();
    assert!(breaker_open(&stdout) > 0, "{stdout}");
    for name in NAMES {
        let entries = records(&out.path().join(name));
        let last_skipped = entries
            .iter()
            .rposition(|e| matches!(e.reply, slotmesh_agent::model::Reply::Skipped { .. }))
            .unwrap_or_else(|| panic!("{name}: the breaker never held a question back"));
        // After the breaker closed, the model decided again.
        assert!(
            entries[last_skipped..]
                .iter()
                .any(|e| e.outcome == Outcome::Model),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn swarm_stops_a_swarm_without_progress_but_not_a_slow_one() {
    // A model that answers in 250 ms within a 600 ms deadline: slow rounds, but each becomes
    // final well within the 8 s without progress allowed.
    let server = FakeLlm::start(Behaviour::Slow(Duration::from_millis(250)));
    let out = tempfile::tempdir().unwrap();
    let mut args = swarm_args("llm", &server.url, "800", "600");
    args.extend(["--stall-s", "8"]);
    let stdout = common::run_swarm(&args, out.path());
    let (calls, fallbacks, _) = counts(&stdout);
    assert!(calls >= 4 * 13 && fallbacks * 4 < calls, "{stdout}");

    // A model that never answers within a phase timeout of a minute: no round becomes final,
    // and `swarm` gives up after 3 s with a message that says so.
    let server = FakeLlm::start(Behaviour::Slow(Duration::from_secs(3600)));
    let out = tempfile::tempdir().unwrap();
    let mut args = swarm_args("llm", &server.url, "60000", "59000");
    args.extend(["--stall-s", "3"]);
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .arg("swarm")
        .args(&args)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no progress: no round became final for 3 s"),
        "{stderr}"
    );
    assert!(stderr.contains("--stall-s"), "{stderr}");
}
