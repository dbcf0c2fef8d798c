//! The `heuristic` strategy: a personality (`cooperative`, `aggressive`, `strategic`) and a
//! bias in [0, 1] (0 truthful, 1 maximally deceptive) decide claims, bids, coalitions and
//! negotiation lines by simple rules. No network, deterministic for a given seed.

use crate::decision::{Decision, DecisionKind};
use crate::memory::{Memory, RoundMemory, OFFENDERS_NAMED};
use crate::strategy::{Answer, Strategy, View};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use slotmesh_proto::Finalized;
use slotmesh_proto::INCOME_PER_ROUND;
use slotmesh_proto::INITIAL_TRUST;
use slotmesh_proto::{AgentId, LedgerState};
use slotmesh_proto::{CoalitionProposal, NegotiationLine, Support};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// How an agent behaves towards others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Personality {
    /// Proposes and accepts coalitions with trusted peers.
    Cooperative,
    /// Never proposes, joins coalitions only to be backed, bids high when it is shortest.
    Aggressive,
    /// Proposes and accepts only where it would be the one backed.
    Strategic,
}

impl fmt::Display for Personality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Personality::Cooperative => "cooperative",
            Personality::Aggressive => "aggressive",
            Personality::Strategic => "strategic",
        })
    }
}

impl FromStr for Personality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cooperative" => Ok(Personality::Cooperative),
            "aggressive" => Ok(Personality::Aggressive),
            "strategic" => Ok(Personality::Strategic),
            other => Err(format!("unknown personality {other:?}")),
        }
    }
}

/// Private trust bounds (the strategy's own opinion, never used by the shared rule).
const PRIVATE_TRUST_MAX: i32 = 100;
/// Candidates a cooperative agent weighs when it picks a partner: the shortest claims of
/// the round that it may propose to. Bounded, so that a decision costs the same among
/// thousands of agents as among ten.
const PARTNER_CANDIDATES: usize = 8;

/// Peers remembered as acquaintances (coalition partners) at most.
const ACQUAINTANCES_KEPT: usize = 64;

/// An opinion of one peer since its last proven offence: `base` then, one point more for
/// every round observed since, up to [`PRIVATE_TRUST_MAX`].
#[derive(Debug, Clone, Copy)]
struct Opinion {
    base: i32,
    /// Rounds observed when it was formed.
    since: u64,
}

/// The round's claims so far, by agent.
type Claims = BTreeMap<AgentId, u32>;

/// The heuristic strategy of one agent.
#[derive(Debug, Clone)]
pub struct Heuristic {
    personality: Personality,
    /// Probability of lying in a claim, per mille.
    bias_permille: u32,
    rng: ChaCha8Rng,
    /// Its own opinions of acquaintances that offended.
    opinions: BTreeMap<AgentId, Opinion>,
    /// Peers it shared a coalition with.
    acquaintances: BTreeSet<AgentId>,
    /// Final rounds observed.
    observed: u64,
    memory: Memory,
    last_proposal_round: Option<u64>,
}

impl Heuristic {
    /// A heuristic agent; `seed` makes its random choices reproducible.
    pub fn new(personality: Personality, bias: f64, seed: u64) -> Heuristic {
        let bias_permille = (bias.clamp(0.0, 1.0) * 1000.0).round() as u32;
        Heuristic {
            personality,
            bias_permille,
            rng: ChaCha8Rng::seed_from_u64(seed),
            opinions: BTreeMap::new(),
            acquaintances: BTreeSet::new(),
            observed: 0,
            memory: Memory::default(),
            last_proposal_round: None,
        }
    }

    /// How it behaves towards others.
    pub fn personality(&self) -> Personality {
        self.personality
    }

    /// Its probability of lying in a claim, per mille (0: truthful).
    pub fn bias_permille(&self) -> u32 {
        self.bias_permille
    }

    /// Its private opinion of `agent`, in [-100, 100], given the public record `state`.
    /// - Of a coalition partner that offended: its own experience, 25 points lost per
    ///   severity point of each offence, one regained per round observed since.
    /// - Of another proven offender: the public record read its own way (public trust 0.5
    ///   maps to 0, 1.0 to 100, the floor to -99).
    /// - Of anyone else: one point per round observed, up to 100.
    ///
    /// Only partners get their own entry, so an agent among thousands keeps a few opinions.
    pub fn private_trust(&self, state: &LedgerState, agent: &AgentId) -> i32 {
        let observed = i64::try_from(self.observed).unwrap_or(i64::MAX);
        let opinion = match (self.opinions.get(agent), state.members.get(agent)) {
            (Some(Opinion { base, since }), _) => {
                let since = i64::try_from(*since).unwrap_or(i64::MAX);
                i64::from(*base).saturating_add(observed.saturating_sub(since))
            }
            (None, Some(m)) if m.offences.total() > 0 => {
                (i64::from(m.trust) - i64::from(INITIAL_TRUST)) / 5_000
            }
            _ => observed,
        };
        opinion.clamp(-i64::from(PRIVATE_TRUST_MAX), i64::from(PRIVATE_TRUST_MAX)) as i32
    }

