//! The attack plans of `mechanism_attacks.rs`: scripted attackers around the heuristic, and
//! the coalition tricks that try to get honest members charged.

use super::*;

// ----- plans -----

pub(crate) fn attacker_key() -> Identity {
    key(0xa7, 0)
}

/// The honest heuristic on the attacker's key: the baseline every attack is measured against.
pub(crate) struct Truthful {
    pub(crate) me: Identity,
}

impl Truthful {
    pub(crate) fn new() -> Truthful {
        Truthful { me: attacker_key() }
    }
}

impl Plan for Truthful {
    fn key(&self) -> &Identity {
        &self.me
    }
}

/// The claim that keeps a record consistent: what it expects (at least 1).
pub(crate) fn consistent(cx: &Ctx<'_>, me: &Identity) -> Option<u32> {
    cx.expected(&me.id())
        .map(|e| u32::try_from(e.max(1)).unwrap_or(1))
}

/// Claims `first(truth)` on its first (unchecked) claim, the truth afterwards.
pub(crate) struct FirstClaim {
    pub(crate) me: Identity,
    pub(crate) first: fn(u32) -> u32,
}

impl Plan for FirstClaim {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        if truth == 0 {
            return vec![leave(&self.me, cx.round, LeaveReason::Completed)];
        }
        let c = if cx.expected(&self.me.id()).is_none() {
            (self.first)(truth)
        } else {
            truth
        };
        vec![claim(&self.me, cx.round, c)]
    }
}

/// The truth in even rounds, 1 in odd rounds.
pub(crate) struct Alternate {
    pub(crate) me: Identity,
}

impl Plan for Alternate {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        if truth == 0 {
            return vec![leave(&self.me, cx.round, LeaveReason::Completed)];
        }
        let c = if cx.round % 2 == 1 { 1 } else { truth };
        vec![claim(&self.me, cx.round, c)]
    }
}

/// Claims 1 when that would rank it ahead of every honest claim of the round (it announces
/// last and looks at them), the truth otherwise.
pub(crate) struct OneWhenItWouldWin {
    pub(crate) me: Identity,
}

impl Plan for OneWhenItWouldWin {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        if truth == 0 {
            return vec![leave(&self.me, cx.round, LeaveReason::Completed)];
        }
        let ranked_one = cx
            .state
            .members
            .get(&self.me.id())
            .map_or(1, |m| m.ranked_claim(1));
        let shortest = cx.shortest_honest_claim().unwrap_or(u32::MAX);
        let c = if ranked_one < shortest && ranked_one < truth {
            1
        } else {
            truth
        };
        vec![claim(&self.me, cx.round, c)]
    }
}

/// Claims `fraction(truth)` on a fresh claim history and stays consistent with it; when the
/// record expects nothing more but the job is not done (a further claim would prove the
/// slots were bought), it says its job restarted (`Join::restarted`) instead, up to
/// `restarts` times, and claims afresh; after its last restart its fresh claim is the truth.
/// Before round `from` it is truthful (it banks honest rounds of trust first), and then
/// spends a restart to start lying.
pub(crate) struct UnderstateRestart {
    pub(crate) me: Identity,
    pub(crate) fraction: fn(u32) -> u32,
    pub(crate) restarts: u32,
    pub(crate) from: u64,
    pub(crate) made: u32,
}

impl UnderstateRestart {
    pub(crate) fn new(fraction: fn(u32) -> u32, restarts: u32, from: u64) -> UnderstateRestart {
        UnderstateRestart {
            me: attacker_key(),
            fraction,
            restarts,
            from,
            made: 0,
        }
    }
}

