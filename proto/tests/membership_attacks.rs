//! Attacks on the membership rules of protocol version 6 ("membership that heals") through
//! the rule (`resolve_round`, `LedgerState`): join floods with chosen keys, rejoin abuse, the
//! single-live-member case, message orders around the admission limit. The attacks through
//! engine replicas on a faulty network are in `membership_engine_attacks.rs`. Written by a
//! reviewer with a fresh context, through the public API of `slotmesh-proto` only.
//!
//! A test that fails shows a guarantee of docs/PROTOCOL.md broken (it asserts the
//! guarantee); a test that passes is an attack the code withstood, kept as a regression
//! test. Every loop is bounded.
//!
//! Failing on the code this was written against (protocol version 6 as first written): 1a
//! (keys ground for a round), 1b (keys admitted as the last voter leaves vote at once), 1e
//! (junk for the next round shuts newcomers out), 2a (restarted joins let a liar go
//! unpunished), 2d (absence limit not the largest), 3a (keys suspended last hold the swarm).
//! Passing then: 1c, 2b, 2c, 3b, 4a. Fixed since (docs/PROTOCOL.md §4, §6): admission in the
//! order of the round's revealed nonces (1a); with no voter left, the active members with
//! the longest streak vote, and with none active the suspended members that were voters last
//! (1b, 3a); a newcomer's next-round turns are buffered only once it joined (1e); the n-th
//! restart halves trust n times (2a); the largest absence limit a founder names (2d).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{
    admission_limit, majority, resolve_round, voter_additions, AgentId, Digest, Identity, Join,
    Leave, LeaveReason, LedgerState, MemberStatus, Payload, RoundMessages, RoundOutcome,
    SignedMessage, SUSPEND_AFTER_MISSES, TRUST_FLOOR, VOTING_STREAK,
};
use std::collections::BTreeSet;

// ----- rule-level helpers -----

/// The round's tie-break hash of `id` (docs/PROTOCOL.md §4 step 7): public, computable by
/// anyone for any future round.
fn tie_break(round: u64, id: &AgentId) -> Digest {
    Digest::of(b"slotmesh/tie-break/v1", &[&round.to_le_bytes(), &id.0])
}

/// What the record expects `a` to claim (50 for a first claim).
fn truthful(state: &LedgerState, a: &Identity) -> u32 {
    state
        .members
        .get(&a.id())
        .and_then(|m| {
            m.last_claim
                .map(|c| c.remaining.saturating_sub(m.used_slots - c.used_before))
        })
        .unwrap_or(50)
        .max(1)
}

/// `a`'s full part in round `r`: a truthful claim and a sealed bid of 1, revealed.
fn full_part(state: &LedgerState, a: &Identity) -> Vec<SignedMessage> {
    let r = state.next_round;
    let (commit, reveal) = sealed_bid(a, r, 1, None, 1);
    vec![claim(a, r, truthful(state, a)), commit, reveal]
}

fn join_as(a: &Identity, r: u64, name: &str, restarted: bool) -> SignedMessage {
    sign(
        a,
        r,
        Payload::Join(Join {
            name: name.into(),
            founders: Vec::new(),
            absence_limit: 0,
            restarted,
        }),
    )
}

fn depart(a: &Identity, r: u64) -> SignedMessage {
    sign(
        a,
        r,
        Payload::Leave(Leave {
            reason: LeaveReason::Departed,
        }),
    )
}

/// Resolves the round after `state` from `messages`, keeping only those the rule consumes
/// (as a replica's inputs would).
fn resolve(state: &LedgerState, messages: Vec<SignedMessage>) -> (LedgerState, RoundOutcome) {
    let mut set = RoundMessages::new(state.next_round);
    for m in messages.into_iter().filter(|m| state.consumes(m)) {
        set.insert(m);
    }
    resolve_round(state, &set)
}

/// Plays rounds in which `playing` take full part and nobody else speaks.
fn play(state: &mut LedgerState, playing: &[&Identity], rounds: usize) {
    for _ in 0..rounds {
        let messages = playing
            .iter()
            .filter(|a| state.is_active(&a.id()))
            .flat_map(|a| full_part(state, a))
            .collect();
        *state = resolve(state, messages).0;
    }
}

