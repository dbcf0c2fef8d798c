//! Membership through the rule's public API: a suspended member keeps its record and rejoins
//! with its key; a long absence removes it for good; a restarted job is said in the record;
//! voting rights are earned and added a few a round, so a join flood never outvotes the
//! members that were there; admissions per round are bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use slotmesh_proto::{
    admission_limit, majority, resolve_round, voter_additions, Identity, Join, LedgerState,
    MemberStatus, Payload, RoundMessages, SUSPEND_AFTER_MISSES, VOTING_STREAK,
};
use std::collections::BTreeSet;

fn agents(range: std::ops::Range<u8>) -> Vec<Identity> {
    range.map(agent).collect()
}

/// A round in which `speaking` claim `remaining` and bid 1, and `joining` send a join.
fn round(
    state: &LedgerState,
    speaking: &[&Identity],
    joining: &[(&Identity, bool)],
) -> (LedgerState, slotmesh_proto::RoundOutcome) {
    let r = state.next_round;
    let mut messages = RoundMessages::new(r);
    for a in speaking {
        // A truthful claim: whatever the record expects (or 50 for a first claim).
        let expected = state.members.get(&a.id()).and_then(|m| {
            m.last_claim
                .map(|c| c.remaining - (m.used_slots - c.used_before))
        });
        messages.insert(claim(a, r, expected.unwrap_or(50).max(1)));
        let (commit, reveal) = sealed_bid(a, r, 1, None, 1);
        messages.insert(commit);
        messages.insert(reveal);
    }
    for (a, restarted) in joining {
        messages.insert(sign(
            a,
            r,
            Payload::Join(Join {
                name: "j".into(),
                founders: Vec::new(),
                absence_limit: 0,
                restarted: *restarted,
            }),
        ));
    }
    resolve_round(state, &messages)
}

#[test]
fn a_suspended_member_keeps_its_record_and_rejoins_with_its_key() {
    let all = agents(0..3);
    let mut state = founded(&all);
    for _ in 0..3 {
        state = round(&state, &[&all[0], &all[1], &all[2]], &[]).0;
    }
    let before = state.members[&all[2].id()].clone();
    let mut suspended_in = None;
    for _ in 0..SUSPEND_AFTER_MISSES {
        let (next, outcome) = round(&state, &[&all[0], &all[1]], &[]);
        if outcome.suspended.contains(&all[2].id()) {
            suspended_in = Some(state.next_round);
        }
        state = next;
    }
    let away = state.members[&all[2].id()].clone();
    assert_eq!(away.status, MemberStatus::Suspended);
    assert!(suspended_in.is_some());
    assert!(!state.voters_for(&state).contains(&all[2].id()));
    // Its record stands: trust, credits (no income while away), claims, slots used.
    assert_eq!(away.trust, before.trust, "a crash is not an offence");
    assert_eq!(away.offences.total(), 0);
    assert_eq!(away.used_slots, before.used_slots);
    assert_eq!(away.last_claim, before.last_claim);
    // A bid while suspended is ignored; a join from its key brings it back.
    let (next, outcome) = round(&state, &[&all[0], &all[1], &all[2]], &[(&all[2], false)]);
    assert_eq!(outcome.rejoined, vec![all[2].id()]);
    assert!(outcome.ranking.iter().all(|c| c.id != all[2].id()));
    state = next;
    let back = &state.members[&all[2].id()];
    assert_eq!(back.status, MemberStatus::Active);
    assert_eq!(
        (back.rejoins, back.streak, back.consecutive_misses),
        (1, 0, 0)
    );
    assert_eq!(back.credits, away.credits);
    // It bids again at once, truthfully against its old claim, and votes after its streak.
    for k in 1..=VOTING_STREAK {
        let (next, outcome) = round(&state, &[&all[0], &all[1], &all[2]], &[]);
        assert!(outcome.ranking.iter().any(|c| c.id == all[2].id()));
        assert!(outcome.offences.is_empty(), "{:?}", outcome.offences);
        state = next;
        let votes = state.voters_for(&state).contains(&all[2].id());
        assert_eq!(votes, k >= VOTING_STREAK, "after {k} full rounds");
    }
}

#[test]
fn a_long_absence_removes_a_member_for_good() {
    let all = agents(0..3);
    let mut state = founded(&all);
    state.absence_limit = 4;
    for _ in 0..(u64::from(SUSPEND_AFTER_MISSES) + 3) {
        state = round(&state, &[&all[0], &all[1]], &[]).0;
    }
    assert_eq!(state.members[&all[2].id()].status, MemberStatus::Suspended);
    let (next, outcome) = round(&state, &[&all[0], &all[1]], &[]);
    assert_eq!(outcome.removed, vec![all[2].id()]);
    state = next;
    assert_eq!(state.members[&all[2].id()].status, MemberStatus::Removed);
    let (next, outcome) = round(&state, &[&all[0], &all[1]], &[(&all[2], false)]);
    assert!(outcome.rejoined.is_empty() && outcome.joined.is_empty());
    assert_eq!(next.members[&all[2].id()].status, MemberStatus::Removed);
}

