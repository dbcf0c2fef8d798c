//! Agreement on a round's outcome: single-decree Paxos per round (Lamport, "Paxos Made
//! Simple", 2001), with the round's *attempts* as ballots. This file owns the pieces that
//! carry its safety and that the engine and the model check (`proto/tests/agreement_model.rs`)
//! share: who proposes in an attempt ([`proposer`]), one voter's acceptor state
//! ([`Acceptor`]), what a proposer may propose given the promises it holds ([`choose`]), and
//! the log of proposals and promises received for a round ([`AgreementLog`]).
//!
//! The invariant: if a majority of a round's voters voted for digest `d` in attempt `a`,
//! every proposal of an attempt after `a` is for `d`. So no two certificates of one round
//! certify different digests, whatever messages are lost, delayed or reordered and however
//! long voters are silent. docs/PROTOCOL.md §6 gives the argument.

use crate::envelope::SignedMessage;
use crate::ids::{AgentId, Digest};
use crate::state::majority;
use crate::wire::{Accepted, Payload, Promise, Stage};
use std::collections::{BTreeMap, BTreeSet};

/// The proposer of `attempt` in `round`: the round's voters in id order, taken in turn from
/// position `round + attempt`. `None` without voters.
pub fn proposer(voters: &BTreeSet<AgentId>, round: u64, attempt: u32) -> Option<AgentId> {
    let n = voters.len() as u64;
    if n == 0 {
        return None;
    }
    let index = round.wrapping_add(u64::from(attempt)) % n;
    voters.iter().nth(index as usize).copied()
}

/// One voter's side of a round's agreement: the latest attempt it promised to (it never
/// votes in an earlier one) and its last vote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acceptor {
    promised: u32,
    accepted: Option<Accepted>,
}

impl Acceptor {
    /// The latest attempt promised (0 at first: every voter is in attempt 0).
    pub fn promised(&self) -> u32 {
        self.promised
    }

    /// The last vote cast.
    pub fn accepted(&self) -> Option<Accepted> {
        self.accepted
    }

    /// Moves to `attempt`, if it is later than every attempt promised so far, and returns
    /// the promise to send (in agreement `stage`); `None` if it is not later.
    pub fn promise(&mut self, stage: Stage, attempt: u32) -> Option<Promise> {
        if attempt <= self.promised {
            return None;
        }
        self.promised = attempt;
        Some(Promise {
            stage,
            attempt,
            accepted: self.accepted,
        })
    }

    /// Whether a vote in `attempt` is allowed: no later attempt promised, no vote yet in this
    /// attempt or a later one.
    pub fn may_vote(&self, attempt: u32) -> bool {
        attempt >= self.promised && self.accepted.is_none_or(|a| a.attempt < attempt)
    }

    /// Votes for `digest` in `attempt` if [`Acceptor::may_vote`]; true if it did.
    pub fn vote(&mut self, attempt: u32, digest: Digest) -> bool {
        if !self.may_vote(attempt) {
            return false;
        }
        self.promised = attempt;
        self.accepted = Some(Accepted { attempt, digest });
        true
    }
}

/// What the proposer of an attempt may propose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// No promise reports a vote: any value (the proposer's own resolution).
    Free,
    /// The digest of the latest vote reported: it may have been decided.
    Bound(Digest),
}

/// What may be proposed given the last votes a majority of voters reported in their
/// promises: the digest of the latest attempt among them, or anything if none voted.
/// Ties within one attempt (possible only if its proposer signed two proposals) go to the
/// highest digest, so every proposer chooses alike.
pub fn choose<'a>(reported: impl IntoIterator<Item = &'a Option<Accepted>>) -> Choice {
    reported
        .into_iter()
        .flatten()
        .max()
        .map_or(Choice::Free, |latest| Choice::Bound(latest.digest))
}

/// Proposals kept per proposer and round: those of its latest attempts only, so that a
/// proposer signing proposals for many attempts cannot crowd out the others'.
const PROPOSALS_KEPT: usize = 2;

/// The proposals and promises received for one agreement of one round, from its voters
/// only. Bounded: each voter's latest promise and the proposals of the latest few attempts.
#[derive(Debug, Clone)]
pub struct AgreementLog {
    round: u64,
    stage: Stage,
    voters: BTreeSet<AgentId>,
    /// The first proposal held for each of the latest attempts, from its proposer.
    proposals: BTreeMap<u32, SignedMessage>,
    /// Proposers that signed two different proposals for one attempt, with the pair.
    equivocations: BTreeMap<u32, (SignedMessage, SignedMessage)>,
    /// Each voter's latest promise.
    promises: BTreeMap<AgentId, SignedMessage>,
}

impl AgreementLog {
    /// An empty log for `round`'s agreement `stage` with these voters.
    pub fn new(round: u64, stage: Stage, voters: BTreeSet<AgentId>) -> AgreementLog {
        AgreementLog {
            round,
            stage,
            voters,
            proposals: BTreeMap::new(),
            equivocations: BTreeMap::new(),
            promises: BTreeMap::new(),
        }
    }

