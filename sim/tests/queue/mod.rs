//! A second driver for the mechanism's attacks, beside `mechanism::play`: honest truthful
//! `Heuristic` members that keep arriving over time (a queue in which a long job waits),
//! and an honest member whose job crashes and restarts. Written by a reviewer with a fresh
//! context for `v8_attacks.rs`; its plans are in `plans.rs`.

#![allow(dead_code)]

pub(crate) mod plans;

use crate::mechanism::*;
use slotmesh_agent::heuristic::{Heuristic, Personality};
use slotmesh_agent::{Decision, DecisionKind, Job, View};
use slotmesh_proto::{
    resolve_round, AgentId, CoalitionId, CoalitionProposal, Identity, LeaveReason, LedgerState,
    Offence, RoundMessages, RoundOutcome, SignedMessage,
};

// ----- a driver with arrivals and honest crashes -----

/// How an honest member's job comes back after a crash (its progress is lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashMode {
    /// It says so with `Join::restarted`; the join is taken `lag` rounds after the crash
    /// (0: in the same round), and it takes no turn until then (as the engine does since
    /// the review: `Engine::speaking`).
    Restart { lag: u64 },
    /// It leaves as `Departed` and comes back under a fresh key with the same job.
    FreshKey,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Crash {
    /// Index of the honest member.
    pub(crate) who: usize,
    pub(crate) round: u64,
    pub(crate) mode: CrashMode,
}

pub(crate) struct Setup {
    /// (arrival round, burst) of every honest member; arrival 0: a founder.
    pub(crate) honest: Vec<(u64, u32)>,
    pub(crate) horizon: u64,
    pub(crate) seed: u64,
    pub(crate) crash: Option<Crash>,
    /// Keep the first this many rounds (state before, messages) in which a member has debt.
    pub(crate) snapshots: usize,
}

pub(crate) struct Member {
    pub(crate) keys: Vec<Identity>,
    pub(crate) cur: usize,
    pub(crate) heuristic: Heuristic,
    pub(crate) job: Job,
    pub(crate) arrive: u64,
    pub(crate) done: Option<u64>,
    pub(crate) late_join: Option<u64>,
    /// The round its restart join is taken in: as the engine does, it takes no turn until
    /// then (through that round), so no claim of its new job meets the record of the old.
    pub(crate) silent_through: Option<u64>,
}

pub(crate) struct Stream {
    pub(crate) attacker_done: Option<u64>,
    pub(crate) attacker_wins: Vec<u64>,
    pub(crate) honest_done: Vec<Option<u64>>,
    pub(crate) honest_arrive: Vec<u64>,
    /// Every key of every honest member.
    pub(crate) honest_ids: Vec<AgentId>,
    pub(crate) offences: Vec<(u64, AgentId, Offence)>,
    pub(crate) final_state: LedgerState,
    pub(crate) snapshots: Vec<(LedgerState, Vec<SignedMessage>)>,
    /// (round, slots its job had used) of the crash, if it happened.
    pub(crate) crashed: Option<(u64, u32)>,
    /// Honest members' debt seen in any round, by (round, honest key).
    pub(crate) honest_debt: Vec<(u64, AgentId, u32)>,
}

impl Stream {
    pub(crate) fn honest_offences(&self) -> Vec<(u64, AgentId, Offence)> {
        self.offences
            .iter()
            .filter(|(_, id, _)| self.honest_ids.contains(id))
            .copied()
            .collect()
    }
    /// Mean turnaround (done - arrival + 1) of the honest members that completed, and how
    /// many did not.
    pub(crate) fn honest_turnaround(&self) -> (f64, usize) {
        let done: Vec<u64> = self
            .honest_done
            .iter()
            .zip(&self.honest_arrive)
            .filter_map(|(d, a)| d.map(|d| d + 1 - a.max(&1)))
            .collect();
        let missing = self.honest_done.len() - done.len();
        (
            done.iter().sum::<u64>() as f64 / done.len().max(1) as f64,
            missing,
        )
    }
}

pub(crate) fn put(messages: &mut RoundMessages, log: &mut Vec<SignedMessage>, m: SignedMessage) {
    messages.insert(m.clone());
    log.push(m);
}

