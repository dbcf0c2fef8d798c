//! Which members a phase waits for (the fast path): the pace of a round is set by the members
//! that take part. A phase ends as soon as every member it waits for has spoken, or at its
//! timeout. Pacing is local: it decides when this replica moves on, never what the round's
//! inputs are (the seal fixes those).

use super::Engine;
use crate::ids::AgentId;
use crate::wire::PayloadKind;
use std::collections::BTreeSet;

/// The turns a phase waits for, one kind per phase before the seal.
const TURNS: [PayloadKind; 4] = [
    PayloadKind::Claim,
    PayloadKind::Negotiation,
    PayloadKind::CoalitionAcceptance,
    PayloadKind::Commit,
];

/// A member that missed this many rounds in a row is not waited for (one miss is not enough:
/// a member that missed one round because a message was lost must get back in, and a round
/// decided without waiting for it could leave it behind again).
const SKIPPED_AFTER_MISSES: u8 = 2;

/// Turns a member may skip without missing the round.
const OPTIONAL: [PayloadKind; 2] = [PayloadKind::Negotiation, PayloadKind::CoalitionAcceptance];

/// A member that skipped an optional turn `s` rounds in a row is waited for in it again only
/// every `2^min(s, MAX_BACKOFF)` rounds: often enough to let it back in (an answer that comes
/// after its phase ended is refused, so a member never waited for could never speak again),
/// rarely enough that skipping costs the swarm little.
const MAX_BACKOFF: u32 = 5;

fn optional(kind: PayloadKind) -> bool {
    OPTIONAL.contains(&kind)
}

impl Engine {
    /// At the start of a round: whom each phase waits for. Claims and commits: the active
    /// members that did not miss the last [`SKIPPED_AFTER_MISSES`] rounds (one that did is
    /// waited for its commit once it claims in this one), or every active member when none
    /// is left (with no active member at all, the round's suspended voters, whose rejoins are
    /// their part). Negotiation and coalition turns: those of them that did
    /// not skip the turn lately ([`MAX_BACKOFF`]). Then what is already held for the round
    /// counts.
    pub(super) fn recount_spoken(&mut self) {
        let round = self.round();
        let ledger = std::sync::Arc::clone(&self.ledger);
        let present: BTreeSet<AgentId> = ledger
            .active_members()
            .filter(|(_, m)| m.consecutive_misses < SKIPPED_AFTER_MISSES)
            .map(|(id, _)| *id)
            .collect();
        let active: BTreeSet<AgentId> = ledger.active_members().map(|(id, _)| *id).collect();
        let required = if !present.is_empty() {
            present
        } else if !active.is_empty() {
            active
        } else {
            // No active member: the round waits for its (suspended) voters' rejoins.
            ledger.voters_for(&ledger)
        };
        self.awaited.clear();
        for kind in TURNS {
            let waited = required
                .iter()
                .filter(|id| {
                    let skips = self.skips.get(&(**id, kind)).copied().unwrap_or(0);
                    let period = 1u64 << skips.min(MAX_BACKOFF);
                    !optional(kind) || round.is_multiple_of(period)
                })
                .copied()
                .collect();
            self.awaited.insert(kind, waited);
        }
        self.joins_heard = 0;
        let heard: Vec<(AgentId, PayloadKind)> = self
            .inbox
            .get(&round)
            .map(|messages| messages.turns().map(|(s, k, _)| (s, k)).collect())
            .unwrap_or_default();
        for (sender, kind) in heard {
            if kind == PayloadKind::Join || ledger.is_active(&sender) {
                self.heard(sender, kind);
            }
        }
    }

    /// Before round `round` starts: counts, from the messages held for the round before, the
    /// rounds in a row each active member skipped each optional turn (the founding round has
    /// none to skip).
    pub(super) fn count_skips(&mut self, round: u64) {
        let last = round.saturating_sub(1);
        if last == 0 {
            return;
        }
        let ledger = std::sync::Arc::clone(&self.ledger);
        let held = self.inbox.get(&last);
        let mut skips = std::collections::BTreeMap::new();
        for (id, _) in ledger.active_members() {
            for kind in OPTIONAL {
                let spoke = held.is_some_and(|m| m.has_spoken(id, kind));
                let before = self.skips.get(&(*id, kind)).copied().unwrap_or(0);
                skips.insert((*id, kind), if spoke { 0 } else { before + 1 });
            }
        }
        self.skips = skips;
    }

    /// Notes that `sender` (an active member, or anyone for a join) spoke for `kind` in the
    /// current round. A member that claims is waited for its commit, and one that leaves is
    /// waited for no more.
    pub(super) fn heard(&mut self, sender: AgentId, kind: PayloadKind) {
        match kind {
            PayloadKind::Join => {
                self.joins_heard += 1;
                // A suspended voter's rejoin is all it can say in a round without members.
                if !self.ledger.is_active(&sender) {
                    for waited in self.awaited.values_mut() {
                        waited.remove(&sender);
                    }
                }
            }
            PayloadKind::Leave => {
                for waited in self.awaited.values_mut() {
                    waited.remove(&sender);
                }
            }
            _ => {
                if let Some(waited) = self.awaited.get_mut(&kind) {
                    waited.remove(&sender);
                }
                if kind == PayloadKind::Claim {
                    let round = self.round();
                    let spoke = |kind| {
                        self.inbox
                            .get(&round)
                            .is_some_and(|m| m.has_spoken(&sender, kind))
                    };
                    if !spoke(PayloadKind::Commit) && !spoke(PayloadKind::Leave) {
                        self.awaited
                            .entry(PayloadKind::Commit)
                            .or_default()
                            .insert(sender);
                    }
                }
            }
        }
    }

    /// Whether every member the current phase waits for has spoken for `kind`.
    pub(super) fn all_spoken(&self, kind: PayloadKind) -> bool {
        self.awaited.get(&kind).is_none_or(BTreeSet::is_empty)
    }
}
