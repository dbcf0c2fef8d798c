//! The slot-resolution rule: a pure function from the previous [`LedgerState`] and one
//! round's [`RoundMessages`] to the next state and a [`RoundOutcome`].
//!
//! Integer arithmetic only, ordered maps only, explicit tie-breaks: every peer that resolves
//! the same message set from the same state gets the same bits, whatever the arrival order.
//! The steps, in order, are written down in docs/PROTOCOL.md ("The rule").

use crate::accountability::contradicts;
use crate::commit::{check_reveal, RevealCheck};
use crate::envelope::{open_carried, SignedMessage};
use crate::ids::{AgentId, Digest, SwarmId};
use crate::round_messages::{RoundMessages, Turn};
use crate::state::{
    admission_limit, Coalition, LedgerState, MemberRecord, MemberStatus, DEADLOCK_ROUNDS,
    INCOME_PER_ROUND, SUSPEND_AFTER_MISSES,
};
use crate::trust::{after_honest_round, after_offences, trust_multiplier, Offence, INITIAL_TRUST};
use crate::wire::{CoalitionId, Evidence, LeaveReason, Payload, PayloadKind};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

mod claims;
mod voters;

use claims::{check_claim, completion_lie, job_restarted, RoundOffences};
use voters::next_voters;

/// Why a coalition ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DissolveReason {
    /// Its duration ran out.
    Expired,
    /// A member left, completed or failed.
    MemberGone,
    /// Its beneficiary did not win for [`DEADLOCK_ROUNDS`] rounds.
    Deadlock,
    /// A member broke its pledge.
    PledgeBroken,
}

/// A member with a valid, revealed bid this round, and how it ranked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The member.
    pub id: AgentId,
    /// Its claim this round.
    pub claim: u32,
    /// Its own bid.
    pub bid: u64,
    /// Valid support received from coalition partners.
    pub support: u64,
    /// Its bid power (ppm) from trust at the start of the round.
    pub power: u32,
}

impl Candidate {
    /// Score numerator: `power × (bid + support + 1)`; the score is this divided by the claim.
    fn weight(&self) -> u128 {
        u128::from(self.power) * (u128::from(self.bid) + u128::from(self.support) + 1)
    }
}

/// Two signed messages that prove equivocation; anyone can check them with
/// [`is_equivocation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquivocationEvidence {
    /// One message.
    pub first: SignedMessage,
    /// A different message of the same kind, round and sender.
    pub second: SignedMessage,
}

/// Whether two verified messages prove equivocation: same sender, round and kind, different
/// content.
pub fn is_equivocation(first: &SignedMessage, second: &SignedMessage) -> bool {
    first.sender() == second.sender()
        && first.round() == second.round()
        && first.payload().kind() == second.payload().kind()
        && first.id() != second.id()
}

/// Everything that happened in one resolved round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    /// The round.
    pub round: u64,
    /// Who executes this round's slot.
    pub winner: Option<AgentId>,
    /// What the winner (with its supporters) paid: the second price.
    pub price: u64,
    /// Valid bids, best first.
    pub ranking: Vec<Candidate>,
    /// Proven offences, by member.
    pub offences: Vec<(AgentId, Offence)>,
    /// Equivocation evidence pairs.
    pub equivocations: Vec<EquivocationEvidence>,
    /// Members admitted from the next round on.
    pub joined: Vec<AgentId>,
    /// Suspended members active again from the next round on.
    pub rejoined: Vec<AgentId>,
    /// Members that left.
    pub left: Vec<(AgentId, LeaveReason)>,
    /// Members suspended (they missed too many rounds in a row).
    pub suspended: Vec<AgentId>,
    /// Suspended members removed for good (away longer than the absence limit).
    pub removed: Vec<AgentId>,
    /// Coalitions formed this round.
    pub coalitions_formed: Vec<CoalitionId>,
    /// Coalitions dissolved at the end of this round.
    pub coalitions_dissolved: Vec<(CoalitionId, DissolveReason)>,
    /// Active members that missed a claim, commit or reveal.
    pub missed: Vec<AgentId>,
}

/// A member's valid sealed bid, opened.
#[derive(Debug, Clone, Copy)]
struct OpenBid {
    claim: u32,
    bid: u64,
    support: Option<crate::wire::Support>,
}

/// The round's tie-break among equal scores, equal claims and equal power: a hash of the
/// round and the id, so no agent is favoured every round.
pub(super) fn tie_break(round: u64, id: &AgentId) -> Digest {
    Digest::of(b"slotmesh/tie-break/v1", &[&round.to_le_bytes(), &id.0])
}

