//! The end of a round: resolving the messages held, voting on the digest, gathering the
//! certificate, retrying an attempt that cannot finish, and completing the round.

use super::{Engine, Finalized, Output, Phase, SILENT_VOTER_TIMEOUTS};
use crate::finality::{CertifiedRound, VoteTally};
use crate::ids::{AgentId, Digest};
use crate::round_messages::RoundMessages;
use crate::rules::RoundOutcome;
use crate::shared_resolution::Resolved;
use crate::state::LedgerState;
use crate::wire::{CheckpointVote, Payload, PayloadKind};
use std::sync::Arc;

/// This replica's resolution of the current round, and where its attempt stands.
#[derive(Debug, Clone)]
pub(super) struct Resolution {
    /// The messages, state and outcome (shared with other replicas that resolved the same).
    pub(super) resolved: Arc<Resolved>,
    pub(super) attempt: u32,
    /// Finalize timeouts spent in this attempt.
    timeouts: u32,
}

impl Engine {
    /// Resolves the current round from every message held for it (or takes the resolution
    /// another replica made of the same state and messages).
    fn resolve_held(&self) -> Arc<Resolved> {
        let round = self.round();
        let nothing;
        let held = match self.inbox.get(&round) {
            Some(held) => held,
            None => {
                nothing = RoundMessages::new(round);
                &nothing
            }
        };
        self.resolutions
            .resolve(&self.ledger, self.ledger_digest, held)
    }

    pub(super) fn resolve(&mut self, now: u64) {
        let round = self.round();
        let resolved = self.resolve_held();
        let digest = resolved.digest;
        self.outputs.push_back(Output::Resolved { round, digest });
        let mut tally = match self.tally.take() {
            Some(tally) => tally,
            None => VoteTally::new(round, self.ledger.voters_for(&resolved.state)),
        };
        for vote in self.early_votes.remove(&round).unwrap_or_default() {
            tally.add(vote);
        }
        self.tally = Some(tally);
        let voting = self.voting();
        self.resolution = Some(Resolution {
            resolved,
            attempt: 0,
            timeouts: 0,
        });
        self.phase = if voting.is_empty() {
            Phase::Observe
        } else {
            Phase::Finalize
        };
        self.schedule(now);
        for agent in voting {
            self.cast_vote(agent, 0, digest);
        }
        self.check_final(now);
    }

    fn cast_vote(&mut self, agent: AgentId, attempt: u32, digest: Digest) {
        let round = self.round();
        let swarm = self.config.swarm;
        let Some(local) = self.locals.get_mut(&agent) else {
            return;
        };
        let vote = local.identity.sign(
            swarm,
            round,
            Payload::CheckpointVote(CheckpointVote { digest, attempt }),
        );
        local.votes_cast.push(vote.clone());
        if let Some(tally) = &mut self.tally {
            tally.add(vote.clone());
        }
        self.outputs.push_back(Output::Send(vote));
    }

    /// Hosted agents that vote in the current round.
    fn voting(&self) -> Vec<AgentId> {
        let Some(tally) = &self.tally else {
            return Vec::new();
        };
        self.locals
            .keys()
            .filter(|agent| tally.voters().contains(agent))
            .copied()
            .collect()
    }

    pub(super) fn check_final(&mut self, now: u64) {
        let Some(certificate) = self.tally.as_ref().and_then(VoteTally::certificate) else {
            return;
        };
        // A majority certified a digest we do not hold (or we only observe): resolve what we
        // hold now; if it still differs, fetch the certified record.
        let resolved = match &self.resolution {
            Some(resolution) if resolution.resolved.digest == certificate.digest => {
                Arc::clone(&resolution.resolved)
            }
            _ => self.resolve_held(),
        };
        if resolved.digest == certificate.digest {
            self.complete_round(
                CertifiedRound::new(Arc::clone(&resolved.inputs), certificate),
                Arc::clone(&resolved.state),
                resolved.outcome.clone(),
                now,
            );
        } else {
            self.request_fetch(self.round());
        }
    }

    pub(super) fn finalize_timed_out(&mut self, now: u64) {
        let round = self.round();
        // Peers may have missed some of this replica's messages: send them again (sends are
        // idempotent: receivers recognise duplicates by id).
        let own: Vec<Output> = self
            .locals
            .values()
            .flat_map(|local| local.sent.iter())
            .filter(|(kind, _)| **kind != PayloadKind::CheckpointVote)
            .map(|(_, message)| Output::Send(message.clone()))
            .collect();
        self.outputs.extend(own);
        let Some((own, attempt)) = self
            .resolution
            .as_ref()
            .map(|r| (r.resolved.digest, r.attempt))
        else {
            self.schedule(now);
            return;
        };
        let timeouts = match self.resolution.as_mut() {
            Some(r) => {
                r.timeouts += 1;
                r.timeouts
            }
            None => 0,
        };
        // Pull the messages of a voter that disagrees (a different one each timeout, in case
        // one has crashed): message sets converge without everyone republishing everything.
        let disagreeing = self
            .tally
            .as_ref()
            .map(|t| t.disagreeing(own))
            .unwrap_or_default();
        if !disagreeing.is_empty() {
            let peer = disagreeing[timeouts as usize % disagreeing.len()];
            self.outputs
                .push_back(Output::FetchMessages { round, peer });
        }
        let provably_dead = self
            .tally
            .as_ref()
            .is_some_and(|t| t.attempt_is_dead(attempt));
        // Founding needs every admitted member, so silence there is never presumed.
        let presumed_dead = round > 0 && timeouts >= SILENT_VOTER_TIMEOUTS;
        let dead = provably_dead || presumed_dead;
        if dead {
            // Nobody can finalize this attempt: resolve again from everything held and vote anew.
            let resolved = self.resolve_held();
            let digest = resolved.digest;
            self.resolution = Some(Resolution {
                resolved,
                attempt: attempt + 1,
                timeouts: 0,
            });
            for agent in self.voting() {
                self.cast_vote(agent, attempt + 1, digest);
            }
        }
        // Re-send every earlier vote of this round: a peer that lost an earlier attempt's vote
        // needs it to see that attempt is dead and move on with us.
        let resend: Vec<Output> = self
            .locals
            .values()
            .flat_map(|local| {
                let earlier = local.votes_cast.len().saturating_sub(usize::from(dead));
                local.votes_cast[..earlier]
                    .iter()
                    .cloned()
                    .map(Output::Send)
            })
            .collect();
        self.outputs.extend(resend);
        // The round may be final elsewhere (a certificate we never received): ask again.
        self.fetch_requested_for = None;
        self.request_fetch(round);
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
        self.outputs.push_back(Output::Final(Box::new(Finalized {
            certified,
            outcome,
            state,
        })));
        self.start_round(now);
    }
}