/// Founders A, B, C; B and C cut off for rounds 1..=3 (suspended in round 3); A alone
/// after that, the only voter.
fn one_live_member() -> (LedgerState, [Identity; 3]) {
    let (a, b, c) = (agent(0), agent(1), agent(2));
    let mut state = founded(&[a.clone(), b.clone(), c.clone()]);
    play(&mut state, &[&a], usize::from(SUSPEND_AFTER_MISSES));
    assert_eq!(state.members[&b.id()].status, MemberStatus::Suspended);
    assert_eq!(state.members[&c.id()].status, MemberStatus::Suspended);
    assert_eq!(voters(&state), BTreeSet::from([a.id()]));
    (state, [a, b, c])
}

// ----- 1. join floods with chosen identities -----

/// Attack 1a. §4 step 2: newcomers are admitted "in the order of the round's tie-break
/// hash, so a key chosen in advance buys no place; the others ask again in the next round".
/// But the hash is `SHA-256(tag, round, id)`: the round is known in advance, so an attacker
/// grinds, for each coming round, `admission_limit` keys whose hash for that round is tiny
/// (here below 2^-10 of the range: ~1,000 key generations a key), joins them in that round,
/// and has them leave (`Departed`) in their first round so the active count, and with it the
/// limit, stays at max(4, (4 + 4) / 2) = 4. Four honest founders play; one honest newcomer
/// joins in every round. It must get in.
#[test]
fn a_key_ground_for_the_round_buys_an_admission_place_ahead_of_an_honest_joiner() {
    let founders: Vec<Identity> = (0..4).map(agent).collect();
    let honest = agent(200);
    let mut state = founded(&founders);
    let mut seed = 0u64;
    let mut attacker_admitted = 0usize;
    let mut previous_wave: Vec<Identity> = Vec::new();
    let rounds = 16;
    let mut admitted_in = None;
    for _ in 0..rounds {
        let r = state.next_round;
        let limit = admission_limit(state.active_members().count());
        // Keys ground for this very round (bounded: the expected cost is 1,024 tries a key).
        let mut wave = Vec::new();
        for _ in 0..200_000 {
            if wave.len() == limit {
                break;
            }
            seed += 1;
            let k = key(seed);
            let h = tie_break(r, &k.id());
            if h.0[0] == 0 && h.0[1] < 0x40 {
                wave.push(k);
            }
        }
        assert_eq!(wave.len(), limit);
        let mut messages: Vec<SignedMessage> =
            founders.iter().flat_map(|f| full_part(&state, f)).collect();
        messages.extend(previous_wave.iter().map(|k| depart(k, r)));
        messages.extend(wave.iter().map(|k| join(k, r, "sybil")));
        messages.push(join(&honest, r, "honest"));
        let (next, outcome) = resolve(&state, messages);
        attacker_admitted += outcome
            .joined
            .iter()
            .filter(|id| wave.iter().any(|k| k.id() == **id))
            .count();
        if outcome.joined.contains(&honest.id()) {
            admitted_in = Some(r);
            break;
        }
        previous_wave = wave;
        state = next;
    }
    assert!(
        admitted_in.is_some(),
        "an honest newcomer that joined in each of {rounds} rounds was never admitted: \
         {attacker_admitted} keys ground for their round took every place (limit {} a round)",
        admission_limit(state.active_members().count())
    );
}

/// Attack 1b. §6: "A newcomer, or a member back from a suspension, votes only after 2
/// rounds in a row of full part ... So newcomers alone never form a quorum of the round
/// after they are admitted". A is the only live member (B and C were cut off and
/// suspended); B comes back (rejoin, one round of full part); in the round A's job is done
/// and A leaves, four fresh keys join. No voter of the round is left and nobody earned the
/// vote yet, so `voters_for` falls back to "all active members that may vote": the four
/// keys admitted that very round vote in the next one, 4 of 5.
#[test]
fn keys_admitted_in_the_round_the_last_voter_leaves_vote_at_once() {
    let (mut state, [a, b, _c]) = one_live_member();
    // B rejoins, then takes one round of full part.
    let r = state.next_round;
    let mut messages = full_part(&state, &a);
    messages.push(join(&b, r, "b"));
    state = resolve(&state, messages).0;
    assert!(state.is_active(&b.id()));
    // A leaves; four fresh keys join; B plays.
    let sybils: Vec<Identity> = (0..4).map(|i| key(1_000 + i)).collect();
    let r = state.next_round;
    let mut messages = vec![depart(&a, r)];
    messages.extend(full_part(&state, &b));
    messages.extend(sybils.iter().map(|s| join(s, r, "sybil")));
    let (next, outcome) = resolve(&state, messages);
    assert_eq!(outcome.joined.len(), 4);
    let next_voters = voters(&next);
    let fresh: Vec<&AgentId> = next_voters
        .iter()
        .filter(|v| outcome.joined.contains(v))
        .collect();
    assert!(
        fresh.is_empty(),
        "{} of the {} voters of round {} were admitted in round {r} (no full part yet; \
         B, back with a streak of {}, is the only other voter)",
        fresh.len(),
        next_voters.len(),
        next.next_round,
        next.members[&b.id()].streak
    );
}

