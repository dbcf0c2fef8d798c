//! The slots a node executes: the local timeline of decided slots, the pacing of the next
//! round's claims, this agent's own slots starting and ending, and its `--exec` job paused
//! and resumed with them.

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
        self.status.job_exit = Some(text);
        self.mind.job.remaining = 0;
        self.status_dirty = true;
    }

    /// Pacing: the next round's claims wait until the last decided slot has started, so the
    /// schedule is decided at most one slot ahead of execution.
    pub(super) fn slot_started_for_pacing(&self, now: u64) -> bool {
        self.timeline_end <= now + self.config.slot_ms
    }

    pub(super) fn slot_boundary(&self) -> Option<u64> {
        let (_, start, end) = self.my_slots.front()?;
        Some(if self.status.executing.is_some() {
            *end
        } else {
            *start
        })
    }

    pub(super) fn update_slots(&mut self, now: u64) {
        while let Some(&(round, start, end)) = self.my_slots.front() {
            if now < start {
                break;
            }
            if now < end {
                if self.status.executing != Some(round) {
                    tracing::info!(round, ms = end - start, "executing my slot");
                    if let Some(job) = self.job.as_mut() {
                        self.job_cpu_at_slot_start = crate::job::group_cpu_ms(job.pid());
                        job.resume();
                    }
                    let _ = self.events.send(NodeEvent::Slot {
                        round,
                        running: true,
                    });
                    self.status.executing = Some(round);
                    self.status_dirty = true;
                }
                break;
            }
            self.my_slots.pop_front();
            // Measured only while the job lives: one that ended within the slot is gone.
            let job_cpu_ms = self.job.as_mut().and_then(|job| {
                job.pause();
                let now = crate::job::group_cpu_ms(job.pid())?;
                Some(now.saturating_sub(self.job_cpu_at_slot_start?))
            });
            self.status.executing = None;
            self.metrics.slots_executed.inc();
            let _ = self.events.send(NodeEvent::Slot {
                round,
                running: false,
            });
            self.status.slots.push(SlotRecord {
                round,
                start_unix_ms: unix_ms().saturating_sub(now - start),
                end_unix_ms: unix_ms().saturating_sub(now - end),
                job_cpu_ms,
            });
            self.status_dirty = true;
        }
    }
}

/// The end of the job, or never (no job, or it ended already).
pub(super) async fn job_end(job: &mut Option<crate::job::Job>) -> crate::job::JobEnd {
    match job {
        Some(job) if !job.ended() => job.next_end().await,
        _ => std::future::pending().await,
    }
}
