//! The in-test network of the agreement tests: a handful of engine replicas on a seeded,
//! adversarial network (nemeses decide the fate of every transmission: deliver, drop,
//! delay), and the invariant checks: no two certifiable digests per round from every vote
//! ever signed, one stored digest per round, and records that replay from genesis.
#![allow(dead_code)]

use crate::common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{
    votes_needed, AgentId, CertifiedRound, Digest, Engine, EngineConfig, Identity, LedgerState,
    Limits, Output, Payload, PayloadKind, Phase, SignedMessage, Stage,
};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const TIMEOUT_MS: u64 = 1_000;

/// What the network does with one transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Deliver,
    Drop,
    /// Delivered this many ms late.
    Delay(u64),
}

/// A transmission: `from` host to `to` host, at time `at`.
#[derive(Debug, Clone)]
pub(crate) enum Carried {
    Message(SignedMessage),
    Inputs {
        round: u64,
        digest: Digest,
        messages: Vec<SignedMessage>,
    },
    Record(Box<slotmesh_proto::FinalRound>),
}

/// Decides the fate of a transmission from host to host at a time: a signed message, or a
/// sync answer (`None`: a record or the inputs of a digest).
pub(crate) type Nemesis = Box<dyn FnMut(usize, usize, Option<&SignedMessage>, u64) -> Fate>;

pub(crate) struct Net {
    pub(crate) engines: Vec<Option<Engine>>,
    pub(crate) ids: Vec<AgentId>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now: u64,
    /// (time, sequence) -> (to, from, carried)
    pub(crate) queue: BTreeMap<(u64, u64), (usize, usize, Carried)>,
    pub(crate) timers: BTreeMap<(u64, u64), (usize, u64, Phase)>,
    pub(crate) seq: u64,
    pub(crate) nemesis: Nemesis,
    /// Every vote any replica signed: (round, stage, voter, attempt, digest).
    pub(crate) votes: BTreeSet<(u64, Stage, AgentId, u32, Digest)>,
    /// Per round, the voters every replica used (from the state before it).
    pub(crate) voters: BTreeMap<u64, BTreeSet<AgentId>>,
    /// What each replica stored, by round.
    pub(crate) finals: Vec<BTreeMap<u64, CertifiedRound>>,
    /// Hosts that crash after sending their reveal of this round.
    pub(crate) crash_after_reveal: BTreeMap<usize, u64>,
    /// The promises, proposals and votes each host sent (its own and those it passed on) in
    /// the last round it sent any in, as a daemon stores them before sending.
    pub(crate) agreement_sent: Vec<Vec<SignedMessage>>,
    /// Agents take no turn past this round: a lone active voter (the others suspended)
    /// would otherwise run rounds without end inside one call, taking its turns at once.
    pub(crate) last_decided_round: u64,
    /// Hosts whose agents never take their optional turns (negotiation, coalition).
    pub(crate) optional_skippers: BTreeSet<usize>,
}

impl Net {
    pub(crate) fn new(n: usize, seed: u64, nemesis: Nemesis) -> Net {
        Net::founding(n, n, seed, nemesis)
    }

    /// `n` founders of which `min_members` are enough to close the founding round.
    pub(crate) fn founding(n: usize, min_members: usize, seed: u64, nemesis: Nemesis) -> Net {
        Net::build(n, min_members, false, seed, nemesis)
    }

    /// `n` founders known by key to each other: a majority founds the swarm.
    pub(crate) fn known_founders(n: usize, seed: u64, nemesis: Nemesis) -> Net {
        Net::build(n, n / 2 + 1, true, seed, nemesis)
    }