/// Attack 1c. Consecutive voter sets under random churn (joins and equivocating joins,
/// rejoins with and without restart, leaves, silences, removals, joins from members that
/// left): whenever a voter of round r is still active and allowed in r+1, the voters of r+1
/// keep a majority of old voters (`added ≤ voter_additions(kept)`, every added voter earned
/// the vote); admissions stay within `admission_limit`, rejoins first; nobody who left or is
/// suspended bids; and the result does not depend on the order the messages are inserted in.
/// (The case with no voter of r left is attack 1b.)
#[test]
fn random_churn_keeps_the_voter_bounds_admission_bounds_and_determinism() {
    for seed in 0..24u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pool: Vec<Identity> = (0..14).map(|i| key(10_000 + i)).collect();
        let mut state = founded(&pool[..3]);
        state.absence_limit = 5;
        for _ in 0..30 {
            let r = state.next_round;
            let mut messages = Vec::new();
            for a in &pool {
                let member = state.members.get(&a.id());
                match member.map(|m| m.status) {
                    None => {
                        if rng.gen_bool(0.3) {
                            messages.push(join(a, r, "n"));
                            if rng.gen_bool(0.15) {
                                messages.push(join(a, r, "n2"));
                            }
                        }
                    }
                    Some(MemberStatus::Active) => {
                        let x: f64 = rng.gen();
                        if x < 0.72 {
                            let bid = rng.gen_range(0..5u64);
                            let (commit, reveal) = sealed_bid(a, r, bid, None, bid);
                            messages.extend([claim(a, r, truthful(&state, a)), commit, reveal]);
                        } else if x < 0.75 {
                            messages.push(leave(a, r));
                        } else if x < 0.77 {
                            messages.push(depart(a, r));
                        } else if x < 0.82 {
                            messages.push(claim(a, r, truthful(&state, a)));
                        }
                        if rng.gen_bool(0.05) {
                            messages.push(join_as(a, r, "re", true));
                        }
                    }
                    Some(MemberStatus::Suspended) => {
                        if rng.gen_bool(0.3) {
                            messages.push(join_as(a, r, "back", rng.gen_bool(0.3)));
                        }
                        if rng.gen_bool(0.2) {
                            messages.push(claim(a, r, 1));
                        }
                    }
                    Some(_) => {
                        if rng.gen_bool(0.3) {
                            messages.push(join_as(a, r, "ghost", rng.gen_bool(0.5)));
                            messages.push(claim(a, r, 1));
                        }
                    }
                }
            }
            let consumed: Vec<SignedMessage> = messages
                .iter()
                .filter(|m| state.consumes(m))
                .cloned()
                .collect();
            let (next, outcome) = resolve(&state, consumed.clone());
            // Determinism: any insertion order, any duplicates.
            for _ in 0..2 {
                let mut shuffled = consumed.clone();
                shuffled.shuffle(&mut rng);
                shuffled.extend(consumed.iter().take(3).cloned());
                let mut set = RoundMessages::new(r);
                for m in shuffled {
                    set.insert(m);
                }
                assert_eq!(
                    resolve_round(&state, &set).0.digest(),
                    next.digest(),
                    "seed {seed} round {r}: order changed the digest"
                );
            }
            // Admissions: bounded, rejoins first.
            let active = state.active_members().count();
            let admitted = outcome.joined.len() + outcome.rejoined.len();
            assert!(admitted <= admission_limit(active), "seed {seed} round {r}");
            if !outcome.joined.is_empty() {
                let mut single_rejoins = BTreeSet::new();
                for m in &consumed {
                    if matches!(m.payload(), Payload::Join(_))
                        && state
                            .members
                            .get(&m.sender())
                            .is_some_and(|x| x.is_suspended())
                    {
                        let n = consumed
                            .iter()
                            .filter(|o| {
                                o.sender() == m.sender() && matches!(o.payload(), Payload::Join(_))
                            })
                            .count();
                        if n == 1 {
                            single_rejoins.insert(m.sender());
                        }
                    }
                }
                for id in single_rejoins {
                    assert!(
                        outcome.rejoined.contains(&id),
                        "seed {seed} round {r}: a newcomer admitted before a rejoin"
                    );
                }
            }
            // No ghosts.
            for c in &outcome.ranking {
                assert!(state.is_active(&c.id), "seed {seed} round {r}: a ghost bid");
            }
            // Voter bounds.
            let old = voters(&state);
            let new = voters(&next);
            if next.active_members().next().is_some() {
                assert!(
                    !new.is_empty(),
                    "seed {seed} round {r}: members but no voter"
                );
            }
            let survivor = old.iter().any(|v| next.members[v].may_vote());
            if r > 0 && survivor {
                let kept: BTreeSet<AgentId> = new.intersection(&old).copied().collect();
                let added: Vec<AgentId> = new.difference(&old).copied().collect();
                assert!(!kept.is_empty(), "seed {seed} round {r}");
                assert!(
                    added.len() <= voter_additions(kept.len()),
                    "seed {seed} round {r}: {} added to {}",
                    added.len(),
                    kept.len()
                );
                assert!(added.len() < majority(new.len()), "seed {seed} round {r}");
                for id in &added {
                    assert!(
                        next.members[id].streak >= VOTING_STREAK,
                        "seed {seed} round {r}"
                    );
                }
            }
            state = next;
        }
    }
}

