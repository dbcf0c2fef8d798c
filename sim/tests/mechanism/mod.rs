//! The harness of `mechanism_attacks.rs`: honest heuristic members and a scripted attacker,
//! rounds resolved with `slotmesh_proto::resolve_round` directly, and the attack plans.

#![allow(dead_code)]

use slotmesh_agent::heuristic::{Heuristic, Personality};
use slotmesh_agent::{Decision, DecisionKind, Job, View};
use slotmesh_proto::{
    commitment, resolve_round, AgentId, Claim, CoalitionAcceptance, CoalitionId, CoalitionProposal,
    Commit, Identity, Join, Leave, LeaveReason, LedgerState, Negotiation, Offence, Payload, Reveal,
    RoundMessages, RoundOutcome, SignedMessage, SwarmId,
};

mod plans;
pub(crate) use plans::*;

/// Rounds any run is allowed (27 honest slots plus the attacker's: far more than enough).
pub(crate) const MAX_ROUNDS: u64 = 120;

pub(crate) fn swarm() -> SwarmId {
    SwarmId::from_name("mechanism-attacks")
}

pub(crate) fn key(tag: u8, n: u64) -> Identity {
    let mut secret = [tag; 32];
    secret[..8].copy_from_slice(&n.to_le_bytes());
    Identity::from_secret(secret)
}

pub(crate) fn sign(who: &Identity, round: u64, payload: Payload) -> SignedMessage {
    who.sign(swarm(), round, payload)
}

pub(crate) fn join(who: &Identity, round: u64, restarted: bool) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Join(Join {
            name: "agent".into(),
            founders: Vec::new(),
            absence_limit: 0,
            restarted,
        }),
    )
}

pub(crate) fn claim(who: &Identity, round: u64, remaining: u32) -> SignedMessage {
    sign(who, round, Payload::Claim(Claim { remaining }))
}

pub(crate) fn leave(who: &Identity, round: u64, reason: LeaveReason) -> SignedMessage {
    sign(who, round, Payload::Leave(Leave { reason }))
}

/// A commit and its reveal for `decision` (a `Decision::Bid`).
pub(crate) fn sealed(
    who: &Identity,
    round: u64,
    decision: &Decision,
) -> (SignedMessage, SignedMessage) {
    let Decision::Bid {
        bid,
        support,
        deposit,
    } = decision
    else {
        panic!("not a bid: {decision:?}");
    };
    let mut nonce = [0u8; 32];
    nonce[..8].copy_from_slice(&round.to_le_bytes());
    nonce[8..16].copy_from_slice(&who.id().0[..8]);
    let commit = Commit {
        commitment: commitment(round, who.id(), *bid, *support, nonce),
        deposit: *deposit,
    };
    let reveal = Reveal {
        bid: *bid,
        support: *support,
        nonce,
    };
    (
        sign(who, round, Payload::Commit(commit)),
        sign(who, round, Payload::Reveal(reveal)),
    )
}

pub(crate) fn decision_message(
    who: &Identity,
    round: u64,
    decision: Decision,
) -> Option<SignedMessage> {
    match decision {
        Decision::Claim(c) => Some(claim(who, round, c)),
        Decision::Negotiate { lines, proposal } => {
            (!lines.is_empty() || proposal.is_some()).then(|| {
                sign(
                    who,
                    round,
                    Payload::Negotiation(Negotiation { lines, proposal }),
                )
            })
        }
        Decision::Accept(accepted) => (!accepted.is_empty()).then(|| {
            sign(
                who,
                round,
                Payload::CoalitionAcceptance(CoalitionAcceptance { accepted }),
            )
        }),
        Decision::Bid { .. } => None,
    }
}

pub(crate) fn proposals_to(
    messages: &RoundMessages,
    round: u64,
    me: AgentId,
) -> Vec<(CoalitionId, CoalitionProposal)> {
    messages
        .proposals_to(me)
        .map(|(proposer, p)| (CoalitionId { round, proposer }, p.clone()))
        .collect()
}

/// What the attacker's plan sees when it decides.
pub(crate) struct Ctx<'a> {
    pub(crate) round: u64,
    pub(crate) state: &'a LedgerState,
    pub(crate) messages: &'a RoundMessages,
    /// The honest members' ids.
    pub(crate) honest: &'a [AgentId],
}

impl Ctx<'_> {
    /// What the record expects `id` to claim (its last ranked claim less the slots won since).
    pub(crate) fn expected(&self, id: &AgentId) -> Option<i64> {
        self.state.members.get(id)?.expected_remaining()
    }
    pub(crate) fn credits(&self, id: &AgentId) -> u64 {
        self.state.members.get(id).map_or(0, |m| m.credits)
    }
    /// The shortest claim an honest member made this round.
    pub(crate) fn shortest_honest_claim(&self) -> Option<u32> {
        self.honest
            .iter()
            .filter_map(|id| self.messages.claims().get(id).copied())
            .min()
    }
}

