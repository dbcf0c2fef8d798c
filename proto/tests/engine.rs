//! The round engine end to end: several replicas in one process over a simulated network
//! (fake clock, per-message delays, crashes), driven through the public API the daemon uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::agent;
use slotmesh_proto::LeaveReason;
use slotmesh_proto::{
    Digest, Engine, EngineConfig, FinalRound, LedgerState, Limits, MemberStatus, Output, Phase,
    SignedMessage, SwarmId,
};
use std::collections::BTreeMap;

struct Node {
    engine: Engine,
    remaining: u32,
    bid: u64,
    crashed: bool,
    done: bool,
    finals: BTreeMap<u64, FinalRound>,
    wins: Vec<u64>,
}

struct Net {
    nodes: Vec<Node>,
    now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    delay: Box<dyn FnMut(usize, usize) -> u64>,
    transcript: Vec<u8>,
}

enum Event {
    Deliver(usize, SignedMessage),
    Timer(usize, u64, Phase),
}

fn config(name: &str, expected: usize) -> EngineConfig {
    EngineConfig {
        swarm: SwarmId::from_name("test"),
        name: name.into(),
        limits: Limits::default(),
        phase_timeout_ms: 100,
        founder: true,
        min_members: expected,
        expected_members: expected,
    }
}

impl Net {
    fn new(bursts: &[u32], delay: Box<dyn FnMut(usize, usize) -> u64>) -> Net {
        let nodes = bursts
            .iter()
            .enumerate()
            .map(|(i, burst)| {
                let identity = agent(i as u8);
                let engine = Engine::new(
                    identity,
                    config(&format!("n{i}"), bursts.len()),
                    LedgerState::genesis(SwarmId::from_name("test")),
                    0,
                );
                Node {
                    engine,
                    remaining: *burst,
                    bid: 10,
                    crashed: false,
                    done: false,
                    finals: BTreeMap::new(),
                    wins: vec![],
                }
            })
            .collect();
        let mut net = Net {
            nodes,
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            delay,
            transcript: vec![],
        };
        for i in 0..net.nodes.len() {
            net.drain(i);
        }
        net
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn drain(&mut self, i: usize) {
        while let Some(output) = self.nodes[i].engine.poll_output() {
            let now = self.now;
            match output {
                Output::Send(message) => {
                    self.transcript.extend_from_slice(&message.id().0);
                    for j in 0..self.nodes.len() {
                        if j != i {
                            let at = now + (self.delay)(i, j);
                            self.push(at, Event::Deliver(j, message.clone()));
                        }
                    }
                }
                Output::ScheduleTimeout { round, phase, at } => {
                    self.push(at, Event::Timer(i, round, phase))
                }
                Output::Decide { phase, .. } => self.decide(i, phase),
                Output::Final(finalized) => {
                    let node = &mut self.nodes[i];
                    let me = node.engine.id();
                    let round = finalized.certified.round();
                    self.transcript
                        .extend_from_slice(&finalized.certified.digest().0);
                    if finalized.outcome.winner == Some(me) {
                        node.remaining = node.remaining.saturating_sub(1);
                        node.wins.push(round);
                    }
                    if finalized.outcome.left.iter().any(|(id, _)| *id == me) {
                        node.done = true;
                    }
                    node.finals.insert(round, finalized.certified.record());
                }
                Output::FetchRound { round } => {
                    let record = self
                        .nodes
                        .iter()
                        .find_map(|n| n.finals.get(&round).cloned());
                    if let Some(record) = record {
                        let _ = self.nodes[i].engine.handle_final_round(&record, now);
                    }
                }
                Output::FetchMessages { round, peer } => {
                    let held: Vec<SignedMessage> = self
                        .nodes
                        .iter()
                        .find(|n| n.engine.id() == peer && !n.crashed)
                        .and_then(|n| n.engine.messages(round))
                        .map(|m| m.iter().cloned().collect())
                        .unwrap_or_default();
                    for message in held {
                        self.push(now + 1, Event::Deliver(i, message));
                    }
                }
                Output::Resolved { .. } => {}
            }
        }
    }

    fn decide(&mut self, i: usize, phase: Phase) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let round = node.engine.round();
        let me = node.engine.id();
        let result = match phase {
            Phase::Announce if node.remaining == 0 => {
                node.engine.leave(me, LeaveReason::Completed, now)
            }
            Phase::Announce => node.engine.claim(me, node.remaining, now),
            Phase::Negotiate => node.engine.negotiate(me, vec![], None, now),
            Phase::Coalition => node.engine.accept(me, vec![], now),
            Phase::Commit => {
                let nonce = Digest::of(b"nonce", &[&[i as u8], &round.to_le_bytes()]).0;
                node.engine.bid(me, node.bid, None, node.bid, nonce, now)
            }
            _ => Ok(()),
        };
        assert_eq!(result, Ok(()), "node {i} round {round} phase {phase:?}");
    }