// ----- 2. rejoin abuse -----

/// Attack 2a. §4 step 3 / §7: lies (inconsistent signed claims) are punished through
/// trust, and "claims are kept honest by trust (section 5)". An active member may send a
/// `Join { restarted: true }` in any round (it is consumed, §4 step 2) and its last claim
/// is forgotten, so its next claim is "checked afresh", i.e. not at all. A liar that claims
/// 1 slot every round and sends such a join with each claim won every slot against honest
/// members with longer jobs (the rule is SRPT on the claim), and was never caught (12 of 12,
/// trust 658,400 ppm). Fixed: the n-th restart halves trust n times, so the liar's power
/// falls to the floor within four rounds and the honest members win most slots; a restart
/// is still no lie (an honest daemon that restarts once pays one halving).
#[test]
fn restarted_joins_let_a_liar_claim_one_slot_forever_unpunished() {
    let honest = [agent(0), agent(1)];
    let liar = agent(2);
    let mut state = founded(&[honest[0].clone(), honest[1].clone(), liar.clone()]);
    let rounds = 12u32;
    let mut liar_wins = 0;
    for _ in 0..rounds {
        let r = state.next_round;
        let mut messages: Vec<SignedMessage> = Vec::new();
        for h in &honest {
            messages.extend(full_part(&state, h));
        }
        let (commit, reveal) = sealed_bid(&liar, r, 1, None, 1);
        messages.extend([claim(&liar, r, 1), commit, reveal]);
        messages.push(join_as(&liar, r, "liar", true));
        let (next, outcome) = resolve(&state, messages);
        if outcome.winner == Some(liar.id()) {
            liar_wins += 1;
        }
        state = next;
    }
    let record = &state.members[&liar.id()];
    assert_eq!(record.offences.lies, 0, "a restart is no lie");
    assert_eq!(record.restarts, rounds);
    assert!(
        record.trust <= 2 * TRUST_FLOOR && liar_wins < rounds / 2,
        "a member that claimed 1 slot and restarted in each of {rounds} rounds won {liar_wins} \
         of them: trust {} ppm, {} restarts (the honest members won {} slots)",
        record.trust,
        record.restarts,
        rounds - liar_wins
    );
}

