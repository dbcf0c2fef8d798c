//! The end of a round: sealing its inputs, resolving the messages held, agreeing on the
//! outcome, gathering the certificates, and completing the round.
//!
//! Rounds after the founding one agree twice by single-decree Paxos ([`crate::agreement`]),
//! each agreement a [`Stage`]: first on the sealed inputs (every message but the reveals,
//! valued by their [`RoundMessages::inputs_digest`]), after which hosted agents reveal the
//! bids of sealed commits only, then on the outcome (the state digest that the sealed inputs
//! and the reveals of sealed commits give). In each, the proposer of each attempt proposes a
//! digest, voters vote for it once they hold inputs that give it (fetching the proposer's
//! when theirs differ), and a replica that times out moves to the next attempt with a
//! promise that reports its last vote; the next proposer proposes the latest vote a majority
//! reports, or its own value if none. The founding round, whose voters are only known from
//! its own outcome and which has no bids, has no seal: it needs every founder it admits
//! (unanimity) and moves to a new attempt only when the last one provably cannot finish.

use super::{Engine, Finalized, Output, Phase};
use crate::accountability::check_justification;
use crate::agreement::{proposer, Acceptor, AgreementLog, Choice};
use crate::envelope::SignedMessage;
use crate::finality::{CertifiedRound, CertifiedVotes, VoteTally};
use crate::ids::{AgentId, Digest};
use crate::round_messages::{Inserted, RoundMessages};
use crate::rules::RoundOutcome;
use crate::state::{LedgerState, Quorum};
use crate::wire::{CheckpointVote, Payload, PayloadKind, Proposal, Stage};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// This replica's side of the agreement in progress, once it valued what it holds.
#[derive(Debug, Clone)]
pub(super) struct Finalizing {
    /// The digest of its latest value of what it holds (what it proposes when free to).
    pub(super) own: Digest,
    /// Inputs it can vote for, by the digest they give: its own, and inputs fetched from
    /// peers.
    values: BTreeMap<Digest, Arc<RoundMessages>>,
    /// The attempt it is in.
    pub(super) attempt: u32,
    /// Its hosted voters' promise and last vote (they act alike: one view).
    pub(super) acceptor: Acceptor,
    /// The last attempt it proposed in.
    proposed: Option<u32>,
    /// The last attempt it found it does not propose in (none of its agents is the
    /// proposer): not looked up again for every message.
    not_proposer: Option<u32>,
    /// Finalize timeouts spent in the current attempt.
    timeouts: u32,
    /// (digest, peer) pairs it asked for inputs since the last timeout.
    asked: BTreeSet<(Digest, AgentId)>,
    /// Asks for inputs made this round: the next ask goes to the next holder.
    asks: usize,
    /// The last attempt whose fresh proposal left out messages of its hosted agents: they
    /// were sent again then (once an attempt).
    censored: Option<u32>,
    /// Digests whose inputs it asked for this round: answers for others are ignored.
    wanted: BTreeSet<Digest>,
    /// The last attempt in which it saw a majority promise: that attempt got a full timeout
    /// from then on.
    gathered: Option<u32>,
    /// The key of the round's held messages ([`RoundMessages::set_key`]) when it last
    /// valued them: nothing new is held while it is the same.
    valued: Option<(usize, [u64; 4])>,
}

/// A finalize timeout grows with the attempt, by one phase timeout every this many attempts
/// (up to [`MAX_BACKOFF`] more): replicas whose timers are out of phase by up to a message
/// delay then come to overlap in one attempt.
const BACKOFF_EVERY: u32 = 3;
/// Most extra phase timeouts a finalize timeout grows by.
const MAX_BACKOFF: u32 = 8;

/// Most attempts a replica moves ahead in one step to catch up with the others (a voter
/// that claims a far later attempt cannot push it there at once).
const MAX_JUMP: u32 = 16;

