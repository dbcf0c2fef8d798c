//! The round engine: one replica's state machine for the phases of each round
//! (join → announce → negotiate → coalition → commit → seal → reveal → resolve/finalize),
//! sans-IO.
//!
//! Method kinds:
//! - getters: [`Engine::state`], [`Engine::round`], [`Engine::phase`], [`Engine::messages`], ...
//! - inputs: [`Engine::handle_message`] (a verified message), [`Engine::handle_timeout`]
//!   (a timer the engine asked for), [`Engine::handle_final_round`] (a record fetched from a peer);
//! - commands, the strategy's answers to [`Output::Decide`]: [`Engine::claim`],
//!   [`Engine::negotiate`], [`Engine::accept`], [`Engine::bid`], and [`Engine::leave`];
//! - outputs: [`Engine::poll_output`], drained by the caller until `None`, in the order produced.
//!   Sending the same message twice is harmless: receivers recognise duplicates by id.
//!
//! Time is the caller's `now` (milliseconds, any epoch) on every call; nonces come in with
//! [`Engine::bid`]. The engine never reads a clock, a socket or a random number generator.
//!
//! A replica speaks for one agent (the daemon) or for several that share its view of the
//! swarm ([`Engine::host`]: the simulator puts many agents on one simulated host). The view —
//! ledger, messages, phase, votes — is one; what each agent said and must still say is its own.
//! Commands and [`Output::Decide`] name the agent.

