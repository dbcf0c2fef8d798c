//! A second review of protocol version 8's newest rules (docs/PROTOCOL.md §4–5), the rule-level
//! attacks (1–5) through `resolve_round` and the helpers of `common/mod.rs`: the anchor of
//! `bought_by` (`ClaimRecord::anchor_used`), the longest-claim rule for proven liars below a
//! newcomer's trust (step 5), and a restart join beside the lost job's claim. The engine-level
//! attacks (6–9) are in `v8_review2_engine.rs`.
//!
//! Each test asserts the property that should hold; figures are printed with
//! `-- --nocapture`. Found working on version 8 and mended in version 9 (each test failed
//! before its mend): 4 (a coalition owes nothing for a liar not believed), 5 (a claim in the
//! round a restart counts is the lost job's: neither checked nor ranked). 3 is mended in part
//! (the longest claim is now that of the candidates in good standing, so a liar or a member
//! without a valid bid cannot set it) and ignored as a known limit (a member in good standing
//! with a long claim still can). 2 is the rule's intent (a repaired liar that offends again is
//! not believed until repaired). Holding from the start: 1 (no claim plan beats the truth in
//! the fixed game).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{
    resolve_round, AgentId, CoalitionProposal, Identity, Join, LedgerState, Offence, Payload,
    RoundMessages, RoundOutcome, SignedMessage, Support, INITIAL_TRUST, PPM, TRUST_FLOOR,
};
use std::collections::HashMap;

// ----- a small rule-level driver -----

fn resolve(state: &mut LedgerState, messages: Vec<SignedMessage>) -> RoundOutcome {
    let mut held = RoundMessages::new(state.next_round);
    for m in messages {
        held.insert(m);
    }
    let (next, outcome) = resolve_round(state, &held);
    *state = next;
    outcome
}

/// A claim of `c` with a sealed bid of `bid`.
fn bid_turn(who: &Identity, round: u64, c: u32, bid: u64) -> Vec<SignedMessage> {
    let (commit, reveal) = sealed_bid(who, round, bid, None, bid);
    vec![claim(who, round, c), commit, reveal]
}

/// A truthful member with `remaining` slots (a completed leave at 0).
fn truthful(state: &LedgerState, who: &Identity, remaining: u32, bid: u64) -> Vec<SignedMessage> {
    let round = state.next_round;
    if !state.is_active(&who.id()) {
        return Vec::new();
    }
    if remaining == 0 {
        return vec![leave(who, round)];
    }
    bid_turn(who, round, remaining, bid)
}

fn restart_join(who: &Identity, round: u64) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Join(Join {
            name: "restarted".into(),
            founders: Vec::new(),
            absence_limit: 0,
            restarted: true,
        }),
    )
}

fn used(state: &LedgerState, who: &Identity) -> u32 {
    state.members.get(&who.id()).map_or(0, |m| m.used_slots)
}

// ----- attack 1: the anchor -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Claim(u32),
    Idle,
}

/// Honest members' jobs in the fixed game of attack 1 (all present from the start, bid 10).
const HONEST: [u32; 4] = [2, 3, 5, 7];

/// Signing cache: (agent, round, claim, bid) -> the three messages.
type Cache = HashMap<(u8, u64, u32, u64), Vec<SignedMessage>>;

fn cached(
    cache: &mut Cache,
    n: u8,
    who: &Identity,
    round: u64,
    c: u32,
    bid: u64,
) -> Vec<SignedMessage> {
    cache
        .entry((n, round, c, bid))
        .or_insert_with(|| bid_turn(who, round, c, bid))
        .clone()
}