impl Engine {
    /// The reveals are in (or their time is up): resolve the round and agree on its outcome.
    pub(super) fn resolve(&mut self, now: u64) {
        let round = self.round();
        if self.tally.is_none() {
            // The founding round: its voters are the founders its outcome admits.
            let resolved =
                self.resolutions
                    .resolve(&self.ledger, self.ledger_digest, &self.held_inputs());
            let voters = self.ledger.voters_for(&resolved.state);
            self.start_agreement(round, voters);
        }
        self.phase = if !self.votes_here() {
            Phase::Observe
        } else {
            Phase::Finalize
        };
        self.begin_agreement(now);
    }

    /// Whether the current round runs Paxos with an accountable certificate: every round
    /// after the founding one, and the founding round of a swarm founded by known keys.
    pub(super) fn paxos_round(&self) -> bool {
        self.round() > 0 || !self.config.known_founders.is_empty()
    }

    /// This replica values what it holds and takes part in the agreement in progress.
    pub(super) fn begin_agreement(&mut self, now: u64) {
        let round = self.round();
        let valued = self.held_key();
        let (digest, inputs) = self.value_of(self.held_inputs());
        if self.stage == Stage::Outcome {
            self.outputs.push_back(Output::Resolved { round, digest });
        }
        let (acceptor, attempt, proposed) = self.resume();
        self.finalizing = Some(Finalizing {
            own: digest,
            values: BTreeMap::from([(digest, inputs)]),
            attempt,
            acceptor,
            proposed,
            not_proposer: None,
            censored: None,
            timeouts: 0,
            asked: BTreeSet::new(),
            asks: 0,
            wanted: BTreeSet::new(),
            gathered: None,
            valued,
        });
        self.schedule(now);
        if !self.paxos_round() {
            self.cast_votes(0, digest);
        }
        self.progress(now);
    }

    /// Files a verified vote, proposal or promise of the current round; true if it counts.
    pub(super) fn take_agreement(&mut self, message: SignedMessage) -> bool {
        self.watch(&message);
        match message.payload() {
            Payload::CheckpointVote(_) => self.tally.as_mut().is_some_and(|t| t.add(message)),
            _ => self.log.as_mut().is_some_and(|l| l.add(message)),
        }
    }

    /// Moves the agreement on as far as what this replica holds allows: completes the
    /// round on a certificate, catches up with a later attempt, proposes, votes.
    pub(super) fn progress(&mut self, now: u64) {
        if self.check_final(now) || !self.paxos_round() {
            return;
        }
        let (Some(log), Some(fin)) = (&self.log, &self.finalizing) else {
            return;
        };
        if !self.votes_here() {
            return;
        }
        let latest = log.latest_attempt();
        if latest > fin.attempt {
            self.move_to(latest.min(fin.attempt.saturating_add(MAX_JUMP)));
        }
        self.full_timeout_once_gathered(now);
        self.propose();
        self.vote();
        // Its own vote may have completed a certificate (a lone voter, the last of a majority).
        self.check_final(now);
    }

    /// How long the current attempt waits: a phase timeout, and one more every
    /// [`BACKOFF_EVERY`] attempts (at most [`MAX_BACKOFF`] more).
    fn attempt_timeout(&self) -> u64 {
        let attempt = self.finalizing.as_ref().map_or(0, |f| f.attempt);
        let factor = 1 + u64::from((attempt / BACKOFF_EVERY).min(MAX_BACKOFF));
        self.config.phase_timeout_ms.saturating_mul(factor)
    }

    /// Once a majority of the voters promised the current attempt, it gets a whole timeout
    /// from then on: replicas that entered it at different times (one timed out later, one
    /// caught up) then overlap in it long enough for its proposer to be heard.
    fn full_timeout_once_gathered(&mut self, now: u64) {
        let (Some(log), Some(tally), Some(fin)) = (&self.log, &self.tally, &self.finalizing) else {
            return;
        };
        let attempt = fin.attempt;
        let majority = crate::state::majority(tally.voters().len());
        if attempt == 0 || fin.gathered == Some(attempt) || log.promised_to(attempt) < majority {
            return;
        }
        if let Some(fin) = self.finalizing.as_mut() {
            fin.gathered = Some(attempt);
            fin.timeouts = 0;
        }
        self.schedule_in(now, self.attempt_timeout());
    }