pub(crate) fn view<'a>(
    me: AgentId,
    round: u64,
    job: Job,
    state: &'a LedgerState,
    messages: &'a RoundMessages,
    proposals: &'a [(CoalitionId, CoalitionProposal)],
) -> View<'a> {
    View {
        me,
        round,
        job,
        state,
        messages: Some(messages),
        proposals,
    }
}

/// Plays honest cooperative heuristics (`setup.honest`, arriving over time) and the
/// attacker's plan (a founder with a job of `burst`), phase by phase as `mechanism::play`
/// does, until every job is done or `setup.horizon`.
pub(crate) fn play_stream(burst: u32, plan: &mut dyn Plan, setup: &Setup) -> Stream {
    let mut honest: Vec<Member> = setup
        .honest
        .iter()
        .enumerate()
        .map(|(i, (arrive, b))| {
            let n = setup.seed * 100_000 + i as u64 * 2;
            Member {
                keys: vec![key(0x5e, n), key(0x5e, n + 1)],
                cur: 0,
                heuristic: Heuristic::new(Personality::Cooperative, 0.0, 1_000 + n),
                job: Job {
                    burst: *b,
                    remaining: *b,
                },
                arrive: *arrive,
                done: None,
                late_join: None,
                silent_through: None,
            }
        })
        .collect();
    let honest_ids: Vec<AgentId> = honest
        .iter()
        .flat_map(|m| m.keys.iter().map(Identity::id))
        .collect();
    let mut attacker_heuristic = Heuristic::new(Personality::Cooperative, 0.0, 99);
    let mut remaining = burst;
    let mut run = Stream {
        attacker_done: None,
        attacker_wins: Vec::new(),
        honest_done: vec![None; honest.len()],
        honest_arrive: honest.iter().map(|h| h.arrive).collect(),
        honest_ids: honest_ids.clone(),
        offences: Vec::new(),
        final_state: LedgerState::genesis(swarm()),
        snapshots: Vec::new(),
        crashed: None,
        honest_debt: Vec::new(),
    };
    let no_proposals: Vec<(CoalitionId, CoalitionProposal)> = Vec::new();

    let mut state = LedgerState::genesis(swarm());
    let mut founding = RoundMessages::new(0);
    for h in honest.iter().filter(|h| h.arrive == 0) {
        founding.insert(join(&h.keys[0], 0, false));
    }
    founding.insert(join(plan.key(), 0, false));
    state = resolve_round(&state, &founding).0;

    for round in 1..setup.horizon {
        let any_active = honest
            .iter()
            .any(|h| h.keys.iter().any(|k| state.is_active(&k.id())))
            || plan.keys().iter().any(|k| state.is_active(k));
        if honest.iter().all(|h| h.done.is_some()) && run.attacker_done.is_some() && !any_active {
            break;
        }
        let mut messages = RoundMessages::new(round);
        let mut log: Vec<SignedMessage> = Vec::new();
        // Arrivals, crashes, late restart joins.
        for (i, h) in honest.iter_mut().enumerate() {
            if h.done.is_some() {
                continue;
            }
            let id = h.keys[h.cur].id();
            if !state.members.contains_key(&id) {
                if round >= h.arrive {
                    put(&mut messages, &mut log, join(&h.keys[h.cur], round, false));
                }
                continue;
            }
            if let Some(c) = setup.crash.filter(|c| c.who == i && c.round == round) {
                if state.is_active(&id) && h.job.remaining > 0 {
                    run.crashed = Some((round, h.job.burst - h.job.remaining));
                    h.job.remaining = h.job.burst;
                    match c.mode {
                        CrashMode::Restart { lag: 0 } => {
                            put(&mut messages, &mut log, join(&h.keys[h.cur], round, true));
                            h.silent_through = Some(round);
                        }
                        CrashMode::Restart { lag } => {
                            h.late_join = Some(round + lag);
                            h.silent_through = Some(round + lag);
                        }
                        CrashMode::FreshKey => {
                            put(
                                &mut messages,
                                &mut log,
                                leave(&h.keys[h.cur], round, LeaveReason::Departed),
                            );
                            h.cur = 1;
                            put(&mut messages, &mut log, join(&h.keys[1], round, false));
                        }
                    }
                }
            }
            if h.late_join == Some(round) {
                put(&mut messages, &mut log, join(&h.keys[h.cur], round, true));
                h.late_join = None;
            }
        }
        // Announce: honest members first.
        for h in honest.iter_mut() {
            let me = &h.keys[h.cur];
            if !state.is_active(&me.id()) || h.silent_through.is_some_and(|r| round <= r) {
                continue;
            }
            if h.job.remaining == 0 {
                put(
                    &mut messages,
                    &mut log,
                    leave(me, round, LeaveReason::Completed),
                );
                continue;
            }
            let v = view(me.id(), round, h.job, &state, &messages, &no_proposals);
            let d = h.heuristic.decision(DecisionKind::Claim, &v);
            if let Some(m) = decision_message(me, round, d) {
                put(&mut messages, &mut log, m);
            }
        }
        {
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            for m in plan.announce(&cx, remaining) {
                put(&mut messages, &mut log, m);
            }
        }
        let attacker_job = Job { burst, remaining };
        let playing = |h: &Member, state: &LedgerState| {
            state.is_active(&h.keys[h.cur].id())
                && h.job.remaining > 0
                && h.silent_through.is_none_or(|r| round > r)
        };
        // Negotiate.
        let mut turn = Vec::new();
        for h in honest.iter_mut().filter(|h| playing(h, &state)) {
            let me = &h.keys[h.cur];
            let v = view(me.id(), round, h.job, &state, &messages, &no_proposals);
            let d = h.heuristic.decision(DecisionKind::Negotiate, &v);
            turn.extend(decision_message(me, round, d));
        }
        if state.is_active(&plan.key().id()) {
            let v = view(
                plan.key().id(),
                round,
                attacker_job,
                &state,
                &messages,
                &no_proposals,
            );
            let honest_d = attacker_heuristic.decision(DecisionKind::Negotiate, &v);
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            let d = plan.negotiate(&cx, honest_d);
            turn.extend(decision_message(plan.key(), round, d));
        }
        for m in turn.drain(..) {
            put(&mut messages, &mut log, m);
        }
        // Coalition.
        for h in honest.iter_mut().filter(|h| playing(h, &state)) {
            let me = &h.keys[h.cur];
            let proposals = proposals_to(&messages, round, me.id());
            let v = view(me.id(), round, h.job, &state, &messages, &proposals);
            let d = h.heuristic.decision(DecisionKind::Coalition, &v);
            turn.extend(decision_message(me, round, d));
        }
        if state.is_active(&plan.key().id()) {
            let proposals = proposals_to(&messages, round, plan.key().id());
            let v = view(
                plan.key().id(),
                round,
                attacker_job,
                &state,
                &messages,
                &proposals,
            );
            let honest_d = attacker_heuristic.decision(DecisionKind::Coalition, &v);
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            let d = plan.accept(&cx, honest_d);
            turn.extend(decision_message(plan.key(), round, d));
        }
        for m in turn.drain(..) {
            put(&mut messages, &mut log, m);
        }
        // Commit and reveal.
        for h in honest.iter_mut().filter(|h| playing(h, &state)) {
            let me = &h.keys[h.cur];
            let v = view(me.id(), round, h.job, &state, &messages, &no_proposals);
            let d = h.heuristic.decision(DecisionKind::Bid, &v);
            let (c, r) = sealed(me, round, &d);
            turn.push(c);
            turn.push(r);
        }
        if state.is_active(&plan.key().id()) && messages.claims().contains_key(&plan.key().id()) {
            let v = view(
                plan.key().id(),
                round,
                attacker_job,
                &state,
                &messages,
                &no_proposals,
            );
            let honest_d = attacker_heuristic.decision(DecisionKind::Bid, &v);
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            if let Some(d) = plan.bid(&cx, honest_d) {
                let (c, r) = sealed(plan.key(), round, &d);
                turn.push(c);
                if plan.reveal(&cx) {
                    turn.push(r);
                }
            }
        }
        for m in turn.drain(..) {
            put(&mut messages, &mut log, m);
        }

        if run.snapshots.len() < setup.snapshots && state.members.values().any(|m| m.bought > 0) {
            run.snapshots.push((state.clone(), log.clone()));
        }
        let (next, outcome) = resolve_round(&state, &messages);
        for (id, offence) in &outcome.offences {
            run.offences.push((round, *id, *offence));
        }
        for id in &honest_ids {
            if let Some(m) = next.members.get(id).filter(|m| m.bought > 0) {
                run.honest_debt.push((round, *id, m.bought));
            }
        }
        if let Some(winner) = outcome.winner {
            if let Some(i) = honest.iter().position(|h| h.keys[h.cur].id() == winner) {
                let h = &mut honest[i];
                h.job.remaining = h.job.remaining.saturating_sub(1);
                if h.job.remaining == 0 {
                    h.done = Some(round);
                    run.honest_done[i] = Some(round);
                }
            } else if plan.keys().contains(&winner) {
                remaining = remaining.saturating_sub(1);
                run.attacker_wins.push(round);
                if remaining == 0 {
                    run.attacker_done = Some(round);
                }
            }
        }
        plan.after(&outcome, &next);
        state = next;
    }
    run.final_state = state;
    run
}

