//! The slots a node executes, as its host driver's timeline starts and ends them: the
//! `--exec` job resumed and paused with them, their CPU time, status and events.

use super::*;

impl Node {
    pub(super) fn job_ended(&mut self, end: crate::job::JobEnd) {
        let text = match end {
            crate::job::JobEnd::Exited(code) => format!("exit {code}"),
            crate::job::JobEnd::Signalled(signal) => format!("signal {signal}"),
            crate::job::JobEnd::Lost => "lost (the guard went away)".to_string(),
        };
        if matches!(end, crate::job::JobEnd::Exited(0)) {
            tracing::info!(status = %text, "the job is complete");
        } else {
            tracing::warn!(status = %text, "the job ended abnormally; the agent's work is done");
        }
        self.observer.status.job_exit = Some(text);
        if let Some(mind) = self.driver.mind_mut(&self.identity.id()) {
            mind.job.remaining = 0;
        }
        self.observer.dirty = true;
    }

    pub(super) fn slot_started(&mut self, round: u64, ms: u64) {
        tracing::info!(round, ms, "executing my slot");
        self.runner.resume();
        self.observer.slot(round, true);
    }

    pub(super) fn slot_ended(&mut self, round: u64, start: u64, end: u64) {
        let now = self.now();
        // Measured only while the job lives: one that ended within the slot is gone.
        let job_cpu_ms = self.runner.pause();
        self.observer.slot(round, false);
        self.observer.status.slots.push(SlotRecord {
            round,
            start_unix_ms: unix_ms().saturating_sub(now.saturating_sub(start)),
            end_unix_ms: unix_ms().saturating_sub(now.saturating_sub(end)),
            job_cpu_ms,
        });
    }
}

/// The end of the job, or never (no job, or it ended already).
pub(super) async fn job_end(job: &mut Option<crate::job::Job>) -> crate::job::JobEnd {
    match job {
        Some(job) if !job.ended() => job.next_end().await,
        _ => std::future::pending().await,
    }
}