    /// Runs until every live node is done, or `max_events` events.
    fn run(&mut self, max_events: usize) {
        for _ in 0..max_events {
            if self.nodes.iter().all(|n| n.done || n.crashed) {
                return;
            }
            let Some(((at, _), event)) = self.events.pop_first() else {
                return;
            };
            self.now = self.now.max(at);
            let i = match event {
                Event::Deliver(j, message) => {
                    if self.nodes[j].crashed || self.nodes[j].done {
                        continue;
                    }
                    self.nodes[j].engine.handle_message(message, self.now);
                    j
                }
                Event::Timer(j, round, phase) => {
                    if self.nodes[j].crashed || self.nodes[j].done {
                        continue;
                    }
                    self.nodes[j].engine.handle_timeout(round, phase, self.now);
                    j
                }
            };
            self.drain(i);
        }
    }

    fn agree(&self) -> bool {
        let mut by_round: BTreeMap<u64, Digest> = BTreeMap::new();
        for node in &self.nodes {
            for (round, record) in &node.finals {
                if *by_round.entry(*round).or_insert(record.certificate.digest)
                    != record.certificate.digest
                {
                    return false;
                }
            }
        }
        true
    }
}

#[test]
fn seed_preset_runs_srpt_and_all_replicas_agree() {
    // A burst 5, B burst 5, C burst 3: all truthful, equal bids.
    let mut net = Net::new(&[5, 5, 3], Box::new(|i, j| 1 + ((i + 2 * j) % 3) as u64));
    net.run(100_000);
    assert!(net.nodes.iter().all(|n| n.done), "every agent completes");
    assert!(net.agree(), "every replica holds the same final digests");
    assert_eq!(
        net.nodes[2].wins,
        vec![1, 2, 3],
        "the shortest job runs first"
    );
    let mut rest: Vec<u64> = net.nodes[0]
        .wins
        .iter()
        .chain(&net.nodes[1].wins)
        .copied()
        .collect();
    rest.sort();
    assert_eq!(
        rest,
        (4..14).collect::<Vec<_>>(),
        "no idle slot, no slot won twice"
    );
    // Once A or B wins its first slot it has the shorter remaining job and keeps the slot.
    let (first, second) = if net.nodes[0].wins[0] == 4 {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(net.nodes[first].wins, vec![4, 5, 6, 7, 8]);
    assert_eq!(net.nodes[second].wins, vec![9, 10, 11, 12, 13]);
    // The final ledger state says everyone completed honestly.
    let last = net.nodes.iter().max_by_key(|n| n.engine.round()).unwrap();
    let state = last.engine.state();
    assert!(state
        .members
        .values()
        .all(|m| m.status == MemberStatus::Completed && m.offences.total() == 0));
}

#[test]
fn killing_one_of_three_lets_the_other_two_finish() {
    let mut net = Net::new(&[5, 5, 3], Box::new(|_, _| 2));
    // Run until round 4 is underway, then crash node 0 (it never speaks again).
    for _ in 0..100_000 {
        if net.nodes[1].engine.round() >= 4 {
            break;
        }
        net.run(1);
    }
    net.nodes[0].crashed = true;
    net.run(200_000);
    assert!(net.nodes[1].done && net.nodes[2].done, "survivors complete");
    assert_eq!(net.nodes[1].remaining + net.nodes[2].remaining, 0);
    assert!(net.agree());
    let state = net.nodes[1].engine.state();
    assert_eq!(
        state.members[&net.nodes[0].engine.id()].status,
        MemberStatus::Failed
    );
}

#[test]
fn the_same_seeded_run_gives_the_same_transcript() {
    let run = || {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut net = Net::new(
            &[4, 2, 6, 3, 5],
            Box::new(move |_, _| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                1 + x % 20
            }),
        );
        net.run(500_000);
        assert!(net.nodes.iter().all(|n| n.done));
        assert!(net.agree());
        Digest::of(b"transcript", &[&net.transcript])
    };
    assert_eq!(run(), run());
}