    fn build(n: usize, min_members: usize, known: bool, seed: u64, nemesis: Nemesis) -> Net {
        let agents: Vec<Identity> = (0..n as u8).map(agent).collect();
        let founders: BTreeSet<AgentId> = if known {
            agents.iter().map(Identity::id).collect()
        } else {
            BTreeSet::new()
        };
        let ids = agents.iter().map(Identity::id).collect();
        let mut net = Net {
            engines: Vec::new(),
            ids,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0,
            queue: BTreeMap::new(),
            timers: BTreeMap::new(),
            seq: 0,
            nemesis,
            votes: BTreeSet::new(),
            voters: BTreeMap::new(),
            finals: vec![BTreeMap::new(); n],
            crash_after_reveal: BTreeMap::new(),
            agreement_sent: vec![Vec::new(); n],
            last_decided_round: u64::MAX,
            optional_skippers: BTreeSet::new(),
        };
        for (i, identity) in agents.into_iter().enumerate() {
            let config = EngineConfig {
                swarm: swarm(),
                name: format!("agent-{i}"),
                limits: Limits::default(),
                phase_timeout_ms: TIMEOUT_MS,
                founder: true,
                min_members,
                expected_members: n,
                known_founders: founders.clone(),
                absence_limit: 0,
            };
            net.engines.push(Some(Engine::new(
                identity,
                config,
                LedgerState::genesis(swarm()),
                0,
            )));
        }
        for h in 0..n {
            net.drain(h);
        }
        net
    }