    /// As the proposer of the current attempt: propose once a majority promised (attempt 0
    /// needs no promises), the digest they bind it to or its own resolution.
    fn propose(&mut self) {
        let round = self.round();
        let (Some(tally), Some(fin)) = (&self.tally, &self.finalizing) else {
            return;
        };
        let attempt = fin.attempt;
        if fin.proposed == Some(attempt) || fin.not_proposer == Some(attempt) {
            return;
        }
        let Some(proposer) = proposer(tally.voters(), round, attempt) else {
            return;
        };
        if !self.locals.contains_key(&proposer) {
            if let Some(fin) = self.finalizing.as_mut() {
                fin.not_proposer = Some(attempt);
            }
            return;
        }
        let choice = if attempt == 0 {
            Some(Choice::Free)
        } else {
            self.log.as_mut().and_then(|log| log.choice(attempt))
        };
        let (Some(log), Some(fin)) = (&self.log, &self.finalizing) else {
            return;
        };
        let (digest, bound) = match choice {
            None => return,
            Some(Choice::Bound(accepted)) => {
                let digest = accepted.digest;
                if !fin.values.contains_key(&digest) {
                    // A voter that reported this vote holds its inputs.
                    let holders: Vec<AgentId> = log
                        .promises(attempt)
                        .into_iter()
                        .filter(|(_, a)| a.is_some_and(|a| a.digest == digest))
                        .map(|(voter, _)| voter)
                        .collect();
                    let _ = self.ask_inputs(digest, &holders);
                    return;
                }
                (digest, Some(accepted.attempt))
            }
            Some(Choice::Free) => {
                // Free: everything held now (a later attempt may hold more than the first).
                (self.revalue(), None)
            }
        };
        if let Some(fin) = self.finalizing.as_mut() {
            fin.proposed = Some(attempt);
        }
        let stage = self.stage;
        self.sign_agreement(
            proposer,
            Payload::Proposal(Proposal {
                stage,
                attempt,
                digest,
                bound,
            }),
        );
        // The promises behind it go along: a voter that hears the proposer can vote.
        if let Some(chain) = self.log.as_mut().and_then(|log| log.justify(attempt)) {
            self.outputs
                .extend(chain.iter().skip(1).map(|m| Output::Send(m.clone())));
        }
    }

    /// Values what this replica holds now, as its own value; returns the digest.
    fn revalue(&mut self) -> Digest {
        let valued = self.held_key();
        let (digest, inputs) = self.value_of(self.held_inputs());
        if let Some(fin) = self.finalizing.as_mut() {
            fin.values.insert(digest, inputs);
            fin.own = digest;
            fin.valued = valued;
        }
        digest
    }

    /// The key of the current round's held messages.
    fn held_key(&self) -> Option<(usize, [u64; 4])> {
        self.inbox.get(&self.round()).map(RoundMessages::set_key)
    }

    /// Votes for the current attempt's proposal if the acceptor allows it, the promises
    /// held justify it ([`AgreementLog::justify`]: a proposal bound by no majority is never
    /// voted for) and this replica holds inputs that give it; asks the proposer for them
    /// otherwise.
    fn vote(&mut self) {
        let round = self.round();
        let Some(attempt) = self.finalizing.as_ref().map(|fin| fin.attempt) else {
            return;
        };
        if self
            .log
            .as_mut()
            .and_then(|log| log.justify(attempt))
            .is_none()
        {
            return;
        }
        let (Some(log), Some(tally), Some(fin)) = (&self.log, &self.tally, &self.finalizing) else {
            return;
        };
        let Some(digest) = log.proposal(attempt) else {
            return;
        };
        if !fin.acceptor.may_vote(attempt) {
            return;
        }
        if !fin.values.contains_key(&digest) {
            // The proposer first; then the voters that voted for the digest (a proposer hosted
            // here may re-propose a value it never held, chosen from the promises), then any.
            let mut from: Vec<AgentId> = proposer(tally.voters(), round, attempt)
                .into_iter()
                .collect();
            let votes = tally.votes();
            let voted = votes.iter().filter(|v| v.2 == digest).map(|v| v.0);
            for voter in voted.chain(tally.voters().iter().copied()) {
                if !from.contains(&voter) {
                    from.push(voter);
                }
            }
            let _ = self.ask_inputs(digest, &from);
            return;
        }
        if log.proposal_bound(attempt).is_none() && self.left_out(attempt, digest) {
            return;
        }
        self.cast_votes(attempt, digest);
    }