/// Plays attacker 0 with a job of `w` slots against `HONEST`, all bidding 10, the attacker's
/// moves from `plan(round, its record, slots won, w)`. Returns the round its job was done
/// (its `w`-th slot) and the honest members' mean finish round.
fn anchor_game(
    w: u32,
    cache: &mut Cache,
    plan: &mut dyn FnMut(u64, &slotmesh_proto::MemberRecord, u32) -> Act,
) -> (Option<u64>, f64) {
    let all: Vec<Identity> = (0..=HONEST.len() as u8).map(agent).collect();
    let mut state = founded(&all);
    let mut remaining: Vec<u32> = HONEST.to_vec();
    let mut done = None;
    let mut honest_done = vec![60u64; HONEST.len()];
    for _ in 0..60 {
        let round = state.next_round;
        let mut msgs = Vec::new();
        let a = all[0].id();
        if state.is_active(&a) {
            let won = used(&state, &all[0]);
            if won >= w {
                msgs.push(leave(&all[0], round));
            } else {
                match plan(round, &state.members[&a], won) {
                    Act::Claim(c) => msgs.extend(cached(cache, 0, &all[0], round, c.max(1), 10)),
                    Act::Idle => {}
                }
            }
        }
        for (i, r) in remaining.iter().enumerate() {
            let who = &all[i + 1];
            if state.is_active(&who.id()) {
                if *r == 0 {
                    msgs.push(leave(who, round));
                } else {
                    msgs.extend(cached(cache, i as u8 + 1, who, round, *r, 10));
                }
            }
        }
        let outcome = resolve(&mut state, msgs);
        if let Some(winner) = outcome.winner {
            if winner == a && used(&state, &all[0]) == w {
                done = Some(round);
            }
            if let Some(i) = all[1..].iter().position(|x| x.id() == winner) {
                remaining[i] -= 1;
                if remaining[i] == 0 {
                    honest_done[i] = round;
                }
            }
        }
        if done.is_some() && remaining.iter().all(|r| *r == 0) {
            break;
        }
    }
    let mean = honest_done.iter().sum::<u64>() as f64 / HONEST.len() as f64;
    (done, mean)
}

fn expected(m: &slotmesh_proto::MemberRecord) -> Option<u32> {
    m.expected_remaining().and_then(|e| u32::try_from(e).ok())
}

/// Attack 1 (the anchor). An attacker with `w` slots of work plays several hundred plans of
/// claims below its work, raises at chosen moments (to reset the anchor), idle rounds (no
/// bid, never three in a row), claims that follow the record's expectation and claims of
/// the truth, chosen at random (seeded), plus the structured family "first claim k, follow
/// the expectation down, raise to the truth (or to 1) when it reaches 0, with or without
/// an idle round before the raise". No plan may finish its job before the truthful one.
#[test]
fn no_claim_plan_below_the_work_finishes_before_the_truth() {
    let mut cache = Cache::new();
    let mut gains = Vec::new();
    for w in [3u32, 4, 6] {
        let truth = anchor_game(w, &mut cache, &mut |_, _, won| Act::Claim(w - won));
        let truth_done = truth.0.unwrap();
        let mut best: Option<(u64, String)> = None;
        let mut consider = |name: String, done: Option<u64>| {
            if let Some(d) = done {
                if best.as_ref().is_none_or(|(b, _)| d < *b) {
                    best = Some((d, name));
                }
            }
        };
        // The structured family.
        for k in 1..w {
            for raise_to_one in [false, true] {
                for idle_before in [false, true] {
                    let mut idled = false;
                    let mut plan =
                        |_: u64, m: &slotmesh_proto::MemberRecord, won: u32| match expected(m) {
                            None => Act::Claim(k),
                            Some(e) if e > 0 => Act::Claim(e),
                            Some(_) if idle_before && !idled => {
                                idled = true;
                                Act::Idle
                            }
                            Some(_) => Act::Claim(if raise_to_one { 1 } else { w - won }),
                        };
                    let (done, _) = anchor_game(w, &mut cache, &mut plan);
                    consider(
                        format!(
                            "first {k}, raise to {}, idle {idle_before}",
                            if raise_to_one { "1" } else { "truth" }
                        ),
                        done,
                    );
                }
            }
        }
        // Random plans.
        for seed in 0..300u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 31 + u64::from(w));
            let mut idle_run = 0;
            let mut log = Vec::new();
            let mut plan = |_: u64, m: &slotmesh_proto::MemberRecord, won: u32| {
                let t = w - won;
                let act = if idle_run < 2 && rng.gen_bool(0.15) {
                    Act::Idle
                } else {
                    let x: f64 = rng.gen();
                    let c = if x < 0.35 {
                        expected(m).filter(|e| *e > 0).unwrap_or(t)
                    } else if x < 0.75 {
                        rng.gen_range(1..=t)
                    } else {
                        t
                    };
                    Act::Claim(c)
                };
                idle_run = if act == Act::Idle { idle_run + 1 } else { 0 };
                log.push(act);
                act
            };
            let (done, _) = anchor_game(w, &mut cache, &mut plan);
            consider(format!("random {seed}: {log:?}"), done);
        }
        let (b, name) = best.unwrap();
        println!("anchor w={w}: truthful done round {truth_done} (honest mean {:.1}); best plan done {b}: {name}", truth.1);
        if b < truth_done {
            gains.push((w, truth_done, b, name));
        }
    }
    assert!(
        gains.is_empty(),
        "plans that beat the truth (w, truth, plan, name): {gains:?}"
    );
}

