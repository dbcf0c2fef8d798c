//! The slot-resolution rule through the public API: determinism under permutation,
//! commit–reveal and equivocation evidence, no ghosts, trust bounds, SRPT, coalitions and
//! the second-price payment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use slotmesh_proto::is_equivocation;
use slotmesh_proto::*;
use slotmesh_proto::{
    resolve_round, DissolveReason, Identity, LedgerState, MemberStatus, Payload, RoundMessages,
    SignedMessage,
};
use slotmesh_proto::{Offence, INITIAL_TRUST, PPM, TRUST_FLOOR};
use slotmesh_proto::{INCOME_PER_ROUND, INITIAL_CREDITS, SUSPEND_AFTER_MISSES};

fn agents(n: usize) -> Vec<Identity> {
    (0..n as u8).map(agent).collect()
}

/// A messy round: truthful bids, a liar, an equivocator, a bad reveal, a withholder, a
/// coalition with support, a newcomer and a leaver.
fn messy_round(state: &LedgerState, all: &[Identity], newcomer: &Identity) -> Vec<SignedMessage> {
    let r = state.next_round;
    let mut out = vec![join(newcomer, r, "late")];
    for (i, a) in all.iter().enumerate() {
        match i % 7 {
            0 => out.push(leave(a, r)),
            1 => {
                out.push(claim(a, r, 2));
                out.push(claim(a, r, 3)); // equivocation
                let (c, v) = sealed_bid(a, r, 5, None, 5);
                out.extend([c, v]);
            }
            2 => {
                out.push(claim(a, r, 4));
                let (c, _) = sealed_bid(a, r, 9, None, 9);
                let (_, v) = sealed_bid(a, r, 8, None, 9); // does not open the commit
                out.extend([c, v]);
            }
            3 => {
                out.push(claim(a, r, 1));
                out.push(sealed_bid(a, r, 50, None, 60).0); // never revealed
            }
            4 => {
                let partner = &all[(i + 1) % all.len()];
                let proposal = CoalitionProposal {
                    partners: vec![partner.id()],
                    terms: "pool".into(),
                    duration_rounds: 2,
                    pledge: 3,
                };
                out.push(sign(
                    a,
                    r,
                    Payload::Negotiation(Negotiation {
                        lines: vec![],
                        proposal: Some(proposal),
                    }),
                ));
                out.push(claim(a, r, 2));
                let (c, v) = sealed_bid(a, r, 4, None, 4);
                out.extend([c, v]);
            }
            5 => {
                let proposer = &all[i - 1];
                let id = CoalitionId {
                    round: r,
                    proposer: proposer.id(),
                };
                out.push(sign(
                    a,
                    r,
                    Payload::CoalitionAcceptance(CoalitionAcceptance { accepted: vec![id] }),
                ));
                out.push(claim(a, r, 6));
                let support = Support {
                    beneficiary: proposer.id(),
                    amount: 3,
                };
                let (c, v) = sealed_bid(a, r, 1, Some(support), 4);
                out.extend([c, v]);
            }
            _ => {
                out.push(claim(a, r, 3));
                let (c, v) = sealed_bid(a, r, 7, None, 7);
                out.extend([c, v]);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_messages_in_any_order_give_the_same_state(n in 2usize..16, seed in any::<u64>(), dup in 0usize..8) {
        let all = agents(n);
        let state = founded(&all);
        let newcomer = agent(200);
        let messages = messy_round(&state, &all, &newcomer);
        let mut shuffled = messages.clone();
        // Deterministic Fisher–Yates from the seed, plus some duplicates.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for i in 0..dup.min(shuffled.len()) {
            shuffled.push(shuffled[i].clone());
        }
        let mut in_order = RoundMessages::new(state.next_round);
        messages.into_iter().for_each(|m| { in_order.insert(m); });
        let mut permuted = RoundMessages::new(state.next_round);
        shuffled.into_iter().for_each(|m| { permuted.insert(m); });
        // The set, its canonical order, its inputs digest and its cache key ignore arrival order.
        prop_assert!(in_order.same_set(&permuted));
        prop_assert_eq!(in_order.set_key(), permuted.set_key());
        prop_assert_eq!(in_order.inputs_digest(), permuted.inputs_digest());
        let ids = |m: &RoundMessages| m.iter().map(|m| m.id()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&in_order), ids(&permuted));
        // As many messages with one of them replaced is another set, with another key.
        let mut swapped = RoundMessages::new(state.next_round);
        in_order.iter().skip(1).for_each(|m| { swapped.insert(m.clone()); });
        swapped.insert(claim(&agent(201), state.next_round, 3));
        prop_assert_eq!(swapped.len(), in_order.len());
        prop_assert!(!swapped.same_set(&in_order));
        prop_assert_ne!(swapped.set_key(), in_order.set_key());
        let (a, outcome_a) = resolve_round(&state, &in_order);
        let (b, outcome_b) = resolve_round(&state, &permuted);
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(outcome_a, outcome_b);
    }

    #[test]
    fn truthful_equal_bids_follow_srpt(bursts in prop::collection::vec(1u32..8, 1..9), bid in 0u64..50) {
        let all = agents(bursts.len());
        let mut state = founded(&all);
        let mut remaining = bursts.clone();
        let bids = vec![bid; all.len()];
        for _ in 0..200 {
            if state.active_members().next().is_none() { break; }
            let before = remaining.clone();
            let claims = remaining.clone();
            let outcome = play_round(&mut state, &all, &mut remaining, &claims, &bids);
            if let Some(w) = outcome.winner {
                let i = all.iter().position(|a| a.id() == w).unwrap();
                let shortest = before.iter().filter(|r| **r > 0).min().copied().unwrap();
                prop_assert_eq!(before[i], shortest, "winner {} had {} left, shortest was {}", i, before[i], shortest);
            }
        }
        prop_assert!(remaining.iter().all(|r| *r == 0), "jobs left: {:?}", remaining);
        prop_assert!(state.members.values().all(|m| m.status == MemberStatus::Completed && m.offences.total() == 0));
    }

    #[test]
    fn trust_and_power_stay_within_bounds(
        steps in prop::collection::vec(0u32..6, 1..200),
        lies in 0u32..20,
    ) {
        let mut t = INITIAL_TRUST;
        for s in steps {
            t = if s == 0 { after_honest_round(t, lies) } else { after_offences(t, s) };
            prop_assert!((TRUST_FLOOR..=PPM).contains(&t));
            let power = trust_multiplier(t);
            prop_assert!((10_000..=1_000_000).contains(&power));
        }
    }

    #[test]
    fn ghosts_never_win(n in 2usize..6, ghost in 0usize..6, quiet in 3usize..6, seed in any::<u64>()) {
        // Agent `ghost` stops talking (crash) and later comes back bidding hugely, without
        // rejoining: suspended, it never wins.
        let all = agents(n);
        let ghost = ghost % n;
        let mut state = founded(&all);
        let mut remaining = vec![50u32; n];
        let mut failed_at = None;
        for step in 0..(quiet + 6) {
            let r = state.next_round;
            let mut msgs = RoundMessages::new(r);
            for (i, a) in all.iter().enumerate() {
                let silent = i == ghost && step < quiet;
                if silent { continue; }
                let bid = if i == ghost { 900 } else { (seed % 7) + i as u64 };
                msgs.insert(claim(a, r, remaining[i]));
                let (c, v) = sealed_bid(a, r, bid, None, bid);
                msgs.insert(c); msgs.insert(v);
            }
            let (next, outcome) = resolve_round(&state, &msgs);
            if outcome.suspended.contains(&all[ghost].id()) { failed_at = Some(step); }
            if failed_at.is_some() {
                prop_assert_ne!(outcome.winner, Some(all[ghost].id()));
            }
            if let Some(w) = outcome.winner { let i = all.iter().position(|a| a.id() == w).unwrap(); remaining[i] -= 1; }
            state = next;
        }
        prop_assert_eq!(failed_at, Some(usize::from(SUSPEND_AFTER_MISSES) - 1));
        prop_assert_eq!(state.members[&all[ghost].id()].status, MemberStatus::Suspended);
    }
}

#[test]
fn departed_and_completed_members_never_win_again() {
    let all = agents(3);
    let mut state = founded(&all);
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    msgs.insert(sign(
        &all[0],
        r,
        Payload::Leave(Leave {
            reason: LeaveReason::Departed,
        }),
    ));
    msgs.insert(leave(&all[1], r));
    for a in &all[2..] {
        msgs.insert(claim(a, r, 3));
        let (c, v) = sealed_bid(a, r, 1, None, 1);
        msgs.insert(c);
        msgs.insert(v);
    }
    state = resolve_round(&state, &msgs).0;
    assert_eq!(state.members[&all[0].id()].status, MemberStatus::Departed);
    assert_eq!(state.members[&all[1].id()].status, MemberStatus::Completed);
    // They come back with enormous bids: ignored.
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    for a in &all {
        msgs.insert(claim(a, r, 1));
        let (c, v) = sealed_bid(a, r, 500, None, 500);
        msgs.insert(c);
        msgs.insert(v);
    }
    let (_, outcome) = resolve_round(&state, &msgs);
    assert_eq!(outcome.winner, Some(all[2].id()));
    assert_eq!(outcome.ranking.len(), 1);
}

#[test]
fn mismatched_reveal_and_withheld_commit_forfeit_the_deposit_and_cost_trust() {
    let all = agents(3);
    let state = founded(&all);
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    for a in &all {
        msgs.insert(claim(a, r, 2));
    }
    let (c0, _) = sealed_bid(&all[0], r, 9, None, 20);
    let (_, v0) = sealed_bid(&all[0], r, 1, None, 20);
    msgs.insert(c0);
    msgs.insert(v0);
    msgs.insert(sealed_bid(&all[1], r, 9, None, 30).0);
    let (c2, v2) = sealed_bid(&all[2], r, 1, None, 1);
    msgs.insert(c2);
    msgs.insert(v2);
    let (next, outcome) = resolve_round(&state, &msgs);
    assert_eq!(outcome.winner, Some(all[2].id()));
    assert!(outcome
        .offences
        .contains(&(all[0].id(), Offence::BadReveal)));
    assert!(outcome.offences.contains(&(all[1].id(), Offence::Withheld)));
    let m0 = &next.members[&all[0].id()];
    let m1 = &next.members[&all[1].id()];
    assert_eq!(m0.credits, INITIAL_CREDITS - 20 + INCOME_PER_ROUND);
    assert_eq!(m1.credits, INITIAL_CREDITS - 30 + INCOME_PER_ROUND);
    assert_eq!(m0.trust, INITIAL_TRUST / 4);
    assert_eq!(m1.trust, INITIAL_TRUST / 4);
    assert!(next.members[&all[2].id()].trust > INITIAL_TRUST);
}

#[test]
fn equivocation_is_evidence_anyone_can_check_and_voids_the_turn() {
    let all = agents(2);
    let state = founded(&all);
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    let (c_a, v_a) = sealed_bid(&all[0], r, 100, None, 100);
    let (c_b, _) = sealed_bid(&all[0], r, 5, None, 100);
    assert!(is_equivocation(&c_a, &c_b));
    assert!(!is_equivocation(&c_a, &c_a));
    assert!(!is_equivocation(&c_a, &v_a));
    msgs.insert(claim(&all[0], r, 1));
    msgs.insert(c_a);
    msgs.insert(c_b);
    msgs.insert(v_a);
    msgs.insert(claim(&all[1], r, 5));
    let (c, v) = sealed_bid(&all[1], r, 0, None, 0);
    msgs.insert(c);
    msgs.insert(v);
    let (next, outcome) = resolve_round(&state, &msgs);
    assert_eq!(outcome.equivocations.len(), 1);
    let evidence = &outcome.equivocations[0];
    assert!(is_equivocation(&evidence.first, &evidence.second));
    assert_eq!(
        outcome.winner,
        Some(all[1].id()),
        "the equivocator cannot win with its void bid"
    );
    assert_eq!(next.members[&all[0].id()].trust, INITIAL_TRUST / 8);
    assert_eq!(next.members[&all[0].id()].offences.equivocations, 1);
}

#[test]
fn a_liar_is_caught_within_a_round_of_winning_and_falls_below_honest_peers() {
    // Agent 0 has 4 slots of work but always claims 1; agents 1 and 2 are truthful.
    let all = agents(3);
    let mut state = founded(&all);
    let mut remaining = vec![4u32, 3, 3];
    let bids = vec![10u64; 3];
    let mut caught_round = None;
    let mut first_win = None;
    for _ in 0..30 {
        if state.active_members().next().is_none() {
            break;
        }
        let claims = vec![1, remaining[1], remaining[2]];
        let round = state.next_round;
        let outcome = play_round(&mut state, &all, &mut remaining, &claims, &bids);
        if outcome.winner == Some(all[0].id()) && first_win.is_none() {
            first_win = Some(round);
        }
        if caught_round.is_none()
            && outcome
                .offences
                .iter()
                .any(|(id, o)| *id == all[0].id() && matches!(o, Offence::Lie { .. }))
        {
            caught_round = Some(round);
        }
    }
    let (first_win, caught) = (first_win.unwrap(), caught_round.unwrap());
    assert_eq!(
        caught,
        first_win + 1,
        "the lie shows in the claim right after the first win"
    );
    let liar = &state.members[&all[0].id()];
    assert!(liar.offences.lies >= 2);
    assert!(state
        .members
        .values()
        .filter(|m| m.offences.lies == 0)
        .all(|m| m.trust > liar.trust));
}

#[test]
fn second_price_is_the_least_bid_that_still_wins() {
    let all = agents(2);
    let mut state = founded(&all);
    let mut remaining = vec![2u32, 2];
    // Equal claims and power: agent 0 bids 40, agent 1 bids 10: the price is 10 (a tie at 10
    // would still rank agent 0 first or second only by the tie-break hash).
    let outcome = play_round(&mut state, &all, &mut remaining, &[2, 2], &[40, 10]);
    assert_eq!(outcome.winner, Some(all[0].id()));
    assert_eq!(outcome.price, 10);
    assert_eq!(
        state.members[&all[0].id()].credits,
        INITIAL_CREDITS - 10 + INCOME_PER_ROUND
    );
    assert_eq!(
        state.members[&all[1].id()].credits,
        INITIAL_CREDITS + INCOME_PER_ROUND
    );
}

#[test]
fn coalition_forms_pools_support_and_dissolves_on_a_broken_pledge() {
    let all = agents(3);
    let state = founded(&all);
    let (a, b, c) = (&all[0], &all[1], &all[2]);
    let r = state.next_round;
    let proposal = CoalitionProposal {
        partners: vec![b.id()],
        terms: "B backs A".into(),
        duration_rounds: 4,
        pledge: 6,
    };
    let (id, offer) = propose_and_accept(a, b, r, proposal);
    let mut msgs = RoundMessages::new(r);
    for m in offer {
        msgs.insert(m);
    }
    msgs.insert(claim(a, r, 3));
    msgs.insert(claim(b, r, 4));
    msgs.insert(claim(c, r, 3));
    let (ca, va) = sealed_bid(a, r, 2, None, 2);
    let (cb, vb) = sealed_bid(
        b,
        r,
        0,
        Some(slotmesh_proto::Support {
            beneficiary: a.id(),
            amount: 6,
        }),
        6,
    );
    let (cc, vc) = sealed_bid(c, r, 5, None, 5);
    for m in [ca, va, cb, vb, cc, vc] {
        msgs.insert(m);
    }
    let (state, outcome) = resolve_round(&state, &msgs);
    assert_eq!(outcome.coalitions_formed, vec![id]);
    assert_eq!(
        outcome.winner,
        Some(a.id()),
        "2 + 6 support beats 5 at equal claims"
    );
    assert_eq!(outcome.ranking[0].support, 6);
    // Price 5 (C's bid): A pays its 2, B's support pays the other 3.
    assert_eq!(outcome.price, 5);
    assert_eq!(
        state.members[&a.id()].credits,
        INITIAL_CREDITS - 2 + INCOME_PER_ROUND
    );
    assert_eq!(
        state.members[&b.id()].credits,
        INITIAL_CREDITS - 3 + INCOME_PER_ROUND
    );
    assert!(state.coalitions.contains_key(&id));

    // Next round B bids for itself and gives A nothing: a broken pledge.
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    msgs.insert(claim(a, r, 2));
    msgs.insert(claim(b, r, 4));
    msgs.insert(claim(c, r, 3));
    let (ca, va) = sealed_bid(a, r, 2, None, 2);
    let (cb, vb) = sealed_bid(b, r, 6, None, 6);
    let (cc, vc) = sealed_bid(c, r, 5, None, 5);
    for m in [ca, va, cb, vb, cc, vc] {
        msgs.insert(m);
    }
    let (state, outcome) = resolve_round(&state, &msgs);
    assert!(outcome.offences.contains(&(b.id(), Offence::BrokenPledge)));
    assert_eq!(
        outcome.coalitions_dissolved,
        vec![(id, DissolveReason::PledgeBroken)]
    );
    assert!(state.coalitions.is_empty());
    assert!(state.members.values().all(|m| m.coalition.is_none()));
}

#[test]
fn coalition_expires_and_dissolves_when_a_member_leaves() {
    let all = agents(3);
    let mut state = founded(&all);
    let (a, b) = (&all[0], &all[1]);
    let r = state.next_round;
    let proposal = CoalitionProposal {
        partners: vec![b.id()],
        terms: String::new(),
        duration_rounds: 1,
        pledge: 0,
    };
    let (id, offer) = propose_and_accept(a, b, r, proposal.clone());
    let mut msgs = RoundMessages::new(r);
    for m in offer {
        msgs.insert(m);
    }
    let (next, outcome) = resolve_round(&state, &msgs);
    assert_eq!(outcome.coalitions_formed, vec![id]);
    assert_eq!(
        outcome.coalitions_dissolved,
        vec![(id, DissolveReason::Expired)]
    );
    state = next;
    let r = state.next_round;
    let (id, offer) = propose_and_accept(
        a,
        b,
        r,
        CoalitionProposal {
            duration_rounds: 9,
            ..proposal
        },
    );
    let mut msgs = RoundMessages::new(r);
    for m in offer {
        msgs.insert(m);
    }
    let (next, _) = resolve_round(&state, &msgs);
    state = next;
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    msgs.insert(leave(b, r));
    let (_, outcome) = resolve_round(&state, &msgs);
    assert_eq!(
        outcome.coalitions_dissolved,
        vec![(id, DissolveReason::MemberGone)]
    );
}

#[test]
fn newcomers_join_from_the_next_round_and_cannot_bid_before() {
    let all = agents(2);
    let state = founded(&all);
    let late = agent(50);
    let r = state.next_round;
    let mut msgs = RoundMessages::new(r);
    msgs.insert(join(&late, r, "late"));
    msgs.insert(claim(&late, r, 1));
    let (c, v) = sealed_bid(&late, r, 999, None, 999);
    msgs.insert(c);
    msgs.insert(v);
    let (next, outcome) = resolve_round(&state, &msgs);
    assert_eq!(outcome.joined, vec![late.id()]);
    assert_eq!(outcome.winner, None);
    assert_eq!(next.members[&late.id()].joined_round, r + 1);
    assert!(next.is_active(&late.id()));
}

/// Plays one round in which agent 0 (trust `trust`, `lies` proven lies on record) claims 1
/// and agent 1, in good standing, claims 3, both bidding the same; returns the winner.
fn short_claim_against_three(trust: u32, lies: u32) -> Option<AgentId> {
    let all = agents(2);
    let mut state = founded(&all);
    let record = state.members.get_mut(&all[0].id()).unwrap();
    record.trust = trust;
    record.offences.lies = lies;
    let mut remaining = vec![5u32, 3];
    play_round(&mut state, &all, &mut remaining, &[1, 3], &[10, 10]).winner
}

#[test]
fn a_proven_liar_below_half_trust_is_ranked_on_the_longest_claim_of_the_round() {
    let all = agents(2);
    let (liar, honest) = (Some(all[0].id()), Some(all[1].id()));
    // At trust 0.25 the power is 0.5: a claim of 1 would still outrank a claim of 3 at full
    // power (10 x 0.5 / 1 against 10 / 3), so only the rule makes the honest claim win.
    assert_eq!(
        short_claim_against_three(PPM / 4, 1),
        honest,
        "a proven liar below a newcomer's trust has no credible claim: ranked on 3, it loses"
    );
    // The same trust from offences other than lies keeps the claim credible.
    assert_eq!(short_claim_against_three(PPM / 4, 0), liar);
    // A liar whose trust has been repaired to a newcomer's is believed again.
    assert_eq!(short_claim_against_three(INITIAL_TRUST, 1), liar);
}

#[test]
fn the_longest_claim_a_liar_is_ranked_on_is_that_of_the_candidates_in_good_standing() {
    // Liar L (trust 0.25, one lie) claims 1 and bids 100; H claims 3 and bids 10; S claims 50
    // but makes no bid. Ranked on 3 (H's claim), L's bid buys the slot (100 x 0.5 / 3 against
    // 10 / 3); ranked on S's 50 it would not: a member that does not compete sets nothing.
    let all = agents(3);
    let (l, h, s) = (&all[0], &all[1], &all[2]);
    let mut state = founded(&all);
    let record = state.members.get_mut(&l.id()).unwrap();
    record.trust = PPM / 4;
    record.offences.lies = 1;
    let round = state.next_round;
    let mut messages = RoundMessages::new(round);
    for (who, claimed, bid) in [(l, 1, Some(100)), (h, 3, Some(10)), (s, 50, None)] {
        messages.insert(claim(who, round, claimed));
        if let Some(bid) = bid {
            let (commit, reveal) = sealed_bid(who, round, bid, None, bid);
            messages.insert(commit);
            messages.insert(reveal);
        }
    }
    let (_, outcome) = resolve_round(&state, &messages);
    assert_eq!(outcome.winner, Some(l.id()));
    let ranked = outcome.ranking.iter().find(|c| c.id == l.id()).unwrap();
    assert_eq!(
        ranked.claim, 3,
        "ranked on the longest claim of a candidate"
    );
}