/// An attacker's plan. The defaults play the honest heuristic's decisions on the plan's
/// current key (the truthful baseline).
pub(crate) trait Plan {
    /// The key it plays this round.
    fn key(&self) -> &Identity;
    /// Every key it ever signs with (a win by any of them is a slot of its job).
    fn keys(&self) -> Vec<AgentId> {
        vec![self.key().id()]
    }
    /// Announce phase; `truth` is the true remaining burst (0 when the job is done).
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let me = self.key();
        if truth == 0 {
            vec![leave(me, cx.round, LeaveReason::Completed)]
        } else {
            vec![claim(me, cx.round, truth)]
        }
    }
    fn negotiate(&mut self, _cx: &Ctx<'_>, honest: Decision) -> Decision {
        honest
    }
    fn accept(&mut self, _cx: &Ctx<'_>, honest: Decision) -> Decision {
        honest
    }
    /// The sealed bid (`None`: no commit at all).
    fn bid(&mut self, _cx: &Ctx<'_>, honest: Decision) -> Option<Decision> {
        Some(honest)
    }
    /// Whether it reveals the commit it made.
    fn reveal(&mut self, _cx: &Ctx<'_>) -> bool {
        true
    }
    /// Called after each resolved round.
    fn after(&mut self, _outcome: &RoundOutcome, _next: &LedgerState) {}
}

pub(crate) struct HonestAgent {
    pub(crate) id: Identity,
    pub(crate) heuristic: Heuristic,
    pub(crate) job: Job,
    pub(crate) done: Option<u64>,
}

/// The result of one run.
pub(crate) struct Run {
    /// Round in which the attacker's last slot was won.
    pub(crate) attacker_done: Option<u64>,
    /// Rounds the attacker's job won slots in.
    pub(crate) attacker_wins: Vec<u64>,
    /// What the attacker (winning) paid in total from its own bids, and what its
    /// supporters paid for it.
    pub(crate) attacker_paid: u64,
    pub(crate) honest_ids: Vec<AgentId>,
    pub(crate) honest_done: Vec<Option<u64>>,
    /// Every proven offence: (round, member, offence).
    pub(crate) offences: Vec<(u64, AgentId, Offence)>,
    pub(crate) final_state: LedgerState,
}

impl Run {
    pub(crate) fn honest_offences(&self) -> Vec<(u64, usize, Offence)> {
        self.offences
            .iter()
            .filter_map(|(r, id, o)| {
                self.honest_ids
                    .iter()
                    .position(|h| h == id)
                    .map(|i| (*r, i, *o))
            })
            .collect()
    }
}

pub(crate) const HONEST_BURSTS: [u32; 6] = [2, 3, 4, 5, 6, 7];

/// Honest cooperative heuristics with jobs of `HONEST_BURSTS` and the attacker (a job of
/// `burst`), all founders of round 0; rounds until every job is done (or `MAX_ROUNDS`).
pub(crate) fn play(burst: u32, plan: &mut dyn Plan) -> Run {
    play_seeded(burst, plan, 0)
}