    /// Whether the value `digest`, freshly proposed for `attempt`, leaves out a turn a hosted
    /// agent sent this round that decides whether it took part (its claim, commit or leave
    /// in the seal; its reveal in the outcome): its voters do not vote for it, and send
    /// those turns again, once an attempt, so that the next proposer holds them. A proposer
    /// that lacks them, by a lost message or on purpose, cannot make the members that took
    /// part look absent (they would be suspended, or charged with a withheld bid); a value
    /// a proposal is bound to is voted for all the same (a majority may have accepted it).
    fn left_out(&mut self, attempt: u32, digest: Digest) -> bool {
        let kinds: &[PayloadKind] = match self.stage {
            Stage::Seal => &[PayloadKind::Claim, PayloadKind::Commit, PayloadKind::Leave],
            Stage::Outcome => &[PayloadKind::Reveal],
        };
        let Some(value) = self
            .finalizing
            .as_ref()
            .and_then(|fin| fin.values.get(&digest))
        else {
            return false;
        };
        let missing: Vec<SignedMessage> = self
            .locals
            .values()
            .flat_map(|local| kinds.iter().filter_map(|kind| local.sent.get(kind)))
            .filter(|message| !value.contains(message))
            .cloned()
            .collect();
        if missing.is_empty() {
            return false;
        }
        if let Some(fin) = self.finalizing.as_mut() {
            if fin.censored != Some(attempt) {
                fin.censored = Some(attempt);
                self.outputs.extend(missing.into_iter().map(Output::Send));
            }
        }
        true
    }

    /// Asks one of `holders` (not hosted here) for the inputs that give `digest`: each
    /// holder at most once per timeout, the next holder each time (one may have crashed).
    /// True if an answer may come (asked now, or every holder asked since the last timeout).
    fn ask_inputs(&mut self, digest: Digest, holders: &[AgentId]) -> bool {
        let round = self.round();
        let Some(fin) = self.finalizing.as_mut() else {
            return false;
        };
        let remote: Vec<AgentId> = holders
            .iter()
            .filter(|h| !self.locals.contains_key(h))
            .copied()
            .collect();
        if remote.is_empty() {
            return false;
        }
        let start = fin.asks % remote.len();
        let Some(peer) = (0..remote.len())
            .map(|i| remote[(start + i) % remote.len()])
            .find(|peer| !fin.asked.contains(&(digest, *peer)))
        else {
            // Every holder was asked since the last timeout: an answer may still come.
            return true;
        };
        fin.asked.insert((digest, peer));
        fin.asks = fin.asks.wrapping_add(1);
        fin.wanted.insert(digest);
        self.outputs.push_back(Output::FetchInputs {
            round,
            digest,
            peer,
        });
        true
    }

    /// Every hosted voter votes for `digest` in `attempt`.
    fn cast_votes(&mut self, attempt: u32, digest: Digest) {
        let voted = self
            .finalizing
            .as_mut()
            .is_some_and(|fin| fin.acceptor.vote(attempt, digest));
        if !voted {
            return;
        }
        let stage = self.stage;
        for agent in self.voting() {
            self.sign_agreement(
                agent,
                Payload::CheckpointVote(CheckpointVote {
                    stage,
                    digest,
                    attempt,
                }),
            );
        }
        // The justification goes along with the vote: a replica that gets the votes but
        // missed the proposal would otherwise wait a timeout to complete the certificate.
        if self.round() > 0 {
            if let Some(chain) = self.log.as_mut().and_then(|log| log.justify(attempt)) {
                self.outputs
                    .extend(chain.iter().map(|m| Output::Send(m.clone())));
            }
        }
    }

