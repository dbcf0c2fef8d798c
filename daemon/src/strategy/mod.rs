//! The `Strategy` interface: the decisions an agent makes in each phase of a round, given
//! what it may see (its private job, the public record, the round's messages so far), and
//! what it learns when a round becomes final. Strategies hold private trust and memory;
//! nothing they decide is trusted by the shared rule beyond the signed messages it yields.

pub mod heuristic;
pub mod llm;
pub mod memory;

use serde::{Deserialize, Serialize};
use slotmesh_proto::engine::Finalized;
use slotmesh_proto::wire::{CoalitionId, CoalitionProposal, NegotiationLine, Support};
use slotmesh_proto::{AgentId, LedgerState, RoundMessages};
use std::collections::BTreeMap;

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
    pub fn coalition(&self) -> Option<&slotmesh_proto::state::Coalition> {
        let id = self.state.members.get(&self.me)?.coalition?;
        self.state.coalitions.get(&id)
    }

    /// Claims made this round so far, by agent.
    pub fn claims(&self) -> &'a BTreeMap<AgentId, u32> {
        static NONE: BTreeMap<AgentId, u32> = BTreeMap::new();
        self.messages.map_or(&NONE, RoundMessages::claims)
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
    Ask(Box<llm::Question>),
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
    fn settle(&mut self, question: llm::Question, reply: llm::Reply) -> Decision {
        let _ = reply;
        question.into_fallback()
    }
    /// How often a model was asked and how often its answer was not used.
    fn llm_counts(&self) -> llm::LlmCounts {
        llm::LlmCounts::default()
    }
    /// Learns from a final round.
    fn observe(&mut self, me: AgentId, finalized: &Finalized);
    /// Its memory, for persisting and for prompts.
    fn memory(&self) -> &memory::Memory;
    /// Takes back a memory saved before a restart.
    fn restore_memory(&mut self, memory: memory::Memory);
}

/// Which strategy an agent runs: the same choice for the daemon and the simulator.
#[derive(Debug, Clone, Default)]
pub enum StrategyChoice {
    /// Personality and bias templates.
    #[default]
    Heuristic,
    /// A model on an OpenAI-compatible endpoint, the heuristic as fallback.
    Llm(llm::LlmClient),
    /// The replies recorded under this directory (a data dir, or a swarm's or sim's `--out`).
    Replay(std::path::PathBuf),
}

impl StrategyChoice {
    /// The model client, for a live `llm` strategy.
    pub fn client(&self) -> Option<&llm::LlmClient> {
        match self {
            StrategyChoice::Llm(client) => Some(client),
            _ => None,
        }
    }

    /// The strategy of agent `name`, around its `heuristic`; `record_dir` (if any) is where
    /// an `llm` or `replay` strategy records its questions and answers.
    pub fn build(
        &self,
        heuristic: heuristic::Heuristic,
        name: &str,
        record_dir: Option<&std::path::Path>,
    ) -> Result<Box<dyn Strategy>, llm::record::RecordError> {
        let recorder = || record_dir.map(llm::record::Recorder::open).transpose();
        Ok(match self {
            StrategyChoice::Heuristic => Box::new(heuristic),
            StrategyChoice::Llm(_) => Box::new(llm::Llm::live(heuristic, recorder()?)),
            StrategyChoice::Replay(dir) => {
                let book = llm::record::ReplayBook::load(dir, name)?;
                tracing::info!(
                    agent = name,
                    replies = book.len(),
                    source = %book.source.display(),
                    "replaying recorded LLM replies"
                );
                Box::new(llm::Llm::replay(heuristic, book, recorder()?))
            }
        })
    }
}
