//! One agent's private side, shared by the simulator and the daemon: its job, its strategy
//! and its nonce source. It answers the engine's [`Output::Decide`](slotmesh_proto::Output)
//! requests with commands and learns from final rounds. Both drivers call it, so an agent
//! behaves the same in `sim` and on a real network.

use crate::decision::{Decision, DecisionKind};
use crate::model::{Question, Reply};
use crate::strategy::{Answer, Job, Strategy, View};
use rand::RngCore;
use slotmesh_proto::Finalized;
use slotmesh_proto::LeaveReason;
use slotmesh_proto::{AgentId, CommandError, Engine, Phase};

/// What came of a request to decide.
#[derive(Debug)]
pub enum Step {
    /// Decided (the kind of decision, if the phase asked for one).
    Done(Option<DecisionKind>),
    /// A model must be asked first.
    Ask(Box<Question>),
}

/// An agent's mind: what it knows privately and how it decides.
pub struct Mind {
    /// The agent.
    pub id: AgentId,
    /// Its job (true burst and what remains of it).
    pub job: Job,
    /// Whether any of its claims so far differed from the truth.
    pub lied: bool,
    /// The round of its first claim that differed from the truth.
    pub first_lie_round: Option<u64>,
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
    /// Agent `id`'s mind with `job`, deciding with `strategy`, drawing commit nonces from
    /// `nonces`.
    pub fn new(
        id: AgentId,
        job: Job,
        strategy: Box<dyn Strategy>,
        nonces: Box<dyn RngCore + Send>,
    ) -> Mind {
        Mind {
            id,
            job,
            lied: false,
            first_lie_round: None,
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
    /// claiming. When the strategy asks a model first, the question is returned for the
    /// driver to ask and hand back to [`Mind::settle`].
    pub fn decide(
        &mut self,
        engine: &mut Engine,
        phase: Phase,
        now: u64,
    ) -> Result<Step, CommandError> {
        if phase == Phase::Announce && self.is_complete() {
            engine.leave(self.id, LeaveReason::Completed, now)?;
            return Ok(Step::Done(None));
        }
        let Some(kind) = DecisionKind::of_phase(phase) else {
            return Ok(Step::Done(None));
        };
        let proposals = engine.proposals_to(self.id);
        let round = engine.round();
        let answer = {
            let view = View {
                me: self.id,
                round,
                job: self.job,
                state: engine.state(),
                messages: engine.messages(round),
                proposals: &proposals,
            };
            self.strategy.decide(kind, &view)
        };
        match answer {
            Answer::Now(decision) => {
                self.apply(engine, decision, now)?;
                Ok(Step::Done(Some(kind)))
            }
            Answer::Ask(question) => Ok(Step::Ask(question)),
        }
    }

    /// Takes a model's reply to a question [`Mind::decide`] returned: the strategy turns it
    /// into a decision (or its fallback), which goes to the engine if the phase it was asked
    /// for is still open. Returns the decision made, or `None` when the reply came too late.
    pub fn settle(
        &mut self,
        engine: &mut Engine,
        question: Question,
        reply: Reply,
        now: u64,
    ) -> Result<Option<DecisionKind>, CommandError> {
        let (kind, round) = (question.kind(), question.round());
        let decision = self.strategy.settle(question, reply);
        if engine.round() != round || engine.phase() != kind.phase() {
            tracing::warn!(round, ?kind, "the model answered after the phase ended");
            return Ok(None);
        }
        self.apply(engine, decision, now)?;
        Ok(Some(kind))
    }

    fn apply(
        &mut self,
        engine: &mut Engine,
        decision: Decision,
        now: u64,
    ) -> Result<(), CommandError> {
        match decision {
            Decision::Claim(claim) => {
                if claim != self.job.remaining {
                    self.lied = true;
                    self.first_lie_round.get_or_insert(engine.round());
                }
                engine.claim(self.id, claim, now)
            }
            Decision::Negotiate { lines, proposal } => {
                engine.negotiate(self.id, lines, proposal, now)
            }
            Decision::Accept(ids) => engine.accept(self.id, ids, now),
            Decision::Bid {
                bid,
                support,
                deposit,
            } => {
                let mut nonce = [0u8; 32];
                self.nonces.fill_bytes(&mut nonce);
                engine.bid(self.id, bid, support, deposit, nonce, now)
            }
        }
    }

    /// Learns from a final round: a slot won is a slot of the job done.
    pub fn observe(&mut self, finalized: &Finalized) {
        if finalized.outcome.winner == Some(self.id) {
            self.job.remaining = self.job.remaining.saturating_sub(1);
        }
        self.strategy.observe(self.id, finalized);
    }
}
