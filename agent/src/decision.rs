//! The decisions an agent makes in a round: which one each phase asks for, and the answers.

use serde::{Deserialize, Serialize};
use slotmesh_proto::{CoalitionId, CoalitionProposal, NegotiationLine, Support};

/// Which decision the engine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DecisionKind {
    /// Announce: the claimed remaining burst.
    Claim,
    /// Negotiate: lines of text and perhaps a coalition proposal.
    Negotiate,
    /// Coalition: which proposals to accept.
    Coalition,
    /// Commit: the sealed bid.
    Bid,
}

impl DecisionKind {
    /// The decision asked for in `phase`, if the phase asks for one.
    pub fn of_phase(phase: slotmesh_proto::Phase) -> Option<DecisionKind> {
        [
            DecisionKind::Claim,
            DecisionKind::Negotiate,
            DecisionKind::Coalition,
            DecisionKind::Bid,
        ]
        .into_iter()
        .find(|kind| kind.phase() == phase)
    }

    /// The engine phase this decision is made in.
    pub fn phase(self) -> slotmesh_proto::Phase {
        match self {
            DecisionKind::Claim => slotmesh_proto::Phase::Announce,
            DecisionKind::Negotiate => slotmesh_proto::Phase::Negotiate,
            DecisionKind::Coalition => slotmesh_proto::Phase::Coalition,
            DecisionKind::Bid => slotmesh_proto::Phase::Commit,
        }
    }
}

/// A strategy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Claim this many remaining slots (at least 1).
    Claim(u32),
    /// Say these lines, propose this coalition.
    Negotiate {
        /// Lines of at most 50 words.
        lines: Vec<NegotiationLine>,
        /// At most one proposal.
        proposal: Option<CoalitionProposal>,
    },
    /// Accept these proposals.
    Accept(Vec<CoalitionId>),
    /// Bid for itself, support a partner, under a deposit.
    Bid {
        /// Own bid.
        bid: u64,
        /// Support for a coalition partner.
        support: Option<Support>,
        /// Public deposit, at least bid + support.
        deposit: u64,
    },
}
