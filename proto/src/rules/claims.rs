//! Step 3 of the rule, a member's claim against its record: the ranked claim, the lie a
//! claim or a completion proves, a restarted job; and what the round's offences leave of a
//! member's bid power (step 5) and trust (step 8).

use crate::ids::AgentId;
use crate::state::{ClaimRecord, MemberRecord};
use crate::trust::{after_offences, Offence, CONTRADICTION_SEVERITY, RESTART_SEVERITY};
use std::collections::BTreeMap;

/// The offences proven against members in one round, and the cost of the restarts they
/// declared, gathered by steps 1 to 6 and settled in step 8.
#[derive(Debug, Default)]
pub(super) struct RoundOffences {
    /// Offences by member, in the order they were found.
    pub(super) found: BTreeMap<AgentId, Vec<Offence>>,
    /// Active members whose job restarted, with the severity it costs them.
    pub(super) restarted: BTreeMap<AgentId, u32>,
}

impl RoundOffences {
    /// Records `offence` against `id`.
    pub(super) fn push(&mut self, id: AgentId, offence: Offence) {
        self.found.entry(id).or_default().push(offence);
    }

    /// The halvings member `id` takes this round: its offences' severities plus its restart's.
    pub(super) fn severity(&self, id: &AgentId) -> u32 {
        self.found
            .get(id)
            .map_or(0, |found| found.iter().map(Offence::severity).sum::<u32>())
            + self.restarted.get(id).copied().unwrap_or(0)
    }

    /// Whether a lie of `id` is proven this round.
    pub(super) fn lied(&self, id: &AgentId) -> bool {
        self.found
            .get(id)
            .is_some_and(|found| found.iter().any(|o| matches!(o, Offence::Lie { .. })))
    }

    /// The trust of a member with `trust` at the start of the round, less what this round's
    /// offences (lies, a restart) take: a lie is punished in the round it becomes provable,
    /// not one round late.
    pub(super) fn trust_now(&self, id: &AgentId, trust: u32) -> u32 {
        match self.severity(id) {
            0 => trust,
            severity => after_offences(trust, severity),
        }
    }
}

/// A member's job started over (`Join::restarted`): its next claim is checked afresh, and
/// that costs it trust, returned as a severity (halvings): `RESTART_SEVERITY` times the
/// restarts it has made, capped like a contradiction, and taken like an offence's (no
/// repair for the round). The record cannot tell a job that lost its progress from a claim
/// history a liar wants forgotten: a daemon that restarts once pays one halving, one that
/// "restarts" round after round to claim a single slot again is at the floor in four. The
/// slots its lost job used are charged to its rank as if bought by an understatement: the
/// record cannot tell a job that lost them from a first claim too short whose proof a
/// restart would hide, so a restart costs what it could hide.
pub(super) fn job_restarted(member: &mut MemberRecord) -> u32 {
    member.restarts += 1;
    let lost = member.used_slots.saturating_sub(member.job_start_slots);
    member.bought = member.bought.saturating_add(lost);
    member.job_start_slots = member.used_slots;
    member.last_claim = None;
    RESTART_SEVERITY
        .saturating_mul(member.restarts)
        .min(CONTRADICTION_SEVERITY)
}

/// The lie a member proves by leaving as completed while its record still expects slots.
pub(super) fn completion_lie(member: &MemberRecord) -> Option<Offence> {
    let expected = member.expected_remaining().filter(|e| *e != 0)?;
    Some(Offence::Lie {
        claimed: 0,
        expected,
        earlier: member.offences.lies,
        bought: 0,
    })
}

/// Checks `claimed`, a member's claim in `round`, against its record: keeps the claim its
/// record expects when that is more (a lie never shortens a rank), adds the slots the claim
/// proves were bought with an understatement to the member's debt, and returns the claim it
/// is ranked on ([`MemberRecord::ranked_claim`]) and the lie the claim proves, if any.
pub(super) fn check_claim(
    member: &mut MemberRecord,
    round: u64,
    claimed: u32,
) -> (u32, Option<Offence>) {
    let ranked = member.ranked_claim(claimed);
    let bought = member.bought_by(claimed);
    let lie = member
        .expected_remaining()
        .filter(|expected| i64::from(claimed) != *expected)
        .map(|expected| Offence::Lie {
            claimed,
            expected,
            earlier: member.offences.lies,
            bought,
        });
    // The expectation is set afresh by a first claim or one above it; a claim that follows
    // it (or falls below it) keeps the slots counted from where it was set.
    let anchor_used = match (member.last_claim, member.expected_remaining()) {
        (Some(last), Some(expected)) if i64::from(claimed) <= expected => last.anchor_used,
        _ => member.used_slots,
    };
    member.last_claim = Some(ClaimRecord {
        round,
        remaining: member.kept_claim(claimed),
        used_before: member.used_slots,
        anchor_used,
    });
    member.bought = member.bought.saturating_add(bought);
    (ranked, lie)
}
