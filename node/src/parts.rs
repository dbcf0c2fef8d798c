//! The parts a node owns besides the swarm and the host driver: what it shows (status,
//! events, metrics), the `--exec` job it runs in won slots, and the link to its model.

use crate::events::NodeEvent;
use crate::metrics::NodeMetrics;
use crate::status::NodeStatus;
use slotmesh_agent::model::{LlmCounts, Question, Reply};
use slotmesh_llm::LlmClient;
use slotmesh_proto::Phase;
use std::time::Instant;
use tokio::sync::mpsc;

/// What a node shows of itself: `status.json` and `GET /status`, live events, metrics.
pub(crate) struct Observer {
    pub(crate) status: NodeStatus,
    /// The status changed since it was last written.
    pub(crate) dirty: bool,
    pub(crate) written_at: Option<u64>,
    pub(crate) events: tokio::sync::broadcast::Sender<NodeEvent>,
    pub(crate) metrics: NodeMetrics,
    pub(crate) last_final_at: Option<Instant>,
    /// The strategy's LLM counts already added to the metrics.
    pub(crate) llm_counted: LlmCounts,
}

/// The agent's real job (`--exec`), resumed and paused with its won slots.
pub(crate) struct SlotRunner {
    pub(crate) job: Option<crate::job::Job>,
    /// CPU time of the job when its current slot started, ms.
    pub(crate) cpu_at_slot_start: Option<u64>,
}

/// The model client of a live `llm` strategy and the channel its replies come back on.
pub(crate) struct ModelLink {
    pub(crate) client: Option<LlmClient>,
    pub(crate) answers: mpsc::UnboundedSender<(Box<Question>, Reply)>,
    pub(crate) answers_in: mpsc::UnboundedReceiver<(Box<Question>, Reply)>,
}

impl Observer {
    /// The engine is at `round`, `phase`: reported when it changed.
    pub(crate) fn phase(&mut self, round: u64, phase: Phase) {
        let phase = format!("{phase:?}");
        if self.status.round != round || self.status.phase != phase {
            tracing::debug!(round, %phase, "phase");
            let _ = self.events.send(NodeEvent::Phase {
                round,
                phase: phase.clone(),
            });
            self.status.round = round;
            self.status.phase = phase;
            self.dirty = true;
        }
    }

    /// Brings the LLM metrics and status up to the strategy's `counts`.
    pub(crate) fn llm(&mut self, counts: LlmCounts) {
        if counts == self.llm_counted {
            return;
        }
        let seen = self.llm_counted;
        self.metrics.llm_calls.inc_by(counts.calls - seen.calls);
        self.metrics
            .llm_fallbacks
            .inc_by(counts.fallbacks - seen.fallbacks);
        self.metrics
            .llm_clamped
            .inc_by(counts.clamped - seen.clamped);
        self.metrics
            .llm_breaker_open
            .inc_by(counts.breaker_open - seen.breaker_open);
        self.llm_counted = counts;
        self.status.llm = counts;
        self.dirty = true;
    }

    /// A slot of `round` starts (`running`) or ends executing.
    pub(crate) fn slot(&mut self, round: u64, running: bool) {
        let _ = self.events.send(NodeEvent::Slot { round, running });
        self.status.executing = running.then_some(round);
        if !running {
            self.metrics.slots_executed.inc();
        }
        self.dirty = true;
    }
}

impl SlotRunner {
    /// Lets the job run (a won slot starts).
    pub(crate) fn resume(&mut self) {
        if let Some(job) = self.job.as_mut() {
            self.cpu_at_slot_start = crate::job::group_cpu_ms(job.pid());
            job.resume();
        }
    }

    /// Stops the job (its slot ended); the CPU time it got in the slot, if it still lives.
    pub(crate) fn pause(&mut self) -> Option<u64> {
        let job = self.job.as_mut()?;
        job.pause();
        let now = crate::job::group_cpu_ms(job.pid())?;
        Some(now.saturating_sub(self.cpu_at_slot_start?))
    }
}