// ----- attack 5: a restart join and the lost job's claim in one round -----

/// Honest H (3 slots) among X (5) and Y (8), all bidding 10. H wins round 1; in round 2 its
/// daemon crashes and restarts: with `claim_sent`, after its claim of round 2 (2, the truth
/// of its old job) went out, so the record takes that claim and the restart join together;
/// without, before. From round 3 H truthfully claims its new job (3 slots again). Returns H's
/// done round (3 slots of the new job), its offences and trust at the end.
fn restart_after_claim(claim_sent: bool) -> (Option<u64>, Vec<Offence>, u32, u32) {
    let all: Vec<Identity> = (0..3).map(agent).collect();
    let (h, x, y) = (&all[0], &all[1], &all[2]);
    let mut state = founded(&all);
    let mut rem = [3u32, 5, 8];
    let mut offences = Vec::new();
    let mut done = None;
    let mut restart_at = None;
    for _ in 0..30 {
        let round = state.next_round;
        let mut msgs = Vec::new();
        if round == 2 {
            msgs.push(restart_join(h, round));
            if claim_sent {
                msgs.push(claim(h, round, rem[0]));
            }
            rem[0] = 3;
        } else {
            msgs.extend(truthful(&state, h, rem[0], 10));
        }
        msgs.extend(truthful(&state, x, rem[1], 10));
        msgs.extend(truthful(&state, y, rem[2], 10));
        let outcome = resolve(&mut state, msgs);
        if round == 2 {
            restart_at = Some(used(&state, h));
        }
        offences.extend(
            outcome
                .offences
                .iter()
                .filter(|(id, _)| *id == h.id())
                .map(|(_, o)| *o),
        );
        if let Some(w) = outcome.winner {
            let i = all.iter().position(|a| a.id() == w).unwrap();
            rem[i] -= 1;
            if i == 0 && restart_at.is_some() && rem[0] == 0 {
                done = Some(round);
            }
        }
        if rem.iter().all(|r| *r == 0) {
            break;
        }
    }
    let m = &state.members[&h.id()];
    (done, offences, m.trust, m.bought)
}

/// Attack 5 (restart, step 2 before step 3). A daemon that crashes after sending its
/// round's claim and restarts within the round sends its restart join for that same round
/// (`Engine::job_restarted` at start-up, phase Announce): the record takes the join (step 2,
/// the last claim cleared) and then the lost job's claim (step 3) as the *first claim of the
/// new job*. The honest member's next claim, the truth of its new job, is a lie.
#[test]
fn an_honest_restart_after_its_claim_went_out_is_not_charged() {
    let clean = restart_after_claim(false);
    let hit = restart_after_claim(true);
    println!(
        "restart before its claim: done {:?} offences {:?} trust {} debt {}",
        clean.0, clean.1, clean.2, clean.3
    );
    println!(
        "restart after its claim:  done {:?} offences {:?} trust {} debt {}",
        hit.0, hit.1, hit.2, hit.3
    );
    assert!(clean.1.is_empty());
    assert!(
        hit.1.is_empty(),
        "honest member charged {:?}; done {:?} against {:?}, trust {} against {}",
        hit.1,
        hit.0,
        clean.0,
        hit.2,
        clean.2
    );
}

// ----- attack 2: a repaired liar's non-lie offence -----