#[test]
fn the_founders_choose_the_absence_limit() {
    let all = agents(0..3);
    let mut messages = RoundMessages::new(0);
    for (i, a) in all.iter().enumerate() {
        messages.insert(sign(
            a,
            0,
            Payload::Join(Join {
                name: format!("f{i}"),
                founders: Vec::new(),
                absence_limit: 20 + i as u64,
                restarted: false,
            }),
        ));
    }
    let state = resolve_round(&LedgerState::genesis(swarm()), &messages).0;
    assert_eq!(state.absence_limit, 22, "the largest the founders name");
}

#[test]
fn a_restarted_job_is_said_in_the_record_and_its_next_claim_is_not_a_lie() {
    let all = agents(0..3);
    let mut state = founded(&all);
    state = round(&state, &[&all[0], &all[1], &all[2]], &[]).0;
    // Agent 2's job started over: it claims its whole job again, 50 → 80, with a restart.
    let r = state.next_round;
    let mut messages = RoundMessages::new(r);
    for a in &all[..2] {
        let expected = state.members[&a.id()].last_claim.unwrap().remaining
            - state.members[&a.id()].used_slots;
        messages.insert(claim(a, r, expected.max(1)));
    }
    messages.insert(claim(&all[2], r, 80));
    messages.insert(sign(
        &all[2],
        r,
        Payload::Join(Join {
            name: "c".into(),
            founders: Vec::new(),
            absence_limit: 0,
            restarted: true,
        }),
    ));
    assert!(state.consumes(
        messages
            .one(&all[2].id(), slotmesh_proto::PayloadKind::Join)
            .unwrap()
    ));
    let (next, outcome) = resolve_round(&state, &messages);
    assert!(outcome.offences.is_empty(), "{:?}", outcome.offences);
    assert_eq!(next.members[&all[2].id()].restarts, 1);
    // Without the restart, the same claim is a lie.
    let mut messages = RoundMessages::new(r);
    messages.insert(claim(&all[2], r, 80));
    let (_, outcome) = resolve_round(&state, &messages);
    assert_eq!(outcome.offences.len(), 1);
    // A plain join from an active member changes nothing and is not an input.
    let plain = join(&all[2], r, "c");
    assert!(!state.consumes(&plain));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `members` founders, then `flood` fresh keys joining at once, all taking full part from
    /// then on: each round admits at most `admission_limit`, new voters earned the vote and
    /// are at most `voter_additions` of the kept ones, and the founders stay voters.
    #[test]
    fn a_join_flood_never_outvotes_the_members(members in 1u8..6, flood in 1u8..60, rounds in 4usize..14) {
        let founders = agents(0..members);
        let newcomers = agents(members..members + flood);
        let mut state = founded(&founders);
        let mut voters = state.voters_for(&state);
        let mut joined_at = std::collections::BTreeMap::new();
        for step in 0..rounds {
            let speaking: Vec<&Identity> = founders
                .iter()
                .chain(&newcomers)
                .filter(|a| state.is_active(&a.id()))
                .collect();
            let joining: Vec<(&Identity, bool)> = newcomers
                .iter()
                .filter(|a| state.may_join(&a.id()))
                .map(|a| (a, false))
                .collect();
            let active = state.active_members().count();
            let (next, outcome) = round(&state, &speaking, &joining);
            prop_assert!(outcome.joined.len() <= admission_limit(active));
            for id in &outcome.joined {
                joined_at.insert(*id, step);
            }
            let next_voters = next.voters_for(&next);
            let kept: BTreeSet<_> = next_voters.intersection(&voters).copied().collect();
            let added: Vec<_> = next_voters.difference(&voters).copied().collect();
            prop_assert!(!kept.is_empty());
            prop_assert!(added.len() <= voter_additions(kept.len()), "{} added to {}", added.len(), kept.len());
            // The voters added in a round are never a majority of the next round's voters.
            prop_assert!(added.len() < majority(next_voters.len()));
            for id in &added {
                prop_assert!(next.members[id].streak >= VOTING_STREAK);
            }
            for f in &founders {
                prop_assert!(next_voters.contains(&f.id()), "founder dropped");
            }
            // A newcomer votes only from the third round after its admission.
            for id in next_voters.iter().filter_map(|id| joined_at.get(id)) {
                prop_assert!(step >= id + usize::try_from(VOTING_STREAK).unwrap());
            }
            voters = next_voters;
            state = next;
        }
    }
}
