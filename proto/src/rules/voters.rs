//! Step 10 of the rule: who votes in the next round's agreement.

use super::tie_break;
use crate::ids::{AgentId, Digest};
use crate::state::{majority, voter_additions, LedgerState, MemberRecord, VOTING_STREAK};
use std::collections::BTreeSet;

/// The voters of the round after `next` (step 10): those of this round still active, allowed
/// to vote and with a valid bid this round, and those that missed this round only while the
/// others are a majority of them all (if none bid, those still active and allowed), plus
/// at most [`voter_additions`] members that earned the vote ([`VOTING_STREAK`] rounds in a row
/// of full participation), longest streak first, then by the round's tie-break hash. The
/// founding round's voters are the founders it admits. With no voter of this round left at
/// all, every member that earned the vote.
pub(super) fn next_voters(
    previous: &LedgerState,
    next: &LedgerState,
    admitted: &[AgentId],
) -> BTreeSet<AgentId> {
    let round = previous.next_round;
    if round == 0 {
        return admitted.iter().copied().collect();
    }
    let allowed = |id: &AgentId| next.members.get(id).is_some_and(MemberRecord::may_vote);
    let current = previous.voters_for(previous);
    let of_current = |keep: &dyn Fn(&MemberRecord) -> bool| -> BTreeSet<AgentId> {
        current
            .iter()
            .filter(|id| allowed(id) && next.members.get(*id).is_some_and(keep))
            .copied()
            .collect()
    };
    let mut kept = of_current(&|m| m.streak > 0);
    // A voter that missed this round only stays while those that took part are a majority
    // of the voters kept: a round whose proposer lacked its turns (a lost message) does not
    // take its vote, and keeping it never makes the next majority harder for those that
    // took part to reach.
    let missed_once = of_current(&|m| m.streak == 0 && m.consecutive_misses == 1);
    if !kept.is_empty() && kept.len() >= majority(kept.len() + missed_once.len()) {
        kept.extend(missed_once);
    }
    if kept.is_empty() {
        kept = current.iter().filter(|id| allowed(id)).copied().collect();
    }
    let mut earned: Vec<(std::cmp::Reverse<u32>, Digest, AgentId)> = next
        .members
        .iter()
        .filter(|(id, m)| m.may_vote() && m.streak >= VOTING_STREAK && !kept.contains(*id))
        .map(|(id, m)| (std::cmp::Reverse(m.streak), tie_break(round, id), *id))
        .collect();
    earned.sort();
    let room = if kept.is_empty() {
        earned.len()
    } else {
        voter_additions(kept.len())
    };
    kept.extend(earned.into_iter().take(room).map(|(_, _, id)| id));
    kept
}