    /// Its decision of `kind` in `view` (also the LLM strategy's fallback).
    pub fn decision(&mut self, kind: DecisionKind, view: &View<'_>) -> Decision {
        let claims = view.claims();
        match kind {
            DecisionKind::Claim => Decision::Claim(self.claim(view)),
            DecisionKind::Negotiate => self.negotiate(view, claims),
            DecisionKind::Coalition => self.accept(view, claims),
            DecisionKind::Bid => self.bid(view, claims),
        }
    }

    /// Its memory, to write a note into.
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }

    fn claim(&mut self, view: &View<'_>) -> u32 {
        let truth = view.job.remaining.max(1);
        if self.bias_permille > 0 && self.rng.gen_range(0..1000) < self.bias_permille {
            let shave = 1 + self.bias_permille * 2 / 1000;
            truth.saturating_sub(shave).max(1)
        } else {
            truth
        }
    }

    fn own_claim(view: &View<'_>, claims: &Claims) -> u32 {
        claims
            .get(&view.me)
            .copied()
            .unwrap_or(view.job.remaining.max(1))
    }

    fn negotiate(&mut self, view: &View<'_>, claims: &Claims) -> Decision {
        let claim = Self::own_claim(view, claims);
        let lines = if view.round % 3 == 1 {
            let text = match self.personality {
                Personality::Cooperative => format!("I need {claim} more slots. Shortest job first serves us all; I will back a trusted partner."),
                Personality::Aggressive => format!("I need {claim} slots and I will bid for every one of them."),
                Personality::Strategic => format!("Claiming {claim}. I ally with whoever makes the schedule shorter."),
            };
            vec![NegotiationLine { to: None, text }]
        } else {
            Vec::new()
        };
        let in_coalition = view.coalition().is_some();
        let recently = self.last_proposal_round.is_some_and(|r| view.round < r + 4);
        let proposal = if in_coalition || recently || self.personality == Personality::Aggressive {
            None
        } else {
            self.pick_partner(view, claim).map(|partner| {
                self.last_proposal_round = Some(view.round);
                CoalitionProposal {
                    partners: vec![partner],
                    terms: "members back the shortest claimed job with their pledge".into(),
                    duration_rounds: 3,
                    pledge: 2,
                }
            })
        };
        Decision::Negotiate { lines, proposal }
    }

    /// Whether `id` is a peer this agent may propose to: active, free, not itself, not
    /// distrusted.
    fn may_propose_to(&self, view: &View<'_>, id: &AgentId) -> bool {
        *id != view.me
            && self.private_trust(view.state, id) >= 0
            && view.state.members.get(id).is_some_and(|m| {
                m.status == slotmesh_proto::MemberStatus::Active
                    && m.coalition.is_none()
                    && m.joined_round <= view.round
            })
    }

    fn pick_partner(&self, view: &View<'_>, own_claim: u32) -> Option<AgentId> {
        match self.personality {
            // The most trusted of the shortest claims (ties: public trust, then lowest id).
            Personality::Cooperative => view
                .claims_ranked()
                .filter(|(_, id)| self.may_propose_to(view, id))
                .take(PARTNER_CANDIDATES)
                .max_by_key(|(_, id)| {
                    let public = view.state.members.get(id).map_or(0, |m| m.trust);
                    (
                        self.private_trust(view.state, id),
                        public,
                        std::cmp::Reverse(*id),
                    )
                })
                .map(|(_, id)| id),
            // The longest claim above its own, so that this agent is the one backed (ties:
            // lowest id).
            Personality::Strategic => {
                let longest = view
                    .claims_ranked()
                    .rev()
                    .filter(|(claim, _)| *claim > own_claim)
                    .find(|(_, id)| self.may_propose_to(view, id))?
                    .0;
                view.claims_ranked()
                    .filter(|(claim, id)| *claim == longest && self.may_propose_to(view, id))
                    .map(|(_, id)| id)
                    .next()
            }
            Personality::Aggressive => None,
        }
    }

    fn accept(&mut self, view: &View<'_>, claims: &Claims) -> Decision {
        if view.coalition().is_some() {
            return Decision::Accept(Vec::new());
        }
        let own = Self::own_claim(view, claims);
        let mut accepted = Vec::new();
        for (id, proposal) in view.proposals {
            // A pledge it could not keep while still bidding its income would be charged
            // as broken: refuse it.
            if !proposal.partners.contains(&view.me)
                || proposal.pledge.saturating_add(INCOME_PER_ROUND) > view.credits()
            {
                continue;
            }
            let proposer_claim = claims.get(&id.proposer).copied().unwrap_or(u32::MAX);
            let backed = own < proposer_claim;
            let ok = match self.personality {
                Personality::Cooperative => self.private_trust(view.state, &id.proposer) >= 0,
                Personality::Strategic | Personality::Aggressive => backed,
            };
            if ok {
                accepted.push(*id);
                break;
            }
        }
        Decision::Accept(accepted)
    }

    fn bid(&mut self, view: &View<'_>, claims: &Claims) -> Decision {
        let credits = view.credits();
        // Everyone bids what it earns per round, so honest agents rank by claim alone (SRPT).
        // The aggressive agent pushes harder when it holds the shortest claim: it would win
        // anyway, and under the second price a higher bid does not raise what it pays.
        let own = Self::own_claim(view, claims);
        let shortest = view
            .claims_ranked()
            .find(|(_, id)| *id != view.me)
            .is_none_or(|(c, _)| c > own);
        let base = match self.personality {
            Personality::Aggressive if shortest => INCOME_PER_ROUND + 5,
            _ => INCOME_PER_ROUND,
        };
        // What it pledged comes first (the rule owes min(pledge, credits)); it bids from the
        // rest.
        let support = view.coalition().and_then(|coalition| {
            // The rule's beneficiary: the shortest claim as it ranks them.
            let beneficiary = coalition
                .members
                .iter()
                .filter_map(|m| view.ranked_claim(m).map(|c| (c, *m)))
                .min()
                .map(|(_, m)| m)?;
            if beneficiary == view.me {
                return None;
            }
            let amount = coalition.pledge.min(credits);
            Some(Support {
                beneficiary,
                amount,
            })
        });
        let bid = base.min(credits - support.map_or(0, |s| s.amount));
        let deposit = bid + support.map_or(0, |s| s.amount);
        Decision::Bid {
            bid,
            support,
            deposit,
        }
    }
}

