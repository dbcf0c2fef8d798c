//! A round's two agreements ([`Stage`]): what each takes as inputs and how it values them,
//! the seal's start, and the step from the seal to the outcome (the reveals of sealed
//! commits). The agreement itself, the same for both, is in `finalize.rs`.

use super::{Engine, Phase};
use crate::agreement::AgreementLog;
use crate::envelope::SignedMessage;
use crate::finality::{CertifiedRound, CertifiedVotes, VoteTally};
use crate::ids::{AgentId, Digest};
use crate::round_messages::RoundMessages;
use crate::state::Quorum;
use crate::wire::{Payload, PayloadKind, Stage};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Engine {
    /// Whether the agreement in progress takes `message` as an input: the seal, a message
    /// the rule consumes other than a reveal; the outcome, a sealed message or the reveal
    /// of a sealed commit (any consumed message in the founding round, which has no seal).
    pub(super) fn admits(&self, message: &SignedMessage) -> bool {
        if !self.ledger.consumes(message) {
            return false;
        }
        let reveal = message.payload().kind() == PayloadKind::Reveal;
        match (self.stage, &self.seal) {
            (Stage::Seal, _) => !reveal,
            (Stage::Outcome, Some(seal)) if reveal => seal
                .inputs()
                .has_spoken(&message.sender(), PayloadKind::Commit),
            (Stage::Outcome, Some(seal)) => seal.inputs().contains(message),
            (Stage::Outcome, None) => true,
        }
    }

    /// The inputs of the agreement in progress among the messages held: in the outcome
    /// stage, the sealed inputs (all of them: a replica holds them once sealed) and the
    /// reveals held of sealed commits.
    pub(super) fn held_inputs(&self) -> RoundMessages {
        let round = self.round();
        let mut inputs = match (self.stage, &self.seal) {
            (Stage::Outcome, Some(seal)) => seal.inputs().clone(),
            _ => RoundMessages::new(round),
        };
        if let Some(held) = self.inbox.get(&round) {
            for message in held.iter().filter(|m| self.admits(m)) {
                inputs.insert(message.clone());
            }
        }
        inputs
    }

    /// The value of `inputs` in the agreement in progress: the digest they give (of the
    /// sealed inputs, or of the state they resolve to: another replica of this process may
    /// have resolved the same state and messages already) and the inputs, shared.
    pub(super) fn value_of(&self, inputs: RoundMessages) -> (Digest, Arc<RoundMessages>) {
        match self.stage {
            Stage::Seal => (inputs.inputs_digest(), Arc::new(inputs)),
            Stage::Outcome => {
                let resolved = self
                    .resolutions
                    .resolve(&self.ledger, self.ledger_digest, &inputs);
                (resolved.digest, Arc::clone(&resolved.inputs))
            }
        }
    }

    /// The commit phase is over (rounds after the founding one): agree on the sealed
    /// inputs before anything is revealed.
    pub(super) fn begin_seal(&mut self, now: u64) {
        self.phase = if self.votes_here() {
            Phase::Seal
        } else {
            Phase::Observe
        };
        self.begin_agreement(now);
    }

    /// The round's inputs are sealed (`inputs`, `certificate`; no inputs for a replica that
    /// only observes): the outcome's agreement starts, and every hosted agent whose commit
    /// is sealed reveals its bid. A commit left out of the seal is void and never revealed.
    pub(super) fn sealed(
        &mut self,
        certificate: CertifiedVotes,
        inputs: Option<Arc<RoundMessages>>,
        now: u64,
    ) {
        let round = self.round();
        let voters = self
            .tally
            .as_ref()
            .map(|t| t.voters().clone())
            .unwrap_or_default();
        self.seal = inputs.map(|inputs| CertifiedRound::new(inputs, None, certificate));
        self.stage = Stage::Outcome;
        self.finalizing = None;
        for local in self.locals.values_mut() {
            local.agreement_sent.clear();
        }
        self.start_agreement(round, voters);
        let Some(seal) = self.seal.clone() else {
            self.phase = Phase::Observe;
            self.schedule(now);
            return;
        };
        let held = self.inbox.get(&round);
        self.awaiting_reveal = seal
            .inputs()
            .turns()
            .filter(|(sender, kind, _)| {
                *kind == PayloadKind::Commit
                    && !held.is_some_and(|h| h.has_spoken(sender, PayloadKind::Reveal))
            })
            .map(|(sender, _, _)| sender)
            .collect();
        self.phase = Phase::Reveal;
        self.schedule(now);
        for agent in self.speaking() {
            let Some(local) = self.locals.get_mut(&agent) else {
                continue;
            };
            let opening = local.opening.take();
            let committed = local.sent.get(&PayloadKind::Commit);
            if committed.is_some_and(|c| seal.inputs().contains(c)) {
                if let Some(reveal) = opening {
                    let _ = self.send(agent, Payload::Reveal(reveal));
                }
            }
        }
        self.advance_if_complete(now);
    }

    /// A new log and tally for the current round's agreement in progress, with the votes,
    /// proposals and promises that came early for it.
    pub(super) fn start_agreement(&mut self, round: u64, voters: BTreeSet<AgentId>) {
        self.log = Some(AgreementLog::new(round, self.stage, voters.clone()));
        let quorum = if self.paxos_round() {
            Quorum::Majority
        } else {
            Quorum::All
        };
        self.tally = Some(VoteTally::new(round, self.stage, voters).with_quorum(quorum));
        let early = self
            .early_votes
            .remove(&(round, self.stage))
            .unwrap_or_default();
        for message in early {
            self.take_agreement(message);
        }
    }
}
