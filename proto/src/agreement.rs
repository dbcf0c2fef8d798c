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
use std::sync::Arc;

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

    /// The acceptor of a voter that signed `signed` in one agreement (its promises and votes,
    /// in any order): the latest attempt it promised or voted in, and its latest vote. A
    /// restarted replica resumes from the messages it stored before sending them, so it never
    /// votes against, or hides, what it signed before its crash.
    pub fn resumed<'a>(signed: impl IntoIterator<Item = &'a Payload>) -> Acceptor {
        let mut acceptor = Acceptor::default();
        for payload in signed {
            match payload {
                Payload::Promise(promise) => {
                    acceptor.promised = acceptor.promised.max(promise.attempt);
                }
                Payload::CheckpointVote(vote) => {
                    acceptor.promised = acceptor.promised.max(vote.attempt);
                    if acceptor.accepted.is_none_or(|a| a.attempt < vote.attempt) {
                        acceptor.accepted = Some(Accepted {
                            attempt: vote.attempt,
                            digest: vote.digest,
                        });
                    }
                }
                _ => {}
            }
        }
        acceptor
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
    /// The latest vote reported: its digest may have been decided.
    Bound(Accepted),
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
        .map_or(Choice::Free, |latest| Choice::Bound(*latest))
}

/// Proposals kept per proposer and round: those of its latest attempts only, so that a
/// proposer signing proposals for many attempts cannot crowd out the others'.
const PROPOSALS_KEPT: usize = 2;

/// Promises kept per voter: those of its latest attempts (a justification may need an
/// attempt the voter has since left).
const PROMISES_KEPT: usize = 4;

/// Justifications kept: those of the latest attempts.
const CHAINS_KEPT: usize = 16;

/// Older proposals kept per proposer, and older promises per voter, for justifications.
const OLDER_KEPT: usize = 4;