    pub(crate) fn host_of(&self, id: &AgentId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    pub(crate) fn transmit(&mut self, from: usize, to: usize, carried: Carried) {
        let fate = match &carried {
            Carried::Message(m) => (self.nemesis)(from, to, Some(m), self.now),
            Carried::Inputs { .. } | Carried::Record(_) => (self.nemesis)(from, to, None, self.now),
        };
        let delay = match fate {
            Fate::Drop => return,
            Fate::Deliver => self.rng.gen_range(1..=40),
            Fate::Delay(ms) => ms + self.rng.gen_range(1..=40),
        };
        self.seq += 1;
        self.queue
            .insert((self.now + delay, self.seq), (to, from, carried));
    }

    pub(crate) fn drain(&mut self, h: usize) {
        loop {
            let Some(output) = self.engines[h].as_mut().and_then(Engine::poll_output) else {
                return;
            };
            match output {
                Output::Send(message) => {
                    if let Payload::CheckpointVote(vote) = message.payload() {
                        self.votes.insert((
                            message.round(),
                            vote.stage,
                            message.sender(),
                            vote.attempt,
                            vote.digest,
                        ));
                    }
                    if message.payload().stage().is_some() {
                        let sent = &mut self.agreement_sent[h];
                        if sent.first().is_some_and(|m| m.round() != message.round()) {
                            sent.clear();
                        }
                        if !sent.contains(&message) {
                            sent.push(message.clone());
                        }
                    }
                    let reveal = message.payload().kind() == PayloadKind::Reveal;
                    for to in 0..self.engines.len() {
                        if to != h {
                            self.transmit(h, to, Carried::Message(message.clone()));
                        }
                    }
                    if reveal && self.crash_after_reveal.get(&h) == Some(&message.round()) {
                        self.engines[h] = None;
                        return;
                    }
                }
                Output::ScheduleTimeout { round, phase, at } => {
                    self.seq += 1;
                    self.timers.insert((at, self.seq), (h, round, phase));
                }
                Output::Decide {
                    agent,
                    round,
                    phase,
                } => self.decide(h, agent, round, phase),
                Output::Final(finalized) => {
                    let round = finalized.certified.round();
                    self.finals[h].insert(round, finalized.certified.clone());
                    if let Some(engine) = &self.engines[h] {
                        let state = engine.state();
                        self.voters
                            .entry(state.next_round)
                            .or_insert_with(|| state.voters_for(state));
                    }
                }
                Output::FetchInputs {
                    round,
                    digest,
                    peer,
                } => {
                    let Some(j) = self.host_of(&peer) else {
                        continue;
                    };
                    let answer = self.engines[j]
                        .as_ref()
                        .and_then(|e| e.inputs(round, digest));
                    if let Some(inputs) = answer {
                        let messages = inputs.iter().cloned().collect();
                        self.transmit(
                            j,
                            h,
                            Carried::Inputs {
                                round,
                                digest,
                                messages,
                            },
                        );
                    }
                }
                Output::FetchRound { round } => {
                    // Every live peer that stored the round answers, over the network.
                    for j in (0..self.engines.len()).filter(|j| *j != h) {
                        if self.engines[j].is_none() {
                            continue;
                        }
                        if let Some(record) = self.finals[j].get(&round).map(CertifiedRound::record)
                        {
                            self.transmit(j, h, Carried::Record(Box::new(record)));
                        }
                    }
                }
                Output::Resolved { .. } => {}
            }
        }
    }

    pub(crate) fn decide(&mut self, h: usize, agent: AgentId, round: u64, phase: Phase) {
        let optional = matches!(phase, Phase::Negotiate | Phase::Coalition);
        if round > self.last_decided_round || (optional && self.optional_skippers.contains(&h)) {
            return;
        }
        let now = self.now;
        let Some(engine) = self.engines[h].as_mut() else {
            return;
        };
        let _ = match phase {
            Phase::Announce => engine.claim(agent, 3 + h as u32, now),
            Phase::Negotiate => engine.negotiate(agent, vec![], None, now),
            Phase::Coalition => engine.accept(agent, vec![], now),
            Phase::Commit => engine.bid(agent, 10, None, 10, [round as u8 ^ h as u8; 32], now),
            _ => Ok(()),
        };
    }

    /// Runs until `until` ms or nothing is left to do.
    pub(crate) fn run(&mut self, until: u64) {
        self.run_until(until, |_| false);
    }

    /// Runs until `until` ms, nothing is left to do, or `stop` holds (checked after each
    /// event); true if `stop` held.
    pub(crate) fn run_until(&mut self, until: u64, stop: impl Fn(&Net) -> bool) -> bool {
        for _ in 0..400_000 {
            if stop(self) {
                return true;
            }
            let next_message = self.queue.keys().next().copied();
            let next_timer = self.timers.keys().next().copied();
            let (at, take_message) = match (next_message, next_timer) {
                (Some(m), Some(t)) => (m.0.min(t.0), m.0 <= t.0),
                (Some(m), None) => (m.0, true),
                (None, Some(t)) => (t.0, false),
                (None, None) => return false,
            };
            if at > until {
                return false;
            }
            self.now = self.now.max(at);
            let now = self.now;
            if take_message {
                let Some((_, (to, _from, carried))) = self.queue.pop_first() else {
                    return false;
                };
                if let Some(engine) = self.engines[to].as_mut() {
                    match carried {
                        Carried::Message(m) => engine.handle_message(m, now),
                        Carried::Inputs {
                            round,
                            digest,
                            messages,
                        } => engine.handle_inputs(round, digest, messages, now),
                        Carried::Record(record) => {
                            let _ = engine.handle_final_round(&record, now);
                        }
                    }
                }
                self.drain(to);
            } else {
                let Some((_, (h, round, phase))) = self.timers.pop_first() else {
                    return false;
                };
                if let Some(engine) = self.engines[h].as_mut() {
                    engine.handle_timeout(round, phase, now);
                }
                self.drain(h);
            }
        }
        stop(self)
    }

    /// Delivers every vote anyone signed to every live replica (a voter that withheld
    /// its votes publishes them; a late joiner would see them all).
    pub(crate) fn publish_all_votes(&mut self) {
        for (round, stage, voter, attempt, digest) in self.votes.clone() {
            let Some(h) = self.host_of(&voter) else {
                continue;
            };
            let vote = agent(h as u8).sign(
                swarm(),
                round,
                Payload::CheckpointVote(slotmesh_proto::CheckpointVote {
                    stage,
                    digest,
                    attempt,
                }),
            );
            for to in 0..self.engines.len() {
                let now = self.now;
                if let Some(engine) = self.engines[to].as_mut() {
                    engine.handle_message(vote.clone(), now);
                }
                self.drain(to);
            }
        }
    }

    /// The invariant: at most one digest per round and agreement (seal, outcome) can be
    /// certified from all votes ever signed, and every stored round has that digest (and
    /// that seal).
    pub(crate) fn check_agreement(&self) {
        let mut certifiable: BTreeMap<(u64, Stage), BTreeSet<Digest>> = BTreeMap::new();
        let mut tally: BTreeMap<(u64, Stage, u32, Digest), usize> = BTreeMap::new();
        for (round, stage, voter, attempt, digest) in &self.votes {
            let counts = self
                .voters
                .get(round)
                .is_none_or(|voters| voters.contains(voter));
            if counts {
                *tally
                    .entry((*round, *stage, *attempt, *digest))
                    .or_default() += 1;
            }
        }
        for ((round, stage, _, digest), n) in tally {
            let Some(voters) = self.voters.get(&round) else {
                continue;
            };
            if n >= votes_needed(round, voters.len()) {
                certifiable
                    .entry((round, stage))
                    .or_default()
                    .insert(digest);
            }
        }
        for ((round, stage), digests) in &certifiable {
            assert!(
                digests.len() <= 1,
                "round {round} {stage:?}: certificates for {} digests: {digests:?}",
                digests.len()
            );
        }
        let mut seals: BTreeMap<u64, BTreeSet<Option<Digest>>> = BTreeMap::new();
        for finals in &self.finals {
            for (round, certified) in finals {
                seals
                    .entry(*round)
                    .or_default()
                    .insert(certified.seal().map(|s| s.digest));
            }
        }
        for (round, digests) in &seals {
            assert_eq!(digests.len(), 1, "round {round}: seals stored {digests:?}");
        }
        let mut stored: BTreeMap<u64, BTreeSet<Digest>> = BTreeMap::new();
        for finals in &self.finals {
            for (round, certified) in finals {
                stored.entry(*round).or_default().insert(certified.digest());
            }
        }
        for (round, digests) in &stored {
            assert_eq!(
                digests.len(),
                1,
                "round {round}: replicas stored {digests:?}"
            );
        }
    }

    /// No record a replica stores fails its own verification: each replica's first rounds
    /// replay from genesis as a late joiner would replay them.
    pub(crate) fn check_records(&self) {
        for (h, finals) in self.finals.iter().enumerate() {
            let mut state = LedgerState::genesis(swarm());
            for (round, certified) in finals.range(..3) {
                if *round != state.next_round {
                    break;
                }
                let applied = certified.record().apply(&state, &Limits::default());
                assert!(
                    applied.is_ok(),
                    "host {h} stored round {round} that fails: {applied:?}"
                );
                if let Ok((next, _, _)) = applied {
                    state = next;
                }
            }
        }
    }

    /// Honest replicas never name anyone: no replica holds a proof of a contradiction and
    /// no record punishes one.
    pub(crate) fn check_no_contradictions(&self) {
        for (h, engine) in self.engines.iter().enumerate() {
            let Some(engine) = engine else { continue };
            assert!(
                engine.contradicting().is_empty(),
                "host {h} holds proof against honest voters {:?}",
                engine.contradicting()
            );
            for (id, member) in &engine.state().members {
                assert_eq!(
                    member.offences.contradictions, 0,
                    "host {h}: honest {id:?} punished"
                );
            }
        }
    }

    /// Restarts replica `h` as a daemon does: a new engine from its last final state, silent
    /// through the round it was in, and, if `resume`, resuming that round's agreement from
    /// the promises, proposals and votes it stored.
    pub(crate) fn restart(&mut self, h: usize, resume: bool) {
        let Some(old) = self.engines[h].take() else {
            return;
        };
        let now = self.now;
        let mut engine = Engine::new(
            agent(h as u8),
            old.config().clone(),
            old.state().clone(),
            now,
        );
        engine.silence_through(Some(old.round()));
        if resume {
            engine.resume_agreement(self.agreement_sent[h].clone(), now);
        }
        self.engines[h] = Some(engine);
        self.drain(h);
    }

    pub(crate) fn final_round_of(&self, h: usize) -> Option<u64> {
        self.finals[h].keys().next_back().copied()
    }
}

/// Signs and hands `message` to replica `to` at once (an injected message).
pub(crate) fn inject(net: &mut Net, to: usize, message: SignedMessage) {
    let now = net.now;
    if let Some(engine) = net.engines[to].as_mut() {
        engine.handle_message(message, now);
    }
    net.drain(to);
}

pub(crate) fn turn_kind(m: &SignedMessage) -> PayloadKind {
    m.payload().kind()
}

/// The reviewer's fork: in round 1 one member's commit and reveal reach one other replica
/// only, and another replica's outgoing link fails from its first vote on (nobody hears it
/// again, it hears everyone). On the old engine the muted replica certified one digest in
/// attempt 0 while the other four, presuming it crashed, certified another in attempt 1.
/// Swept over who bids late, who hears it, whose link fails, and delivery orders.
/// Host index of the proposer of `attempt` in `round` among `n` founders.
pub(crate) fn proposer_host(n: usize, round: u64, attempt: u32) -> usize {
    let founders: BTreeSet<AgentId> = (0..n as u8).map(|i| agent(i).id()).collect();
    let p = slotmesh_proto::proposer(&founders, round, attempt);
    (0..n)
        .find(|h| Some(agent(*h as u8).id()) == p)
        .unwrap_or(0)
}

pub(crate) fn in_finalize(net: &Net, h: usize, round: u64) -> bool {
    net.engines[h]
        .as_ref()
        .is_some_and(|e| e.round() == round && e.phase() == Phase::Finalize)
}

/// A voter whose own engine is muted in the agreement from round 1 on: it speaks there
/// only through what the test signs with its key.
pub(crate) fn muted_agreement(b: usize) -> Nemesis {
    Box::new(move |from, _to, m, _now| {
        if from == b && m.is_none_or(|m| m.round() >= 1 && m.payload().kind().is_agreement()) {
            return Fate::Drop;
        }
        Fate::Deliver
    })
}

pub(crate) fn votes_at(net: &Net, h: usize, round: u64, attempt: u32) -> usize {
    net.engines[h]
        .as_ref()
        .filter(|e| e.round() == round)
        .and_then(|e| e.finality())
        .map_or(0, |f| f.votes.iter().filter(|v| v.1 == attempt).count())
}

/// A replica in round 1's finalize phase, with a voter (the attempt-0 proposer, muted in the
/// agreement) whose key the test signs floods with: (net, that voter, the replica).
pub(crate) fn finalizing_replica(seed: u64) -> (Net, usize, usize) {
    let n = 3;
    let b = proposer_host(n, 1, 0);
    let mut net = Net::new(n, seed, muted_agreement(b));
    let h = (0..n).find(|h| *h != b).unwrap_or(0);
    assert!(net.run_until(20 * TIMEOUT_MS, |net| in_finalize(net, h, 1)));
    (net, b, h)
}

/// Whom replica `h` holds proof of a contradiction against.
pub(crate) fn contradicting(net: &Net, h: usize) -> Vec<AgentId> {
    net.engines[h]
        .as_ref()
        .map(|e| e.contradicting())
        .unwrap_or_default()
}

/// Runs `net` until every live replica but `skip` has stored `round`.
pub(crate) fn run_to(net: &mut Net, skip: Option<usize>, round: u64) {
    let n = net.engines.len();
    let done = net.run_until(net.now + 200 * TIMEOUT_MS, |net| {
        (0..n)
            .filter(|h| Some(*h) != skip && net.engines[*h].is_some())
            .all(|h| net.final_round_of(h) >= Some(round))
    });
    assert!(done, "replicas stalled before round {round}");
}

/// Whether replica `h` is in `phase` of `round`.
pub(crate) fn in_phase(net: &Net, h: usize, round: u64, phase: Phase) -> bool {
    net.engines[h]
        .as_ref()
        .is_some_and(|e| e.round() == round && e.phase() == phase)
}

/// The round replica `h` is in (0 once it crashed).
pub(crate) fn round_of(net: &Net, h: usize) -> u64 {
    net.engines[h].as_ref().map_or(0, |e| e.round())
}
