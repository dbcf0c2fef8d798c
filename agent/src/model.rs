//! What an agent asks a model and what comes back: the [`Question`] a strategy hands its
//! driver instead of a decision, the [`Reply`] the driver hands back, and the counts of how
//! the answers were used. The driver (node or simulator) asks; the strategy judges.

use crate::decision::{Decision, DecisionKind};
use serde::{Deserialize, Serialize};

/// One chat prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The system instruction.
    pub system: String,
    /// The user message: the decision asked for and its context.
    pub user: String,
    /// The JSON schema the answer must match, built from this question's bounds (sent as
    /// the structured-output format; empty in records written before it was kept).
    #[serde(default)]
    pub schema: serde_json::Value,
}

/// A question for a model, with the decision taken when its answer is not used.
#[derive(Debug)]
pub struct Question {
    kind: DecisionKind,
    round: u64,
    prompt: Prompt,
    fallback: Decision,
    recorded: Option<Reply>,
}

impl Question {
    /// Asks `prompt` for decision `kind` of `round`; `fallback` is taken when the answer is
    /// not used; `recorded` is the reply already known (a replay).
    pub fn new(
        kind: DecisionKind,
        round: u64,
        prompt: Prompt,
        fallback: Decision,
        recorded: Option<Reply>,
    ) -> Question {
        Question {
            kind,
            round,
            prompt,
            fallback,
            recorded,
        }
    }

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

    /// The decision taken when the model's answer is not used.
    pub fn fallback(&self) -> &Decision {
        &self.fallback
    }

    /// The prompt and the fallback decision, taking the question apart.
    pub fn into_parts(self) -> (Prompt, Decision) {
        (self.prompt, self.fallback)
    }

    /// The decision taken when the model's answer is not used.
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
        /// Requests made.
        attempts: u32,
        /// Time taken.
        ms: u64,
    },
    /// No usable reply: an error, a refusal, the deadline.
    Failed {
        /// Why.
        reason: String,
        /// Requests made.
        attempts: u32,
        /// Time taken.
        ms: u64,
    },
    /// Not asked: the endpoint's circuit breaker is open (recent requests failed) or the
    /// endpoint refused this client for good (a bad key, an unknown model).
    Skipped {
        /// Why, with the failure that opened the breaker.
        reason: String,
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
    /// Decisions not asked because the endpoint's breaker was open (counted in `fallbacks`
    /// too).
    #[serde(default)]
    pub breaker_open: u64,
}

impl std::ops::AddAssign for LlmCounts {
    fn add_assign(&mut self, other: LlmCounts) {
        self.calls += other.calls;
        self.fallbacks += other.fallbacks;
        self.clamped += other.clamped;
        self.breaker_open += other.breaker_open;
    }
}