/// R (2 slots) with one lie on its record, `lies`, at full trust, A (3) and B (8); R bids
/// 30, the others 10. In round 1 R crashes between its commit and its reveal (`Withheld`,
/// trust to 0.25: no lie). R's done round.
fn repaired_liar_withholds(lies: u32) -> (Option<u64>, u64) {
    let all: Vec<Identity> = (0..3).map(agent).collect();
    let mut state = founded(&all);
    {
        let r = state.members.get_mut(&all[0].id()).unwrap();
        r.trust = PPM;
        r.offences.lies = lies;
    }
    let mut rem = [2u32, 3, 8];
    let mut done = None;
    let mut ranked_longest = 0;
    for _ in 0..20 {
        let round = state.next_round;
        let mut msgs = Vec::new();
        if round == 1 {
            let (commit, _) = sealed_bid(&all[0], round, 30, None, 30);
            msgs.extend([claim(&all[0], round, 2), commit]);
        } else {
            msgs.extend(truthful(&state, &all[0], rem[0], 30));
        }
        msgs.extend(truthful(&state, &all[1], rem[1], 10));
        msgs.extend(truthful(&state, &all[2], rem[2], 10));
        let outcome = resolve(&mut state, msgs);
        if outcome
            .ranking
            .iter()
            .any(|c| c.id == all[0].id() && c.claim > rem[0])
        {
            ranked_longest += 1;
        }
        if let Some(w) = outcome.winner {
            let i = all.iter().position(|a| a.id() == w).unwrap();
            rem[i] -= 1;
            if i == 0 && rem[0] == 0 {
                done = Some(round);
            }
        }
        if rem.iter().all(|r| *r == 0) {
            break;
        }
    }
    (done, ranked_longest)
}

/// Attack 2, kept as the rule's intent. A member whose one lie is long repaired (trust back
/// at 1.0) that then crashes between commit and reveal (`Withheld`) is below 0.5 again and,
/// its old lie on record, not believed until honest rounds repair it: a liar's credibility
/// follows its trust, whatever offence took it below the line (docs/PROTOCOL.md §5).
#[test]
fn a_repaired_liar_that_offends_again_is_not_believed_until_repaired() {
    let clean = repaired_liar_withholds(0);
    let old_lie = repaired_liar_withholds(1);
    println!("withheld, no lie on record: done {:?} (rounds ranked above its claim {}); one old lie: done {:?} ({})", clean.0, clean.1, old_lie.0, old_lie.1);
    assert_eq!(
        clean.1, 0,
        "a member that never lied is ranked on its claim"
    );
    assert!(
        old_lie.1 > 0,
        "the old liar is ranked above its claim again"
    );
    assert!(old_lie.0 > clean.0, "and it costs it turns");
}

// ----- attack 3: the longest claim set by a member that never competes -----

/// Floored liar L (2 slots, trust at the floor, one lie) with ample credits bids 2,000
/// (200x an honest bid) against H1 (5) and H2 (6) bidding 10; a fourth member S claims
/// `s_claim` every round (consistent: it never wins) and bids 0. L's done round and the
/// price of round 1.
fn liar_against_long_claim(s_claim: u32) -> (Option<u64>, u64, Option<AgentId>) {
    let all: Vec<Identity> = (0..4).map(agent).collect();
    let mut state = founded(&all);
    {
        let l = state.members.get_mut(&all[0].id()).unwrap();
        l.trust = TRUST_FLOOR;
        l.offences.lies = 1;
        l.credits = 1_000_000;
    }
    let mut rem = [2u32, 5, 6];
    let mut done = None;
    let mut first = (0, None);
    for _ in 0..20 {
        let round = state.next_round;
        let mut msgs = Vec::new();
        msgs.extend(truthful(&state, &all[0], rem[0], 2_000));
        msgs.extend(truthful(&state, &all[1], rem[1], 10));
        msgs.extend(truthful(&state, &all[2], rem[2], 10));
        msgs.extend(bid_turn(&all[3], round, s_claim, 0));
        let outcome = resolve(&mut state, msgs);
        if round == 1 {
            first = (outcome.price, outcome.winner);
        }
        if let Some(w) = outcome.winner {
            if let Some(i) = all[..3].iter().position(|a| a.id() == w) {
                rem[i] -= 1;
                if i == 0 && rem[0] == 0 {
                    done = Some(round);
                }
            }
        }
        if rem.iter().all(|r| *r == 0) {
            break;
        }
    }
    (done, first.0, first.1)
}