    /// Moves to `attempt`: every hosted voter promises it, reporting its last vote.
    fn move_to(&mut self, attempt: u32) {
        let Some(fin) = self.finalizing.as_mut() else {
            return;
        };
        let Some(promise) = fin.acceptor.promise(self.stage, attempt) else {
            return;
        };
        fin.attempt = attempt;
        fin.timeouts = 0;
        for agent in self.voting() {
            self.sign_agreement(agent, Payload::Promise(promise));
        }
    }

    /// `agent` signs an agreement message: kept as its own, counted here, and sent.
    fn sign_agreement(&mut self, agent: AgentId, payload: Payload) {
        let round = self.round();
        let swarm = self.config.swarm;
        let Some(local) = self.locals.get_mut(&agent) else {
            return;
        };
        let message = local.identity.sign(swarm, round, payload);
        local
            .agreement_sent
            .insert(message.payload().kind(), message.clone());
        self.take_agreement(message.clone());
        self.outputs.push_back(Output::Send(message));
    }

    /// The inputs that give `digest` in the current round (valued here, or sealed), or
    /// that were certified in the round this replica just completed (with their sealed
    /// part), for a peer that asks ([`Output::FetchInputs`]).
    pub fn inputs(&self, round: u64, digest: Digest) -> Option<Arc<RoundMessages>> {
        if let Some(previous) = &self.previous {
            if previous.round() == round {
                // The round just completed here: a peer a round behind asks for it.
                if previous.digest() == digest {
                    return Some(previous.shared_inputs());
                }
                if previous.seal().is_some_and(|s| s.digest == digest) {
                    return Some(Arc::new(previous.inputs().sealed_part()));
                }
            }
        }
        if round != self.round() {
            return None;
        }
        if let Some(seal) = self.seal.as_ref().filter(|s| s.digest() == digest) {
            return Some(seal.shared_inputs());
        }
        let value = self.finalizing.as_ref()?.values.get(&digest)?;
        Some(Arc::clone(value))
    }

    /// A peer's answer to [`Output::FetchInputs`]: the messages that give `digest`. Taken
    /// only for a digest this replica asked for; kept as a value it can vote for if every
    /// message is of this round and an input of the agreement in progress (in the outcome
    /// stage: the sealed inputs, all of them, and reveals of sealed commits), and together
    /// they give `digest`, and then merged into what it holds.
    pub fn handle_inputs(
        &mut self,
        round: u64,
        digest: Digest,
        messages: Vec<SignedMessage>,
        now: u64,
    ) {
        let asked = self
            .finalizing
            .as_ref()
            .is_some_and(|fin| fin.wanted.contains(&digest));
        if round != self.round() || !asked {
            return;
        }
        let mut inputs = RoundMessages::new(round);
        let mut exact = messages.len() <= self.config.limits.max_round_messages;
        for message in messages.iter().take(self.config.limits.max_round_messages) {
            exact &= self.admits(message)
                && matches!(
                    inputs.insert(message.clone()),
                    Inserted::New | Inserted::Equivocation
                );
        }
        if let (Stage::Outcome, Some(seal)) = (self.stage, &self.seal) {
            exact &= inputs.sealed_part().same_set(seal.inputs());
        }
        if exact {
            for message in messages {
                let active = self.ledger.is_active(&message.sender());
                self.hold(message, active);
            }
            let (value, inputs) = self.value_of(inputs);
            if value == digest {
                if let Some(fin) = self.finalizing.as_mut() {
                    fin.values.insert(digest, inputs);
                }
            }
        }
        self.progress(now);
    }

