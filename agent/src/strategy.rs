//! The `Strategy` interface: the decisions an agent makes in each phase of a round, given
//! what it may see (its private job, the public record, the round's messages so far), and
//! what it learns when a round becomes final. Strategies hold private trust and memory;
//! nothing they decide is trusted by the shared rule beyond the signed messages it yields.

use crate::decision::{Decision, DecisionKind};
use crate::memory;
use crate::model::{LlmCounts, Question, Reply};
use slotmesh_proto::Finalized;
use slotmesh_proto::{AgentId, LedgerState, RoundMessages};
use slotmesh_proto::{CoalitionId, CoalitionProposal};
use std::collections::BTreeMap;

/// The agent's own job, which only it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// True total burst, in slots.
    pub burst: u32,
    /// True remaining burst.
    pub remaining: u32,
}

/// What a strategy may look at when it decides.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// This agent.
    pub me: AgentId,
    /// The round being decided.
    pub round: u64,
    /// The private job.
    pub job: Job,
    /// The public record after the last final round.
    pub state: &'a LedgerState,
    /// The messages of this round so far (claims, negotiation, acceptances).
    pub messages: Option<&'a RoundMessages>,
    /// Coalition proposals made this round.
    pub proposals: &'a [(CoalitionId, CoalitionProposal)],
}

impl<'a> View<'a> {
    /// This agent's credit balance.
    pub fn credits(&self) -> u64 {
        self.state.members.get(&self.me).map_or(0, |m| m.credits)
    }

    /// The coalition this agent is in, if any.
    pub fn coalition(&self) -> Option<&slotmesh_proto::Coalition> {
        let id = self.state.members.get(&self.me)?.coalition?;
        self.state.coalitions.get(&id)
    }

    /// Claims made this round so far, by agent.
    pub fn claims(&self) -> &'a BTreeMap<AgentId, u32> {
        static NONE: BTreeMap<AgentId, u32> = BTreeMap::new();
        self.messages.map_or(&NONE, RoundMessages::claims)
    }

    /// The claim `id` made this round as the rule will rank it: its own, or what its record
    /// expects when that is more, plus the slots its record proves it bought with
    /// understatements ([`slotmesh_proto::MemberRecord::ranked_claim`]).
    pub fn ranked_claim(&self, id: &AgentId) -> Option<u32> {
        let claimed = *self.claims().get(id)?;
        Some(
            self.state
                .members
                .get(id)
                .map_or(claimed, |m| m.ranked_claim(claimed)),
        )
    }

    /// Claims made this round so far as (claim, agent), shortest first.
    pub fn claims_ranked(&self) -> impl DoubleEndedIterator<Item = (u32, AgentId)> + 'a {
        self.messages
            .into_iter()
            .flat_map(RoundMessages::claims_ranked)
    }
}

/// What a strategy answers when asked to decide: a decision now, or a question for a model
/// that the driver asks asynchronously and hands back to [`Strategy::settle`].
#[derive(Debug)]
pub enum Answer {
    /// Decided.
    Now(Decision),
    /// Ask a model first.
    Ask(Box<Question>),
}

/// An agent's decision maker.
pub trait Strategy: Send {
    /// A short name for summaries (`heuristic`, `llm`, `replay`).
    fn name(&self) -> &'static str;
    /// Decides `kind` for the round in `view`, or asks a model. Must answer; a strategy that
    /// cannot (a failing model) falls back internally.
    fn decide(&mut self, kind: DecisionKind, view: &View<'_>) -> Answer;
    /// Turns a model's reply to `question` into a decision (validated, clamped, or the
    /// fallback decided when the question was made).
    fn settle(&mut self, question: Question, reply: Reply) -> Decision {
        let _ = reply;
        question.into_fallback()
    }
    /// How often a model was asked and how often its answer was not used.
    fn llm_counts(&self) -> LlmCounts {
        LlmCounts::default()
    }
    /// Learns from a final round.
    fn observe(&mut self, me: AgentId, finalized: &Finalized);
    /// Its memory, for persisting and for prompts.
    fn memory(&self) -> &memory::Memory;
    /// Takes back a memory saved before a restart.
    fn restore_memory(&mut self, memory: memory::Memory);
}