#[test]
fn a_replica_behind_fetches_certified_rounds_and_catches_up() {
    // Node 3 hears nothing for a while (a partition of one): it cannot finalize alone, then
    // fetches the certified rounds it missed and carries on with the others.
    let cut = std::rc::Rc::new(std::cell::Cell::new(true));
    let flag = cut.clone();
    let mut net = Net::new(
        &[3, 3, 3, 2],
        Box::new(move |i, j| {
            if flag.get() && (i == 3 || j == 3) {
                1_000_000
            } else {
                2
            }
        }),
    );
    // Everyone needs the founding round first: let it pass with the cut healed.
    cut.set(false);
    for _ in 0..100_000 {
        if net.nodes[0].engine.round() >= 1 {
            break;
        }
        net.run(1);
    }
    cut.set(true);
    for _ in 0..100_000 {
        if net.nodes[0].engine.round() >= 3 {
            break;
        }
        net.run(1);
    }
    assert!(
        net.nodes[3].engine.round() < net.nodes[0].engine.round(),
        "the cut-off replica cannot finalize alone"
    );
    cut.set(false);
    net.run(500_000);
    assert!(net.agree());
    let ahead = net.nodes[0].finals.keys().max().copied().unwrap_or(0);
    assert!(net.nodes[3].finals.keys().max().copied().unwrap_or(0) >= ahead.min(3));
    assert!(net.nodes[..3].iter().all(|n| n.done));
}

/// One replica speaking for all three agents of the seed preset: each agent decides, signs
/// and votes for itself, the schedule is SRPT, and the records it certifies verify from
/// genesis like any other replica's.
#[test]
fn one_replica_hosting_three_agents_runs_srpt_with_verifiable_records() {
    let swarm = SwarmId::from_name("test");
    let identities: Vec<_> = (0..3u8).map(agent).collect();
    let ids: Vec<_> = identities.iter().map(|i| i.id()).collect();
    let mut remaining: BTreeMap<_, u32> = ids.iter().copied().zip([5, 5, 3]).collect();
    let mut engine = Engine::new(
        identities[0].clone(),
        config("n0", 3),
        LedgerState::genesis(swarm),
        0,
    );
    for (i, identity) in identities.iter().enumerate().skip(1) {
        engine.host(identity.clone(), format!("n{i}"), true, 0);
    }
    let mut wins: BTreeMap<_, Vec<u64>> = BTreeMap::new();
    let mut records = Vec::new();
    let mut timers = Vec::new();
    let mut now = 0;
    for _ in 0..10_000 {
        let Some(output) = engine.poll_output() else {
            // Nothing left to do but wait: fire the earliest timer.
            timers.sort();
            if timers.is_empty() {
                break;
            }
            let (at, round, phase) = timers.remove(0);
            now = at;
            engine.handle_timeout(round, phase, now);
            continue;
        };
        match output {
            Output::Decide {
                agent,
                round,
                phase,
            } => {
                let left = remaining[&agent];
                let result = match phase {
                    Phase::Announce if left == 0 => {
                        engine.leave(agent, LeaveReason::Completed, now)
                    }
                    Phase::Announce => engine.claim(agent, left, now),
                    Phase::Negotiate => engine.negotiate(agent, vec![], None, now),
                    Phase::Coalition => engine.accept(agent, vec![], now),
                    Phase::Commit => {
                        let nonce = Digest::of(b"nonce", &[&agent.0, &round.to_le_bytes()]).0;
                        engine.bid(agent, 10, None, 10, nonce, now)
                    }
                    _ => Ok(()),
                };
                assert_eq!(result, Ok(()), "round {round} {phase:?}");
            }
            Output::ScheduleTimeout { round, phase, at } => timers.push((at, round, phase)),
            Output::Final(finalized) => {
                if let Some(winner) = finalized.outcome.winner {
                    wins.entry(winner)
                        .or_default()
                        .push(finalized.certified.round());
                    *remaining.get_mut(&winner).unwrap() -= 1;
                }
                records.push(finalized.certified.record());
                let completed = finalized
                    .state
                    .members
                    .values()
                    .filter(|m| m.status == MemberStatus::Completed)
                    .count();
                if completed == 3 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(wins[&ids[2]], vec![1, 2, 3], "the shortest job runs first");
    let mut rest: Vec<u64> = wins[&ids[0]]
        .iter()
        .chain(&wins[&ids[1]])
        .copied()
        .collect();
    rest.sort();
    assert_eq!(rest, (4..14).collect::<Vec<_>>());
    // Another replica verifies every record from genesis: signatures, rule, certificate.
    let mut state = LedgerState::genesis(swarm);
    for record in &records {
        let (next, _, _) = record.apply(&state, &Limits::default()).unwrap();
        state = next;
    }
    assert_eq!(state.digest(), engine.state().digest());
    assert!(state
        .members
        .values()
        .all(|m| m.status == MemberStatus::Completed && m.offences.total() == 0));
}
