//! One host's side of the protocol, the same in the daemon and the simulator: the round
//! engine, the minds of the agents the host speaks for, and the rules between them that are
//! not consensus but shape what a host says and when:
//!
//! - **decisions**: the engine asks, the mind answers (or hands back a model question);
//! - **restart guard**: a host restarted in a round it may have spoken in stays silent
//!   through it (two different signed messages for one turn would be equivocation), and
//!   its engine takes no part in that round's agreement (its votes and promises of that
//!   round were lost with it); it reports the first message of each round so the caller can
//!   persist that it spoke;
//! - **pacing**: with executed slots, the next round's claims wait until the last decided
//!   slot has started, so the schedule is decided at most one slot ahead of execution;
//! - **the slot timeline**: this host's won slots start and end on a local timeline;
//! - **fetch rotation**: one fetch of final rounds in flight at a time, each attempt
//!   numbered so the caller asks the next peer;
//! - **lingering**: after its leave is final, a host stays until the others no longer need
//!   its vote.
//!
//! Sans-IO like the engine: inputs go in with [`HostDriver::handle`] and the time, and the
//! caller carries out each [`Effect`] from [`HostDriver::poll_effect`] on a real network and
//! disk (the node) or a simulated one (the simulator).

use crate::decision::DecisionKind;
use crate::mind::{Mind, Step};
use crate::model::{Question, Reply};
use slotmesh_proto::LeaveReason;
use slotmesh_proto::{
    AgentId, CommandError, Digest, Engine, FinalRound, FinalRoundError, Finalized, Identity,
    MemberStatus, Output, Phase, SignedMessage,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many phase timeouts a host whose leave is final stays at most to help the others.
pub const LINGER_TIMEOUTS: u64 = 4;
/// Phase timeouts a finished host stays while a member that left is still connected.
pub const LEFT_PEER_TIMEOUTS: u64 = 2;
/// Phase timeouts a finished host stays at most while a suspended member is connected: it
/// may be catching up to rejoin, and needs the records of the rounds it missed.
pub const REJOIN_LINGER_TIMEOUTS: u64 = 20;

/// The rules a host runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRules {
    /// Phase timeout, ms (bounds the pacing wait and the lingering).
    pub phase_timeout_ms: u64,
    /// How long a won slot executes, ms, when slots are executed (the daemon): turns on
    /// pacing and the slot timeline. `None`: decide as soon as asked (the simulator's
    /// default, where no slot executes).
    pub slot_ms: Option<u64>,
    /// The last round this host spoke in before it (re)started, if any: rounds up to it
    /// that are not final yet are silent.
    pub spoken_round: Option<u64>,
}

/// Something for the host's caller to do.
#[derive(Debug)]
pub enum Effect {
    /// The host is about to speak in `round` for the first time: persist that, then call
    /// [`HostDriver::spoken`]. Until then the driver hands out nothing more (a host that
    /// cannot record that it spoke must not speak; the restart guard reads it back).
    Spoke(u64),
    /// Publish a message to every peer. A promise, proposal or vote of a hosted agent
    /// (`payload().stage()` is set) is first stored durably with the others of its round,
    /// for [`HostDriver::resume_agreement`] after a restart.
    Publish(SignedMessage),
    /// Call [`HostDriver::handle`] with [`Input::Timer`] at `at`.
    SetTimer {
        /// The round.
        round: u64,
        /// The phase.
        phase: Phase,
        /// When, in the host's ms.
        at: u64,
    },
    /// The host's replica resolved a round to this digest (not final yet).
    Resolved {
        /// The round.
        round: u64,
        /// The digest it votes for.
        digest: Digest,
    },
    /// A round is final on this host (already observed by its minds): persist and report.
    Final(Box<Finalized>),
    /// Ask `peer` for the messages it resolved to `digest` in `round`
    /// ([`Engine::inputs`]); hand its answer back as [`Input::Inputs`].
    FetchInputs {
        /// The round.
        round: u64,
        /// The digest.
        digest: Digest,
        /// Who to ask.
        peer: AgentId,
    },
    /// Fetch final rounds from `from` on; hand each back as [`Input::FinalRound`], then
    /// call [`HostDriver::fetch_ended`]. `attempt` numbers the fetches, so the caller can
    /// ask another peer each time (peer `attempt % peers`).
    FetchRounds {
        /// The first round wanted.
        from: u64,
        /// The fetch's number.
        attempt: u64,
    },
    /// Ask a model `question` for `agent`; hand the reply back as [`Input::Reply`].
    Ask {
        /// The agent.
        agent: AgentId,
        /// The question.
        question: Box<Question>,
    },
    /// `agent` decided (the decision is with the engine, or was refused).
    Decided {
        /// The agent.
        agent: AgentId,
        /// What it decided, if the phase asked for a decision.
        kind: Option<DecisionKind>,
    },
    /// `agent`'s won slot of `round` starts now and lasts `ms`.
    SlotStarted {
        /// The agent.
        agent: AgentId,
        /// The round that decided it.
        round: u64,
        /// Its length.
        ms: u64,
    },
    /// `agent`'s won slot of `round` has ended; it started at `start` and ended at `end`.
    SlotEnded {
        /// The agent.
        agent: AgentId,
        /// The round that decided it.
        round: u64,
        /// Start, host ms.
        start: u64,
        /// End, host ms.
        end: u64,
    },
}

