//! The `llm` strategy: each decision is one question to a model on an OpenAI-compatible
//! endpoint, asked by the driver asynchronously ([`client`]), its answer checked against
//! bounds ([`answer`]), and the heuristic's decision taken instead when the model fails, is
//! late or answers garbage. Every question and answer is recorded ([`record`]), so a run can
//! be replayed without the service (the `replay` strategy is this one reading the record).
//!
//! The heuristic decides alongside every question, so its random choices stay in step
//! whatever the model does, and a replay of the same replies gives the same decisions.

pub mod answer;
#[cfg(feature = "client")]
pub mod breaker;
mod choice;
#[cfg(feature = "client")]
pub mod client;
pub mod prompt;
pub mod record;
pub mod schema;

use answer::Bounds;
use prompt::Roster;
use record::{Entry, Outcome, Recorder, ReplayBook};
use slotmesh_agent::heuristic::Heuristic;
use slotmesh_agent::memory::Memory;
use slotmesh_agent::model::{LlmCounts, Question, Reply};
use slotmesh_agent::{Answer, Decision, DecisionKind, Strategy, View};
use slotmesh_proto::AgentId;
use slotmesh_proto::Finalized;
use std::collections::BTreeMap;

pub use choice::StrategyChoice;
#[cfg(feature = "client")]
pub use client::{LlmClient, LlmSettings, OutputFormat};

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
    /// The bounds of each question asked and not yet settled, by (round, decision): an
    /// answer is judged against what the agent could decide when it was asked.
    asked: BTreeMap<(u64, DecisionKind), Bounds>,
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
            asked: BTreeMap::new(),
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
        let mut bounds = Bounds::of(view, roster);
        bounds.may_understate = self.heuristic.bias_permille() > 0;
        if let Source::Replay(book) = &self.source {
            // A claim answers relative to the truth the model was told.
            if let Some(told) = book.told_remaining(view.round, kind) {
                bounds.remaining = told;
            }
        }
        let prompt = prompt::build(kind, view, &self.heuristic, &bounds);
        self.asked.insert((view.round, kind), bounds);
        Answer::Ask(Box::new(Question::new(
            kind, view.round, prompt, fallback, recorded,
        )))
    }

    fn settle(&mut self, question: Question, reply: Reply) -> Decision {
        self.counts.calls += 1;
        let (kind, round) = (question.kind(), question.round());
        let bounds = self.asked.remove(&(round, kind));
        let told_remaining = bounds.as_ref().map(|b| b.remaining);
        let checked = match (&reply, bounds) {
            (Reply::Answered { text, .. }, Some(bounds)) => {
                answer::check(kind, text, &bounds).map_err(|e| e.to_string())
            }
            (Reply::Answered { .. }, None) => Err("not asked by this strategy".to_string()),
            (Reply::Failed { reason, .. }, _) => Err(reason.clone()),
            (Reply::Skipped { reason }, _) => {
                self.counts.breaker_open += 1;
                Err(format!("not asked: {reason}"))
            }
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
                        round,
                        kind = prompt::kind_name(kind),
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
                    round,
                    kind = prompt::kind_name(kind),
                    %reason,
                    "LLM answer not used: the heuristic decides"
                );
                (question.fallback().clone(), Outcome::Fallback, vec![reason])
            }
        };
        let (prompt, _) = question.into_parts();
        self.record(&Entry {
            round,
            kind,
            prompt,
            reply,
            outcome,
            notes,
            decision: decision.clone(),
            told_remaining: told_remaining.filter(|_| kind == DecisionKind::Claim),
        });
        decision
    }

    fn llm_counts(&self) -> LlmCounts {
        self.counts
    }

    fn observe(&mut self, me: AgentId, finalized: &Finalized) {
        // A question of a final round that was never settled will not be.
        let final_round = finalized.certified.round();
        self.asked.retain(|(round, _), _| *round > final_round);
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
