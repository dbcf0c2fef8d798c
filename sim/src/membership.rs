//! The simulator's membership invariants: the voters of consecutive rounds overlap in a
//! majority and newcomers vote only once they earned it (checked at every final round), and
//! every honest agent that comes back completes (checked at the end of a run).

use crate::{Life, Sim};
use slotmesh_proto::{voter_additions, AgentId, Finalized, MemberStatus, VOTING_STREAK};
use std::collections::BTreeSet;

/// What the membership checks keep between rounds, and the figures they report.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// The voters of the round after the latest one checked, and that round.
    next_voters: Option<(u64, BTreeSet<AgentId>)>,
    /// Suspensions in the agreed record.
    pub(crate) suspensions: u64,
    /// Rejoins in the agreed record.
    pub(crate) rejoins: u64,
}

impl Sim {
    /// At the first agreement on `round`: the voters of the next round keep a majority of
    /// this round's (fewer than half are new, or one), and each new one earned the vote.
    pub(crate) fn check_membership(&mut self, round: u64, finalized: &Finalized) {
        let outcome = &finalized.outcome;
        self.membership.suspensions += outcome.suspended.len() as u64;
        self.membership.rejoins += outcome.rejoined.len() as u64;
        let state = &finalized.state;
        let next = state.voters_for(state);
        let anyone_active = state.active_members().next().is_some();
        if let Some((checked, voters)) = &self.membership.next_voters {
            if *checked == round && anyone_active {
                let kept = next.intersection(voters).count();
                let added: Vec<&AgentId> = next.difference(voters).collect();
                let unearned = added.iter().find(|id| {
                    state
                        .members
                        .get(id)
                        .is_none_or(|m| m.streak < VOTING_STREAK)
                });
                if kept > 0 && added.len() > voter_additions(kept) {
                    let what = format!(
                        "round {}: {} new voters beside {kept} kept",
                        round + 1,
                        added.len()
                    );
                    self.violation(what);
                } else if let (true, Some(id)) = (kept > 0, unearned) {
                    let what = format!("round {}: {} votes unearned", round + 1, id.short());
                    self.violation(what);
                }
            }
        }
        self.membership.next_voters = Some((round + 1, next));
    }

    /// The membership invariant, at the end of a run that was neither stalled nor cut short:
    /// every agent that is not byzantine and not crashed for good (restarted, paused or cut
    /// off agents all come back) completed its job or left by its own choice. A member
    /// suspended while away that never rejoined, or was removed, breaks it.
    pub(crate) fn check_everyone_back_completed(&mut self) {
        if self.stalled || self.truncated || self.violation_count > 0 {
            return;
        }
        let Some(state) = self.last_state.clone() else {
            return;
        };
        let stranded: Vec<String> = self
            .agents
            .iter()
            .filter(|a| a.spec.byzantine.is_none() && a.life != Life::Crashed)
            .filter_map(|a| {
                let status = state.members.get(&a.id).map(|m| m.status);
                match status {
                    Some(MemberStatus::Completed | MemberStatus::Departed) => None,
                    other => Some(format!("{} ({other:?})", a.spec.name)),
                }
            })
            .collect();
        if !stranded.is_empty() {
            self.violation(format!(
                "honest agents that came back did not complete: {}",
                stranded.join(", ")
            ));
        }
    }
}