/// As [`play`], the honest members' keys drawn from `seed` (another id order, other ties).
pub(crate) fn play_seeded(burst: u32, plan: &mut dyn Plan, seed: u64) -> Run {
    let mut honest: Vec<HonestAgent> = HONEST_BURSTS
        .iter()
        .enumerate()
        .map(|(i, b)| HonestAgent {
            id: key(0x11, seed * 16 + i as u64),
            heuristic: Heuristic::new(Personality::Cooperative, 0.0, 100 + seed * 16 + i as u64),
            job: Job {
                burst: *b,
                remaining: *b,
            },
            done: None,
        })
        .collect();
    let honest_ids: Vec<AgentId> = honest.iter().map(|h| h.id.id()).collect();
    let mut attacker_heuristic = Heuristic::new(Personality::Cooperative, 0.0, 99);
    let mut remaining = burst;
    let mut run = Run {
        attacker_done: None,
        attacker_wins: Vec::new(),
        attacker_paid: 0,
        honest_ids: honest_ids.clone(),
        honest_done: vec![None; honest.len()],
        offences: Vec::new(),
        final_state: LedgerState::genesis(swarm()),
    };

    // Round 0: everyone joins.
    let mut state = LedgerState::genesis(swarm());
    let mut founding = RoundMessages::new(0);
    for h in &honest {
        founding.insert(join(&h.id, 0, false));
    }
    founding.insert(join(plan.key(), 0, false));
    state = resolve_round(&state, &founding).0;

    for round in 1..MAX_ROUNDS {
        let honest_done = honest.iter().all(|h| h.done.is_some());
        let any_active = honest.iter().any(|h| state.is_active(&h.id.id()))
            || plan.keys().iter().any(|k| state.is_active(k));
        if honest_done && run.attacker_done.is_some() && !any_active {
            break;
        }
        let mut messages = RoundMessages::new(round);
        let no_proposals: Vec<(CoalitionId, CoalitionProposal)> = Vec::new();
        // Announce: honest members first.
        for h in honest.iter_mut().filter(|h| state.is_active(&h.id.id())) {
            if h.job.remaining == 0 {
                messages.insert(leave(&h.id, round, LeaveReason::Completed));
                continue;
            }
            let view = View {
                me: h.id.id(),
                round,
                job: h.job,
                state: &state,
                messages: Some(&messages),
                proposals: &no_proposals,
            };
            let d = h.heuristic.decision(DecisionKind::Claim, &view);
            if let Some(m) = decision_message(&h.id, round, d) {
                messages.insert(m);
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
                messages.insert(m);
            }
        }
        let attacker_job = Job { burst, remaining };
        // Negotiate.
        let mut negotiation = Vec::new();
        for h in honest.iter_mut().filter(|h| state.is_active(&h.id.id())) {
            if h.job.remaining == 0 {
                continue;
            }
            let view = View {
                me: h.id.id(),
                round,
                job: h.job,
                state: &state,
                messages: Some(&messages),
                proposals: &no_proposals,
            };
            let d = h.heuristic.decision(DecisionKind::Negotiate, &view);
            negotiation.extend(decision_message(&h.id, round, d));
        }
        for m in negotiation.drain(..) {
            messages.insert(m);
        }
        if state.is_active(&plan.key().id()) {
            let view = View {
                me: plan.key().id(),
                round,
                job: attacker_job,
                state: &state,
                messages: Some(&messages),
                proposals: &no_proposals,
            };
            let honest_d = attacker_heuristic.decision(DecisionKind::Negotiate, &view);
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            let d = plan.negotiate(&cx, honest_d);
            let me = plan.key();
            negotiation.extend(decision_message(me, round, d));
        }
        for m in negotiation {
            messages.insert(m);
        }
        // Coalition.
        let mut acceptances = Vec::new();
        for h in honest.iter_mut().filter(|h| state.is_active(&h.id.id())) {
            if h.job.remaining == 0 {
                continue;
            }
            let proposals = proposals_to(&messages, round, h.id.id());
            let view = View {
                me: h.id.id(),
                round,
                job: h.job,
                state: &state,
                messages: Some(&messages),
                proposals: &proposals,
            };
            let d = h.heuristic.decision(DecisionKind::Coalition, &view);
            acceptances.extend(decision_message(&h.id, round, d));
        }
        if state.is_active(&plan.key().id()) {
            let proposals = proposals_to(&messages, round, plan.key().id());
            let view = View {
                me: plan.key().id(),
                round,
                job: attacker_job,
                state: &state,
                messages: Some(&messages),
                proposals: &proposals,
            };
            let honest_d = attacker_heuristic.decision(DecisionKind::Coalition, &view);
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            let d = plan.accept(&cx, honest_d);
            acceptances.extend(decision_message(plan.key(), round, d));
        }
        for m in acceptances {
            messages.insert(m);
        }
        // Commit and reveal.
        let mut sealed_bids = Vec::new();
        for h in honest.iter_mut().filter(|h| state.is_active(&h.id.id())) {
            if h.job.remaining == 0 {
                continue;
            }
            let view = View {
                me: h.id.id(),
                round,
                job: h.job,
                state: &state,
                messages: Some(&messages),
                proposals: &no_proposals,
            };
            let d = h.heuristic.decision(DecisionKind::Bid, &view);
            let (c, r) = sealed(&h.id, round, &d);
            sealed_bids.push(c);
            sealed_bids.push(r);
        }
        if state.is_active(&plan.key().id()) && messages.claims().contains_key(&plan.key().id()) {
            let view = View {
                me: plan.key().id(),
                round,
                job: attacker_job,
                state: &state,
                messages: Some(&messages),
                proposals: &no_proposals,
            };
            let honest_d = attacker_heuristic.decision(DecisionKind::Bid, &view);
            let cx = Ctx {
                round,
                state: &state,
                messages: &messages,
                honest: &honest_ids,
            };
            if let Some(d) = plan.bid(&cx, honest_d) {
                let (c, r) = sealed(plan.key(), round, &d);
                sealed_bids.push(c);
                if plan.reveal(&cx) {
                    sealed_bids.push(r);
                }
            }
        }
        for m in sealed_bids {
            messages.insert(m);
        }

        let (next, outcome) = resolve_round(&state, &messages);
        for (id, offence) in &outcome.offences {
            run.offences.push((round, *id, *offence));
        }
        if let Some(winner) = outcome.winner {
            if let Some(i) = honest_ids.iter().position(|h| *h == winner) {
                let h = &mut honest[i];
                h.job.remaining = h.job.remaining.saturating_sub(1);
                if h.job.remaining == 0 {
                    h.done = Some(round);
                    run.honest_done[i] = Some(round);
                }
            } else if plan.keys().contains(&winner) {
                remaining = remaining.saturating_sub(1);
                run.attacker_wins.push(round);
                run.attacker_paid += outcome.price;
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