    /// Ends the agreement in progress if a certificate formed for a digest whose inputs
    /// this replica holds (and, for the outcome, whose voters it verifies against): seals
    /// the inputs, or completes the round. Asks for the inputs, or the record, otherwise.
    /// True if the agreement in progress ended.
    pub(super) fn check_final(&mut self, now: u64) -> bool {
        let Some(mut certificate) = self.tally.as_ref().and_then(VoteTally::certificate) else {
            return false;
        };
        let (round, stage) = (self.round(), self.stage);
        if self.paxos_round() {
            // Accountable: the certificate carries the proposal and promises behind it.
            let (attempt, digest) = (certificate.attempt, certificate.digest);
            let Some(chain) = self.log.as_mut().and_then(|log| {
                if log.prefer(attempt, digest) {
                    log.justify(attempt)
                } else {
                    None
                }
            }) else {
                // Missed them: they are sent again at timeouts, and the record carries them.
                if stage == Stage::Outcome {
                    self.request_fetch(round);
                }
                return false;
            };
            // The proposal held for the attempt may be another than the certified one (an
            // equivocating proposer): a record must pass its own verification, so this one
            // is not stored; a peer's record, or its messages, complete the round.
            let voters = self.tally.as_ref().map(VoteTally::voters);
            let justified = voters.is_some_and(|voters| {
                check_justification(
                    round,
                    stage,
                    voters,
                    certificate.attempt,
                    certificate.digest,
                    &chain,
                )
                .is_ok()
            });
            if !justified {
                self.request_fetch(round);
                return false;
            }
            certificate.justification = chain.to_vec();
        }
        let known = self
            .finalizing
            .as_ref()
            .and_then(|fin| fin.values.get(&certificate.digest).cloned());
        let value = match known {
            Some(inputs) => Some(inputs),
            None if self.phase == Phase::Observe && self.finalizing.is_none() => None,
            // Valued already: only messages held since can give another value (every
            // message of an agreement would otherwise rebuild the inputs again).
            None if self
                .finalizing
                .as_ref()
                .is_some_and(|fin| fin.valued == self.held_key()) =>
            {
                None
            }
            None if self.finalizing.is_some() => {
                let digest = self.revalue();
                self.finalizing
                    .as_ref()
                    .filter(|_| digest == certificate.digest)
                    .and_then(|fin| fin.values.get(&digest).cloned())
            }
            None => {
                let (digest, inputs) = self.value_of(self.held_inputs());
                (digest == certificate.digest).then_some(inputs)
            }
        };
        match (stage, value) {
            (Stage::Seal, Some(inputs)) => {
                self.sealed(certificate, Some(inputs), now);
                return true;
            }
            (Stage::Seal, None) if self.phase == Phase::Observe && self.finalizing.is_none() => {
                // Not a member this round: it follows the outcome, and gets the record.
                self.sealed(certificate, None, now);
                return true;
            }
            (Stage::Outcome, Some(inputs)) => {
                let resolved = self
                    .resolutions
                    .resolve(&self.ledger, self.ledger_digest, &inputs);
                // A record this replica writes must pass its own verification: the
                // certificate's voters are those of the state it certifies (they differ in
                // the founding round when founders saw different joins).
                if covers(
                    &certificate,
                    &self.ledger.voters_for(&resolved.state),
                    self.ledger.quorum(&resolved.state),
                ) {
                    let seal = self.seal.as_ref().map(|s| s.certificate().clone());
                    self.complete_round(
                        CertifiedRound::new(Arc::clone(&resolved.inputs), seal, certificate),
                        Arc::clone(&resolved.state),
                        resolved.outcome.clone(),
                        now,
                    );
                    return true;
                }
            }
            _ => {}
        }
        // The certificate's voters hold its inputs: ask one (cheap: the messages only). The
        // record (every signature verified again) is asked for only when no voter can be
        // asked, and at timeouts.
        if self.phase == Phase::Observe && self.finalizing.is_none() {
            // Not a member this round (a newcomer, say): the record, as a late joiner gets it.
            self.request_fetch(round);
            return false;
        }
        if self.finalizing.is_none() && round > 0 {
            // Decided while this replica was still in its turns: they no longer matter.
            // Value what it holds now, which comes back here able to ask for the inputs.
            match stage {
                Stage::Seal => self.begin_seal(now),
                Stage::Outcome => self.resolve(now),
            }
            return (self.round(), self.stage) != (round, stage);
        }
        let voters: Vec<AgentId> = certificate.votes.iter().map(|v| v.sender()).collect();
        if !self.ask_inputs(certificate.digest, &voters) {
            self.request_fetch(round);
        }
        false
    }