impl Plan for UnderstateRestart {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let r = cx.round;
        if truth == 0 {
            return vec![leave(&self.me, r, LeaveReason::Completed)];
        }
        let expected = cx.expected(&self.me.id());
        let fresh = |made: u32, restarts: u32, f: fn(u32) -> u32| {
            if made < restarts {
                f(truth).clamp(1, truth)
            } else {
                truth
            }
        };
        match expected {
            // First claim: unchecked.
            None if r < self.from => vec![claim(&self.me, r, truth)],
            None => {
                let c = fresh(self.made, self.restarts, self.fraction);
                vec![claim(&self.me, r, c)]
            }
            Some(e) if e == i64::from(truth) && r >= self.from && self.made < self.restarts => {
                // Honest so far, and time to lie: restart and claim short.
                self.made += 1;
                let c = (self.fraction)(truth).clamp(1, truth);
                vec![join(&self.me, r, true), claim(&self.me, r, c)]
            }
            Some(e) if e >= 1 => vec![claim(
                &self.me,
                r,
                consistent(cx, &self.me).unwrap_or(truth),
            )],
            Some(_) if self.made < self.restarts => {
                self.made += 1;
                let c = fresh(self.made, self.restarts, self.fraction);
                vec![join(&self.me, r, true), claim(&self.me, r, c)]
            }
            // Out of restarts: the truth, and the bought slots are proven.
            Some(_) => vec![claim(&self.me, r, truth)],
        }
    }
}

/// Claims three times its job first, then 1 forever.
pub(crate) struct OverThenUnder {
    pub(crate) me: Identity,
}

impl Plan for OverThenUnder {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        if truth == 0 {
            return vec![leave(&self.me, cx.round, LeaveReason::Completed)];
        }
        let c = if cx.expected(&self.me.id()).is_none() {
            truth * 3
        } else {
            1
        };
        vec![claim(&self.me, cx.round, c)]
    }
}

/// A fresh key for every slot: each key's first claim (unchecked) is 1; once it won, the key
/// leaves with `reason` and the job goes on under the next key, which joined a round before.
pub(crate) struct FreshKeys {
    pub(crate) keys: Vec<Identity>,
    pub(crate) current: usize,
    pub(crate) reason: LeaveReason,
}

impl FreshKeys {
    pub(crate) fn new(reason: LeaveReason) -> FreshKeys {
        FreshKeys {
            keys: (0..64).map(|n| key(0xa7, n)).collect(),
            current: 0,
            reason,
        }
    }
}

impl Plan for FreshKeys {
    fn key(&self) -> &Identity {
        &self.keys[self.current]
    }
    fn keys(&self) -> Vec<AgentId> {
        self.keys.iter().map(Identity::id).collect()
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let r = cx.round;
        let mut out = Vec::new();
        if truth == 0 {
            out.push(leave(self.key(), r, LeaveReason::Completed));
            return out;
        }
        if cx.expected(&self.key().id()) == Some(0)
            && self.current + 1 < self.keys.len()
            && cx.state.is_active(&self.keys[self.current + 1].id())
        {
            // The slot was won on the short claim: this key goes, the next carries on.
            out.push(leave(self.key(), r, self.reason));
            self.current += 1;
        }
        let c = consistent(cx, self.key()).unwrap_or(1);
        out.push(claim(self.key(), r, c));
        // The next key joins now, to be a member from the next round.
        if let Some(next) = self.keys.get(self.current + 1) {
            if !cx.state.members.contains_key(&next.id()) {
                out.push(join(next, r, false));
            }
        }
        out
    }
}

/// Bids everything it has every round (deposit = credits).
pub(crate) fn all_in(cx: &Ctx<'_>, me: &Identity) -> Decision {
    let credits = cx.credits(&me.id());
    Decision::Bid {
        bid: credits,
        support: None,
        deposit: credits,
    }
}

/// First claim 1 (unchecked), the truth after; bids all its credits every round.
pub(crate) struct LiarAllIn {
    pub(crate) me: Identity,
}

