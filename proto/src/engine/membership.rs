//! A replica's side of membership: the joins its hosted agents send (a newcomer's join, a
//! suspended member's rejoin, an active member's word that its job restarted), which
//! non-member messages may be inputs in the founding round, and whether a replica whose
//! agents are all suspended still runs a round (docs/PROTOCOL.md §2, §6).

use super::{Engine, Phase};
use crate::envelope::SignedMessage;
use crate::ids::AgentId;
use crate::wire::{Join, Payload};
use std::sync::Arc;

impl Engine {
    /// `agent`'s process restarted and its job started over (a `--exec` daemon on its data
    /// dir): it says so in the record with a signed join (`Join::restarted`), now if it is an
    /// active member, or else once its rejoin made it one, so that its next claim is checked
    /// afresh rather than against the job it lost; it takes no turn until the record counts
    /// the restart. Drain [`Engine::poll_output`] afterwards.
    pub fn job_restarted(&mut self, agent: AgentId) {
        let Some(record) = self.ledger.members.get(&agent) else {
            return;
        };
        let restarts = record.restarts;
        let Some(local) = self.locals.get_mut(&agent) else {
            return;
        };
        local.restart_unrecorded = Some(restarts);
        if self.round() > 0 && self.phase != Phase::Observe {
            self.send_join(agent);
        }
    }

    /// At the start of round `round` (past the founding one): the hosted agents that send a
    /// join in it. Newcomers (unless they asked to leave) and suspended members (even to
    /// leave: only an active member can) ask to join; an active member whose job restarted
    /// says so until the record counts it.
    pub(super) fn joining(&mut self, round: u64) -> Vec<AgentId> {
        if round == 0 {
            return Vec::new();
        }
        let ledger = Arc::clone(&self.ledger);
        for (agent, local) in self.locals.iter_mut() {
            let restarts = ledger.members.get(agent).map_or(0, |m| m.restarts);
            if local.restart_unrecorded.is_some_and(|n| restarts > n) {
                local.restart_unrecorded = None;
            }
        }
        self.locals
            .iter()
            .filter(|(agent, local)| match ledger.members.get(agent) {
                Some(member) if member.is_suspended() => true,
                Some(member) => member.is_active() && local.restart_unrecorded.is_some(),
                None => local.leave_requested.is_none(),
            })
            .map(|(agent, _)| *agent)
            .collect()
    }

    /// Whether a hosted agent is a voter of round `round` (past the founding one): a replica
    /// whose agents are all suspended still runs the round's phases then (when no member is
    /// active, the suspended voters' rejoins bring the swarm back).
    pub(super) fn suspended_voter_hosted(&self, round: u64) -> bool {
        round > 0
            && self
                .tally
                .as_ref()
                .is_some_and(|t| self.locals.keys().any(|agent| t.voters().contains(agent)))
    }

    /// `agent` asks to join in the current round and, past the founding round, in the next
    /// one as well: a newcomer follows a swarm a step behind (it starts a round once it holds
    /// the last one's certificate), so in a fast swarm its join for the current round often
    /// arrives after the round's inputs were sealed, while the members hold a join for the
    /// next round until that round starts.
    pub(super) fn send_join(&mut self, agent: AgentId) {
        let Some(local) = self.locals.get(&agent) else {
            return;
        };
        let name = local.name.clone();
        let rejoin = self.ledger.may_join(&agent);
        // An active member says only that its job restarted, once a round. A member that
        // rejoins never says it: it sends a join ahead for the next round too, and two joins
        // of one round that differ would be an equivocated turn (both void), so it rejoins
        // first and says its restart once active again (silent until the record counts it).
        let restarted = local.restart_unrecorded.is_some() && !rejoin;
        let founding = self.round() == 0;
        let founders = if founding {
            self.config.known_founders.iter().copied().collect()
        } else {
            Vec::new()
        };
        let join = Join {
            name,
            founders,
            absence_limit: if founding {
                self.config.absence_limit
            } else {
                0
            },
            restarted,
        };
        let round = self.round();
        if round > 0 && rejoin {
            if let Some(local) = self.locals.get(&agent) {
                let ahead_join = Payload::Join(join.clone());
                let ahead = local
                    .identity
                    .sign(self.config.swarm, round + 1, ahead_join);
                if ahead.message().validate(&self.config.limits).is_ok() {
                    self.hold(ahead.clone(), false);
                    self.outputs.push_back(super::Output::Send(ahead));
                }
            }
        }
        let _ = self.send(agent, Payload::Join(join));
    }

    /// Whether a message of a non-member may be an input: anything but, in the founding round
    /// of a swarm founded by known keys, a join from another key or that names other
    /// founders (the rule would not admit it; outsiders must not change the digest).
    pub(super) fn founding_join(&self, message: &SignedMessage) -> bool {
        let founders = &self.config.known_founders;
        match message.payload() {
            Payload::Join(join) if message.round() == 0 && !founders.is_empty() => {
                founders.contains(&message.sender()) && join.founders.iter().eq(founders.iter())
            }
            _ => true,
        }
    }
}