/// Total order of candidates: higher `weight / claim` first, then shorter claim, then higher
/// power, then the round's tie-break hash.
fn rank(round: u64, a: &Candidate, b: &Candidate) -> Ordering {
    let left = a.weight() * u128::from(b.claim);
    let right = b.weight() * u128::from(a.claim);
    right
        .cmp(&left)
        .then(a.claim.cmp(&b.claim))
        .then(b.power.cmp(&a.power))
        .then_with(|| tie_break(round, &a.id).cmp(&tie_break(round, &b.id)))
}

/// Second price: the smallest total bid with which the winner's score still reaches the
/// runner-up's, capped by what the winner offered.
fn second_price(winner: &Candidate, runner_up: Option<&Candidate>) -> u64 {
    let Some(second) = runner_up else { return 0 };
    let offered = winner.bid + winner.support;
    // (T + 1) * power_w / claim_w >= weight_2 / claim_2
    let needed_num = second.weight() * u128::from(winner.claim);
    let needed_den = u128::from(second.claim) * u128::from(winner.power.max(1));
    let plus_one = needed_num.div_ceil(needed_den);
    let total = plus_one.saturating_sub(1);
    u64::try_from(total).unwrap_or(u64::MAX).min(offered)
}

fn payload_claim(message: &SignedMessage) -> Option<u32> {
    match message.payload() {
        Payload::Claim(claim) => Some(claim.remaining),
        _ => None,
    }
}

/// The round's randomness: a hash of the nonces of the active members' valid reveals, in id
/// order. Joins are sealed before any reveal is published, and a nonce is fixed by its
/// commit, so a member's only say in it is to withhold its reveal (an offence).
fn beacon(round: u64, active: &[AgentId], messages: &RoundMessages) -> Digest {
    let nonces: Vec<[u8; 32]> = active
        .iter()
        .filter_map(|id| {
            let commit = match messages.one(id, PayloadKind::Commit)?.payload() {
                Payload::Commit(commit) => *commit,
                _ => return None,
            };
            let reveal = messages.reveal(id)?;
            (check_reveal(round, *id, &commit, &reveal) == RevealCheck::Valid)
                .then_some(reveal.nonce)
        })
        .collect();
    let parts: Vec<&[u8]> = nonces.iter().map(|n| n.as_slice()).collect();
    Digest::of(b"slotmesh/beacon/v1", &parts)
}

impl LedgerState {
    /// Whether the rule consumes `message` in the round after this state: a turn of an
    /// active member, a join from a key it does not know or of a suspended member (a
    /// rejoin), or an active member's join saying its job restarted. Nothing else enters a
    /// round's inputs or its digest, so outsiders cannot split the votes.
    pub fn consumes(&self, message: &SignedMessage) -> bool {
        let sender = message.sender();
        match message.payload() {
            Payload::Join(join) => {
                self.may_join(&sender) || (join.restarted && self.is_active(&sender))
            }
            payload => !payload.kind().is_agreement() && self.is_active(&sender),
        }
    }

    /// Whether a join from `id` may admit it: a key the state does not know, or a suspended
    /// member's.
    pub fn may_join(&self, id: &AgentId) -> bool {
        self.members.get(id).is_none_or(MemberRecord::is_suspended)
    }
}

/// The founders the founding round's joins name, if any does: those of the first join (in
/// sender order) that names founders. Honest founders all name the same ones, and a replica
/// holds no other join (`Engine`'s input filter), so the choice only settles what a record
/// made by others says.
fn named_founders(messages: &RoundMessages) -> Option<&Vec<AgentId>> {
    messages
        .turns()
        .find_map(|(_, kind, turn)| match (kind, turn) {
            (PayloadKind::Join, Turn::One(message)) => match message.payload() {
                Payload::Join(join) if !join.founders.is_empty() => Some(&join.founders),
                _ => None,
            },
            _ => None,
        })
}

/// The signer `evidence` proves broke the acceptor rule: both messages verify (signature,
/// version, swarm) and contradict each other ([`contradicts`]).
fn proven_contradiction(swarm: SwarmId, evidence: &Evidence) -> Option<AgentId> {
    let first = open_carried(&evidence.first, swarm).ok()?;
    let second = open_carried(&evidence.second, swarm).ok()?;
    contradicts(&first, &second).then(|| first.sender())
}