impl Plan for LiarAllIn {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        if truth == 0 {
            return vec![leave(&self.me, cx.round, LeaveReason::Completed)];
        }
        let c = if cx.expected(&self.me.id()).is_none() {
            1
        } else {
            truth
        };
        vec![claim(&self.me, cx.round, c)]
    }
    fn bid(&mut self, cx: &Ctx<'_>, _honest: Decision) -> Option<Decision> {
        Some(all_in(cx, &self.me))
    }
}

/// Truthful claims, all its credits bid every round.
pub(crate) struct TruthAllIn {
    pub(crate) me: Identity,
}

impl Plan for TruthAllIn {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn bid(&mut self, cx: &Ctx<'_>, _honest: Decision) -> Option<Decision> {
        Some(all_in(cx, &self.me))
    }
}

pub(crate) fn half(t: u32) -> u32 {
    t.div_ceil(2)
}

pub(crate) fn one(_: u32) -> u32 {
    1
}

pub(crate) fn show(name: &str, burst: u32, run: &Run, base: &Run) {
    let gain = match (base.attacker_done, run.attacker_done) {
        (Some(b), Some(a)) => (b as f64 - a as f64) / b as f64,
        _ => f64::NAN,
    };
    let own: Vec<_> = run
        .offences
        .iter()
        .filter(|(_, id, _)| !run.honest_ids.contains(id))
        .map(|(r, _, o)| (r, o))
        .collect();
    println!(
        "{name:<28} burst {burst}: done {:?} (truthful {:?}) gain {gain:+.3}, wins {:?}, paid {}, honest offences {:?}, own offences {own:?}",
        run.attacker_done,
        base.attacker_done,
        run.attacker_wins,
        run.attacker_paid,
        run.honest_offences(),
    );
}

pub(crate) fn third(t: u32) -> u32 {
    t.div_ceil(3)
}
pub(crate) fn less_one(t: u32) -> u32 {
    t.saturating_sub(1).max(1)
}

// ----- coalition tricks -----

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Trick {
    /// Proposes a coalition with a pledge no partner can keep (1,000,000 credits) and is its
    /// beneficiary on an understated first claim, bidding nothing.
    BigPledge,
    /// Truthful (a job of 1 slot), the shortest claim of its coalition: backed by its partners,
    /// it then makes no commit (as a crashed member would).
    NoShow,
    /// Truthful first claim, then its job "restarts" and it claims 1 in the first round the
    /// pledges are owed: its partner, reading the record, backs nobody.
    Restart,
}

pub(crate) struct CoalitionTrick {
    pub(crate) me: Identity,
    pub(crate) trick: Trick,
    pub(crate) partners: usize,
    pub(crate) pledge: u64,
    pub(crate) formed: Option<u64>,
    pub(crate) proposed_to: Vec<AgentId>,
}

impl CoalitionTrick {
    pub(crate) fn new(trick: Trick) -> CoalitionTrick {
        let (partners, pledge) = match trick {
            Trick::BigPledge => (2, 1_000_000),
            Trick::NoShow => (2, 2),
            Trick::Restart => (1, 2),
        };
        CoalitionTrick {
            me: attacker_key(),
            trick,
            partners,
            pledge,
            formed: None,
            proposed_to: Vec::new(),
        }
    }
    /// The round after the coalition formed: the first in which pledges are owed.
    pub(crate) fn owed_now(&self, round: u64) -> bool {
        self.formed.is_some_and(|f| round == f + 1)
    }
}

