//! Agreement under omission faults and withheld votes, through the engine's own API: a
//! handful of replicas on a seeded, adversarial in-test network (one-way links, messages
//! that reach one peer only, votes published late). The invariant checked is the strongest
//! one: from every vote any replica ever signed, no two certificates for different digests
//! of one round can be assembled, and every replica that finalizes a round stores the same
//! digest.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{
    votes_needed, AgentId, CertifiedRound, Digest, Engine, EngineConfig, Identity, LedgerState,
    Limits, Output, Payload, PayloadKind, Phase, SignedMessage,
};
use std::collections::{BTreeMap, BTreeSet};

const TIMEOUT_MS: u64 = 1_000;

/// What the network does with one transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deliver,
    Drop,
    /// Delivered this many ms late.
    Delay(u64),
}

/// A transmission: `from` host to `to` host, at time `at`.
#[derive(Debug, Clone)]
enum Carried {
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
type Nemesis = Box<dyn FnMut(usize, usize, Option<&SignedMessage>, u64) -> Fate>;

struct Net {
    engines: Vec<Option<Engine>>,
    ids: Vec<AgentId>,
    rng: ChaCha8Rng,
    now: u64,
    /// (time, sequence) -> (to, from, carried)
    queue: BTreeMap<(u64, u64), (usize, usize, Carried)>,
    timers: BTreeMap<(u64, u64), (usize, u64, Phase)>,
    seq: u64,
    nemesis: Nemesis,
    /// Every vote any replica signed: (round, voter, attempt, digest).
    votes: BTreeSet<(u64, AgentId, u32, Digest)>,
    /// Per round, the voters every replica used (from the state before it).
    voters: BTreeMap<u64, BTreeSet<AgentId>>,
    /// What each replica stored, by round.
    finals: Vec<BTreeMap<u64, CertifiedRound>>,
    /// Hosts that crash after sending their reveal of this round.
    crash_after_reveal: BTreeMap<usize, u64>,
}

impl Net {
    fn new(n: usize, seed: u64, nemesis: Nemesis) -> Net {
        Net::founding(n, n, seed, nemesis)
    }