use crate::agreement::AgreementLog;
use crate::commit::commitment;
use crate::envelope::{Identity, SignedMessage};
use crate::finality::{CertifiedRound, FinalRound, FinalRoundError, VoteTally};
use crate::ids::{AgentId, Digest};
use crate::round_messages::{Inserted, RoundMessages};
use crate::shared_resolution::SharedResolutions;
use crate::state::LedgerState;
use crate::wire::{
    Claim, CoalitionAcceptance, CoalitionId, CoalitionProposal, Commit, Leave, LeaveReason,
    Negotiation, NegotiationLine, Payload, PayloadKind, Reveal, Stage, Support,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

mod evidence;
mod finalize;
mod intake;
mod membership;
mod pacing;
mod restart;
mod stage;
mod types;

use finalize::Finalizing;

pub use types::{CommandError, EngineConfig, FinalityStatus, Finalized, Output, Phase};

/// An agent this replica speaks for, and what it said in the current round.
#[derive(Debug)]
struct Local {
    identity: Identity,
    name: String,
    founder: bool,
    sent: BTreeMap<PayloadKind, SignedMessage>,
    opening: Option<Reveal>,
    leave_requested: Option<LeaveReason>,
    /// Its latest vote, proposal and promise of the current round.
    agreement_sent: BTreeMap<PayloadKind, SignedMessage>,
    /// Its job restarted while the record counted this many restarts: a join saying so
    /// (`Join::restarted`) goes out each round until the record counts it.
    restart_unrecorded: Option<u32>,
}

impl Local {
    fn new(identity: Identity, name: String, founder: bool) -> Local {
        Local {
            identity,
            name,
            founder,
            sent: BTreeMap::new(),
            opening: None,
            leave_requested: None,
            agreement_sent: BTreeMap::new(),
            restart_unrecorded: None,
        }
    }

    fn start_round(&mut self) {
        self.sent.clear();
        self.opening = None;
        self.agreement_sent.clear();
    }

    fn is_leaving(&self) -> bool {
        self.sent.contains_key(&PayloadKind::Leave)
    }
}

/// One replica of the round state machine. See the module documentation for its method kinds.
#[derive(Debug)]
pub struct Engine {
    /// The agent of [`Engine::new`].
    primary: AgentId,
    locals: BTreeMap<AgentId, Local>,
    config: EngineConfig,
    ledger: Arc<LedgerState>,
    /// Digest of `ledger`.
    ledger_digest: Digest,
    /// This replica's resolutions, shared with other replicas in the process
    /// ([`Engine::share_resolutions`]).
    resolutions: SharedResolutions,
    phase: Phase,
    deadline: u64,
    inbox: BTreeMap<u64, RoundMessages>,
    /// Members each phase of the current round still waits for ([`pacing`]).
    awaited: BTreeMap<PayloadKind, BTreeSet<AgentId>>,
    /// Distinct senders of joins in the current round.
    joins_heard: usize,
    /// Rounds in a row each member skipped each optional turn, as held here ([`pacing`]).
    skips: BTreeMap<(AgentId, PayloadKind), u32>,
    /// Votes, proposals and promises of an agreement (round, stage) not started here yet.
    early_votes: BTreeMap<(u64, Stage), Vec<SignedMessage>>,
    /// The agreement in progress in the current round: the seal, then the outcome.
    stage: Stage,
    /// The current round's sealed inputs and their certificate, once agreed.
    seal: Option<CertifiedRound>,
    /// Senders of sealed commits whose reveal is not held yet.
    awaiting_reveal: BTreeSet<AgentId>,
    /// Votes of the agreement in progress.
    tally: Option<VoteTally>,
    /// Proposals and promises of the agreement in progress.
    log: Option<AgreementLog>,
    finalizing: Option<Finalizing>,
    /// Rounds up to this one take no part in agreement ([`Engine::silence_through`]).
    silent_through: Option<u64>,
    /// The agreement messages a restarted replica sent in the last round it spoke in before
    /// the restart, and that round ([`Engine::resume_agreement`]).
    resumed: Vec<SignedMessage>,
    resumed_round: Option<u64>,
    /// The last round this replica completed: peers a round behind ask for its inputs.
    previous: Option<CertifiedRound>,
    fetch_requested_for: Option<u64>,
    outputs: VecDeque<Output>,
    /// Contradictions caught in the agreement, to report.
    reports: evidence::Reports,
}

impl Engine {
    /// A replica of `identity`'s agent continuing from `ledger` (genesis for a new swarm, or
    /// the state after the last final round on disk). Drain [`Engine::poll_output`] afterwards.
    pub fn new(identity: Identity, config: EngineConfig, ledger: LedgerState, now: u64) -> Engine {
        let primary = identity.id();
        let local = Local::new(identity, config.name.clone(), config.founder);
        let mut engine = Engine {
            primary,
            locals: BTreeMap::from([(primary, local)]),
            config,
            ledger_digest: ledger.digest(),
            ledger: Arc::new(ledger),
            resolutions: SharedResolutions::new(),
            phase: Phase::Observe,
            deadline: 0,
            inbox: BTreeMap::new(),
            awaited: BTreeMap::new(),
            joins_heard: 0,
            skips: BTreeMap::new(),
            early_votes: BTreeMap::new(),
            stage: Stage::Outcome,
            seal: None,
            awaiting_reveal: BTreeSet::new(),
            tally: None,
            log: None,
            finalizing: None,
            silent_through: None,
            resumed: Vec::new(),
            resumed_round: None,
            previous: None,
            fetch_requested_for: None,
            outputs: VecDeque::new(),
            reports: evidence::Reports::default(),
        };
        engine.start_round(now);
        engine
    }

    /// Makes this replica speak for one more agent as well (named `name`; `founder`: it
    /// joins round 0 if the swarm is still founding). An agent that is not a member asks to
    /// join in the current round. Drain [`Engine::poll_output`] afterwards.
    pub fn host(&mut self, identity: Identity, name: String, founder: bool, now: u64) {
        let agent = identity.id();
        if self.locals.contains_key(&agent) {
            return;
        }
        self.locals
            .insert(agent, Local::new(identity, name, founder));
        if self.phase == Phase::Join {
            if founder {
                self.send_join(agent);
                self.advance_if_complete(now);
            }
        } else if self.round() > 0 && self.ledger.may_join(&agent) {
            self.send_join(agent);
        }
    }

    /// Takes resolutions from (and gives them to) other replicas in this process that share
    /// `cache`: a replica holding the same state and inputs as another resolves only once.
    pub fn share_resolutions(&mut self, cache: SharedResolutions) {
        self.resolutions = cache;
    }

    /// The hosted agents take no part in the agreement of rounds up to `round`: a replica
    /// restarted in a round it may have voted in lost its promises and votes of that round,
    /// and voting again could contradict them. It still learns each round's outcome.
    pub fn silence_through(&mut self, round: Option<u64>) {
        self.silent_through = round;
    }

    /// Stops speaking for `agent` (it crashed): what it sent stands, it sends nothing more.
    pub fn unhost(&mut self, agent: &AgentId) {
        self.locals.remove(agent);
    }

    // ----- getters -----

    /// The agent this replica was created for ([`Engine::new`]).
    pub fn id(&self) -> AgentId {
        self.primary
    }

    /// The state after the last final round.
    pub fn state(&self) -> &LedgerState {
        &self.ledger
    }

    /// The round in progress.
    pub fn round(&self) -> u64 {
        self.ledger.next_round
    }

    /// The phase in progress.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The voters of the agreement in progress (none before the founding round's outcome
    /// names them): a host sends its agreement messages to them directly as well.
    pub fn agreement_voters(&self) -> Option<&std::collections::BTreeSet<AgentId>> {
        self.tally.as_ref().map(|t| t.voters())
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Messages held for `round` (the current one, or the next).
    pub fn messages(&self, round: u64) -> Option<&RoundMessages> {
        self.inbox.get(&round)
    }

    /// Coalition proposals made this round to `agent`, for its coalition decision.
    pub fn proposals_to(&self, agent: AgentId) -> Vec<(CoalitionId, CoalitionProposal)> {
        let round = self.round();
        let Some(messages) = self.inbox.get(&round) else {
            return Vec::new();
        };
        messages
            .proposals_to(agent)
            .map(|(proposer, proposal)| (CoalitionId { round, proposer }, proposal.clone()))
            .collect()
    }

    /// The current round's votes (voter, attempt, digest) and this replica's own digest and
    /// attempt, while it finalizes.
    pub fn finality(&self) -> Option<FinalityStatus> {
        let tally = self.tally.as_ref()?;
        Some(FinalityStatus {
            stage: self.stage,
            voters: tally.voters().iter().copied().collect(),
            votes: tally.votes(),
            own: self.finalizing.as_ref().map(|f| {
                let digest = f.acceptor.accepted().map_or(f.own, |a| a.digest);
                (f.attempt, digest)
            }),
        })
    }

    /// Whether an agent this replica speaks for is an active member in the current round.
    pub fn is_member(&self) -> bool {
        self.locals.keys().any(|agent| self.ledger.is_active(agent))
    }

    /// The next output, in production order; call until `None`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    // ----- inputs -----

    /// A timer scheduled by [`Output::ScheduleTimeout`] fired. Stale timers are ignored.
    pub fn handle_timeout(&mut self, round: u64, phase: Phase, now: u64) {
        if round != self.round() || phase != self.phase || now < self.deadline {
            return;
        }
        match self.phase {
            Phase::Join => {
                let joins = self.joins_heard;
                if joins >= self.config.min_members.max(1) {
                    self.resolve(now);
                } else {
                    self.resend(PayloadKind::Join);
                    self.schedule(now);
                    // Founded elsewhere on joins this replica never heard (it holds the
                    // certificate's votes, or agreement messages of a later round: it
                    // restarted after the others founded the swarm): the record, asked for
                    // again at each timeout since a first ask may have come before any peer
                    // held it.
                    let later = self.early_votes.keys().any(|(r, _)| *r > self.round());
                    if later
                        || self
                            .tally
                            .as_ref()
                            .is_some_and(|t| t.certificate().is_some())
                    {
                        self.fetch_requested_for = None;
                        self.request_fetch(self.round());
                    }
                }
            }
            Phase::Announce | Phase::Negotiate | Phase::Coalition | Phase::Commit => {
                self.next_phase(now)
            }
            Phase::Reveal => self.resolve(now),
            Phase::Seal | Phase::Finalize => self.finalize_timed_out(now),
            Phase::Observe => self.observe_timed_out(now),
        }
    }

    /// Applies a final record fetched from a peer, if it is the next one and verifies.
    pub fn handle_final_round(
        &mut self,
        record: &FinalRound,
        now: u64,
    ) -> Result<(), FinalRoundError> {
        let (state, outcome, certified) = record.apply(&self.ledger, &self.config.limits)?;
        self.fetch_requested_for = None;
        self.complete_round(certified, Arc::new(state), outcome, now);
        Ok(())
    }

    // ----- commands -----

    /// `agent`'s announce-phase answer: claim `remaining` slots of burst.
    pub fn claim(&mut self, agent: AgentId, remaining: u32, now: u64) -> Result<(), CommandError> {
        self.send_turn(
            agent,
            Phase::Announce,
            Payload::Claim(Claim { remaining }),
            now,
        )
    }

    /// `agent`'s announce-phase answer (or any time, to take effect at the next announce):
    /// leave.
    pub fn leave(
        &mut self,
        agent: AgentId,
        reason: LeaveReason,
        now: u64,
    ) -> Result<(), CommandError> {
        let local = self.local_mut(agent)?;
        local.leave_requested = Some(reason);
        let claimed = local.sent.contains_key(&PayloadKind::Claim);
        if self.phase == Phase::Announce && !claimed {
            return self.send_turn(
                agent,
                Phase::Announce,
                Payload::Leave(Leave { reason }),
                now,
            );
        }
        Ok(())
    }

    /// `agent`'s negotiate-phase answer: lines of text and an optional proposal.
    pub fn negotiate(
        &mut self,
        agent: AgentId,
        lines: Vec<NegotiationLine>,
        proposal: Option<CoalitionProposal>,
        now: u64,
    ) -> Result<(), CommandError> {
        self.send_turn(
            agent,
            Phase::Negotiate,
            Payload::Negotiation(Negotiation { lines, proposal }),
            now,
        )
    }

    /// `agent`'s coalition-phase answer: the proposals accepted (any order).
    pub fn accept(
        &mut self,
        agent: AgentId,
        mut accepted: Vec<CoalitionId>,
        now: u64,
    ) -> Result<(), CommandError> {
        accepted.sort();
        accepted.dedup();
        self.send_turn(
            agent,
            Phase::Coalition,
            Payload::CoalitionAcceptance(CoalitionAcceptance { accepted }),
            now,
        )
    }

    /// `agent`'s commit-phase answer: seal `bid` and `support` with `nonce` (32 random bytes
    /// from the caller) under a public `deposit` ≥ bid + support. The reveal is sent
    /// automatically.
    pub fn bid(
        &mut self,
        agent: AgentId,
        bid: u64,
        support: Option<Support>,
        deposit: u64,
        nonce: [u8; 32],
        now: u64,
    ) -> Result<(), CommandError> {
        let total = bid.checked_add(support.map_or(0, |s| s.amount));
        let credits = self.ledger.members.get(&agent).map_or(0, |m| m.credits);
        if total.is_none_or(|t| t > deposit) || deposit > credits {
            return Err(CommandError::BidOutOfBounds(format!(
                "bid {bid} + support {:?} must be <= deposit {deposit} <= credits {credits}",
                support.map(|s| s.amount)
            )));
        }
        let round = self.round();
        let sealed = commitment(round, agent, bid, support, nonce);
        // The opening must be in place before the turn is sent: if this commit completes the
        // phase, the engine moves on to the reveal inside `send_turn`.
        let previous = self.local_mut(agent)?.opening.replace(Reveal {
            bid,
            support,
            nonce,
        });
        let sent = self.send_turn(
            agent,
            Phase::Commit,
            Payload::Commit(Commit {
                commitment: sealed,
                deposit,
            }),
            now,
        );
        if sent.is_err() {
            if let Ok(local) = self.local_mut(agent) {
                local.opening = previous;
            }
        }
        sent
    }

    // ----- internals -----

    fn local_mut(&mut self, agent: AgentId) -> Result<&mut Local, CommandError> {
        self.locals
            .get_mut(&agent)
            .ok_or(CommandError::NotHosted(agent))
    }

    fn send_turn(
        &mut self,
        agent: AgentId,
        phase: Phase,
        payload: Payload,
        now: u64,
    ) -> Result<(), CommandError> {
        if self.phase != phase || !self.ledger.is_active(&agent) {
            return Err(CommandError::WrongPhase {
                round: self.round(),
                phase: self.phase,
            });
        }
        let kind = payload.kind();
        let local = self.local_mut(agent)?;
        if local.sent.contains_key(&kind) || local.is_leaving() {
            return Err(CommandError::AlreadySent);
        }
        if local.restart_unrecorded.is_some() {
            return Err(CommandError::WrongPhase {
                round: self.round(),
                phase: self.phase,
            });
        }
        self.send(agent, payload)?;
        self.advance_if_complete(now);
        Ok(())
    }

    fn send(&mut self, agent: AgentId, payload: Payload) -> Result<(), CommandError> {
        let round = self.round();
        let kind = payload.kind();
        let swarm = self.config.swarm;
        let Some(local) = self.locals.get_mut(&agent) else {
            return Err(CommandError::NotHosted(agent));
        };
        let message = local.identity.sign(swarm, round, payload);
        message.message().validate(&self.config.limits)?;
        local.sent.insert(kind, message.clone());
        let active = self.ledger.is_active(&agent);
        self.hold(message.clone(), active);
        self.outputs.push_back(Output::Send(message));
        Ok(())
    }

    /// Sends again what every hosted agent sent for `kind` this round.
    fn resend(&mut self, kind: PayloadKind) {
        let again: Vec<Output> = self
            .locals
            .values()
            .filter_map(|local| local.sent.get(&kind))
            .map(|message| Output::Send(message.clone()))
            .collect();
        self.outputs.extend(again);
    }

    /// Hosted agents that take turns this round: active members that have not asked to
    /// leave and whose job restart, if any, the record already counts. A member whose
    /// restart join is not yet in the record sits the round out: a claim of its new job taken
    /// before the join would be checked against the job it lost (an honest member charged a
    /// lie).
    fn speaking(&self) -> Vec<AgentId> {
        self.locals
            .iter()
            .filter(|(agent, local)| {
                self.ledger.is_active(agent)
                    && !local.is_leaving()
                    && local.restart_unrecorded.is_none()
            })
            .map(|(agent, _)| *agent)
            .collect()
    }

    fn schedule(&mut self, now: u64) {
        self.schedule_in(now, self.config.phase_timeout_ms);
    }

    /// Asks for a timer of the current round and phase `ms` from `now`.
    fn schedule_in(&mut self, now: u64, ms: u64) {
        self.deadline = now.saturating_add(ms);
        self.outputs.push_back(Output::ScheduleTimeout {
            round: self.round(),
            phase: self.phase,
            at: self.deadline,
        });
    }

    pub(super) fn request_fetch(&mut self, round: u64) {
        if self.fetch_requested_for != Some(round) {
            self.fetch_requested_for = Some(round);
            self.outputs.push_back(Output::FetchRound { round });
        }
    }

    fn start_round(&mut self, now: u64) {
        let round = self.round();
        // Before any agreement starts: early messages replayed into it are watched too.
        self.renew_watch();
        for local in self.locals.values_mut() {
            local.start_round();
        }
        self.finalizing = None;
        self.tally = None;
        self.log = None;
        self.seal = None;
        self.resumed.retain(|m| m.round() >= round);
        self.awaiting_reveal.clear();
        self.count_skips(round);
        self.inbox = self.inbox.split_off(&round);
        self.early_votes = self.early_votes.split_off(&(round, Stage::Seal));
        self.inbox
            .entry(round)
            .or_insert_with(|| RoundMessages::new(round));
        self.recount_spoken();
        self.stage = Stage::Outcome;
        if round > 0 {
            // Past the founding round, the voters follow from the state before the round,
            // and the round's inputs are sealed before its bids are revealed.
            self.stage = Stage::Seal;
            let voters = self.ledger.voters_for(&self.ledger);
            self.start_agreement(round, voters);
        } else if !self.config.known_founders.is_empty() {
            // Founded by known keys: they are the founding round's voters from the start.
            self.start_agreement(round, self.config.known_founders.clone());
        }
        let founders: Vec<AgentId> = self
            .locals
            .iter()
            .filter(|(_, local)| local.founder)
            .map(|(agent, _)| *agent)
            .collect();
        if round == 0 && !founders.is_empty() {
            self.phase = Phase::Join;
            self.schedule(now);
            for agent in founders {
                self.send_join(agent);
            }
            self.advance_if_complete(now);
            return;
        }
        let newcomers = self.joining(round);
        let members: Vec<(AgentId, Option<LeaveReason>)> = self
            .locals
            .iter()
            .filter(|(agent, _)| self.ledger.is_active(agent))
            .map(|(agent, local)| (*agent, local.leave_requested))
            .collect();
        let votes = self.suspended_voter_hosted(round);
        self.phase = if members.is_empty() && !votes {
            Phase::Observe
        } else {
            Phase::Announce
        };
        self.schedule(now);
        let speaking = self.speaking();
        for (agent, leave) in &members {
            if leave.is_none() && speaking.contains(agent) {
                self.outputs.push_back(Output::Decide {
                    agent: *agent,
                    round,
                    phase: Phase::Announce,
                });
            }
        }
        for (agent, leave) in members {
            if let Some(reason) = leave {
                let _ = self.send(agent, Payload::Leave(Leave { reason }));
            }
        }
        self.report_contradictions();
        for agent in newcomers {
            self.send_join(agent);
        }
        self.advance_if_complete(now);
    }

    /// Adds a message to the inbox, keeping the current round's speaker counts.
    /// Keeps `message` (from an `active` member or not); counts its sender as having spoken
    /// if it belongs to the current round.
    pub(super) fn hold(&mut self, message: SignedMessage, active: bool) -> Inserted {
        let round = message.round();
        let kind = message.payload().kind();
        let sender = message.sender();
        let heard = round == self.round() && (kind == PayloadKind::Join || active);
        if kind == PayloadKind::Reveal && round == self.round() {
            self.awaiting_reveal.remove(&message.sender());
        }
        let inserted = self
            .inbox
            .entry(round)
            .or_insert_with(|| RoundMessages::new(round))
            .insert(message);
        if heard && inserted == Inserted::New {
            self.heard(sender, kind);
        }
        inserted
    }

    pub(super) fn advance_if_complete(&mut self, now: u64) {
        loop {
            let complete = match self.phase {
                Phase::Join => self.joins_heard >= self.config.expected_members.max(1),
                Phase::Announce => self.all_spoken(PayloadKind::Claim),
                Phase::Negotiate => self.all_spoken(PayloadKind::Negotiation),
                Phase::Coalition => self.all_spoken(PayloadKind::CoalitionAcceptance),
                Phase::Commit => self.all_spoken(PayloadKind::Commit),
                Phase::Reveal => self.awaiting_reveal.is_empty(),
                Phase::Seal | Phase::Finalize | Phase::Observe => false,
            };
            if !complete {
                return;
            }
            let before = (self.round(), self.phase);
            match self.phase {
                Phase::Join | Phase::Reveal => self.resolve(now),
                _ => self.next_phase(now),
            }
            if (self.round(), self.phase) == before {
                return;
            }
        }
    }

    fn next_phase(&mut self, now: u64) {
        let round = self.round();
        if self.phase == Phase::Commit {
            self.begin_seal(now);
            return;
        }
        self.phase = match self.phase {
            Phase::Announce => Phase::Negotiate,
            Phase::Negotiate => Phase::Coalition,
            Phase::Coalition => Phase::Commit,
            other => other,
        };
        self.schedule(now);
        if matches!(
            self.phase,
            Phase::Negotiate | Phase::Coalition | Phase::Commit
        ) {
            for agent in self.speaking() {
                self.outputs.push_back(Output::Decide {
                    agent,
                    round,
                    phase: self.phase,
                });
            }
        }
        self.advance_if_complete(now);
    }
}