/// A reproducible stream of honest arrivals: from round 1 until `until`, one arrival in a
/// round with probability `permille`/1000, bursts uniform in `lo..=hi`; plus `founders`.
pub(crate) fn arrivals(
    seed: u64,
    founders: &[u32],
    until: u64,
    permille: u64,
    lo: u32,
    hi: u32,
) -> Vec<(u64, u32)> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    let mut out: Vec<(u64, u32)> = founders.iter().map(|b| (0, *b)).collect();
    for round in 1..until {
        if next() % 1000 < permille {
            let span = u64::from(hi - lo + 1);
            out.push((round, lo + (next() % span) as u32));
        }
    }
    out
}

/// The queue the long-run attacks are played in: honest jobs of 2 to 8 slots arriving for
/// 300 rounds (18% of rounds, mean burst 5: a load of 0.75 / 1.17 / 0.80 / 0.73 for seeds
/// 0-3), and six founders.
pub(crate) fn queue(seed: u64) -> Setup {
    Setup {
        honest: arrivals(seed, &[2, 3, 4, 5, 6, 7], 300, 180, 2, 8),
        horizon: 1_500,
        seed,
        crash: None,
        snapshots: 0,
    }
}

pub(crate) const QUEUE_SEEDS: u64 = 4;

// ----- attacker plans -----