    /// `n` founders of which `min_members` are enough to close the founding round.
    fn founding(n: usize, min_members: usize, seed: u64, nemesis: Nemesis) -> Net {
        let agents: Vec<Identity> = (0..n as u8).map(agent).collect();
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

    fn host_of(&self, id: &AgentId) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    fn transmit(&mut self, from: usize, to: usize, carried: Carried) {
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

    fn drain(&mut self, h: usize) {
        loop {
            let Some(output) = self.engines[h].as_mut().and_then(Engine::poll_output) else {
                return;
            };
            match output {
                Output::Send(message) => {
                    if let Payload::CheckpointVote(vote) = message.payload() {
                        self.votes.insert((
                            message.round(),
                            message.sender(),
                            vote.attempt,
                            vote.digest,
                        ));
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

    fn decide(&mut self, h: usize, agent: AgentId, round: u64, phase: Phase) {
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
    fn run(&mut self, until: u64) {
        self.run_until(until, |_| false);
    }

    /// Runs until `until` ms, nothing is left to do, or `stop` holds (checked after each
    /// event); true if `stop` held.
    fn run_until(&mut self, until: u64, stop: impl Fn(&Net) -> bool) -> bool {
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
    fn publish_all_votes(&mut self) {
        for (round, voter, attempt, digest) in self.votes.clone() {
            let Some(h) = self.host_of(&voter) else {
                continue;
            };
            let vote = agent(h as u8).sign(
                swarm(),
                round,
                Payload::CheckpointVote(slotmesh_proto::CheckpointVote { digest, attempt }),
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

    /// The invariant: at most one digest per round can be certified from all votes ever
    /// signed, and every stored round has that digest.
    fn check_agreement(&self) {
        let mut certifiable: BTreeMap<u64, BTreeSet<Digest>> = BTreeMap::new();
        let mut tally: BTreeMap<(u64, u32, Digest), usize> = BTreeMap::new();
        for (round, voter, attempt, digest) in &self.votes {
            let counts = self
                .voters
                .get(round)
                .is_none_or(|voters| voters.contains(voter));
            if counts {
                *tally.entry((*round, *attempt, *digest)).or_default() += 1;
            }
        }
        for ((round, _, digest), n) in tally {
            let Some(voters) = self.voters.get(&round) else {
                continue;
            };
            if n >= votes_needed(round, voters.len()) {
                certifiable.entry(round).or_default().insert(digest);
            }
        }
        for (round, digests) in &certifiable {
            assert!(
                digests.len() <= 1,
                "round {round}: certificates for {} digests: {digests:?}",
                digests.len()
            );
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
    fn check_records(&self) {
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

    fn final_round_of(&self, h: usize) -> Option<u64> {
        self.finals[h].keys().next_back().copied()
    }
}

/// Signs and hands `message` to replica `to` at once (an injected message).
fn inject(net: &mut Net, to: usize, message: SignedMessage) {
    let now = net.now;
    if let Some(engine) = net.engines[to].as_mut() {
        engine.handle_message(message, now);
    }
    net.drain(to);
}

fn turn_kind(m: &SignedMessage) -> PayloadKind {
    m.payload().kind()
}

/// The reviewer's fork: in round 1 one member's commit and reveal reach one other replica
/// only, and another replica's outgoing link fails from its first vote on (nobody hears it
/// again, it hears everyone). On the old engine the muted replica certified one digest in
/// attempt 0 while the other four, presuming it crashed, certified another in attempt 1.
/// Swept over who bids late, who hears it, whose link fails, and delivery orders.
#[test]
fn omission_faults_never_make_two_certificates() {
    let n = 5;
    let mut finished = 0;
    let mut runs = 0;
    for seed in 0..4u64 {
        for late in 0..n {
            for reached in (0..n).filter(|r| *r != late) {
                for muted in (0..n).filter(|m| *m != late && *m != reached) {
                    let muted_since = std::rc::Rc::new(std::cell::Cell::new(u64::MAX));
                    let flag = muted_since.clone();
                    let nemesis: Nemesis = Box::new(move |from, to, m, now| {
                        let bid = m.is_some_and(|m| {
                            m.round() == 1
                                && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
                        });
                        if from == late && bid && to != reached {
                            return Fate::Drop;
                        }
                        let vote = m.is_some_and(|m| {
                            m.round() >= 1 && turn_kind(m) == PayloadKind::CheckpointVote
                        });
                        if from == muted && vote {
                            flag.set(flag.get().min(now));
                        }
                        if from == muted && now >= flag.get() {
                            return Fate::Drop;
                        }
                        Fate::Deliver
                    });
                    let mut net = Net::new(n, seed * 100 + (late * 10 + muted) as u64, nemesis);
                    net.run(40 * TIMEOUT_MS);
                    net.check_agreement();
                    net.publish_all_votes();
                    net.check_agreement();
                    net.check_records();
                    runs += 1;
                    // The four that are heard finish round 1 and go on.
                    if (0..n)
                        .filter(|h| *h != muted)
                        .all(|h| net.final_round_of(h) >= Some(2))
                    {
                        finished += 1;
                    }
                }
            }
        }
    }
    assert_eq!(finished, runs, "runs in which the heard majority went on");
}

/// No network fault at all: a byzantine bidder shows its commit and reveal to one replica
/// only, and one voter withholds every vote it signs in round 1 for many timeouts, then
/// publishes them all. On the old engine the withheld attempt-0 votes completed a second
/// certificate; here no second certificate can be made.
#[test]
fn a_withheld_vote_published_late_certifies_nothing_new() {
    let n = 5;
    for seed in 0..40u64 {
        let late = (seed % n as u64) as usize;
        let reached = (late + 1 + (seed / 5 % 4) as usize) % n;
        let withholder = (reached + 1 + (seed / 20) as usize) % n;
        if withholder == late {
            continue;
        }
        let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
            let bid = m.is_some_and(|m| {
                m.round() == 1 && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
            });
            if from == late && bid && to != reached {
                return Fate::Drop;
            }
            let vote =
                m.is_some_and(|m| m.round() == 1 && turn_kind(m) == PayloadKind::CheckpointVote);
            if from == withholder && (vote || m.is_none()) {
                return Fate::Delay(30 * TIMEOUT_MS);
            }
            Fate::Deliver
        });
        let mut net = Net::new(n, seed, nemesis);
        net.run(25 * TIMEOUT_MS);
        net.check_agreement();
        net.publish_all_votes();
        net.check_agreement();
        net.check_records();
        for h in (0..n).filter(|h| *h != withholder) {
            assert!(
                net.final_round_of(h) >= Some(2),
                "seed {seed}: host {h} stuck"
            );
        }
    }
}

/// Links fail one way at random for several timeouts at a time (a replica hears but is not
/// heard, or the reverse), and agreement messages are delayed by up to several timeouts:
/// agreement always holds, and once links heal every replica goes on.
#[test]
fn one_way_links_and_long_delays_keep_agreement() {
    for seed in 0..40u64 {
        let n = 3 + (seed % 3) as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
        // (from, to, start): the link is cut for 4 timeouts from `start`.
        let cut: Vec<(usize, usize, u64)> = (0..2 * n)
            .map(|_| {
                (
                    rng.gen_range(0..n),
                    rng.gen_range(0..n),
                    rng.gen_range(0..20 * TIMEOUT_MS),
                )
            })
            .collect();
        let mut delays = ChaCha8Rng::seed_from_u64(seed);
        let nemesis: Nemesis = Box::new(move |from, to, m, now| {
            if cut.iter().any(|(a, b, start)| {
                *a == from && *b == to && (*start..*start + 4 * TIMEOUT_MS).contains(&now)
            }) {
                return Fate::Drop;
            }
            if m.is_some_and(|m| m.payload().kind().is_agreement()) && delays.gen_range(0..10) == 0
            {
                return Fate::Delay(delays.gen_range(0..5 * TIMEOUT_MS));
            }
            Fate::Deliver
        });
        let mut net = Net::new(n, seed, nemesis);
        net.run(80 * TIMEOUT_MS);
        net.check_agreement();
        net.publish_all_votes();
        net.check_agreement();
        net.check_records();
        for h in 0..n {
            assert!(
                net.final_round_of(h) >= Some(4),
                "seed {seed}: host {h} at {:?}: {:?} {:?}; others {:?}",
                net.final_round_of(h),
                net.engines[h].as_ref().map(|e| (e.round(), e.phase())),
                net.engines[h].as_ref().and_then(|e| e.finality()),
                (0..n).map(|j| net.final_round_of(j)).collect::<Vec<_>>()
            );
        }
    }
}

/// An equivocator sends a different claim to every replica (five variants, each replica
/// hearing them in its own order): every replica resolves the turn alike, the round
/// finalizes, and later rounds go on.
#[test]
fn many_variants_of_one_turn_still_finalize_alike() {
    for seed in 0..10u64 {
        let n = 4;
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
        // At once, while the replicas found the swarm: round 1 is the next round, whose
        // messages they hold until it starts.
        let liar = agent((seed % n as u64) as u8);
        let variants: Vec<SignedMessage> = (0..5u32).map(|c| claim(&liar, 1, 10 + c)).collect();
        for to in 0..n {
            let mut order = variants.clone();
            order.rotate_left((to + seed as usize) % variants.len());
            for v in order {
                inject(&mut net, to, v);
            }
        }
        net.run(30 * TIMEOUT_MS);
        net.check_agreement();
        for h in 0..n {
            assert!(net.final_round_of(h) >= Some(3), "seed {seed}: host {h}");
        }
        let first = &net.finals[0][&1];
        assert_eq!(
            first.certificate().attempt,
            0,
            "seed {seed}: variants alone must not cost an attempt"
        );
    }
}

/// Validly signed messages of this swarm from keys that are not members reach some
/// replicas only: they never enter the inputs or the digest, so they cost nothing.
#[test]
fn outsiders_cannot_split_the_vote() {
    for seed in 0..10u64 {
        let n = 4;
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
        let outsider = agent(200);
        for to in (0..n).filter(|h| (*h as u64 + seed).is_multiple_of(2)) {
            inject(&mut net, to, claim(&outsider, 1, 1));
            let (commit, reveal) = sealed_bid(&outsider, 1, 5, None, 5);
            inject(&mut net, to, commit);
            inject(&mut net, to, reveal);
        }
        net.run(30 * TIMEOUT_MS);
        net.check_agreement();
        let record = net.finals[0][&1].record();
        assert!(
            record.messages.iter().all(|e| {
                slotmesh_proto::open_envelope(e.clone(), swarm(), &Limits::default())
                    .is_ok_and(|m| m.sender() != outsider.id())
            }),
            "seed {seed}: an outsider's message entered the record"
        );
        assert_eq!(net.finals[0][&1].certificate().attempt, 0, "seed {seed}");
    }
}

/// A founder's join reaches one replica only after that replica closed the founding round
/// without it: whatever each stores verifies, and all agree.
#[test]
fn a_late_founding_join_never_yields_a_record_that_fails() {
    for seed in 0..20u64 {
        let n = 4;
        let late = (seed % n as u64) as usize;
        let slow = ((seed / n as u64 + 1 + late as u64) % n as u64) as usize;
        let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
            if from == late && to == slow && m.is_some_and(|m| turn_kind(m) == PayloadKind::Join) {
                Fate::Delay(TIMEOUT_MS + TIMEOUT_MS / 2)
            } else {
                Fate::Deliver
            }
        });
        let mut net = Net::founding(n, n - 1, seed, nemesis);
        net.run(40 * TIMEOUT_MS);
        net.check_agreement();
        net.check_records();
        for h in 0..n {
            assert!(net.final_round_of(h) >= Some(2), "seed {seed}: host {h}");
        }
    }
}

// ----- Attacks found by review, each a regression test -----

/// Host index of the proposer of `attempt` in `round` among `n` founders.
fn proposer_host(n: usize, round: u64, attempt: u32) -> usize {
    let founders: BTreeSet<AgentId> = (0..n as u8).map(|i| agent(i).id()).collect();
    let p = slotmesh_proto::proposer(&founders, round, attempt);
    (0..n)
        .find(|h| Some(agent(*h as u8).id()) == p)
        .unwrap_or(0)
}

fn in_finalize(net: &Net, h: usize, round: u64) -> bool {
    net.engines[h]
        .as_ref()
        .is_some_and(|e| e.round() == round && e.phase() == Phase::Finalize)
}

/// A voter whose own engine is muted in the agreement from round 1 on: it speaks there
/// only through what the test signs with its key.
fn muted_agreement(b: usize) -> Nemesis {
    Box::new(move |from, _to, m, _now| {
        if from == b && m.is_none_or(|m| m.round() >= 1 && m.payload().kind().is_agreement()) {
            return Fate::Drop;
        }
        Fate::Deliver
    })
}

/// One signed proposal for attempt u32::MAX from its (byzantine) proposer used to move every
/// replica there at once and overflow the attempt counter at the next timeout.
#[test]
fn a_proposal_for_a_far_attempt_neither_overflows_nor_stalls() {
    let n = 3;
    let b = proposer_host(n, 1, u32::MAX);
    let mut net = Net::new(n, 3, muted_agreement(b));
    let honest: Vec<usize> = (0..n).filter(|h| *h != b).collect();
    assert!(net.run_until(20 * TIMEOUT_MS, |net| honest
        .iter()
        .any(|h| in_finalize(net, *h, 1))));
    let far = agent(b as u8).sign(
        swarm(),
        1,
        Payload::Proposal(slotmesh_proto::Proposal {
            attempt: u32::MAX,
            digest: Digest([0xee; 32]),
        }),
    );
    for h in &honest {
        inject(&mut net, *h, far.clone());
    }
    net.run(net.now + 60 * TIMEOUT_MS);
    net.check_agreement();
    for h in &honest {
        assert!(
            net.final_round_of(*h) >= Some(1),
            "host {h} never finalized round 1"
        );
    }
}

/// A voter that signs promises for 20,000 attempts: a replica keeps its latest only, and a
/// timeout re-sends a bounded number of them.
#[test]
fn promises_for_many_attempts_are_not_kept_or_sent_again() {
    let n = 3;
    let b = proposer_host(n, 1, 0);
    let mut net = Net::new(n, 9, muted_agreement(b));
    let h = (0..n).find(|h| *h != b).unwrap_or(0);
    assert!(net.run_until(20 * TIMEOUT_MS, |net| in_finalize(net, h, 1)));
    let now = net.now;
    let Some(engine) = net.engines[h].as_mut() else {
        return;
    };
    for attempt in 1..=20_000u32 {
        let promise = agent(b as u8).sign(
            swarm(),
            1,
            Payload::Promise(slotmesh_proto::Promise {
                attempt,
                accepted: None,
            }),
        );
        engine.handle_message(promise, now);
    }
    while engine.poll_output().is_some() {}
    engine.handle_timeout(1, Phase::Finalize, now + 10 * TIMEOUT_MS);
    let mut from_b = 0;
    while let Some(output) = engine.poll_output() {
        if matches!(&output, Output::Send(m) if m.sender() == agent(b as u8).id()) {
            from_b += 1;
        }
    }
    assert!(from_b <= 1, "one timeout re-sends {from_b} of its promises");
}

/// An answer to a fetch of inputs nobody asked for, full of far-future messages and
/// newcomers' joins, is not held.
#[test]
fn unasked_inputs_are_not_held() {
    let n = 3;
    let mut net = Net::new(n, 11, Box::new(|_, _, _, _| Fate::Deliver));
    assert!(net.run_until(20 * TIMEOUT_MS, |net| in_finalize(net, 0, 1)));
    let now = net.now;
    let Some(engine) = net.engines[0].as_mut() else {
        return;
    };
    let far = 1_000_000_000u64;
    let junk: Vec<SignedMessage> = (0..200u8)
        .map(|i| claim(&agent(i.wrapping_add(50)), far, 1))
        .chain((0..200u8).map(|i| join(&agent(i.wrapping_add(50)), 2, "x")))
        .collect();
    engine.handle_inputs(1, Digest([1; 32]), junk, now);
    assert_eq!(engine.messages(far).map_or(0, |m| m.len()), 0);
    assert_eq!(engine.messages(2).map_or(0, |m| m.len()), 0);
}

/// A replica restarted in a round it voted in, with its votes of that round lost, must not
/// vote in it again: it is silenced through that round (the host driver does this from
/// the recorded spoken round), so no second certificate can be made.
#[test]
fn a_replica_restarted_in_its_voting_round_cannot_certify_it_twice() {
    let n = 3;
    let p = proposer_host(n, 1, 0);
    let others: Vec<usize> = (0..n).filter(|h| *h != p).collect();
    let (y, z) = (others[0], others[1]);
    let restarted = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = restarted.clone();
    let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
        if flag.get() {
            return Fate::Deliver;
        }
        let r1 = |m: &SignedMessage| m.round() == 1;
        let bid = m.is_some_and(|m| {
            r1(m) && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
        });
        if from == p && to == z && bid {
            return Fate::Drop;
        }
        let agreement = m.is_none_or(|m| r1(m) && m.payload().kind().is_agreement());
        if agreement && (from == p || from == y) && to == z {
            return Fate::Drop;
        }
        let vote = m.is_some_and(|m| r1(m) && turn_kind(m) == PayloadKind::CheckpointVote);
        if from == p && to == y && vote {
            return Fate::Drop;
        }
        Fate::Deliver
    });
    let mut net = Net::new(n, 13, nemesis);
    assert!(
        net.run_until(20 * TIMEOUT_MS, |net| net.final_round_of(p) >= Some(1)),
        "the schedule reaches the state the attack needs: P stored round 1"
    );
    net.engines[p] = None;
    assert!(net.run_until(net.now + 20 * TIMEOUT_MS, |net| in_finalize(net, z, 1)));
    let Some(old) = net.engines[y].take() else {
        return;
    };
    let again: Vec<SignedMessage> = old
        .messages(1)
        .map(|m| m.iter().cloned().collect())
        .unwrap_or_default();
    let now = net.now;
    let mut engine = Engine::new(
        agent(y as u8),
        old.config().clone(),
        old.state().clone(),
        now,
    );
    engine.silence_through(Some(1));
    net.engines[y] = Some(engine);
    restarted.set(true);
    net.drain(y);
    for m in again {
        inject(&mut net, y, m);
    }
    net.run(now + 60 * TIMEOUT_MS);
    net.check_agreement();
    net.check_records();
}

/// Two live voters of three, one entering the agreement more than a timeout after the
/// other: each used to move one attempt per timeout, always one attempt apart, forever.
#[test]
fn two_live_voters_of_three_meet_in_one_attempt() {
    for seed in 0..6u64 {
        for c in 0..3usize {
            for l in (0..3).filter(|l| *l != c) {
                let a = 3 - c - l;
                let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
                    let bid = m.is_some_and(|m| {
                        m.round() == 1
                            && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
                    });
                    if from == c && to == l && bid {
                        return Fate::Drop;
                    }
                    Fate::Deliver
                });
                let mut net = Net::new(3, seed, nemesis);
                net.crash_after_reveal.insert(c, 1);
                net.run(120 * TIMEOUT_MS);
                net.check_agreement();
                assert!(
                    [a, l].iter().all(|h| net.final_round_of(*h) >= Some(1)),
                    "seed {seed}, crashed {c}, laggard {l}: round 1 never finalized"
                );
            }
        }
    }
}

fn votes_at(net: &Net, h: usize, round: u64, attempt: u32) -> usize {
    net.engines[h]
        .as_ref()
        .filter(|e| e.round() == round)
        .and_then(|e| e.finality())
        .map_or(0, |f| f.votes.iter().filter(|v| v.1 == attempt).count())
}

/// A replica holds a certificate for a digest whose inputs it lacks, and the certificate's
/// first voter has crashed: it used to ask that voter, and only it, for ever.
#[test]
fn a_certificate_whose_first_voter_crashed_still_completes() {
    let n = 5;
    let p = proposer_host(n, 1, 0);
    let rest: Vec<usize> = (0..n).filter(|h| *h != p).collect();
    let x = rest
        .iter()
        .copied()
        .min_by_key(|h| agent(*h as u8).id())
        .unwrap_or(0);
    let others: Vec<usize> = rest.iter().copied().filter(|h| *h != x).collect();
    let (y, z, w) = (others[0], others[1], others[2]);
    let crashed = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = crashed.clone();
    let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
        if flag.get() {
            return Fate::Deliver;
        }
        let r1 = |m: &SignedMessage| m.round() == 1;
        let bid = m.is_some_and(|m| {
            r1(m) && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
        });
        if from == p && bid && (to == z || to == w) {
            return Fate::Drop;
        }
        let agreement = m.is_none_or(|m| r1(m) && m.payload().kind().is_agreement());
        if (from == p || from == x) && agreement {
            let vote = m.is_some_and(|m| turn_kind(m) == PayloadKind::CheckpointVote);
            if (to == y && vote) || to == w || (to == z && !vote) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    let mut net = Net::new(n, 21, nemesis);
    assert!(
        net.run_until(30 * TIMEOUT_MS, |net| votes_at(net, z, 1, 0) >= 3),
        "Z holds the attempt-0 certificate"
    );
    assert!(net.final_round_of(z) < Some(1) && net.final_round_of(y) < Some(1));
    net.engines[p] = None;
    net.engines[x] = None;
    crashed.set(true);
    let live = [y, z, w];
    net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
        live.iter().all(|h| net.final_round_of(*h) >= Some(1))
    });
    net.check_agreement();
    for h in live {
        assert!(
            net.final_round_of(h) >= Some(1),
            "host {h} never finalized round 1 with 3 of 5 voters alive"
        );
    }
}

/// A voter that signs votes for 40,000 attempts: the tally keeps a few of them.
#[test]
fn votes_for_many_attempts_are_not_kept() {
    let n = 3;
    let b = proposer_host(n, 1, 0);
    let mut net = Net::new(n, 9, muted_agreement(b));
    let h = (0..n).find(|h| *h != b).unwrap_or(0);
    assert!(net.run_until(20 * TIMEOUT_MS, |net| in_finalize(net, h, 1)));
    let now = net.now;
    let Some(engine) = net.engines[h].as_mut() else {
        return;
    };
    for attempt in 1..=40_000u32 {
        let vote = agent(b as u8).sign(
            swarm(),
            1,
            Payload::CheckpointVote(slotmesh_proto::CheckpointVote {
                attempt,
                digest: Digest([7; 32]),
            }),
        );
        engine.handle_message(vote, now);
        while engine.poll_output().is_some() {}
    }
    let kept = engine.finality().map_or(0, |f| f.votes.len());
    assert!(kept <= 4 * n, "one voter's votes kept: {kept}");
}

/// Every message takes 0.6 phase timeouts: within the liveness assumption, but two live
/// voters of three whose timers are out of phase used to leave each attempt before the
/// other's promise or proposal arrived, for ever. Timeouts that grow with the attempt let
/// them meet.
#[test]
fn two_live_voters_out_of_phase_meet_as_timeouts_grow() {
    let n = 3;
    for seed in 0..6u64 {
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Delay(600)));
        let crashed = seed as usize % n;
        net.crash_after_reveal.insert(crashed, 1);
        let live: Vec<usize> = (0..n).filter(|h| *h != crashed).collect();
        let done = net.run_until(300 * TIMEOUT_MS, |net| {
            live.iter().all(|h| net.final_round_of(*h) >= Some(2))
        });
        net.check_agreement();
        assert!(done, "seed {seed}: round 2 never finalized");
    }
}