    pub(super) fn finalize_timed_out(&mut self, now: u64) {
        let round = self.round();
        // Peers may have missed some of this replica's messages: send them again (sends are
        // idempotent: receivers recognise duplicates by id), with the proposals and
        // promises it holds, so a peer that missed them can catch up.
        let mut again: Vec<Output> = self
            .locals
            .values()
            .flat_map(|local| local.sent.values().chain(local.agreement_sent.values()))
            .map(|message| Output::Send(message.clone()))
            .collect();
        if let Some(log) = &self.log {
            again.extend(log.messages().into_iter().map(|m| Output::Send(m.clone())));
        }
        if let Some(seal) = &self.seal {
            // A replica still in the seal's agreement may have missed its certificate.
            let certificate = seal.certificate();
            again.extend(
                certificate
                    .votes
                    .iter()
                    .chain(&certificate.justification)
                    .map(|m| Output::Send(m.clone())),
            );
        }
        self.outputs.extend(again);
        let Some(fin) = self.finalizing.as_mut() else {
            self.schedule(now);
            return;
        };
        fin.timeouts += 1;
        fin.asked.clear();
        let attempt = fin.attempt;
        if !self.paxos_round() {
            // Founding: unanimity, so an attempt is left only when it provably cannot finish
            // (a founder voted for another digest); then everyone votes for what it holds now.
            if self
                .tally
                .as_ref()
                .is_some_and(|t| t.attempt_is_dead(attempt))
            {
                let digest = self.revalue();
                let next = attempt.saturating_add(1);
                if let Some(fin) = self.finalizing.as_mut() {
                    fin.attempt = next;
                }
                self.cast_votes(next, digest);
            }
        } else {
            // No certificate in time: the next attempt, or the latest any voter promised
            // (within a bound) so that a replica behind meets the others in one attempt.
            // Safe whenever it happens: the next proposer is bound by what a majority
            // reports.
            let latest = self.log.as_ref().map_or(0, AgreementLog::latest_promised);
            let next = attempt
                .saturating_add(1)
                .max(latest.min(attempt.saturating_add(MAX_JUMP)));
            self.move_to(next);
        }
        // The round may be final elsewhere (a certificate we never received): ask again.
        self.fetch_requested_for = None;
        self.request_fetch(round);
        self.schedule_in(now, self.attempt_timeout());
        self.progress(now);
    }

    /// A replica that observes the round (none of its agents votes) timed out: it asks again
    /// for the record and for the inputs of a certificate it holds.
    pub(super) fn observe_timed_out(&mut self, now: u64) {
        if let Some(fin) = self.finalizing.as_mut() {
            fin.asked.clear();
        }
        self.fetch_requested_for = None;
        self.request_fetch(self.round());
        self.schedule(now);
        self.check_final(now);
    }

    pub(super) fn complete_round(
        &mut self,
        certified: CertifiedRound,
        state: Arc<LedgerState>,
        outcome: RoundOutcome,
        now: u64,
    ) {
        // Both ways here (a resolution matching the certificate, a verified record) have
        // checked that the certificate's digest is the state's.
        self.ledger_digest = certified.digest();
        self.ledger = Arc::clone(&state);
        self.previous = Some(certified.clone());
        self.outputs.push_back(Output::Final(Box::new(Finalized {
            certified,
            outcome,
            state,
        })));
        self.start_round(now);
    }
}

/// Whether `certificate` holds enough votes of `voters` for `round`, every one of them a
/// voter: what [`crate::CheckpointCertificate::verify`] checks besides signatures.
fn covers(certificate: &CertifiedVotes, voters: &BTreeSet<AgentId>, quorum: Quorum) -> bool {
    certificate
        .votes
        .iter()
        .all(|vote| voters.contains(&vote.sender()))
        && certificate.votes.len() >= quorum.of(voters.len())
}