/// Understates: its fresh claim is `first(truth)`, and it then claims exactly what the record
/// expects, winning slot after slot on it (every claim consistent, no lie proven). When the
/// record expects 1 it either claims 1 and wins, after which its next claim (the truth)
/// proves one slot bought (`idle: false`), or (`idle: true`) claims 1 and makes no bid that
/// round, so that its next claim, the truth, comes with no slot won since the last claim:
/// a lie of `truth - 1`, and nothing proven bought. With `restart_at`, it is truthful until
/// that round and until its public trust reaches `bank_trust`, then says its job restarted
/// and claims short afresh.
pub(crate) struct Countdown {
    pub(crate) me: Identity,
    pub(crate) first: fn(u32) -> u32,
    pub(crate) idle: bool,
    pub(crate) restart_at: Option<u64>,
    pub(crate) bank_trust: u32,
    pub(crate) restarted: bool,
    pub(crate) idled: Option<u64>,
    pub(crate) revealed: bool,
    /// Slots won while its claims were below the truth.
    pub(crate) understated_wins: u32,
    /// Offences proven against it: (round, offence).
    pub(crate) charged: Vec<(u64, Offence)>,
}

impl Countdown {
    pub(crate) fn new(first: fn(u32) -> u32, idle: bool) -> Countdown {
        Countdown {
            me: attacker_key(),
            first,
            idle,
            restart_at: None,
            bank_trust: 0,
            restarted: false,
            idled: None,
            revealed: false,
            understated_wins: 0,
            charged: Vec::new(),
        }
    }
    pub(crate) fn banking(first: fn(u32) -> u32, idle: bool, from: u64, trust: u32) -> Countdown {
        Countdown {
            restart_at: Some(from),
            bank_trust: trust,
            ..Countdown::new(first, idle)
        }
    }
    pub(crate) fn lying(&self) -> bool {
        !self.revealed && (self.restart_at.is_none() || self.restarted)
    }
}