/// What comes into a host.
#[derive(Debug)]
pub enum Input {
    /// A verified message from the network (or a fetch).
    Message(SignedMessage),
    /// A timer set by [`Effect::SetTimer`] fired.
    Timer {
        /// The round.
        round: u64,
        /// The phase.
        phase: Phase,
    },
    /// A fetched final round.
    FinalRound(FinalRound),
    /// A peer's answer to [`Effect::FetchInputs`] (each message verified).
    Inputs {
        /// The round.
        round: u64,
        /// The digest asked for.
        digest: Digest,
        /// The messages.
        messages: Vec<SignedMessage>,
    },
    /// A model's reply to a question from [`Effect::Ask`].
    Reply {
        /// The agent that asked.
        agent: AgentId,
        /// The question.
        question: Box<Question>,
        /// The reply.
        reply: Reply,
    },
    /// `agent` leaves the swarm (asked to stop).
    Leave {
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: LeaveReason,
    },
    /// `agent`'s process restarted and its job started over (a `--exec` daemon): said in
    /// the record ([`Engine::job_restarted`]).
    JobRestarted {
        /// The agent.
        agent: AgentId,
    },
    /// Time passed: deferred decisions and slot boundaries due by now happen.
    Wake,
}

/// Why an input was refused.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The engine refused a command.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A fetched final round does not verify.
    #[error(transparent)]
    FinalRound(#[from] FinalRoundError),
}

/// A mind the host speaks for.
#[derive(Debug)]
struct Hosted {
    mind: Mind,
    /// Its membership ended (completed, departed, failed): it decides nothing more.
    done: bool,
}

/// A won slot on the local timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    agent: AgentId,
    round: u64,
    start: u64,
    end: u64,
}

/// One host: the engine, the minds it speaks for, and the host rules.
#[derive(Debug)]
pub struct HostDriver {
    engine: Engine,
    minds: BTreeMap<AgentId, Hosted>,
    rules: HostRules,
    /// Rounds up to this one are silent (the restart guard).
    silent_through: Option<u64>,
    /// The last round the caller has recorded that the host spoke in.
    spoken_round: Option<u64>,
    /// The round whose [`Effect::Spoke`] was handed out and not yet confirmed.
    spoke_asked: Option<u64>,
    /// Announce decisions held back until the last decided slot starts, and until when.
    deferred: Option<(u64, Vec<AgentId>, u64)>,
    /// End of the last decided slot on the local timeline.
    timeline_end: u64,
    /// Won slots of hosted agents still to start or end, soonest first.
    slots: VecDeque<Slot>,
    /// The slot executing now.
    executing: Option<Slot>,
    fetch_in_flight: bool,
    fetch_attempts: u64,
    /// When the last hosted agent's leave became final.
    finished_at: Option<u64>,
    effects: VecDeque<Effect>,
}

impl HostDriver {
    /// A host around `engine` (which already hosts `mind`'s agent) under `rules`.
    pub fn new(engine: Engine, mind: Mind, rules: HostRules) -> HostDriver {
        HostDriver::with_minds(engine, [mind], rules)
    }

    /// A host around `engine`, which already hosts the agent of every one of `minds`.
    pub fn with_minds(
        engine: Engine,
        minds: impl IntoIterator<Item = Mind>,
        rules: HostRules,
    ) -> HostDriver {
        let resumed_at = engine.round();
        let silent_through = rules.spoken_round.filter(|r| *r >= resumed_at);
        let mut engine = engine;
        engine.silence_through(silent_through);
        let minds = minds
            .into_iter()
            .map(|mind| (mind.id, Hosted { mind, done: false }))
            .collect();
        HostDriver {
            engine,
            minds,
            silent_through,
            spoken_round: rules.spoken_round,
            spoke_asked: None,
            rules,
            deferred: None,
            timeline_end: 0,
            slots: VecDeque::new(),
            executing: None,
            fetch_in_flight: false,
            fetch_attempts: 0,
            finished_at: None,
            effects: VecDeque::new(),
        }
    }

