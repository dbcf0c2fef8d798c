//! Contradictions this replica catches in the agreement, and the evidence its agents report:
//! every agreement message from a round's voters passes a [`ContradictionWatch`]; a
//! contradiction found waits until an agent of this replica is an active member at the start
//! of a round, which then reports it ([`Payload::Evidence`], one a round), again each round
//! until the record bars the signer from voting.

use super::Engine;
use crate::accountability::{Contradiction, ContradictionWatch};
use crate::envelope::SignedMessage;
use crate::ids::AgentId;
use crate::state::MemberRecord;
use crate::wire::{Evidence, Payload, PayloadKind};
use std::collections::BTreeMap;

/// Most signers with a contradiction waiting to be reported.
const MAX_PENDING: usize = 64;

/// Contradictions caught and not yet punished by the record.
#[derive(Debug, Default)]
pub(super) struct Reports {
    /// The current round's agreement messages, by signer.
    watch: ContradictionWatch,
    /// The last round's, against which its late messages are still checked.
    last_watch: ContradictionWatch,
    /// One proof per signer, in the order caught, until the record bars it.
    pending: BTreeMap<AgentId, (u64, Contradiction)>,
    /// Proofs caught so far (the order of `pending`).
    caught: u64,
}

impl Engine {
    /// Checks a verified agreement message of the current round from one of its voters
    /// against what its signer sent before.
    pub(super) fn watch(&mut self, message: &SignedMessage) {
        let signer = message.sender();
        let voter = self
            .tally
            .as_ref()
            .is_some_and(|t| t.voters().contains(&signer));
        if !voter || self.reports.pending.contains_key(&signer) {
            return;
        }
        let found = self.reports.watch.observe(message);
        self.keep(found);
    }

    /// Checks an agreement message of the last round (too late to count) against what its
    /// signer sent in that round, if it was watched then (a voter of that round).
    pub(super) fn watch_late(&mut self, message: &SignedMessage) {
        if message.payload().stage().is_none()
            || self.reports.pending.contains_key(&message.sender())
        {
            return;
        }
        let found = self.reports.last_watch.observe_known(message);
        self.keep(found);
    }

    fn keep(&mut self, found: Option<Contradiction>) {
        let Some(found) = found else { return };
        if self.reports.pending.len() < MAX_PENDING {
            self.reports.caught += 1;
            let order = self.reports.caught;
            self.reports.pending.insert(found.signer, (order, found));
        }
    }

    /// Signers this replica holds proof against and the record has not barred yet.
    pub fn contradicting(&self) -> Vec<AgentId> {
        self.reports.pending.keys().copied().collect()
    }

    /// A new round: the current round's watch becomes the last one's, and a new one starts.
    pub(super) fn renew_watch(&mut self) {
        let round = self.round();
        let last = std::mem::replace(&mut self.reports.watch, ContradictionWatch::new(round));
        self.reports.last_watch = last;
    }

    /// At the start of a round: forgets proofs against signers the record now bars (or that
    /// left), and has the first hosted active member report the proof caught first (a
    /// stream of later culprits cannot starve it).
    pub(super) fn report_contradictions(&mut self) {
        let ledger = &self.ledger;
        self.reports.pending.retain(|signer, _| {
            ledger
                .members
                .get(signer)
                .is_some_and(MemberRecord::may_vote)
        });
        let Some((_, proof)) = self
            .reports
            .pending
            .values()
            .min_by_key(|(order, _)| *order)
        else {
            return;
        };
        let payload = Payload::Evidence(Evidence {
            first: proof.first.envelope(),
            second: proof.second.envelope(),
        });
        let reporter = self.locals.iter().find_map(|(agent, local)| {
            (self.ledger.is_active(agent) && !local.sent.contains_key(&PayloadKind::Evidence))
                .then_some(*agent)
        });
        if let Some(reporter) = reporter {
            // Two agreement messages fit any message limit: sending cannot fail.
            let _ = self.send(reporter, payload);
        }
    }
}
