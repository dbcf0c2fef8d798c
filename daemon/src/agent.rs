//! One agent's private side, shared by the simulator and the daemon: its job, its strategy
//! and its nonce source. It answers the engine's [`Output::Decide`](slotmesh_proto::Output)
//! requests with commands and learns from final rounds. Both drivers call it, so an agent
//! behaves the same in `sim` and on a real network.

use crate::strategy::{Decision, DecisionKind, Job, Strategy, View};
use rand::RngCore;
use slotmesh_proto::engine::Finalized;
use slotmesh_proto::wire::LeaveReason;
use slotmesh_proto::{AgentId, CommandError, Engine, Phase};

/// An agent's mind: what it knows privately and how it decides.
pub struct Mind {
    /// Its job (true burst and what remains of it).
    pub job: Job,
    /// Whether any of its claims so far differed from the truth.
    pub lied: bool,
    strategy: Box<dyn Strategy>,
    nonces: Box<dyn RngCore + Send>,
}

impl std::fmt::Debug for Mind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mind")
            .field("job", &self.job)
            .field("strategy", &self.strategy.name())
            .finish_non_exhaustive()
    }
}

impl Mind {
    /// A mind with `job`, deciding with `strategy`, drawing commit nonces from `nonces`.
    pub fn new(job: Job, strategy: Box<dyn Strategy>, nonces: Box<dyn RngCore + Send>) -> Mind {
        Mind {
            job,
            lied: false,
            strategy,
            nonces,
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> &dyn Strategy {
        self.strategy.as_ref()
    }

    /// The strategy, mutably (to restore what it saved).
    pub fn strategy_mut(&mut self) -> &mut dyn Strategy {
        self.strategy.as_mut()
    }

    /// Whether the job is done.
    pub fn is_complete(&self) -> bool {
        self.job.remaining == 0
    }

    /// Answers the engine's request to decide `phase` of its current round: asks the strategy
    /// and gives its answer to the engine as a command. A completed job leaves instead of
    /// claiming. Returns the decision made, if the phase asks for one.
    pub fn decide(
        &mut self,
        engine: &mut Engine,
        phase: Phase,
        now: u64,
    ) -> Result<Option<DecisionKind>, CommandError> {
        if phase == Phase::Announce && self.is_complete() {
            engine.leave(LeaveReason::Completed, now)?;
            return Ok(None);
        }
        let kind = match phase {
            Phase::Announce => DecisionKind::Claim,
            Phase::Negotiate => DecisionKind::Negotiate,
            Phase::Coalition => DecisionKind::Coalition,
            Phase::Commit => DecisionKind::Bid,
            _ => return Ok(None),
        };
        let proposals = engine.proposals();
        let round = engine.round();
        let decision = {
            let view = View {
                me: engine.id(),
                round,
                job: self.job,
                state: engine.state(),
                messages: engine.messages(round),
                proposals: &proposals,
            };
            self.strategy.decide(kind, &view)
        };
        match decision {
            Decision::Claim(claim) => {
                self.lied |= claim != self.job.remaining;
                engine.claim(claim, now)?;
            }
            Decision::Negotiate { lines, proposal } => engine.negotiate(lines, proposal, now)?,
            Decision::Accept(ids) => engine.accept(ids, now)?,
            Decision::Bid {
                bid,
                support,
                deposit,
            } => {
                let mut nonce = [0u8; 32];
                self.nonces.fill_bytes(&mut nonce);
                engine.bid(bid, support, deposit, nonce, now)?;
            }
        }
        Ok(Some(kind))
    }

    /// Learns from a final round: a slot won is a slot of the job done.
    pub fn observe(&mut self, me: AgentId, finalized: &Finalized) {
        if finalized.outcome.winner == Some(me) {
            self.job.remaining = self.job.remaining.saturating_sub(1);
        }
        self.strategy.observe(me, finalized);
    }
}