/// Attack 2b. A suspension and rejoin resets nothing but the misses and the streak: a liar
/// that goes silent until suspended and rejoins (without saying its job restarted) keeps
/// its trust, offences, credits, slots used and last claim, so its next lie is caught; it
/// is no voter until it earned the vote again.
#[test]
fn a_rejoin_resets_no_penalty_trust_or_claim_history() {
    let (a, b, liar) = (agent(0), agent(1), agent(2));
    let mut state = founded(&[a.clone(), b.clone(), liar.clone()]);
    // The liar claims 1 in each of 3 rounds, bidding high enough to win the first.
    for _ in 0..3 {
        let r = state.next_round;
        let mut messages = full_part(&state, &a);
        messages.extend(full_part(&state, &b));
        let (commit, reveal) = sealed_bid(&liar, r, 5, None, 5);
        messages.extend([claim(&liar, r, 1), commit, reveal]);
        state = resolve(&state, messages).0;
    }
    let before = state.members[&liar.id()].clone();
    assert!(before.offences.lies >= 1, "{:?}", before.offences);
    assert!(
        voters(&state).contains(&liar.id()),
        "still a voter: a lie is no miss"
    );
    // Silent until suspended.
    play(&mut state, &[&a, &b], usize::from(SUSPEND_AFTER_MISSES));
    assert_eq!(state.members[&liar.id()].status, MemberStatus::Suspended);
    let away = state.members[&liar.id()].clone();
    // Rejoin: the record comes back whole.
    let r = state.next_round;
    let mut messages = full_part(&state, &a);
    messages.extend(full_part(&state, &b));
    messages.push(join(&liar, r, "liar"));
    let (next, outcome) = resolve(&state, messages);
    assert_eq!(outcome.rejoined, vec![liar.id()]);
    state = next;
    let back = &state.members[&liar.id()];
    assert_eq!(back.trust, before.trust);
    assert_eq!(back.offences, before.offences);
    assert_eq!(back.last_claim, before.last_claim);
    assert_eq!(back.used_slots, before.used_slots);
    assert_eq!(back.credits, away.credits, "no income while away");
    assert!(!voters(&state).contains(&liar.id()));
    // Its next lie (any claim but what its old claim and the slots won since leave) is caught
    // against the old claim.
    let expected = u32::try_from(back.expected_remaining().unwrap()).unwrap();
    let r = state.next_round;
    let mut messages = full_part(&state, &a);
    messages.extend(full_part(&state, &b));
    let (commit, reveal) = sealed_bid(&liar, r, 1, None, 1);
    messages.extend([claim(&liar, r, expected + 2), commit, reveal]);
    let (next, _) = resolve(&state, messages);
    assert_eq!(
        next.members[&liar.id()].offences.lies,
        before.offences.lies + 1
    );
    assert!(
        !voters(&next).contains(&liar.id()),
        "one round of full part"
    );
    let mut state = next;
    play(&mut state, &[&a, &b, &liar], 1);
    assert!(
        voters(&state).contains(&liar.id()),
        "two rounds of full part"
    );
}

/// Attack 2c. No ghosts: a member that completed, departed or was removed sends joins
/// (with and without `restarted`) and turns every round; none is an input, none brings it
/// back, none bids.
#[test]
fn completed_departed_and_removed_members_never_come_back() {
    let all: Vec<Identity> = (0..5).map(agent).collect();
    let mut state = founded(&all);
    state.absence_limit = 2;
    // 3 completes, 4 departs, 2 goes silent until removed.
    let r = state.next_round;
    let mut messages: Vec<SignedMessage> =
        all[..2].iter().flat_map(|a| full_part(&state, a)).collect();
    messages.push(leave(&all[3], r));
    messages.push(depart(&all[4], r));
    state = resolve(&state, messages).0;
    play(&mut state, &[&all[0], &all[1]], 6);
    assert_eq!(state.members[&all[2].id()].status, MemberStatus::Removed);
    assert_eq!(state.members[&all[3].id()].status, MemberStatus::Completed);
    assert_eq!(state.members[&all[4].id()].status, MemberStatus::Departed);
    for _ in 0..3 {
        let r = state.next_round;
        let mut raw: Vec<SignedMessage> =
            all[..2].iter().flat_map(|a| full_part(&state, a)).collect();
        for ghost in &all[2..] {
            raw.push(join_as(ghost, r, "ghost", r.is_multiple_of(2)));
            let (commit, reveal) = sealed_bid(ghost, r, 900, None, 900);
            raw.extend([claim(ghost, r, 1), commit, reveal]);
        }
        for m in raw
            .iter()
            .filter(|m| all[2..].iter().any(|g| g.id() == m.sender()))
        {
            assert!(
                !state.consumes(m),
                "a ghost's {:?} is an input",
                m.payload().kind()
            );
        }
        // Even unfiltered, the rule ignores them.
        let mut set = RoundMessages::new(r);
        for m in raw {
            set.insert(m);
        }
        let (next, outcome) = resolve_round(&state, &set);
        assert!(outcome.joined.is_empty() && outcome.rejoined.is_empty());
        assert!(outcome
            .ranking
            .iter()
            .all(|c| all[..2].iter().any(|a| a.id() == c.id)));
        for ghost in &all[2..] {
            assert_eq!(
                next.members[&ghost.id()].status,
                state.members[&ghost.id()].status
            );
        }
        state = next;
    }
}

