//! What a node tells watchers as it happens (`GET /events`, server-sent events): phase
//! changes, final rounds with trust, members joining, leaving and failing, coalitions formed
//! and dissolved, and its own slots starting and ending.

use serde::Serialize;
use slotmesh_proto::{AgentId, Finalized};
use std::collections::BTreeMap;

/// One event. Serialized as JSON with a `type` field; the SSE event name is the same.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// The engine moved to another phase.
    Phase {
        /// Round.
        round: u64,
        /// Phase name.
        phase: String,
    },
    /// A round became final.
    Final {
        /// Round.
        round: u64,
        /// Winner's name.
        winner: Option<String>,
        /// Price the winner paid.
        price: u64,
        /// Public trust of every member after the round, ppm.
        trust: BTreeMap<String, u32>,
    },
    /// A member joined, left or failed.
    Member {
        /// Name.
        name: String,
        /// `joined`, `completed`, `departed` or `failed`.
        change: String,
        /// Round.
        round: u64,
    },
    /// A coalition formed or dissolved.
    Coalition {
        /// `formed` or `dissolved`.
        change: String,
        /// Proposer's name.
        proposer: String,
        /// Members' names (when formed).
        members: Vec<String>,
        /// Round.
        round: u64,
    },
    /// This agent's slot started or ended.
    Slot {
        /// Round it won.
        round: u64,
        /// Whether it is running now.
        running: bool,
    },
}

impl NodeEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            NodeEvent::Phase { .. } => "phase",
            NodeEvent::Final { .. } => "final",
            NodeEvent::Member { .. } => "member",
            NodeEvent::Coalition { .. } => "coalition",
            NodeEvent::Slot { .. } => "slot",
        }
    }

    /// The events of a final round, in order: members, coalitions, then the round itself.
    pub fn of_final(finalized: &Finalized) -> Vec<NodeEvent> {
        let state = &finalized.state;
        let outcome = &finalized.outcome;
        let round = outcome.round;
        let name = |id: &AgentId| state.name_of(id);
        let mut events = Vec::new();
        let member = |id: &AgentId, change: &str| NodeEvent::Member {
            name: name(id),
            change: change.into(),
            round,
        };
        events.extend(outcome.joined.iter().map(|id| member(id, "joined")));
        events.extend(outcome.left.iter().map(|(id, reason)| {
            let change = match reason {
                slotmesh_proto::LeaveReason::Completed => "completed",
                slotmesh_proto::LeaveReason::Departed => "departed",
            };
            member(id, change)
        }));
        events.extend(outcome.rejoined.iter().map(|id| member(id, "rejoined")));
        events.extend(outcome.suspended.iter().map(|id| member(id, "suspended")));
        events.extend(outcome.removed.iter().map(|id| member(id, "removed")));
        for id in &outcome.coalitions_formed {
            let members = state
                .coalitions
                .get(id)
                .map(|c| c.members.iter().map(&name).collect())
                .unwrap_or_default();
            events.push(NodeEvent::Coalition {
                change: "formed".into(),
                proposer: name(&id.proposer),
                members,
                round,
            });
        }
        for (id, _) in &outcome.coalitions_dissolved {
            events.push(NodeEvent::Coalition {
                change: "dissolved".into(),
                proposer: name(&id.proposer),
                members: Vec::new(),
                round,
            });
        }
        events.push(NodeEvent::Final {
            round,
            winner: outcome.winner.as_ref().map(&name),
            price: outcome.price,
            trust: state
                .members
                .values()
                .map(|m| (m.name.clone(), m.trust))
                .collect(),
        });
        events
    }
}