/// Attack 3. The longest claim is taken over every claim of the round, bids or not: one
/// member that claims the wire's largest claim (1,000,000, consistently, bidding 0: no lie,
/// no cost, it never wins) makes every floored liar's claim 1,000,000, so that no bid can buy
/// it a slot (docs §5: "its bid must be a hundred times an honest one to win"), and sets the
/// second price of rounds where a liar is the runner-up.
#[test]
#[ignore = "known limit: a member in good standing with a long claim (consistent, bidding 0) sets a liar's rank; the bid a liar needs scales with the longest credible claim, not a fixed 100x"]
fn a_member_that_never_competes_does_not_set_a_liars_rank() {
    let normal = liar_against_long_claim(6);
    let inflated = liar_against_long_claim(1_000_000);
    println!(
        "S claims 6: liar done {:?}, round-1 price {} winner {:?}",
        normal.0,
        normal.1,
        normal.2.map(|_| ())
    );
    println!(
        "S claims 1e6: liar done {:?}, round-1 price {} winner {:?}",
        inflated.0,
        inflated.1,
        inflated.2.map(|_| ())
    );
    assert_eq!(
        inflated.0, normal.0,
        "the liar's done round moved with S's claim"
    );
}

// ----- attack 4: the coalition backs a claim the rule does not believe -----

/// Coalition {L, H} (pledge 50) formed in round 1 (no bids then). From round 2, L (trust
/// 0.125, one lie on record) claims 1, H claims 3, outsider O claims 1; all bid 10. L, the
/// shortest ranked claim, is the coalition's beneficiary (step 6) but is ranked on the longest
/// claim (step 5). `h_backs_l`: H gives L its pledge; otherwise L backs H. Round 2's winner,
/// and H's offences.
fn coalition_with_a_liar(h_backs_l: bool) -> (Option<AgentId>, Vec<Offence>) {
    let all: Vec<Identity> = (0..3).map(agent).collect();
    let (l, h, o) = (&all[0], &all[1], &all[2]);
    let mut state = founded(&all);
    let (_, [offer, accept]) = propose_and_accept(
        l,
        h,
        1,
        CoalitionProposal {
            partners: vec![h.id()],
            terms: String::new(),
            duration_rounds: 5,
            pledge: 50,
        },
    );
    resolve(&mut state, vec![offer, accept]);
    {
        let m = state.members.get_mut(&l.id()).unwrap();
        m.trust = INITIAL_TRUST / 4;
        m.offences.lies = 1;
    }
    let round = state.next_round;
    let mut msgs = vec![claim(l, round, 1), claim(h, round, 3), claim(o, round, 1)];
    let support = |to: &Identity| {
        Some(Support {
            beneficiary: to.id(),
            amount: 50,
        })
    };
    let (lc, lr) = sealed_bid(l, round, 10, if h_backs_l { None } else { support(h) }, 60);
    let (hc, hr) = sealed_bid(h, round, 10, if h_backs_l { support(l) } else { None }, 60);
    let (oc, or) = sealed_bid(o, round, 10, None, 10);
    msgs.extend([lc, lr, hc, hr, oc, or]);
    let outcome = resolve(&mut state, msgs);
    let h_off = outcome
        .offences
        .iter()
        .filter(|(id, _)| *id == h.id())
        .map(|(_, o)| *o)
        .collect();
    (outcome.winner, h_off)
}

/// Attack 4. Step 6 names the coalition's beneficiary by the ranked claim before step 5's
/// longest-claim rule: the partners must back a member the rule ranks as not credible.
#[test]
fn a_coalition_is_not_bound_to_back_a_claim_the_rule_does_not_believe() {
    let all: Vec<Identity> = (0..3).map(agent).collect();
    let name = |w: Option<AgentId>| {
        w.map(|w| ["L", "H", "O"][all.iter().position(|a| a.id() == w).unwrap()])
    };
    let (w1, off1) = coalition_with_a_liar(true);
    let (w2, off2) = coalition_with_a_liar(false);
    println!(
        "H backs L: winner {:?}, H charged {off1:?}; L backs H: winner {:?}, H charged {off2:?}",
        name(w1),
        name(w2)
    );
    assert!(
        off2.is_empty(),
        "H charged {off2:?} for not backing a member ranked as not credible"
    );
}