/// Resolves round `previous.next_round` from its messages. Pure and deterministic.
///
/// Messages of other rounds in `messages` are ignored by construction ([`RoundMessages`]
/// holds one round); a set for another round yields a state in which nothing happened but
/// misses.
pub fn resolve_round(
    previous: &LedgerState,
    messages: &RoundMessages,
) -> (LedgerState, RoundOutcome) {
    let round = previous.next_round;
    let mut next = previous.clone();
    let mut outcome = RoundOutcome {
        round,
        ..RoundOutcome::default()
    };
    let empty = RoundMessages::new(round);
    let messages = if messages.round() == round {
        messages
    } else {
        &empty
    };
    let mut offences = RoundOffences::default();
    let active: Vec<AgentId> = previous.active_members().map(|(id, _)| *id).collect();
    let mut equivocators: BTreeSet<AgentId> = BTreeSet::new();

    // 1. Equivocation: any two different messages of one kind. The sender's turn is void.
    for (sender, _kind, turn) in messages.turns() {
        if let Turn::Equivocated(first, second) = turn {
            outcome.equivocations.push(EquivocationEvidence {
                first: first.clone(),
                second: second.clone(),
            });
            if previous.is_active(&sender) && equivocators.insert(sender) {
                offences.push(sender, Offence::Equivocation);
            }
        }
    }

    // 1b. Contradictions: evidence from a member that another active member, not yet
    // barred, signed two agreement messages that break the acceptor rule. Punished once.
    let mut contradicted: BTreeSet<AgentId> = BTreeSet::new();
    for (sender, kind, turn) in messages.turns() {
        let (PayloadKind::Evidence, Turn::One(message)) = (kind, turn) else {
            continue;
        };
        let Payload::Evidence(evidence) = message.payload() else {
            continue;
        };
        if equivocators.contains(&sender) {
            continue;
        }
        let Some(culprit) = proven_contradiction(previous.swarm, evidence) else {
            continue;
        };
        let barred = previous.members.get(&culprit).is_none_or(|m| !m.may_vote());
        if !barred && contradicted.insert(culprit) {
            offences.push(culprit, Offence::Contradiction);
        }
    }

    // 2. Joins: unknown senders become members from the next round on, and suspended
    // members active again (a rejoin). In the founding round of a swarm founded by known keys
    // (a join names the founders), only the joins of those founders that name the same
    // founders, all of them; past it, at most `admission_limit` a round: rejoins first, then
    // newcomers, each in the order of a hash of the id and the round's revealed nonces,
    // which nobody knows when the joins are sealed (so no key can be ground for a place).
    let founders = if round == 0 {
        named_founders(messages)
    } else {
        None
    };
    let beacon = beacon(round, &active, messages);
    let mut joins: Vec<(bool, Digest, AgentId, &crate::wire::Join)> = Vec::new();
    for (sender, kind, turn) in messages.turns() {
        if kind != PayloadKind::Join {
            continue;
        }
        if let Turn::One(message) = turn {
            if let Payload::Join(join) = message.payload() {
                if previous.is_active(&sender) && join.restarted {
                    if let Some(member) = next.members.get_mut(&sender) {
                        offences.restarted.insert(sender, job_restarted(member));
                    }
                    continue;
                }
                if !previous.may_join(&sender) {
                    continue;
                }
                if founders.is_some_and(|f| !f.contains(&sender) || join.founders != *f) {
                    continue;
                }
                let newcomer = !previous.members.contains_key(&sender);
                let order = Digest::of(
                    b"slotmesh/admission/v1",
                    &[&round.to_le_bytes(), &beacon.0, &sender.0],
                );
                joins.push((newcomer, order, sender, join));
            }
        }
    }
    joins.sort_by_key(|a| (a.0, a.1));
    if round > 0 {
        joins.truncate(admission_limit(active.len()));
    }
    // The absence limit: the largest a founder names (whatever the order), or the default.
    let mut named_limit = 0;
    for (newcomer, _, sender, join) in joins {
        if newcomer {
            next.members
                .insert(sender, MemberRecord::new(join.name.clone(), round + 1));
            outcome.joined.push(sender);
            named_limit = named_limit.max(join.absence_limit);
        } else if let Some(member) = next.members.get_mut(&sender) {
            member.status = MemberStatus::Active;
            member.left_round = None;
            member.consecutive_misses = 0;
            member.streak = 0;
            member.rejoins += 1;
            if join.restarted {
                let severity = job_restarted(member);
                member.trust = after_offences(member.trust, severity);
            }
            outcome.rejoined.push(sender);
        }
    }
    if let Some(founders) = founders {
        next.founders = founders.iter().copied().collect();
    }
    if round == 0 && named_limit > 0 {
        next.absence_limit = named_limit;
    }

    // 3. Leaves, claims and sealed bids of the active members.
    let mut bids: BTreeMap<AgentId, OpenBid> = BTreeMap::new();
    // Every active member's ranked claim this round (step 6 names beneficiaries by it).
    let mut claims: BTreeMap<AgentId, u32> = BTreeMap::new();
    let mut leaving: BTreeSet<AgentId> = BTreeSet::new();
    for id in &active {
        let Some(member) = next.members.get_mut(id) else {
            continue;
        };
        if let Some(leave) = messages.one(id, PayloadKind::Leave) {
            if let Payload::Leave(leave) = leave.payload() {
                member.status = match leave.reason {
                    LeaveReason::Completed => MemberStatus::Completed,
                    LeaveReason::Departed => MemberStatus::Departed,
                };
                member.left_round = Some(round);
                if leave.reason == LeaveReason::Completed {
                    if let Some(lie) = completion_lie(member) {
                        offences.push(*id, lie);
                    }
                }
                leaving.insert(*id);
                outcome.left.push((*id, leave.reason));
                continue;
            }
        }
        // The claim of a member whose job restart counts this round is its lost job's (sent
        // before the crash, or by a process that never knew of it): it is neither checked
        // nor ranked, so a claim of the old job never becomes the new job's first.
        let claim = messages
            .one(id, PayloadKind::Claim)
            .filter(|_| !offences.restarted.contains_key(id))
            .and_then(payload_claim)
            .map(|claimed| {
                let (remaining, lie) = check_claim(member, round, claimed);
                if let Some(lie) = lie {
                    offences.push(*id, lie);
                }
                remaining
            });
        if let Some(remaining) = claim {
            claims.insert(*id, remaining);
        }
        let commit = match messages
            .one(id, PayloadKind::Commit)
            .map(SignedMessage::payload)
        {
            Some(Payload::Commit(commit)) if commit.deposit <= member.credits => Some(*commit),
            _ => None,
        };
        let reveal = messages.reveal(id);
        match (commit, reveal) {
            (Some(commit), Some(reveal)) => match check_reveal(round, *id, &commit, &reveal) {
                RevealCheck::Valid => {
                    if let Some(claim) = claim {
                        bids.insert(
                            *id,
                            OpenBid {
                                claim,
                                bid: reveal.bid,
                                support: reveal.support,
                            },
                        );
                    }
                }
                RevealCheck::Mismatch | RevealCheck::OverDeposit => {
                    member.credits -= commit.deposit;
                    offences.push(*id, Offence::BadReveal);
                }
            },
            (Some(commit), None) => {
                member.credits -= commit.deposit;
                offences.push(*id, Offence::Withheld);
            }
            (None, _) => {}
        }
    }

    // 4. Coalitions proposed in the negotiation turn form when every partner accepts.
    for proposer in &active {
        let Some(Payload::Negotiation(turn)) = messages
            .one(proposer, PayloadKind::Negotiation)
            .map(SignedMessage::payload)
        else {
            continue;
        };
        let Some(proposal) = &turn.proposal else {
            continue;
        };
        let id = CoalitionId {
            round,
            proposer: *proposer,
        };
        let mut members: BTreeSet<AgentId> = proposal.partners.iter().copied().collect();
        members.insert(*proposer);
        let all_accept = proposal.partners.iter().all(|partner| {
            matches!(
                messages.one(partner, PayloadKind::CoalitionAcceptance).map(SignedMessage::payload),
                Some(Payload::CoalitionAcceptance(acceptance)) if acceptance.accepted.contains(&id)
            )
        });
        let all_free = members.iter().all(|m| {
            !leaving.contains(m)
                && !equivocators.contains(m)
                && next.members.get(m).is_some_and(|r| {
                    r.is_active() && r.coalition.is_none() && r.joined_round <= round
                })
        });
        if all_accept && all_free {
            for m in &members {
                if let Some(record) = next.members.get_mut(m) {
                    record.coalition = Some(id);
                }
            }
            next.coalitions.insert(
                id,
                Coalition {
                    id,
                    members,
                    pledge: proposal.pledge,
                    terms: proposal.terms.clone(),
                    last_round: round + u64::from(proposal.duration_rounds) - 1,
                    rounds_without_win: 0,
                },
            );
            outcome.coalitions_formed.push(id);
        }
    }

    // 5. Candidates: valid bids, with support from partners of a coalition in force.
    for id in &equivocators {
        bids.remove(id);
    }
    let coalition_of = |id: &AgentId| next.members.get(id).and_then(|m| m.coalition);
    let mut received: BTreeMap<AgentId, u64> = BTreeMap::new();
    let mut given: BTreeMap<AgentId, (AgentId, u64)> = BTreeMap::new();
    for (id, open) in &bids {
        if let Some(support) = open.support {
            let same = coalition_of(id).is_some()
                && coalition_of(id) == coalition_of(&support.beneficiary);
            if same && bids.contains_key(&support.beneficiary) {
                *received.entry(support.beneficiary).or_default() += support.amount;
                given.insert(*id, (support.beneficiary, support.amount));
            }
        }
    }
    // A proven liar whose trust is below a newcomer's, this round's offences included, has
    // no credible claim: it is ranked on the longest claim of the round, behind every member
    // in good standing with a claim as long, until honest rounds repair its trust. (Other
    // offences, and a job restart, cost power, not the credibility of a claim, except that
    // they can take a liar's trust below the line again.)
    // "The longest claim" is the longest among the candidates in good standing: a member
    // that makes no valid bid, or one not believed itself, cannot set it.
    let trust_now = |id: &AgentId| {
        let record = previous.members.get(id);
        offences.trust_now(id, record.map_or(0, |m| m.trust))
    };
    let not_believed: BTreeSet<AgentId> = active
        .iter()
        .filter(|id| {
            let liar = offences.lied(id)
                || previous
                    .members
                    .get(*id)
                    .is_some_and(|m| m.offences.lies > 0);
            liar && trust_now(id) < INITIAL_TRUST
        })
        .copied()
        .collect();
    let longest = bids
        .iter()
        .filter(|(id, _)| !not_believed.contains(*id))
        .map(|(_, open)| open.claim)
        .max()
        .unwrap_or(0);
    let mut ranking: Vec<Candidate> = bids
        .iter()
        .map(|(id, open)| {
            let trust = trust_now(id);
            Candidate {
                id: *id,
                claim: if not_believed.contains(id) {
                    open.claim.max(longest)
                } else {
                    open.claim
                },
                bid: open.bid,
                support: received.get(id).copied().unwrap_or(0),
                power: trust_multiplier(trust),
            }
        })
        .collect();
    ranking.sort_by(|a, b| rank(round, a, b));

    // 6. Pledges: each coalition backs the member with the shortest ranked claim, from the
    //    round after it formed (its members bid before they could know it formed). The claims
    //    are known before anyone commits, so every member can tell whom it backs; when that
    //    member then makes no valid bid, or a member's job restarted this round (its ranked
    //    claim changed after the others read the record), or a member equivocated or left
    //    (its partners may have read a claim the rule does not rank), or a member is a liar
    //    not believed (step 5 ranks it on another claim than its own), nothing is owed.
    let mut broken: BTreeSet<CoalitionId> = BTreeSet::new();
    for (cid, coalition) in next.coalitions.iter().filter(|(cid, _)| cid.round < round) {
        let unsettled = |m: &AgentId| {
            offences.restarted.contains_key(m)
                || equivocators.contains(m)
                || leaving.contains(m)
                || not_believed.contains(m)
        };
        if coalition.members.iter().any(unsettled) {
            continue;
        }
        let beneficiary = coalition
            .members
            .iter()
            .filter_map(|m| claims.get(m).map(|c| (*c, *m)))
            .min()
            .map(|(_, m)| m);
        let Some(beneficiary) = beneficiary.filter(|b| bids.contains_key(b)) else {
            continue;
        };
        for member in coalition
            .members
            .iter()
            .filter(|m| **m != beneficiary && bids.contains_key(*m))
        {
            let credits = previous.members.get(member).map_or(0, |m| m.credits);
            let owed = coalition.pledge.min(credits);
            let paid = match given.get(member) {
                Some((to, amount)) if *to == beneficiary => *amount,
                _ => 0,
            };
            if paid < owed {
                offences.push(*member, Offence::BrokenPledge);
                broken.insert(*cid);
            }
        }
    }

    // 7. The winner executes the slot and pays the second price: its own bid first, then
    //    its supporters in id order.
    if let Some(winner) = ranking.first() {
        let price = second_price(winner, ranking.get(1));
        let own = price.min(winner.bid);
        let mut rest = price - own;
        if let Some(record) = next.members.get_mut(&winner.id) {
            record.credits = record.credits.saturating_sub(own);
            record.used_slots += 1;
        }
        for (supporter, (to, amount)) in &given {
            if *to != winner.id || rest == 0 {
                continue;
            }
            let share = rest.min(*amount);
            rest -= share;
            if let Some(record) = next.members.get_mut(supporter) {
                record.credits = record.credits.saturating_sub(share);
            }
        }
        outcome.winner = Some(winner.id);
        outcome.price = price;
    }
    outcome.ranking = ranking;

    // 8. Trust, misses and failures, income.
    for id in &active {
        let Some(member) = next.members.get_mut(id) else {
            continue;
        };
        let severity = offences.severity(id);
        let found = offences.found.remove(id).unwrap_or_default();
        for offence in &found {
            let counts = &mut member.offences;
            match offence {
                Offence::Lie { .. } => counts.lies += 1,
                Offence::Withheld => counts.withheld += 1,
                Offence::BadReveal => counts.bad_reveals += 1,
                Offence::Equivocation => counts.equivocations += 1,
                Offence::BrokenPledge => counts.broken_pledges += 1,
                Offence::Contradiction => counts.contradictions += 1,
            }
            outcome.offences.push((*id, *offence));
        }
        let took_part = bids.contains_key(id);
        member.streak = if took_part {
            member.streak.saturating_add(1)
        } else {
            0
        };
        if severity > 0 {
            member.trust = after_offences(member.trust, severity);
        } else if took_part {
            member.trust = after_honest_round(member.trust, member.offences.lies);
        }
        if leaving.contains(id) {
            continue;
        }
        if took_part {
            member.consecutive_misses = 0;
        } else {
            member.consecutive_misses = member.consecutive_misses.saturating_add(1);
            outcome.missed.push(*id);
            if member.consecutive_misses >= SUSPEND_AFTER_MISSES {
                member.status = MemberStatus::Suspended;
                member.left_round = Some(round);
                outcome.suspended.push(*id);
                continue;
            }
        }
        member.credits = member.credits.saturating_add(INCOME_PER_ROUND);
    }

    // 8b. Suspended members away longer than the absence limit are removed for good.
    for (id, member) in next.members.iter_mut() {
        let away_since = member.left_round.unwrap_or(round);
        if member.is_suspended() && round.saturating_sub(away_since) >= previous.absence_limit {
            member.status = MemberStatus::Removed;
            outcome.removed.push(*id);
        }
    }

    // 9. Coalitions end on expiry, a member gone, deadlock or a broken pledge.
    let winner = outcome.winner;
    let mut dissolved: Vec<(CoalitionId, DissolveReason)> = Vec::new();
    for (cid, coalition) in next.coalitions.iter_mut() {
        if winner.is_some_and(|w| coalition.members.contains(&w)) {
            coalition.rounds_without_win = 0;
        } else {
            coalition.rounds_without_win = coalition.rounds_without_win.saturating_add(1);
        }
        let gone = coalition
            .members
            .iter()
            .any(|m| !next.members.get(m).is_some_and(MemberRecord::is_active));
        let reason = if gone {
            Some(DissolveReason::MemberGone)
        } else if broken.contains(cid) {
            Some(DissolveReason::PledgeBroken)
        } else if coalition.rounds_without_win >= DEADLOCK_ROUNDS {
            Some(DissolveReason::Deadlock)
        } else if round >= coalition.last_round {
            Some(DissolveReason::Expired)
        } else {
            None
        };
        if let Some(reason) = reason {
            dissolved.push((*cid, reason));
        }
    }
    for (cid, reason) in dissolved {
        if let Some(coalition) = next.coalitions.remove(&cid) {
            for m in &coalition.members {
                if let Some(record) = next.members.get_mut(m) {
                    record.coalition = None;
                }
            }
        }
        outcome.coalitions_dissolved.push((cid, reason));
    }

    // 10. The voters of the next round, who remember it.
    next.voters = next_voters(previous, &next, &outcome.joined);
    for id in &next.voters {
        if let Some(member) = next.members.get_mut(id) {
            member.last_voted = Some(round + 1);
        }
    }

    next.next_round = round + 1;
    next.previous = previous.digest();
    next.last_inputs = messages.inputs_digest();
    next.last_winner = winner;
    (next, outcome)
}