impl Strategy for Heuristic {
    fn name(&self) -> &'static str {
        "heuristic"
    }

    fn decide(&mut self, kind: DecisionKind, view: &View<'_>) -> Answer {
        Answer::Now(self.decision(kind, view))
    }

    fn observe(&mut self, me: AgentId, finalized: &Finalized) {
        let outcome = &finalized.outcome;
        let name = |id: &AgentId| finalized.state.name_of(id);
        let state = &finalized.state;
        if let Some(coalition) = state
            .members
            .get(&me)
            .and_then(|m| m.coalition)
            .and_then(|id| state.coalitions.get(&id))
        {
            if self.acquaintances.len() + coalition.members.len() > ACQUAINTANCES_KEPT {
                let forgotten = std::mem::take(&mut self.acquaintances);
                self.opinions.retain(|id, _| !forgotten.contains(id));
            }
            self.acquaintances
                .extend(coalition.members.iter().filter(|id| **id != me));
        }
        // An acquaintance's opinion restarts below where it stood and gains nothing this
        // round; every other opinion gains a point (`observed` counts it).
        if !self.acquaintances.is_empty() {
            for (offender, offence) in &outcome.offences {
                if !self.acquaintances.contains(offender) {
                    continue;
                }
                let now = self.private_trust(state, offender);
                let base = (now - 25 * offence.severity() as i32).max(-PRIVATE_TRUST_MAX);
                self.opinions.insert(
                    *offender,
                    Opinion {
                        base,
                        since: self.observed + 1,
                    },
                );
            }
        }
        self.observed += 1;
        let joined = outcome.coalitions_formed.iter().any(|cid| {
            finalized
                .state
                .coalitions
                .get(cid)
                .is_some_and(|c| c.members.contains(&me))
        });
        self.memory.remember(
            RoundMemory {
                round: outcome.round,
                winner: outcome.winner.as_ref().map(name),
                won: outcome.winner == Some(me),
                offenders: outcome
                    .offences
                    .iter()
                    .take(OFFENDERS_NAMED)
                    .map(|(id, _)| name(id))
                    .collect(),
                offenders_total: outcome.offences.len(),
                coalitions_formed: outcome
                    .coalitions_formed
                    .iter()
                    .map(|c| name(&c.proposer))
                    .collect(),
            },
            joined,
        );
    }

    fn memory(&self) -> &Memory {
        &self.memory
    }

    fn restore_memory(&mut self, memory: Memory) {
        self.memory = memory;
    }
}
