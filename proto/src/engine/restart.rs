//! A replica restarted in a round it spoke in (a daemon killed and started again on its data
//! dir): which rounds' agreement its hosted agents sit out, and how it resumes the last one
//! from the promises, proposals and votes it sent before the restart, as the acceptor and
//! proposer it was (docs/PROTOCOL.md section 8, *Restart without equivocation*).

use super::Engine;
use crate::agreement::Acceptor;
use crate::envelope::SignedMessage;
use crate::ids::AgentId;
use crate::wire::Payload;

impl Engine {
    /// A replica restarted in a round it spoke in (the last round [`Engine::silence_through`]
    /// silences) takes part in that round's agreement after all: `stored` holds every promise,
    /// proposal and vote it sent in that round before the restart, its own and those it
    /// passed on (a daemon stores each durably before sending it, see [`Output::Send`]). It
    /// resumes as the acceptor and proposer it was, with the justifications it relied on;
    /// earlier silenced rounds stay silent (what it sent in them is not stored). Messages of
    /// other rounds, and turns, are ignored. Drain [`Engine::poll_output`] afterwards.
    pub fn resume_agreement(&mut self, stored: Vec<SignedMessage>, now: u64) {
        let Some(spoken) = self.silent_through else {
            return;
        };
        self.resumed = stored
            .into_iter()
            .filter(|m| m.round() == spoken && m.payload().stage().is_some())
            .collect();
        self.resumed_round = Some(spoken);
        if spoken == self.round() {
            for message in self.resumed.clone() {
                self.handle_message(message, now);
            }
        } else {
            for message in self.resumed.clone() {
                if let Some(stage) = message.payload().stage() {
                    self.early_votes
                        .entry((spoken, stage))
                        .or_default()
                        .push(message);
                }
            }
        }
    }

    /// Whether the hosted agents sit the agreement of the current round out: a restarted
    /// replica in a round it may have voted in and cannot resume ([`Engine::silence_through`]).
    pub(super) fn agreement_silenced(&self) -> bool {
        let round = self.round();
        self.silent_through.is_some_and(|r| round <= r) && self.resumed_round != Some(round)
    }

    /// Where this replica's side of the agreement in progress starts: afresh, or, restarted
    /// in this round ([`Engine::resume_agreement`]), where its stored messages of this stage
    /// leave it: the acceptor they give, the attempt it was in, and that it proposed in that
    /// attempt if it did (a second, different proposal would be a contradiction). They go
    /// out again at timeouts, as messages sent in this run do.
    pub(super) fn resume(&mut self) -> (Acceptor, u32, Option<u32>) {
        let (round, stage) = (self.round(), self.stage);
        let signed: Vec<SignedMessage> = self
            .resumed
            .iter()
            .filter(|m| {
                m.round() == round
                    && m.payload().stage() == Some(stage)
                    && self.locals.contains_key(&m.sender())
            })
            .cloned()
            .collect();
        let acceptor = Acceptor::resumed(signed.iter().map(SignedMessage::payload));
        let proposed = signed
            .iter()
            .filter_map(|m| match m.payload() {
                Payload::Proposal(proposal) => Some(proposal.attempt),
                _ => None,
            })
            .max();
        let attempt = acceptor.promised().max(proposed.unwrap_or(0));
        // In the order they were signed: the latest of each kind is kept.
        for message in signed {
            if let Some(local) = self.locals.get_mut(&message.sender()) {
                local
                    .agreement_sent
                    .insert(message.payload().kind(), message);
            }
        }
        (acceptor, attempt, proposed.filter(|p| *p == attempt))
    }

    /// Whether some hosted agent votes in the current round (cheaper than [`Engine::voting`]:
    /// it stops at the first).
    pub(super) fn votes_here(&self) -> bool {
        let Some(tally) = &self.tally else {
            return false;
        };
        if self.agreement_silenced() {
            return false;
        }
        self.locals
            .keys()
            .any(|agent| tally.voters().contains(agent))
    }

    /// Hosted agents that vote in the current round (none in a silenced round).
    pub(super) fn voting(&self) -> Vec<AgentId> {
        let Some(tally) = &self.tally else {
            return Vec::new();
        };
        if self.agreement_silenced() {
            return Vec::new();
        }
        self.locals
            .keys()
            .filter(|agent| tally.voters().contains(agent))
            .copied()
            .collect()
    }
}