    /// Adds a verified proposal or promise; true if it is new and counts (from the
    /// attempt's proposer, or a voter's promise later than its last).
    pub fn add(&mut self, message: SignedMessage) -> bool {
        if message.round() != self.round
            || message.payload().stage() != Some(self.stage)
            || !self.voters.contains(&message.sender())
        {
            return false;
        }
        match *message.payload() {
            Payload::Proposal(proposal) => {
                let attempt = proposal.attempt;
                if proposer(&self.voters, self.round, attempt) != Some(message.sender()) {
                    return false;
                }
                let sender = message.sender();
                let mine: Vec<u32> = self
                    .proposals
                    .iter()
                    .filter(|(_, m)| m.sender() == sender)
                    .map(|(a, _)| *a)
                    .collect();
                if mine.len() >= PROPOSALS_KEPT && mine.iter().all(|a| *a > attempt) {
                    return false;
                }
                match self.proposals.get(&attempt) {
                    None => {
                        self.proposals.insert(attempt, message);
                        if mine.len() >= PROPOSALS_KEPT {
                            if let Some(oldest) = mine.first() {
                                self.proposals.remove(oldest);
                            }
                        }
                        true
                    }
                    Some(held) if held.id() != message.id() => {
                        if self.equivocations.len() < PROPOSALS_KEPT {
                            self.equivocations
                                .entry(attempt)
                                .or_insert_with(|| (held.clone(), message));
                        }
                        false
                    }
                    Some(_) => false,
                }
            }
            Payload::Promise(promise) => {
                let later = self
                    .promises
                    .get(&message.sender())
                    .and_then(promise_of)
                    .is_none_or(|held| held.attempt < promise.attempt);
                if later {
                    self.promises.insert(message.sender(), message);
                }
                later
            }
            _ => false,
        }
    }

    /// The digest proposed for `attempt`, if its proposal is held.
    pub fn proposal(&self, attempt: u32) -> Option<Digest> {
        match self.proposals.get(&attempt)?.payload() {
            Payload::Proposal(proposal) => Some(proposal.digest),
            _ => None,
        }
    }

    /// How many voters' latest promise is for `attempt`.
    pub fn promised_to(&self, attempt: u32) -> usize {
        self.promises
            .values()
            .filter(|m| promise_of(m).is_some_and(|p| p.attempt == attempt))
            .count()
    }

    /// Attempts whose proposer signed two different proposals, with the evidence.
    pub fn equivocations(&self) -> &BTreeMap<u32, (SignedMessage, SignedMessage)> {
        &self.equivocations
    }

    /// The last votes reported by the voters whose latest promise is for `attempt`.
    pub fn promises(&self, attempt: u32) -> BTreeMap<AgentId, Option<Accepted>> {
        self.promises
            .iter()
            .filter_map(|(voter, message)| {
                let promise = promise_of(message)?;
                (promise.attempt == attempt).then_some((*voter, promise.accepted))
            })
            .collect()
    }

    /// What the proposer of `attempt` may propose: `None` until a majority promised.
    pub fn choice(&self, attempt: u32) -> Option<Choice> {
        let promises = self.promises(attempt);
        (promises.len() >= majority(self.voters.len())).then(|| choose(promises.values()))
    }

    /// The latest attempt some voters are provably in, so a replica behind should move to
    /// it at once: one that more voters than a majority leaves out have promised (or gone
    /// past). A proposal alone does not count: one signature could name any attempt.
    pub fn latest_attempt(&self) -> u32 {
        let enough = self
            .voters
            .len()
            .saturating_sub(majority(self.voters.len()))
            + 1;
        let mut promised: Vec<u32> = self
            .promises
            .values()
            .filter_map(|m| promise_of(m).map(|p| p.attempt))
            .collect();
        promised.sort_unstable_by(|a, b| b.cmp(a));
        promised.get(enough - 1).copied().unwrap_or(0)
    }

    /// The latest attempt any voter promised: where a replica that timed out goes.
    pub fn latest_promised(&self) -> u32 {
        self.promises
            .values()
            .filter_map(|m| promise_of(m).map(|p| p.attempt))
            .max()
            .unwrap_or(0)
    }

    /// Every proposal and promise held, to send again.
    pub fn messages(&self) -> impl Iterator<Item = &SignedMessage> + '_ {
        self.proposals.values().chain(self.promises.values())
    }
}

fn promise_of(message: &SignedMessage) -> Option<Promise> {
    match message.payload() {
        Payload::Promise(promise) => Some(*promise),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest([n; 32])
    }

    #[test]
    fn an_acceptor_never_votes_behind_its_promise_or_twice_in_an_attempt() {
        let mut a = Acceptor::default();
        assert!(a.vote(0, digest(1)));
        assert!(!a.vote(0, digest(2)), "second vote in attempt 0");
        let promise = a.promise(Stage::Outcome, 2);
        assert_eq!(
            promise.and_then(|p| p.accepted).map(|x| x.digest),
            Some(digest(1))
        );
        assert!(a.promise(Stage::Outcome, 2).is_none() && a.promise(Stage::Outcome, 1).is_none());
        assert!(
            !a.vote(1, digest(3)),
            "attempt 1 is behind the promise to 2"
        );
        assert!(a.vote(3, digest(3)));
        assert_eq!(a.accepted().map(|x| x.attempt), Some(3));
    }

    #[test]
    fn a_proposer_is_bound_to_the_latest_vote_reported() {
        let reported = [
            None,
            Some(Accepted {
                attempt: 1,
                digest: digest(9),
            }),
            Some(Accepted {
                attempt: 4,
                digest: digest(2),
            }),
        ];
        assert_eq!(choose(&reported), Choice::Bound(digest(2)));
        assert_eq!(choose(&[None, None]), Choice::Free);
    }

    #[test]
    fn proposers_take_turns_among_the_voters() {
        let voters: BTreeSet<AgentId> = (1..=3u8).map(|i| AgentId([i; 32])).collect();
        let seen: BTreeSet<AgentId> = (0..3).filter_map(|a| proposer(&voters, 7, a)).collect();
        assert_eq!(seen, voters);
        assert_eq!(proposer(&BTreeSet::new(), 0, 0), None);
    }
}