    /// The engine (read-only: every change goes through the host).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The round through which the host stays silent after a restart, if any.
    pub fn silent_through(&self) -> Option<u64> {
        self.silent_through
    }

    /// The mind of `agent`, if the host speaks for it.
    pub fn mind(&self, agent: &AgentId) -> Option<&Mind> {
        self.minds.get(agent).map(|h| &h.mind)
    }

    /// The mind of `agent`, mutably (its job, when the daemon learns more about it).
    pub fn mind_mut(&mut self, agent: &AgentId) -> Option<&mut Mind> {
        self.minds.get_mut(agent).map(|h| &mut h.mind)
    }

    /// Speaks for one more agent from now on (a late arrival on this host).
    pub fn host(&mut self, identity: Identity, name: String, founder: bool, mind: Mind, now: u64) {
        self.engine.host(identity, name, founder, now);
        self.minds.insert(mind.id, Hosted { mind, done: false });
        // Someone to linger for again.
        self.finished_at = None;
    }

    /// Stops speaking for `agent` (it crashed) and gives its mind back.
    pub fn unhost(&mut self, agent: &AgentId) -> Option<Mind> {
        self.engine.unhost(agent);
        // Its won slots die with it.
        self.slots.retain(|slot| slot.agent != *agent);
        if self.executing.is_some_and(|slot| slot.agent == *agent) {
            self.executing = None;
        }
        self.minds.remove(agent).map(|h| h.mind)
    }

    /// Replaces the replica by `engine`, which hosts the same live agents (a host further
    /// behind than any peer's records starts again from the agreed state).
    pub fn replace_engine(&mut self, mut engine: Engine) {
        engine.silence_through(self.silent_through);
        self.engine = engine;
    }

    /// Restarted in a round it spoke in, the host takes part in that round's agreement
    /// after all: `stored` holds every promise, proposal and vote it published in the round
    /// ([`Effect::Publish`]); its turns stay silent ([`HostRules::spoken_round`]).
    pub fn resume_agreement(&mut self, stored: Vec<SignedMessage>, now: u64) {
        self.engine.resume_agreement(stored, now);
    }

    /// The caller has recorded that the host spoke in `round` ([`Effect::Spoke`]).
    pub fn spoken(&mut self, round: u64) {
        self.spoken_round = self.spoken_round.max(Some(round));
        self.spoke_asked = None;
    }

    /// Every mind, taking the host apart.
    pub fn into_minds(self) -> impl Iterator<Item = (AgentId, Mind)> {
        self.minds.into_iter().map(|(id, h)| (id, h.mind))
    }

    /// Takes an input at `now` (host ms).
    pub fn handle(&mut self, input: Input, now: u64) -> Result<(), HostError> {
        match input {
            Input::Message(message) => self.engine.handle_message(message, now),
            Input::Timer { round, phase } => self.engine.handle_timeout(round, phase, now),
            Input::FinalRound(record) => self.engine.handle_final_round(&record, now)?,
            Input::Inputs {
                round,
                digest,
                messages,
            } => self.engine.handle_inputs(round, digest, messages, now),
            Input::Reply {
                agent,
                question,
                reply,
            } => {
                // Settled even when the agent's membership has ended meanwhile: the strategy
                // counts and records every answer (the engine takes no late decision).
                let Some(hosted) = self.minds.get_mut(&agent) else {
                    return Ok(());
                };
                let kind = hosted
                    .mind
                    .settle(&mut self.engine, *question, reply, now)
                    .unwrap_or_else(|error| {
                        tracing::debug!(%error, "decision refused by the engine");
                        None
                    });
                self.effects.push_back(Effect::Decided { agent, kind });
            }
            Input::Leave { agent, reason } => self.engine.leave(agent, reason, now)?,
            Input::JobRestarted { agent } => self.engine.job_restarted(agent),
            Input::Wake => self.wake(now),
        }
        Ok(())
    }

    /// A fetch from [`Effect::FetchRounds`] is over; with `more_from`, there is more to
    /// fetch from that round on (the answer was full), and the next fetch goes out.
    pub fn fetch_ended(&mut self, more_from: Option<u64>) {
        self.fetch_in_flight = false;
        if let Some(from) = more_from {
            self.fetch_rounds(from);
        }
    }