/// Attack 2d. §4 step 2: "the swarm's absence limit becomes the largest `absence_limit`
/// its admitted founders name (10,000 rounds when none does)"; the daemon's default names
/// 10,000 explicitly (`--absence-limit`). The rule keeps the first value it sees only while
/// the limit still equals the default, so one founder naming a tiny limit wins whenever its
/// join comes after the founders that named 10,000 in the tie-break order: the swarm then
/// removes every member one round after its suspension.
#[test]
fn the_absence_limit_is_the_largest_the_founders_name() {
    let founders: Vec<Identity> = (0..3).map(agent).collect();
    let mut results = Vec::new();
    for small in 0..founders.len() {
        let mut messages = RoundMessages::new(0);
        for (i, f) in founders.iter().enumerate() {
            messages.insert(sign(
                f,
                0,
                Payload::Join(Join {
                    name: format!("f{i}"),
                    founders: Vec::new(),
                    absence_limit: if i == small { 1 } else { 10_000 },
                    restarted: false,
                }),
            ));
        }
        let state = resolve_round(&LedgerState::genesis(swarm()), &messages).0;
        results.push(state.absence_limit);
    }
    assert!(
        results.iter().all(|l| *l == 10_000),
        "founders naming 10,000, 10,000 and 1 (the 1 from each founder in turn) give \
         absence limits {results:?}"
    );
}

// ----- 3. the single live member -----

/// Four fresh keys (from `first`) join while `a` takes full part; all are admitted.
fn four_sybils_join(state: &LedgerState, a: &Identity, first: u64) -> (LedgerState, Vec<Identity>) {
    let sybils: Vec<Identity> = (0..4).map(|i| key(first + i)).collect();
    let r = state.next_round;
    let mut messages = full_part(state, a);
    messages.extend(sybils.iter().map(|s| join(s, r, "sybil")));
    let (next, outcome) = resolve(state, messages);
    assert_eq!(outcome.joined.len(), 4);
    (next, sybils)
}

/// Attack 3a. §6 and §7 *Members come back*: with no active member, the voters are "the
/// suspended members never barred that were suspended last — the most recently heard of
/// ... whose rejoins then bring the swarm back". An outsider makes its own keys the most
/// recently heard of: while A is the only live member (B and C cut off and suspended), it
/// joins four keys and lets them go silent until they are suspended. When A's job is done
/// and A leaves, the swarm's voters are the four sybils only: B and C, back from their
/// partition, can rejoin only if the sybils certify it (they can stay silent forever, or
/// certify rounds that hold only their own rejoins; B and C are removed at the absence
/// limit).
#[test]
fn keys_suspended_last_hold_the_swarm_when_the_last_member_leaves() {
    let (state, [a, b, c]) = one_live_member();
    let (mut state, sybils) = four_sybils_join(&state, &a, 2_000);
    play(&mut state, &[&a], usize::from(SUSPEND_AFTER_MISSES));
    assert!(sybils
        .iter()
        .all(|s| state.members[&s.id()].status == MemberStatus::Suspended));
    // A's job is done.
    let r = state.next_round;
    state = resolve(&state, vec![depart(&a, r)]).0;
    assert_eq!(state.active_members().count(), 0);
    let v = voters(&state);
    let honest: BTreeSet<AgentId> = [b.id(), c.id()].into();
    // The sybils can certify a round that admits only their own rejoins.
    let r = state.next_round;
    let censored = sybils
        .iter()
        .map(|s| join(s, r, "sybil"))
        .collect::<Vec<_>>();
    let (after, _) = resolve(&state, censored);
    let later = voters(&after);
    let honest_votes = v.intersection(&honest).count();
    assert!(
        honest_votes >= majority(v.len()),
        "returning members B and C need the votes of keys that joined after they were cut \
         off: the voters of round {r} are {} sybils and {honest_votes} of B, C; after a \
         round the sybils certify with only their own rejoins, the voters are {} sybils and \
         {} of B, C",
        v.len() - honest_votes,
        later.difference(&honest).count(),
        later.intersection(&honest).count()
    );
}

