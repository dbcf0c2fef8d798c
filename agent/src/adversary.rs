//! The adversary library: strategies an attacker would really play, each around the heuristic
//! it otherwise follows, by name as scenario files and `--mix` write them. docs/SIMULATION.md
//! says for each what it tries and why it might pay; `sim --json` measures whether it did
//! (`lying_gain_by_kind`).

use crate::decision::{Decision, DecisionKind};
use crate::heuristic::Heuristic;
use crate::memory::Memory;
use crate::strategy::{Answer, Strategy, View};
use serde::Serialize;
use slotmesh_proto::{AgentId, Finalized};
use std::fmt;
use std::str::FromStr;

/// What an under-claimer bids: enough to outbid honest agents (who bid their income) many
/// times over, while its starting credits last a while.
pub const UNDERCLAIM_BID: u64 = 100;

/// An attacker's strategy carried out by the agent's own decisions, played by [`Adversarial`].
/// (`withhold`, which commits and never reveals, is carried out where messages leave the
/// host, like the simulator's other injected faults: [`crate::scenario::Byzantine`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// Claims one slot left, whatever its job, and bids [`UNDERCLAIM_BID`]: the rule ranks
    /// by bid over claim, so a short claim and a high bid put it first.
    Underclaim,
    /// Joins coalitions and accepts their support, but never gives the support it pledged.
    PledgeBreak,
}

impl Adversary {
    /// Every kind, in the order reports list them.
    pub const ALL: [Adversary; 2] = [Adversary::Underclaim, Adversary::PledgeBreak];

    /// The name scenario files and `--mix` use.
    pub fn name(self) -> &'static str {
        match self {
            Adversary::Underclaim => "underclaim",
            Adversary::PledgeBreak => "pledge-break",
        }
    }
}

impl fmt::Display for Adversary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown adversary name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown adversary `{0}` (known: underclaim, pledge-break)")]
pub struct UnknownAdversary(pub String);

impl FromStr for Adversary {
    type Err = UnknownAdversary;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Adversary::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| UnknownAdversary(s.to_string()))
    }
}

/// An adversary playing `kind` around its heuristic (which decides whatever the attack
/// leaves alone, and holds its memory).
#[derive(Debug, Clone)]
pub struct Adversarial {
    kind: Adversary,
    heuristic: Heuristic,
}

impl Adversarial {
    /// `kind` played around `heuristic`.
    pub fn new(kind: Adversary, heuristic: Heuristic) -> Adversarial {
        Adversarial { kind, heuristic }
    }

    fn decision(&mut self, kind: DecisionKind, view: &View<'_>) -> Decision {
        let honest = self.heuristic.decision(kind, view);
        match (self.kind, honest) {
            (Adversary::Underclaim, Decision::Claim(_)) => Decision::Claim(1),
            (Adversary::Underclaim, Decision::Bid { support, .. }) => {
                let credits = view.credits();
                let bid = UNDERCLAIM_BID.min(credits);
                let support = support.filter(|s| s.amount <= credits - bid);
                let deposit = bid + support.map_or(0, |s| s.amount);
                Decision::Bid {
                    bid,
                    support,
                    deposit,
                }
            }
            (Adversary::PledgeBreak, Decision::Bid { bid, .. }) => Decision::Bid {
                bid,
                support: None,
                deposit: bid,
            },
            (_, honest) => honest,
        }
    }
}

impl Strategy for Adversarial {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn decide(&mut self, kind: DecisionKind, view: &View<'_>) -> Answer {
        Answer::Now(self.decision(kind, view))
    }

    fn observe(&mut self, me: AgentId, finalized: &Finalized) {
        self.heuristic.observe(me, finalized);
    }

    fn memory(&self) -> &Memory {
        self.heuristic.memory()
    }

    fn restore_memory(&mut self, memory: Memory) {
        self.heuristic.restore_memory(memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for kind in Adversary::ALL {
            assert_eq!(kind.name().parse::<Adversary>(), Ok(kind));
        }
        assert_eq!(
            "lier".parse::<Adversary>().map_err(|e| e.to_string()),
            Err("unknown adversary `lier` (known: underclaim, pledge-break)".into())
        );
    }
}
