//! What a replica takes from the network: the cheap filter a node applies before it checks a
//! signature ([`Engine::of_use`]), and where each verified message goes (the round's inbox,
//! the agreement running or its early buffer, the evidence watch, a fetch when this replica
//! lags).

use super::Engine;
use crate::envelope::SignedMessage;
use crate::ids::AgentId;
use crate::round_messages::{Inserted, RoundMessages};
use crate::state::{MemberRecord, MemberStatus};
use crate::wire::{Payload, PayloadKind};

/// Messages from rounds further ahead than this are not buffered; they mean we are behind.
const MAX_ROUNDS_AHEAD: u64 = 1;
/// Early agreement messages one sender may have buffered per round and stage: a proposal,
/// a promise and a vote for a couple of attempts.
const EARLY_VOTES_PER_SENDER: usize = 6;
/// Non-member messages (joins) buffered per round at most.
const MAX_NEWCOMERS_PER_ROUND: usize = 256;

impl Engine {
    /// Whether a message of `round` from `sender` saying `payload` can be of any use to
    /// this replica, decided from what the message claims before its signature is checked
    /// (a cheap filter against floods: a node verifies only what passes it, and gossip does
    /// not relay the rest). Of use: the message of a member that may still take part
    /// (active or suspended) of this round, the next, or a round far ahead (a sign this
    /// replica lags; from a founder while the replica knows no member); the last round's
    /// agreement of any member (evidence); an
    /// agreement message of this round from its voters; a join; the next round's turns of a
    /// key that asked to join in this one. Everything [`Engine::handle_message`] uses passes.
    pub fn of_use(&self, round: u64, sender: &AgentId, payload: &Payload) -> bool {
        let current = self.round();
        let record = self.ledger.members.get(sender);
        // A member that may still take part (a suspended one rejoins); one that completed,
        // departed or was removed sends nothing of use but its last round's agreement.
        let member = record
            .is_some_and(|m| matches!(m.status, MemberStatus::Active | MemberStatus::Suspended));
        // Before the swarm has members: the known founders, or any key when none are named.
        let founders = &self.config.known_founders;
        let may_found = |id: &AgentId| founders.is_empty() || founders.contains(id);
        let founding = self.ledger.members.is_empty() && may_found(sender);
        if round < current {
            return record.is_some() && round + 1 == current && payload.stage().is_some();
        }
        if round > current + MAX_ROUNDS_AHEAD {
            // A sign that this replica lags: from a member, or from a (known) founder while
            // it knows no member yet (a joiner before its first sync).
            return member || founding;
        }
        if payload.stage().is_some() {
            return match &self.tally {
                Some(tally) if round == current => tally.voters().contains(sender),
                // An agreement not started here yet: from a member, or a founder.
                _ => member || founding,
            };
        }
        member
            || (matches!(payload, Payload::Join(_)) && (round > 0 || may_found(sender)))
            || (round > current
                && self
                    .inbox
                    .get(&current)
                    .is_some_and(|m| m.one(sender, PayloadKind::Join).is_some()))
    }

    /// Takes a verified message from the network (or from this replica's own sends: they
    /// are ignored as duplicates).
    pub fn handle_message(&mut self, message: SignedMessage, now: u64) {
        let round = message.round();
        let current = self.round();
        if !self.of_use(round, &message.sender(), message.payload()) {
            return;
        }
        if round < current {
            // Too late to count; the half of a contradiction all the same.
            self.watch_late(&message);
            return;
        }
        if round > current + MAX_ROUNDS_AHEAD {
            self.request_fetch(current);
            return;
        }
        if let Some(stage) = message.payload().stage() {
            if round == current && self.tally.is_some() && stage == self.stage {
                if self.take_agreement(message) {
                    self.progress(now);
                }
            } else if round > current || self.tally.is_none() || stage > self.stage {
                // An agreement not started here yet (of this round: from its voters only):
                // a few messages per voter and attempt, and no more than its share from one
                // sender, so one member's flood cannot crowd out the voters. A sender over
                // its share loses its oldest (an earlier attempt's), not its newest.
                let sender = message.sender();
                let early = self.early_votes.entry((round, stage)).or_default();
                let mine: Vec<usize> = early
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.sender() == sender)
                    .map(|(i, _)| i)
                    .collect();
                if mine.len() >= EARLY_VOTES_PER_SENDER {
                    early.remove(mine[0]);
                    early.push(message);
                } else if early.len() < 3 * self.config.limits.max_votes {
                    early.push(message);
                }
            } else {
                // An agreement of this round already over here (the seal, in the outcome).
                self.watch(&message);
            }
            return;
        }
        let member = self.ledger.members.get(&message.sender());
        let active = member.is_some_and(MemberRecord::is_active);
        if member.is_none() && !self.founding_join(&message) {
            return;
        }
        if member.is_none() {
            // Newcomers (joins, and the next round's turns of a key that asked to join in
            // this one: `of_use`), bounded per round: anything else from an unknown key is
            // junk that would crowd out the joins.
            let held = self.inbox.get(&round).map_or(0, RoundMessages::len);
            if held
                >= MAX_NEWCOMERS_PER_ROUND.max(self.config.expected_members)
                    + 8 * self.ledger.members.len()
            {
                return;
            }
        }
        if self.hold(message, active) == Inserted::New && round == current {
            self.advance_if_complete(now);
        }
    }
}
