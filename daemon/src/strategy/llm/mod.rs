//! The `llm` strategy: each decision is one question to a model on an OpenAI-compatible
//! endpoint, asked by the driver asynchronously ([`client`]), its answer checked against
//! bounds ([`answer`]), and the heuristic's decision taken instead when the model fails, is
//! late or answers garbage. Every question and answer is recorded ([`record`]), so a run can
//! be replayed without the service (the `replay` strategy is this one reading the record).
//!
//! The heuristic decides alongside every question, so its random choices stay in step
//! whatever the model does, and a replay of the same replies gives the same decisions.

pub mod answer;
pub mod client;
pub mod prompt;
pub mod record;

use super::heuristic::Heuristic;
use super::memory::Memory;
use super::{Answer, Decision, DecisionKind, Strategy, View};
use answer::Bounds;
use prompt::{Prompt, Roster};
use record::{Entry, Outcome, Recorder, ReplayBook};
use serde::{Deserialize, Serialize};
use slotmesh_proto::engine::Finalized;
use slotmesh_proto::AgentId;

pub use client::{LlmClient, LlmSettings, OutputFormat};

/// A question for the model, with what is needed to judge its answer.
#[derive(Debug)]
pub struct Question {
    kind: DecisionKind,
    round: u64,
    prompt: Prompt,
    bounds: Bounds,
    fallback: Decision,
    recorded: Option<Reply>,
}

impl Question {
    /// The reply recorded for it, when replaying (the driver hands it back instead of asking;
    /// the simulator at the same simulated time a live answer takes, so the run is the same).
    pub fn take_recorded(&mut self) -> Option<Reply> {
        self.recorded.take()
    }

    /// The decision asked for.
    pub fn kind(&self) -> DecisionKind {
        self.kind
    }

    /// The round it is asked in.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// What the model is told.
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// The heuristic's decision, taken when the model's answer is not used.
    pub fn into_fallback(self) -> Decision {
        self.fallback
    }
}

/// What came back from the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    /// The model's text.
    Answered {
        /// The message content.
        text: String,
        /// Attempts made (async-openai also retries 429 and 5xx within each).
        attempts: u32,
        /// Time taken.
        ms: u64,
    },
    /// No usable reply: an error, a refusal, the deadline.
    Failed {
        /// Why.
        reason: String,
        /// Attempts made (async-openai also retries 429 and 5xx within each).
        attempts: u32,
        /// Time taken.
        ms: u64,
    },
}

impl Reply {
    /// A failure before any request was made (no client, nothing recorded).
    pub fn unanswered(reason: &str) -> Reply {
        Reply::Failed {
            reason: reason.into(),
            attempts: 0,
            ms: 0,
        }
    }
}

/// How often a model was asked and what became of its answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmCounts {
    /// Decisions asked of the model.
    pub calls: u64,
    /// Decisions where the heuristic's was taken instead.
    pub fallbacks: u64,
    /// Answers corrected to the bounds.
    pub clamped: u64,
}

impl std::ops::AddAssign for LlmCounts {
    fn add_assign(&mut self, other: LlmCounts) {
        self.calls += other.calls;
        self.fallbacks += other.fallbacks;
        self.clamped += other.clamped;
    }
}

/// Where replies come from.
#[derive(Debug)]
enum Source {
    /// A live model, asked by the driver.
    Live,
    /// A record of an earlier run.
    Replay(ReplayBook),
}

/// The `llm` (or `replay`) strategy of one agent.
#[derive(Debug)]
pub struct Llm {
    heuristic: Heuristic,
    source: Source,
    recorder: Option<Recorder>,
    counts: LlmCounts,
    /// The latest memory note from the model, folded in at the next final round.
    model_note: Option<String>,
}

impl Llm {
    /// Asks a live model; `heuristic` decides when it cannot; `recorder` keeps the exchanges.
    pub fn live(heuristic: Heuristic, recorder: Option<Recorder>) -> Llm {
        Llm {
            heuristic,
            source: Source::Live,
            recorder,
            counts: LlmCounts::default(),
            model_note: None,
        }
    }

    /// Answers from a recorded run instead of a model.
    pub fn replay(heuristic: Heuristic, book: ReplayBook, recorder: Option<Recorder>) -> Llm {
        Llm {
            source: Source::Replay(book),
            ..Llm::live(heuristic, recorder)
        }
    }

    fn record(&mut self, entry: &Entry) {
        if let Some(recorder) = &mut self.recorder {
            if let Err(error) = recorder.append(entry) {
                tracing::warn!(%error, "cannot record the LLM exchange; recording stops");
                self.recorder = None;
            }
        }
    }
}

impl Strategy for Llm {
    fn name(&self) -> &'static str {
        match self.source {
            Source::Live => "llm",
            Source::Replay(_) => "replay",
        }
    }

    fn decide(&mut self, kind: DecisionKind, view: &View<'_>) -> Answer {
        let fallback = self.heuristic.decision(kind, view);
        let roster = Roster::of(view);
        let recorded = match &self.source {
            Source::Live => None,
            Source::Replay(book) => Some(
                book.reply(view.round, kind)
                    .cloned()
                    .unwrap_or_else(|| Reply::unanswered("not in the record")),
            ),
        };
        Answer::Ask(Box::new(Question {
            kind,
            round: view.round,
            prompt: prompt::build(kind, view, &self.heuristic, &roster),
            bounds: Bounds::of(view, roster),
            fallback,
            recorded,
        }))
    }

    fn settle(&mut self, question: Question, reply: Reply) -> Decision {
        self.counts.calls += 1;
        let checked = match &reply {
            Reply::Answered { text, .. } => {
                answer::check(question.kind, text, &question.bounds).map_err(|e| e.to_string())
            }
            Reply::Failed { reason, .. } => Err(reason.clone()),
        };
        let (decision, outcome, notes) = match checked {
            Ok(checked) => {
                if checked.note.is_some() {
                    self.model_note = checked.note;
                }
                let outcome = if checked.corrections.is_empty() {
                    Outcome::Model
                } else {
                    self.counts.clamped += 1;
                    tracing::info!(
                        round = question.round,
                        kind = prompt::kind_name(question.kind),
                        corrections = ?checked.corrections,
                        "LLM answer corrected to the bounds"
                    );
                    Outcome::Clamped
                };
                (checked.decision, outcome, checked.corrections)
            }
            Err(reason) => {
                self.counts.fallbacks += 1;
                tracing::warn!(
                    round = question.round,
                    kind = prompt::kind_name(question.kind),
                    %reason,
                    "LLM answer not used: the heuristic decides"
                );
                (question.fallback.clone(), Outcome::Fallback, vec![reason])
            }
        };
        self.record(&Entry {
            round: question.round,
            kind: question.kind,
            prompt: question.prompt,
            reply,
            outcome,
            notes,
            decision: decision.clone(),
        });
        decision
    }

    fn llm_counts(&self) -> LlmCounts {
        self.counts
    }

    fn observe(&mut self, me: AgentId, finalized: &Finalized) {
        self.heuristic.observe(me, finalized);
        let memory = self.heuristic.memory_mut();
        // The model's latest note stands until it writes another; an agent whose model never
        // wrote one keeps the deterministic summary.
        if let Some(note) = self.model_note.take() {
            memory.long_term.note = note;
            memory.long_term.note_by_model = true;
        } else if !memory.long_term.note_by_model {
            memory.long_term.note = memory.summarise();
        }
    }

    fn memory(&self) -> &Memory {
        self.heuristic.memory()
    }

    fn restore_memory(&mut self, memory: Memory) {
        self.heuristic.restore_memory(memory);
    }
}