    /// The next thing to do, if any. Decisions are made here, as the engine asks for them.
    #[must_use]
    pub fn poll_effect(&mut self, now: u64) -> Option<Effect> {
        loop {
            if let Some(Effect::Publish(message)) = self.effects.front() {
                let round = message.round();
                if self.spoken_round.is_none_or(|r| r < round) {
                    if self.spoke_asked == Some(round) {
                        // Waiting for the caller to record it.
                        return None;
                    }
                    self.spoke_asked = Some(round);
                    return Some(Effect::Spoke(round));
                }
            }
            if let Some(effect) = self.effects.pop_front() {
                return Some(effect);
            }
            let output = self.engine.poll_output()?;
            self.take_output(output, now);
        }
    }

    /// When the host next needs [`Input::Wake`]: when a deferred decision is due (the last
    /// decided slot starts, or its deadline), or a slot boundary.
    pub fn next_wakeup(&self) -> Option<u64> {
        let slot_ms = self.rules.slot_ms.unwrap_or(0);
        let deferred = self
            .deferred
            .as_ref()
            .map(|(_, _, at)| (*at).min(self.timeline_end.saturating_sub(slot_ms)));
        let slot = match self.executing {
            Some(slot) => Some(slot.end),
            None => self.slots.front().map(|s| s.start),
        };
        deferred.into_iter().chain(slot).min()
    }

    /// Whether every won slot of the host's agents has executed.
    pub fn slots_done(&self) -> bool {
        self.slots.is_empty() && self.executing.is_none()
    }

    /// The slot executing now: (agent, round).
    pub fn executing(&self) -> Option<(AgentId, u64)> {
        self.executing.map(|s| (s.agent, s.round))
    }

    /// Whether a host whose agents' leave is final may go: once every remaining member
    /// that `reachable` says is still connected has spoken in the next round (so each has
    /// finalized this one), and, while a member that left is still connected (it may still
    /// lack the certificate of the round it left in: the votes this host sent last can be
    /// lost with its exit), after [`LEFT_PEER_TIMEOUTS`] phase timeouts, in which that member
    /// fetches the record from it; or after [`LINGER_TIMEOUTS`] phase timeouts in any case.
    /// A connected suspended member counts as a remaining one (it may be catching up to
    /// rejoin: it speaks, with its rejoin, once it holds the records it missed), for up to
    /// [`REJOIN_LINGER_TIMEOUTS`].
    pub fn lingered(&mut self, now: u64, reachable: impl Fn(&AgentId) -> bool) -> bool {
        let since = *self.finished_at.get_or_insert(now);
        let rejoining = self.engine.state().members.iter().any(|(id, member)| {
            member.is_suspended() && !self.minds.contains_key(id) && reachable(id)
        });
        let limit = if rejoining {
            REJOIN_LINGER_TIMEOUTS
        } else {
            LINGER_TIMEOUTS
        };
        if now >= since + limit * self.rules.phase_timeout_ms {
            return true;
        }
        let left_and_connected = self.engine.state().members.iter().any(|(id, member)| {
            matches!(
                member.status,
                MemberStatus::Completed | MemberStatus::Departed
            ) && !self.minds.contains_key(id)
                && reachable(id)
        });
        if left_and_connected && now < since + LEFT_PEER_TIMEOUTS * self.rules.phase_timeout_ms {
            return false;
        }
        let round = self.engine.round();
        let spoken: BTreeSet<AgentId> = self
            .engine
            .messages(round)
            .map(|m| m.iter().map(SignedMessage::sender).collect())
            .unwrap_or_default();
        let waiting_for: Vec<AgentId> = self
            .engine
            .state()
            .members
            .iter()
            .filter(|(_, m)| m.is_active() || m.is_suspended())
            .map(|(id, _)| *id)
            .filter(|id| !spoken.contains(id) && reachable(id))
            .collect();
        if !waiting_for.is_empty() {
            tracing::debug!(round, waiting_for = ?waiting_for, "lingering");
        }
        waiting_for.is_empty()
    }

    fn is_silent(&self, round: u64) -> bool {
        self.silent_through.is_some_and(|r| round <= r)
    }

