//! The attacker plans of `v8_attacks.rs` that need more than `mechanism::plans`: a coalition
//! beneficiary that vanishes from the rule's view, an under-claimer that comes back, and the
//! two-member duel and permutations of the saturation and ordering checks.

use super::*;
/// How the beneficiary of a coalition disappears from the rule's view in the round pledges
/// are first owed, while honest partners still see its claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vanish {
    /// Two different claims (1, then 2): the rule sees no claim (its turn is equivocated),
    /// `RoundMessages::claims` (what `View::ranked_claim` reads) holds the first.
    Equivocate,
    /// A claim of 1 and a `Departed` leave: the rule takes the leave and skips the claim.
    Leave,
}

/// A job of 1 slot (truthful claims of 1, the shortest of any coalition), proposing to two
/// honest members nobody else courts, bidding 0 while the coalition forms; in the first round
/// pledges are owed it vanishes from the rule's view as `how` says.
pub(crate) struct VanishingBeneficiary {
    pub(crate) me: Identity,
    pub(crate) how: Vanish,
    pub(crate) formed: Option<u64>,
}

impl VanishingBeneficiary {
    pub(crate) fn owed_now(&self, round: u64) -> bool {
        self.formed.is_some_and(|f| round == f + 1)
    }
}

impl Plan for VanishingBeneficiary {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let (me, r) = (&self.me, cx.round);
        if truth == 0 {
            return vec![leave(me, r, LeaveReason::Completed)];
        }
        if !self.owed_now(r) {
            return vec![claim(me, r, truth)];
        }
        match self.how {
            Vanish::Equivocate => vec![claim(me, r, 1), claim(me, r, 2)],
            Vanish::Leave => vec![claim(me, r, 1), leave(me, r, LeaveReason::Departed)],
        }
    }
    fn negotiate(&mut self, cx: &Ctx<'_>, _honest: Decision) -> Decision {
        if self.formed.is_some() {
            return Decision::Negotiate {
                lines: Vec::new(),
                proposal: None,
            };
        }
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
        partners.truncate(2);
        Decision::Negotiate {
            lines: Vec::new(),
            proposal: Some(CoalitionProposal {
                partners,
                terms: "members back the shortest claimed job with their pledge".into(),
                duration_rounds: 8,
                pledge: 2,
            }),
        }
    }
    fn accept(&mut self, _cx: &Ctx<'_>, _honest: Decision) -> Decision {
        Decision::Accept(Vec::new())
    }
    fn bid(&mut self, cx: &Ctx<'_>, honest: Decision) -> Option<Decision> {
        if self.owed_now(cx.round) {
            return Some(honest);
        }
        Some(Decision::Bid {
            bid: 0,
            support: None,
            deposit: 0,
        })
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

/// (seed, round, honest index, offence) charged to honest members, over every seed.
pub(crate) fn vanish_charges(how: Vanish) -> Vec<(u64, u64, usize, Offence)> {
    let mut charged = Vec::new();
    for seed in 0..SEEDS {
        let mut plan = VanishingBeneficiary {
            me: attacker_key(),
            how,
            formed: None,
        };
        let run = play_seeded(1, &mut plan, seed);
        assert!(
            plan.formed.is_some(),
            "seed {seed}: the coalition never formed"
        );
        charged.extend(
            run.honest_offences()
                .into_iter()
                .map(|(r, i, o)| (seed, r, i, o)),
        );
    }
    charged
}

/// How an under-claimer comes back after its slot was won on a first claim of 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Return {
    /// Silent until suspended, then a plain rejoin.
    Rejoin,
    /// Silent until suspended, then a rejoin saying its job restarted.
    RejoinRestarted,
    /// Leaves as `Departed`, then joins again with the same key.
    Departed,
}

pub(crate) struct ComeBack {
    pub(crate) me: Identity,
    pub(crate) how: Return,
    pub(crate) won: bool,
    pub(crate) gone: bool,
}

impl Plan for ComeBack {
    fn key(&self) -> &Identity {
        &self.me
    }
    fn announce(&mut self, cx: &Ctx<'_>, truth: u32) -> Vec<SignedMessage> {
        let (me, r) = (&self.me, cx.round);
        if truth == 0 {
            return vec![leave(me, r, LeaveReason::Completed)];
        }
        let record = cx.state.members.get(&me.id()).unwrap();
        if !self.won {
            return vec![claim(me, r, 1)];
        }
        if !self.gone {
            self.gone = true;
            if self.how == Return::Departed {
                return vec![leave(me, r, LeaveReason::Departed)];
            }
        }
        if record.is_active() {
            return vec![claim(me, r, truth)];
        }
        match self.how {
            Return::Rejoin => vec![join(me, r, false)],
            Return::RejoinRestarted => vec![join(me, r, true)],
            Return::Departed => vec![join(me, r, false)],
        }
    }
    fn after(&mut self, outcome: &RoundOutcome, _next: &LedgerState) {
        self.won |= outcome.winner == Some(self.me.id());
    }
}

/// A two-member state after the founding round: the attacker and one honest member.
pub(crate) fn pair() -> (LedgerState, Identity, Identity) {
    let a = attacker_key();
    let h = key(0x11, 7);
    let mut founding = RoundMessages::new(0);
    founding.insert(join(&a, 0, false));
    founding.insert(join(&h, 0, false));
    let state = resolve_round(&LedgerState::genesis(swarm()), &founding).0;
    (state, a, h)
}

/// One round in which `a` claims `ca` and `h` claims `ch`, both bidding 10; joins first.
pub(crate) fn duel(
    state: &LedgerState,
    a: &Identity,
    ca: u32,
    h: &Identity,
    ch: u32,
    extra: Vec<SignedMessage>,
) -> (LedgerState, RoundOutcome) {
    let r = state.next_round;
    let mut m = RoundMessages::new(r);
    for x in extra {
        m.insert(x);
    }
    let bid = Decision::Bid {
        bid: 10,
        support: None,
        deposit: 10,
    };
    for (who, c) in [(a, ca), (h, ch)] {
        m.insert(claim(who, r, c));
        let (commit, reveal) = sealed(who, r, &bid);
        m.insert(commit);
        m.insert(reveal);
    }
    resolve_round(state, &m)
}

/// A reproducible permutation of `0..n`.
pub(crate) fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut x = seed ^ 0x5851_f42d_4c95_7f2d;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((x >> 33) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}