impl Plan for CoalitionTrick {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let r = cx.round;
        if truth == 0 {
            return vec![leave(&self.me, r, LeaveReason::Completed)];
        }
        match self.trick {
            // No claim while the coalition forms, so that its first claim is unchecked.
            Trick::BigPledge if self.formed.is_none() => Vec::new(),
            Trick::BigPledge => {
                vec![claim(&self.me, r, consistent(cx, &self.me).unwrap_or(1))]
            }
            Trick::NoShow => vec![claim(&self.me, r, truth)],
            Trick::Restart if self.owed_now(r) => {
                vec![join(&self.me, r, true), claim(&self.me, r, 1)]
            }
            Trick::Restart => {
                vec![claim(
                    &self.me,
                    r,
                    consistent(cx, &self.me).unwrap_or(truth),
                )]
            }
        }
    }
    fn negotiate(&mut self, cx: &Ctx<'_>, _honest: Decision) -> Decision {
        if self.formed.is_some() {
            return Decision::Negotiate {
                lines: Vec::new(),
                proposal: None,
            };
        }
        // Partners nobody else courts: honest members no honest proposal names.
        let courted: Vec<AgentId> = cx
            .honest
            .iter()
            .flat_map(|h| cx.messages.proposals_to(*h).map(move |_| *h))
            .collect();
        let mut partners: Vec<AgentId> = cx
            .honest
            .iter()
            .filter(|h| !courted.contains(h) && cx.state.is_active(h))
            .copied()
            .collect();
        partners.sort();
        partners.truncate(self.partners);
        self.proposed_to = partners.clone();
        Decision::Negotiate {
            lines: Vec::new(),
            proposal: Some(CoalitionProposal {
                partners,
                terms: "members back the shortest claimed job with their pledge".into(),
                duration_rounds: 8,
                pledge: self.pledge,
            }),
        }
    }
    fn accept(&mut self, _cx: &Ctx<'_>, _honest: Decision) -> Decision {
        Decision::Accept(Vec::new())
    }
    fn bid(&mut self, cx: &Ctx<'_>, honest: Decision) -> Option<Decision> {
        let nothing = Decision::Bid {
            bid: 0,
            support: None,
            deposit: 0,
        };
        match self.trick {
            Trick::BigPledge => Some(nothing),
            Trick::NoShow if self.owed_now(cx.round) => None,
            // Bids nothing while the coalition forms: it must not win and leave first.
            Trick::NoShow => Some(nothing),
            Trick::Restart => {
                let Decision::Bid { bid, .. } = honest else {
                    return Some(honest);
                };
                Some(Decision::Bid {
                    bid,
                    support: None,
                    deposit: bid,
                })
            }
        }
    }
    fn after(&mut self, outcome: &RoundOutcome, _next: &LedgerState) {
        if outcome
            .coalitions_formed
            .iter()
            .any(|c| c.proposer == self.me.id())
        {
            self.formed = Some(outcome.round);
        }
    }
}

/// Seeds of the honest members' keys every attack is played against.
pub(crate) const SEEDS: u64 = 3;

/// Round in which the attacker's job completed (`u64::MAX` if never).
pub(crate) fn done(run: &Run) -> u64 {
    run.attacker_done.unwrap_or(u64::MAX)
}

/// Plays `make`'s plan against the truthful heuristic on the same key for every burst and
/// seed; returns the cases in which the attack brought the job forward, as
/// (seed, burst, truthful round, attack round, the attack's winning rounds, offences
/// proven against the attacker), and asserts no honest member was charged anything.
pub(crate) fn gains(
    bursts: &[u32],
    make: &dyn Fn() -> Box<dyn Plan>,
) -> Vec<(u64, u32, u64, u64, Vec<u64>, usize)> {
    let mut paid = Vec::new();
    for seed in 0..SEEDS {
        for &burst in bursts {
            let base = play_seeded(burst, &mut Truthful::new(), seed);
            assert!(base.attacker_done.is_some() && base.offences.is_empty());
            let run = play_seeded(burst, make().as_mut(), seed);
            assert!(
                run.honest_offences().is_empty(),
                "seed {seed}, burst {burst}: honest members charged {:?}",
                run.honest_offences()
            );
            if done(&run) < done(&base) {
                let own = run.offences.len();
                paid.push((seed, burst, done(&base), done(&run), run.attacker_wins, own));
            }
        }
    }
    paid
}

pub(crate) const BURSTS: [u32; 7] = [3, 4, 5, 6, 7, 8, 9];