    fn take_output(&mut self, output: Output, now: u64) {
        match output {
            Output::Send(message) => {
                // Turns only: whether the replica takes part in a silent round's agreement
                // is the engine's to decide (`Engine::resume_agreement`).
                let turn = message.payload().stage().is_none();
                if turn && self.is_silent(message.round()) {
                    return;
                }
                self.effects.push_back(Effect::Publish(message));
            }
            Output::ScheduleTimeout { round, phase, at } => {
                self.effects
                    .push_back(Effect::SetTimer { round, phase, at });
            }
            Output::Decide {
                agent,
                round,
                phase,
            } => {
                if self.rules.slot_ms.is_some()
                    && phase == Phase::Announce
                    && !self.slot_started_for_pacing(now)
                {
                    let cap = now + self.rules.phase_timeout_ms / 2;
                    match &mut self.deferred {
                        Some((r, agents, _)) if *r == round => agents.push(agent),
                        _ => self.deferred = Some((round, vec![agent], cap)),
                    }
                } else {
                    self.decide(agent, round, phase, now);
                }
            }
            Output::Resolved { round, digest } => {
                self.effects.push_back(Effect::Resolved { round, digest });
            }
            Output::Final(finalized) => self.finalized(finalized, now),
            Output::FetchInputs {
                round,
                digest,
                peer,
            } => {
                self.effects.push_back(Effect::FetchInputs {
                    round,
                    digest,
                    peer,
                });
            }
            Output::FetchRound { round } => self.fetch_rounds(round),
        }
    }

    fn fetch_rounds(&mut self, from: u64) {
        if self.fetch_in_flight {
            return;
        }
        self.fetch_in_flight = true;
        self.fetch_attempts += 1;
        self.effects.push_back(Effect::FetchRounds {
            from,
            attempt: self.fetch_attempts,
        });
    }

    fn decide(&mut self, agent: AgentId, round: u64, phase: Phase, now: u64) {
        if round != self.engine.round() || self.is_silent(round) {
            return;
        }
        let Some(hosted) = self.minds.get_mut(&agent).filter(|h| !h.done) else {
            return;
        };
        match hosted.mind.decide(&mut self.engine, phase, now) {
            Ok(Step::Done(kind)) => self.effects.push_back(Effect::Decided { agent, kind }),
            Ok(Step::Ask(question)) => self.effects.push_back(Effect::Ask { agent, question }),
            Err(error) => {
                tracing::debug!(round, ?phase, %error, "decision refused by the engine");
                self.effects
                    .push_back(Effect::Decided { agent, kind: None });
            }
        }
    }

    fn finalized(&mut self, finalized: Box<Finalized>, now: u64) {
        for (id, hosted) in &mut self.minds {
            if hosted.done {
                continue;
            }
            hosted.mind.observe(&finalized);
            let status = finalized.state.members.get(id).map(|m| m.status);
            hosted.done = matches!(
                status,
                Some(MemberStatus::Completed | MemberStatus::Departed | MemberStatus::Removed)
            );
        }
        if let (Some(slot_ms), Some(winner)) = (self.rules.slot_ms, finalized.outcome.winner) {
            let start = now.max(self.timeline_end);
            let end = start + slot_ms;
            self.timeline_end = end;
            if self.minds.contains_key(&winner) {
                self.slots.push_back(Slot {
                    agent: winner,
                    round: finalized.certified.round(),
                    start,
                    end,
                });
            }
        }
        self.effects.push_back(Effect::Final(finalized));
    }

    /// Pacing: the next round's claims wait until the last decided slot has started.
    fn slot_started_for_pacing(&self, now: u64) -> bool {
        self.timeline_end <= now + self.rules.slot_ms.unwrap_or(0)
    }

    fn wake(&mut self, now: u64) {
        if let Some((round, _, at)) = &self.deferred {
            if *at <= now || self.slot_started_for_pacing(now) {
                let round = *round;
                let agents = self.deferred.take().map(|(_, a, _)| a).unwrap_or_default();
                for agent in agents {
                    self.decide(agent, round, Phase::Announce, now);
                }
            }
        }
        loop {
            if let Some(slot) = self.executing {
                if now < slot.end {
                    break;
                }
                self.executing = None;
                self.effects.push_back(Effect::SlotEnded {
                    agent: slot.agent,
                    round: slot.round,
                    start: slot.start,
                    end: slot.end,
                });
                continue;
            }
            let Some(slot) = self.slots.front().copied() else {
                break;
            };
            if now < slot.start {
                break;
            }
            self.slots.pop_front();
            if now < slot.end {
                self.executing = Some(slot);
                self.effects.push_back(Effect::SlotStarted {
                    agent: slot.agent,
                    round: slot.round,
                    ms: slot.end - slot.start,
                });
                break;
            }
            // It passed while the host was busy: it ends without having run.
            self.effects.push_back(Effect::SlotEnded {
                agent: slot.agent,
                round: slot.round,
                start: slot.start,
                end: slot.end,
            });
        }
    }
}