/// Attack 3b. The single live member against a join flood that plays by the rules: A is
/// the only live member and voter, four sybils join at once (admission_limit(1) = 4) and
/// take full part. The voters grow by at most `voter_additions` a round and a sybil votes
/// only from its third round; this holds. (The consequence, within the bound: the sybils
/// hold a majority of the voters 4 rounds after they joined; see the report.)
#[test]
fn a_single_live_member_is_outvoted_no_faster_than_the_bound() {
    let (state, [a, _b, _c]) = one_live_member();
    let r0 = state.next_round;
    let (mut state, sybils) = four_sybils_join(&state, &a, 3_000);
    let ids: BTreeSet<AgentId> = sybils.iter().map(Identity::id).collect();
    let mut majority_from = None;
    for _ in 0..8 {
        let old = voters(&state);
        let mut players: Vec<&Identity> = vec![&a];
        players.extend(sybils.iter());
        play(&mut state, &players, 1);
        let new = voters(&state);
        let kept = new.intersection(&old).count();
        let added = new.difference(&old).count();
        assert!(added <= voter_additions(kept), "{added} added to {kept}");
        let r = state.next_round;
        let sybil_voters = new.intersection(&ids).count();
        if r < r0 + 3 {
            assert_eq!(sybil_voters, 0, "a sybil votes in round {r}");
        }
        if majority_from.is_none() && sybil_voters >= majority(new.len()) {
            majority_from = Some(r);
        }
    }
    assert_eq!(majority_from, Some(r0 + 4), "joined in round {r0}");
}

// ----- 4. message orders around the admission limit -----

/// Attack 4a. More joins than the limit, with equivocating variants (outsiders with two or
/// three different joins, a suspended member with a restarted and a plain rejoin, an active
/// member's restarted and plain join), inserted in every order a replica might see them
/// and with duplicates: one digest, equivocators never admitted, the admitted ones the
/// first in tie-break order.
#[test]
fn join_variants_in_any_order_give_one_digest_at_every_replica() {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let mut state = founded(&all);
    play(&mut state, &[&all[0], &all[1], &all[2]], 3);
    assert!(state.members[&all[3].id()].is_suspended());
    let r = state.next_round;
    let mut messages: Vec<SignedMessage> =
        all[..3].iter().flat_map(|a| full_part(&state, a)).collect();
    let outsiders: Vec<Identity> = (0..9).map(|i| key(4_000 + i)).collect();
    for (i, o) in outsiders.iter().enumerate() {
        messages.push(join(o, r, "o"));
        if i % 3 == 0 {
            messages.push(join(o, r, "o2"));
        }
        if i % 6 == 0 {
            messages.push(join_as(o, r, "o3", true));
        }
    }
    messages.push(join_as(&all[3], r, "back", false));
    messages.push(join_as(&all[3], r, "back", true));
    messages.push(join_as(&all[0], r, "restart", true));
    messages.push(join_as(&all[0], r, "plain", false));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut digests = BTreeSet::new();
    let mut outcome_seen = None;
    for _ in 0..40 {
        let mut order = messages.clone();
        order.shuffle(&mut rng);
        let dup = order[..5].to_vec();
        order.extend(dup);
        let (next, outcome) = resolve(&state, order);
        digests.insert(next.digest());
        outcome_seen = Some(outcome);
    }
    assert_eq!(digests.len(), 1);
    let outcome = outcome_seen.unwrap();
    let limit = admission_limit(3);
    assert_eq!(outcome.joined.len(), limit);
    assert!(outcome.rejoined.is_empty(), "an equivocating rejoin");
    let single: Vec<&Identity> = outsiders
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, o)| o)
        .collect();
    // Admitted in the order of a hash of the round's revealed nonces (unknown when the joins
    // were sealed): some `limit` of the outsiders that joined once.
    let single: BTreeSet<AgentId> = single.iter().map(|o| o.id()).collect();
    assert!(outcome.joined.iter().all(|id| single.contains(id)));
}