impl Plan for Countdown {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let (me, r) = (&self.me, cx.round);
        if truth == 0 {
            return vec![leave(me, r, LeaveReason::Completed)];
        }
        if self.revealed {
            return vec![claim(me, r, truth)];
        }
        if let Some(from) = self.restart_at {
            if !self.restarted {
                let trust = cx.state.members.get(&me.id()).map_or(0, |m| m.trust);
                if r >= from && trust >= self.bank_trust && truth > 1 {
                    self.restarted = true;
                    let c = (self.first)(truth).clamp(1, truth);
                    return vec![join(me, r, true), claim(me, r, c)];
                }
                return vec![claim(me, r, truth)];
            }
        }
        let c = match cx.expected(&me.id()) {
            None => (self.first)(truth).clamp(1, truth),
            Some(_) if self.idled.is_some() => {
                self.revealed = true;
                truth
            }
            Some(e) if e >= 2 => u32::try_from(e).unwrap(),
            Some(1) if self.idle && truth > 1 => {
                self.idled = Some(r);
                1
            }
            Some(1) => 1,
            Some(_) => {
                self.revealed = true;
                truth
            }
        };
        vec![claim(me, r, c)]
    }
    fn bid(&mut self, cx: &Ctx<'_>, honest: Decision) -> Option<Decision> {
        (self.idled != Some(cx.round)).then_some(honest)
    }
    fn after(&mut self, outcome: &RoundOutcome, _next: &LedgerState) {
        if outcome.winner == Some(self.me.id()) && self.lying() {
            self.understated_wins += 1;
        }
        for (id, o) in &outcome.offences {
            if *id == self.me.id() {
                self.charged.push((outcome.round, *o));
            }
        }
    }
}

pub(crate) fn two(_: u32) -> u32 {
    2
}
pub(crate) fn three(_: u32) -> u32 {
    3
}
pub(crate) fn four(_: u32) -> u32 {
    4
}

/// Gains of `make`'s plan against the truthful heuristic in the arrival queue, per seed:
/// (seed, truthful done, attack done, attack's offences).
pub(crate) fn queue_gains(
    burst: u32,
    make: &dyn Fn() -> Box<dyn Plan>,
) -> Vec<(u64, u64, u64, usize)> {
    let mut out = Vec::new();
    for seed in 0..QUEUE_SEEDS {
        let setup = queue(seed);
        let base = play_stream(burst, &mut Truthful::new(), &setup);
        let run = play_stream(burst, make().as_mut(), &setup);
        let own = run
            .offences
            .iter()
            .filter(|(_, id, _)| *id == attacker_key().id())
            .count();
        out.push((
            seed,
            base.attacker_done.unwrap_or(u64::MAX),
            run.attacker_done.unwrap_or(u64::MAX),
            own,
        ));
    }
    out
}

/// (done without a crash, done with each crash mode) of honest member `who` crashing in
/// `round`, and the run of each mode.
pub(crate) fn crash_runs(setup: &Setup, who: usize, round: u64) -> Vec<(String, Stream)> {
    let mut out = Vec::new();
    let modes = [
        None,
        Some(CrashMode::Restart { lag: 0 }),
        Some(CrashMode::Restart { lag: 1 }),
        Some(CrashMode::FreshKey),
    ];
    for mode in modes {
        let s = Setup {
            honest: setup.honest.clone(),
            horizon: setup.horizon,
            seed: setup.seed,
            crash: mode.map(|mode| Crash { who, round, mode }),
            snapshots: 0,
        };
        let run = play_stream(8, &mut Truthful::new(), &s);
        out.push((format!("{mode:?}"), run));
    }
    out
}

pub(crate) fn fixed(seed: u64) -> Setup {
    Setup {
        honest: HONEST_BURSTS.iter().map(|b| (0, *b)).collect(),
        horizon: MAX_ROUNDS,
        seed,
        crash: None,
        snapshots: 0,
    }
}