/// The proposals and promises received for one agreement of one round, from its voters
/// only, and the justifications ([`crate::check_justification`]) assembled from them.
/// Bounded: each voter's promises of its latest few attempts, the proposals of each
/// proposer's latest few attempts, and the justifications of the latest attempts.
#[derive(Debug, Clone)]
pub struct AgreementLog {
    round: u64,
    stage: Stage,
    voters: BTreeSet<AgentId>,
    /// The first proposal held for each of the latest attempts, from its proposer.
    proposals: BTreeMap<u32, SignedMessage>,
    /// Proposers that signed two different proposals for one attempt, with the pair.
    equivocations: BTreeMap<u32, (SignedMessage, SignedMessage)>,
    /// Each voter's promises of its latest attempts, by attempt.
    promises: BTreeMap<AgentId, BTreeMap<u32, SignedMessage>>,
    /// Proposals older than their proposer's latest few, kept for justifications: the
    /// latest few of each proposer, by attempt (the first held).
    older_proposals: BTreeMap<u32, SignedMessage>,
    /// Promises older than a voter's latest few, kept for justifications (a peer re-sends a
    /// justification whose promises this log had no room for): the latest few of each
    /// voter, so that one voter signing many cannot push out another's.
    older: BTreeMap<AgentId, BTreeMap<u32, SignedMessage>>,
    /// Justifications assembled, by attempt, with the digest of the attempt's proposal.
    chains: BTreeMap<u32, (Digest, Arc<[SignedMessage]>)>,
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
            older: BTreeMap::new(),
            older_proposals: BTreeMap::new(),
            chains: BTreeMap::new(),
        }
    }

    /// Adds a verified proposal or promise; true if it is new and counts (from the
    /// attempt's proposer, or a voter's promise for an attempt among its latest few).
    pub fn add(&mut self, message: SignedMessage) -> bool {
        if message.round() != self.round
            || message.payload().stage() != Some(self.stage)
            || !self.voters.contains(&message.sender())
        {
            return false;
        }
        match *message.payload() {
            Payload::Proposal(proposal) => self.add_proposal(proposal.attempt, message),
            Payload::Promise(promise) => {
                let sender = message.sender();
                let held = self.promises.entry(sender).or_default();
                if held.contains_key(&promise.attempt) {
                    return false;
                }
                if held.len() >= PROMISES_KEPT
                    && held.keys().all(|attempt| *attempt > promise.attempt)
                {
                    // Too old to count, but a justification may need it.
                    self.keep_older_promise(sender, promise.attempt, message);
                    return false;
                }
                held.insert(promise.attempt, message);
                if held.len() > PROMISES_KEPT {
                    if let Some((attempt, old)) = held.pop_first() {
                        self.keep_older_promise(sender, attempt, old);
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn add_proposal(&mut self, attempt: u32, message: SignedMessage) -> bool {
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
            // Too old to count, but a justification may need it.
            self.keep_older_proposal(attempt, message);
            return false;
        }
        match self.proposals.get(&attempt) {
            None => {
                self.proposals.insert(attempt, message);
                if mine.len() >= PROPOSALS_KEPT {
                    if let Some(oldest) = mine.first() {
                        if let Some(old) = self.proposals.remove(oldest) {
                            self.keep_older_proposal(*oldest, old);
                        }
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

    fn keep_older_proposal(&mut self, attempt: u32, message: SignedMessage) {
        let sender = message.sender();
        self.older_proposals.entry(attempt).or_insert(message);
        let mine: Vec<u32> = self
            .older_proposals
            .iter()
            .filter(|(_, m)| m.sender() == sender)
            .map(|(a, _)| *a)
            .collect();
        if mine.len() > OLDER_KEPT {
            self.older_proposals.remove(&mine[0]);
        }
    }

    fn keep_older_promise(&mut self, voter: AgentId, attempt: u32, message: SignedMessage) {
        let older = self.older.entry(voter).or_default();
        older.entry(attempt).or_insert(message);
        if older.len() > OLDER_KEPT {
            older.pop_first();
        }
    }

    /// The digest proposed for `attempt`, if its proposal is held.
    pub fn proposal(&self, attempt: u32) -> Option<Digest> {
        match self.proposals.get(&attempt)?.payload() {
            Payload::Proposal(proposal) => Some(proposal.digest),
            _ => None,
        }
    }

    /// The attempt the proposal held for `attempt` is bound to (`None`: a fresh value, or no
    /// proposal held).
    pub fn proposal_bound(&self, attempt: u32) -> Option<u32> {
        match self.proposals.get(&attempt)?.payload() {
            Payload::Proposal(proposal) => proposal.bound,
            _ => None,
        }
    }

    /// How many voters promised `attempt`.
    pub fn promised_to(&self, attempt: u32) -> usize {
        self.promises
            .values()
            .filter(|held| held.contains_key(&attempt))
            .count()
    }

    /// Attempts whose proposer signed two different proposals, with the evidence.
    pub fn equivocations(&self) -> &BTreeMap<u32, (SignedMessage, SignedMessage)> {
        &self.equivocations
    }

    /// The last votes reported by the voters that promised `attempt` (in that promise).
    pub fn promises(&self, attempt: u32) -> BTreeMap<AgentId, Option<Accepted>> {
        self.promises
            .iter()
            .filter_map(|(voter, held)| {
                let promise = promise_of(held.get(&attempt)?)?;
                Some((*voter, promise.accepted))
            })
            .collect()
    }

    /// What the proposer of `attempt` may propose: `None` until a majority promised. Any
    /// majority of promises binds safely, so when the promises reporting no vote or a vote
    /// this log can justify are a majority, only they bind: a vote nobody can justify (one a
    /// byzantine voter made up, say) then cannot bind the proposer to a digest no voter would
    /// vote for.
    pub fn choice(&mut self, attempt: u32) -> Option<Choice> {
        let promises = self.promises(attempt);
        let need = majority(self.voters.len());
        if promises.len() < need {
            return None;
        }
        let reported: BTreeSet<Accepted> = promises.values().flatten().copied().collect();
        let justified: BTreeSet<Accepted> = reported
            .into_iter()
            .filter(|vote| {
                self.justify(vote.attempt).is_some()
                    && self.chains.get(&vote.attempt).map(|(d, _)| *d) == Some(vote.digest)
            })
            .collect();
        let backed: Vec<&Option<Accepted>> = promises
            .values()
            .filter(|r| r.is_none_or(|vote| justified.contains(&vote)))
            .collect();
        Some(if backed.len() >= need {
            choose(backed)
        } else {
            choose(promises.values())
        })
    }

    /// Makes the proposal for `digest` the one held for `attempt`, if its proposer signed
    /// two and the other is held: a certificate for `digest` must carry that one's
    /// justification. False only if the proposal held is for another digest and no other
    /// is.
    pub fn prefer(&mut self, attempt: u32, digest: Digest) -> bool {
        let held = self
            .proposals
            .get(&attempt)
            .or_else(|| self.older_proposals.get(&attempt));
        match held.map(SignedMessage::payload) {
            None => return true,
            Some(Payload::Proposal(p)) if p.digest == digest => return true,
            _ => {}
        }
        let Some((first, second)) = self.equivocations.get(&attempt) else {
            return false;
        };
        let for_digest =
            |m: &SignedMessage| matches!(m.payload(), Payload::Proposal(p) if p.digest == digest);
        let Some(chosen) = [first, second].into_iter().find(|m| for_digest(m)).cloned() else {
            return false;
        };
        self.proposals.insert(attempt, chosen);
        self.chains.remove(&attempt);
        true
    }

    /// The justification of the proposal held for `attempt` ([`crate::check_justification`]):
    /// the proposal, a majority of the promises held for its attempt that give it (none for
    /// attempt 0), and the justification of the proposal it is bound to. Kept once
    /// assembled. `None` while this log cannot assemble it.
    pub fn justify(&mut self, attempt: u32) -> Option<Arc<[SignedMessage]>> {
        if let Some((_, chain)) = self.chains.get(&attempt) {
            return Some(Arc::clone(chain));
        }
        let message = self
            .proposals
            .get(&attempt)
            .or_else(|| self.older_proposals.get(&attempt))?
            .clone();
        let Payload::Proposal(proposal) = *message.payload() else {
            return None;
        };
        if proposal.bound.is_some_and(|b| b >= attempt) {
            // Refused on decoding; a locally built one must not recurse for ever.
            return None;
        }
        let mut chain = vec![message];
        if attempt > 0 {
            let target = proposal.bound.map(|b| Accepted {
                attempt: b,
                digest: proposal.digest,
            });
            // Promises reporting the vote the proposal is bound to come first: one is needed.
            let older = self.older.values().filter_map(|held| held.get(&attempt));
            let mut eligible: Vec<(bool, &SignedMessage)> = self
                .promises
                .values()
                .filter_map(|held| held.get(&attempt))
                .chain(older)
                .filter_map(|message| {
                    let reported = promise_of(message)?.accepted;
                    (reported <= target).then_some((reported != target, message))
                })
                .collect();
            eligible.sort_by_key(|(other, _)| *other);
            let need = majority(self.voters.len());
            if eligible.len() < need || (target.is_some() && eligible.first()?.0) {
                return None;
            }
            chain.extend(eligible.into_iter().take(need).map(|(_, m)| m.clone()));
            if let Some(bound) = proposal.bound {
                let earlier = self.justify(bound)?;
                if self.chains.get(&bound).map(|(d, _)| *d) != Some(proposal.digest) {
                    return None;
                }
                chain.extend(earlier.iter().cloned());
            }
        }
        let chain: Arc<[SignedMessage]> = chain.into();
        self.chains
            .insert(attempt, (proposal.digest, Arc::clone(&chain)));
        if self.chains.len() > CHAINS_KEPT {
            self.chains.pop_first();
        }
        Some(chain)
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
        let mut promised: Vec<u32> = self.latest_promises().collect();
        promised.sort_unstable_by(|a, b| b.cmp(a));
        promised.get(enough - 1).copied().unwrap_or(0)
    }

    /// The latest attempt any voter promised: where a replica that timed out goes.
    pub fn latest_promised(&self) -> u32 {
        self.latest_promises().max().unwrap_or(0)
    }

    /// Each voter's latest promised attempt.
    fn latest_promises(&self) -> impl Iterator<Item = u32> + '_ {
        self.promises
            .values()
            .filter_map(|held| held.last_key_value().map(|(attempt, _)| *attempt))
    }

    /// What to send again at a timeout, each message once: the proposals held, each
    /// voter's latest promise, and the justification of the latest attempt assembled (a
    /// replica that missed some of it cannot vote). Bounded whatever voters sign.
    pub fn messages(&self) -> Vec<&SignedMessage> {
        let mut seen = BTreeSet::new();
        self.proposals
            .values()
            .chain(
                self.promises
                    .values()
                    .filter_map(|held| held.last_key_value().map(|(_, m)| m)),
            )
            .chain(
                self.chains
                    .last_key_value()
                    .into_iter()
                    .flat_map(|(_, (_, chain))| chain.iter()),
            )
            .filter(|m| seen.insert(m.id()))
            .collect()
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
        assert_eq!(
            choose(&reported),
            Choice::Bound(Accepted {
                attempt: 4,
                digest: digest(2)
            })
        );
        assert_eq!(choose(&[None, None]), Choice::Free);
    }

    #[test]
    fn a_made_up_vote_in_a_promise_does_not_bind_the_proposer() {
        use crate::envelope::Identity;
        use crate::ids::SwarmId;
        let who: Vec<Identity> = (1..=3u8).map(|i| Identity::from_secret([i; 32])).collect();
        let voters: BTreeSet<AgentId> = who.iter().map(Identity::id).collect();
        let mut log = AgreementLog::new(1, Stage::Outcome, voters);
        let promise = |by: &Identity, accepted| {
            by.sign(
                SwarmId::from_name("t"),
                1,
                Payload::Promise(Promise {
                    stage: Stage::Outcome,
                    attempt: 1,
                    accepted,
                }),
            )
        };
        // A byzantine voter reports a vote in attempt 0 that no proposal backs.
        let made_up = Some(Accepted {
            attempt: 0,
            digest: digest(9),
        });
        assert!(log.add(promise(&who[0], made_up)));
        assert!(log.add(promise(&who[1], None)));
        // Needed for a majority, the made-up vote binds (and nobody can justify it).
        assert_eq!(log.choice(1), made_up.map(Choice::Bound));
        // Once the honest promises are a majority without it, it does not.
        assert!(log.add(promise(&who[2], None)));
        assert_eq!(
            log.choice(1),
            Some(Choice::Free),
            "two honest promises bind"
        );
    }

    #[test]
    fn proposers_take_turns_among_the_voters() {
        let voters: BTreeSet<AgentId> = (1..=3u8).map(|i| AgentId([i; 32])).collect();
        let seen: BTreeSet<AgentId> = (0..3).filter_map(|a| proposer(&voters, 7, a)).collect();
        assert_eq!(seen, voters);
        assert_eq!(proposer(&BTreeSet::new(), 0, 0), None);
    }
}
