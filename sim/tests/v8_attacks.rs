//! A reviewer's attacks on protocol version 8's "lying must not pay" (docs/PROTOCOL.md
//! §4–5): rank debt (`MemberRecord::bought`), restart debt, slowed repair, and the pledge
//! beneficiary by ranked claim. Played through `slotmesh_proto::resolve_round` with the
//! harness of `mechanism_attacks.rs` (honest members are the agent crate's real, truthful
//! cooperative `Heuristic`), and with a second driver here that adds what that harness lacks:
//! honest members that arrive over time (a queue in which a long job waits), and an honest
//! member whose job crashes and restarts.
//!
//! Each test asserts the property that should hold, so a failing test is an attack that
//! works; each test's comment says what it found on the first version 8 (commit 1b7335b)
//! and what holds now. Ten of sixteen worked then. Fixed since: every slot won since the
//! member's own word last set the expectation is charged (`ClaimRecord::anchor_used`, b1-b3),
//! nothing is owed when a coalition member equivocates or leaves (a1, a2), a restarted member
//! takes no turn until the record counts its restart (`Engine::speaking`, a4), and a proven
//! liar below a newcomer's trust is ranked on the round's longest claim. Still working, kept
//! ignored as known limits (docs/PROTOCOL.md §5): gains in the overloaded queue only, a
//! restart as a cheap second first claim, and an honest restart's cost. `survey_v8`
//! (`-- --ignored --nocapture`) prints the figures behind them.
//!
//! The queue: honest jobs of 2 to 8 slots arrive for 300 rounds (seeds 0, 2, 3 at a load of
//! 0.73-0.80; seed 1 at 1.17, overloaded until arrivals stop, as among 1,000 agents
//! where a long job waits thousands of rounds). There a long job waits long enough for a
//! floored liar's repair (150 rounds) to be cheap; the fixed game of `mechanism_attacks.rs`
//! (six founders, about 36 rounds) is too short to show it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mechanism;
mod queue;

use mechanism::*;
use queue::plans::*;
use queue::*;
use slotmesh_proto::{
    resolve_round, LedgerState, MemberRecord, Offence, RoundMessages, SignedMessage,
};

/// Not an assertion: the figures (`-- --ignored --nocapture survey_v8`).
#[test]
#[ignore = "a survey, not a test"]
fn survey_v8() {
    for burst in [8u32, 10, 12] {
        for seed in 0..QUEUE_SEEDS {
            let setup = queue(seed);
            let base = play_stream(burst, &mut Truthful::new(), &setup);
            let (t, missing) = base.honest_turnaround();
            print!(
                "queue seed {seed} burst {burst}: truthful done {:?} (honest mean turnaround {t:.1}, {missing} not done, {} honest)",
                base.attacker_done,
                base.honest_done.len()
            );
            let plans: Vec<(&str, Box<dyn Plan>)> = vec![
                ("cd half", Box::new(Countdown::new(half, false))),
                ("cd half idle", Box::new(Countdown::new(half, true))),
                ("cd 2", Box::new(Countdown::new(two, false))),
                ("cd 2 idle", Box::new(Countdown::new(two, true))),
                ("cd 3 idle", Box::new(Countdown::new(three, true))),
                ("cd 4 idle", Box::new(Countdown::new(four, true))),
                (
                    "fc 1",
                    Box::new(FirstClaim {
                        me: attacker_key(),
                        first: one,
                    }),
                ),
                (
                    "bank .9 cd 3 idle",
                    Box::new(Countdown::banking(three, true, 1, 900_000)),
                ),
                (
                    "bank .9 cd 2",
                    Box::new(Countdown::banking(two, false, 1, 900_000)),
                ),
                (
                    "one when win",
                    Box::new(OneWhenItWouldWin { me: attacker_key() }),
                ),
            ];
            for (name, mut plan) in plans {
                let run = play_stream(burst, plan.as_mut(), &setup);
                let m = run.final_state.members.get(&attacker_key().id()).cloned();
                print!(
                    " | {name}: {:?} off {} debt {:?} ho {}",
                    run.attacker_done,
                    run.offences
                        .iter()
                        .filter(|(_, id, _)| *id == attacker_key().id())
                        .count(),
                    m.map(|m| m.bought),
                    run.honest_offences().len()
                );
            }
            println!();
        }
    }
    // Honest crashes: honest member 3 (5 slots) among the fixed founders, and in the queue
    // the first arrival after round 50.
    for seed in 0..3 {
        for round in [10u64, 11, 12, 14] {
            for (name, run) in crash_runs(&fixed(seed), 3, round) {
                println!(
                    "fixed seed {seed} crash r{round} {name:<22}: done {:?} crashed {:?} honest offences {:?} debt {:?} final trust {:?}",
                    run.honest_done[3],
                    run.crashed,
                    run.honest_offences(),
                    run.honest_debt.last(),
                    run.final_state.members.get(&run.honest_ids[6]).map(|m| m.trust),
                );
            }
        }
    }
    for seed in 0..QUEUE_SEEDS {
        let setup = queue(seed);
        let who = setup.honest.iter().position(|(a, _)| *a > 50).unwrap();
        let (arrive, b) = setup.honest[who];
        for (name, run) in crash_runs(&setup, who, arrive + 3) {
            let m = run.honest_ids[who * 2];
            println!(
                "queue seed {seed} honest {who} (burst {b}, arrives {arrive}) crash r{} {name:<22}: done {:?} crashed {:?} honest offences {} debt {:?} trust {:?}",
                arrive + 3,
                run.honest_done[who],
                run.crashed,
                run.honest_offences().len(),
                run.honest_debt.iter().rfind(|(_, id, _)| *id == m),
                run.final_state.members.get(&m).map(|m| m.trust),
            );
        }
    }
    // The countdown in the fixed game.
    for burst in BURSTS {
        let base = play(burst, &mut Truthful::new());
        for (name, idle) in [("cd half", false), ("cd half idle", true)] {
            let mut plan = Countdown::new(half, idle);
            let run = play(burst, &mut plan);
            let m = run.final_state.members.get(&attacker_key().id()).unwrap();
            println!(
                "fixed burst {burst} {name}: done {:?} (truthful {:?}), understated wins {}, debt {}, charged {:?}",
                run.attacker_done, base.attacker_done, plan.understated_wins, m.bought, plan.charged
            );
        }
    }
}

// ----- (a) honest members charged -----

/// Worked on 1b7335b, fixed (not new in version 8: the beneficiary rule of version 7). The
/// rule names the
/// beneficiary among the claims it takes (`RoundMessages::one`), but honest partners find it
/// with `View::ranked_claim`, which reads `RoundMessages::claims`: the *first* claim held,
/// even when a second, different one makes the turn an equivocation. A partner whose claim
/// is shortest sends two claims in the first round pledges are owed: both honest partners
/// back it, the rule backs the shorter honest partner instead, and the other honest partner
/// is charged `BrokenPledge` (trust halved, the coalition dissolved): seeds 0 and 1, round
/// 2 (in seed 2 an honest partner's own claim of 1 ties the attacker's and wins the id
/// tie-break, so both views agree). On a network an honest member may not even have seen
/// the second claim when it commits, so the rule must owe nothing when a coalition member's
/// claim is equivocated (and `View::ranked_claim` should not read an equivocated claim).
#[test]
fn no_honest_member_is_charged_when_its_beneficiary_equivocates_its_claim() {
    let charged = vanish_charges(Vanish::Equivocate);
    assert!(
        charged.is_empty(),
        "(seed, round, honest index, offence): {charged:?}"
    );
}

/// Worked on 1b7335b, fixed (not new in version 8). The same with a claim and a `Departed`
/// leave in one round:
/// step 3 takes the leave and never ranks the claim, so the leaver is not the rule's
/// beneficiary, while honest partners (reading the claim) back it: one honest partner is
/// charged `BrokenPledge` (seeds 0 and 1, as above). Nothing should be owed in a round in
/// which a coalition member leaves.
#[test]
fn no_honest_member_is_charged_when_its_beneficiary_leaves_as_it_claims() {
    let charged = vanish_charges(Vanish::Leave);
    assert!(
        charged.is_empty(),
        "(seed, round, honest index, offence): {charged:?}"
    );
}

/// Does not work. An honest member whose job crashes says so (`Join::restarted`) in the
/// round of its first claim of the new job, as the engine means it to, at several points of
/// its job, among the founders and in the arrival queue (where it is in coalitions with
/// other honest cooperative members): no honest member is charged anything, no other honest
/// member ever carries debt, and the crashed member's debt is exactly the slots its lost job
/// used.
#[test]
fn an_honest_restart_charges_no_one_and_costs_only_the_lost_slots() {
    let mut cases: Vec<(Setup, usize, u64)> = Vec::new();
    for seed in 0..SEEDS {
        for round in [2u64, 5, 10, 11, 12, 14, 20] {
            for who in [1usize, 3, 5] {
                cases.push((fixed(seed), who, round));
            }
        }
    }
    for seed in 0..QUEUE_SEEDS {
        let setup = queue(seed);
        for after in [51u64, 120, 200] {
            let who = setup.honest.iter().position(|(a, _)| *a > after).unwrap();
            let round = setup.honest[who].0 + 3;
            cases.push((queue(seed), who, round));
        }
    }
    let mut crashed = 0;
    for (mut setup, who, round) in cases {
        setup.crash = Some(Crash {
            who,
            round,
            mode: CrashMode::Restart { lag: 0 },
        });
        let run = play_stream(8, &mut Truthful::new(), &setup);
        assert!(
            run.honest_offences().is_empty(),
            "seed {} honest {who} crash r{round}: {:?}",
            setup.seed,
            run.honest_offences()
        );
        let me = run.honest_ids[who * 2];
        let others: Vec<_> = run
            .honest_debt
            .iter()
            .filter(|(_, id, _)| *id != me)
            .collect();
        assert!(others.is_empty(), "debt of others: {others:?}");
        if let Some((_, lost)) = run.crashed {
            crashed += 1;
            let debt = run.final_state.members.get(&me).unwrap().bought;
            assert_eq!(
                debt, lost,
                "seed {} honest {who} crash r{round}",
                setup.seed
            );
        }
    }
    assert!(crashed > 40, "only {crashed} crashes happened");
}

/// Worked on 1b7335b; fixed in the engine, which this driver now follows (a restarted member
/// takes no turn until the record counts its restart; `membership_engine_attacks.rs` tests
/// the engine). It was: (a restart's join and its first claim are two messages; the rule is exact only
/// when both land in the same round). An honest member whose job crashed claims its new
/// truth (the whole job again) in the round its restart join misses (late or lost; the
/// engine sends the join every round until it counts, but nothing holds the claim back):
/// the claim is above what the record expects, with a slot won since, so the honest member
/// is charged `Lie { bought: 1 }` (trust to the floor, for good: a lie slows its repair)
/// and gets 1 slot of debt; the join taken a round later adds the lost job's slots again,
/// so that slot is charged twice (debt = slots lost + 1). Fixed game, 5-slot job crashing
/// at round 11 / 12 / 14: done 36 / 37 / 39 against 28 / 29 / 39 with the join on time (14
/// without a crash); queue (seeds 0-3): 121 / 210 / 90 / 158 against 83 / 71 / 73 / 78.
#[test]
fn an_honest_restart_whose_join_is_taken_a_round_late_is_not_charged() {
    let mut charged = Vec::new();
    for seed in 0..SEEDS {
        for round in [11u64, 12, 14] {
            let mut setup = fixed(seed);
            setup.crash = Some(Crash {
                who: 3,
                round,
                mode: CrashMode::Restart { lag: 1 },
            });
            let run = play_stream(8, &mut Truthful::new(), &setup);
            let me = run.honest_ids[6];
            let debt = run.final_state.members.get(&me).unwrap().bought;
            let lost = run.crashed.unwrap().1;
            if !run.honest_offences().is_empty() || debt != lost {
                charged.push((seed, round, lost, debt, run.honest_offences()));
            }
        }
    }
    assert!(
        charged.is_empty(),
        "(seed, crash round, slots lost, debt, offences): {charged:?}"
    );
}

// ----- (b) lying that still pays -----

/// Worked on 1b7335b, fixed (`ClaimRecord::anchor_used`). `bought` counted only the slots won
/// since the *last* claim. An under-claimer whose
/// first claim is half its job, and who then claims exactly what the record expects (a
/// countdown: every claim consistent, no lie), wins slot after slot on the understatement;
/// when it finally claims the truth, only the last slot is proven bought: debt 1 for 2 to 5
/// slots bought (fixed game, bursts 3-9). With one idle round first (it claims 1 when the
/// record expects 1 and makes no bid, so no slot is won since that claim), the truth proves
/// nothing bought at all: debt 0, and the lie's severity is by its size
/// (`1 + log2(truth - 1)`), not 8 (the floor).
#[test]
fn every_slot_won_on_a_consistent_understatement_is_charged_to_the_rank() {
    let mut uncharged = Vec::new();
    for burst in BURSTS {
        for idle in [false, true] {
            let mut plan = Countdown::new(half, idle);
            let run = play(burst, &mut plan);
            let m = run.final_state.members.get(&attacker_key().id()).unwrap();
            let floored = plan
                .charged
                .iter()
                .any(|(_, o)| matches!(o, Offence::Lie { bought, .. } if *bought > 0));
            if m.bought < plan.understated_wins || (plan.understated_wins > 0 && !floored) {
                uncharged.push((burst, idle, plan.understated_wins, m.bought, plan.charged));
            }
        }
    }
    assert!(
        uncharged.is_empty(),
        "(burst, idle round, slots won understated, debt, offences): {uncharged:?}"
    );
}

/// Plays `make`'s plan in the arrival queue for `bursts` and returns the cases in which it
/// brought the attacker's job forward: (seed, burst, truthful done, attack done, offences).
fn queue_paid(
    bursts: &[u32],
    make: &dyn Fn() -> Box<dyn Plan>,
) -> Vec<(u64, u32, u64, u64, usize)> {
    let mut paid = Vec::new();
    for &burst in bursts {
        for (seed, base, attack, own) in queue_gains(burst, make) {
            if attack < base {
                paid.push((seed, burst, base, attack, own));
            }
        }
    }
    paid
}

const QUEUE_BURSTS: [u32; 3] = [8, 10, 12];

/// Worked on 1b7335b, and paid a lot. The countdown with an idle round (see above) in a queue where
/// honest jobs of 2-8 slots keep arriving (load 0.73-0.80; seed 1 overloaded): the
/// attacker is ranked as a job of half its size while it counts down, then tells the truth
/// with a lie by size (no floor, no debt) and repairs in tens of rounds. 8 slots: done 67 /
/// 77 / 74 instead of 89 / 385 / 118 (seeds 0, 1, 3); 10 slots: 83 / 104 / 77 instead of
/// 121 / 387 / 158; 12 slots: 110 / 217 / 104 instead of 123 / 389 / 160 (the rule of
/// commit 1b7335b; a first draft ranking any member below trust 0.5 on the round's longest
/// claim gave 81 / 84 / 84, 85 / 104 / 102, 110 / 217 / 104).
/// Now (anchor, liars ranked on the longest claim): pays only in the overloaded queue, seed
/// 1, 8 slots: done 377 instead of 385.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): gains in an overloaded queue, where a long job waits longer than a floored liar's repair"]
fn a_countdown_understatement_with_an_idle_round_does_not_pay() {
    let paid = queue_paid(&QUEUE_BURSTS, &|| Box::new(Countdown::new(half, true)));
    assert!(
        paid.is_empty(),
        "(seed, burst, truthful done, attack done, offences): {paid:?}"
    );
}

/// Worked on 1b7335b where the queue is overloaded. The countdown without the idle round: it is
/// floored when the truth proves its last slot bought, but only 1 slot of debt is charged
/// for the half of its job it bought, and a first liar's way back from the floor is 150
/// rounds, short against a long job's wait: seed 1 (overloaded), 8 / 10 / 12 slots: done
/// 166 / 199 / 270 instead of 385 / 387 / 389 (182 / 199 / 270 with the first longest-claim
/// draft); it costs in seeds 0 and 3 (117 vs 89, 156 vs 118).
/// Now: seed 1, 8 slots: done 361 instead of 385; nothing in the other seeds or sizes.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): gains in an overloaded queue, where a long job waits longer than a floored liar's repair"]
fn a_countdown_understatement_proven_bought_does_not_pay() {
    let paid = queue_paid(&QUEUE_BURSTS, &|| Box::new(Countdown::new(half, false)));
    assert!(
        paid.is_empty(),
        "(seed, burst, truthful done, attack done, offences): {paid:?}"
    );
}

/// WORKS in the overloaded queue only (the open point of docs/PROTOCOL.md §5, "among 1,000
/// agents"): claiming 1 whenever that would win (and the truth otherwise) — the sim's
/// under-claimer — is floored at once and charged its slot, and still an 8-slot job in the
/// overloaded queue completes in round 337 instead of 385: the floor is repaired in 150
/// rounds, and the one slot of debt is nothing against a wait of hundreds of rounds. It does
/// not pay in the queues at load 0.73-0.80.
/// Now: unchanged, seed 1, 8 slots: done 337 instead of 385.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): gains in an overloaded queue, where a long job waits longer than a floored liar's repair"]
fn claiming_one_when_it_would_win_does_not_pay_in_a_queue() {
    let paid = queue_paid(&QUEUE_BURSTS, &|| {
        Box::new(OneWhenItWouldWin { me: attacker_key() })
    });
    assert!(
        paid.is_empty(),
        "(seed, burst, truthful done, attack done, offences): {paid:?}"
    );
}

/// Plays each named plan in the queue and returns the cases in which it paid.
fn plans_paid(plans: &[(&'static str, Make)]) -> Vec<(&'static str, Paid)> {
    let mut paid = Vec::new();
    for (name, make) in plans {
        for p in queue_paid(&QUEUE_BURSTS, make.as_ref()) {
            paid.push((*name, p));
        }
    }
    paid
}

type Make = Box<dyn Fn() -> Box<dyn Plan>>;
/// (seed, burst, truthful done, attack done, offences against the attacker).
type Paid = (u64, u32, u64, u64, usize);

/// WORKS, with no offence on record (the reviewer's version-7 attack that version 8 is said
/// to defeat, `mechanism_attacks.rs`: it does in the fixed game, not in a queue). First
/// claim half the job, consistent down to 0, then a restart instead of the claim that would
/// prove the slots bought, and the truth: restart debt ranks the second half as the whole
/// job, so the ranks it is served at are those of the truth, but in another order (the
/// short ones first, before the queue grows), and the restart is no offence. 8 slots: done
/// 81 instead of 89 (seed 0), 361 instead of 385 (seed 1); restarting twice: 345 instead
/// of 385 (seed 1), 108 instead of 118 (seed 3).
/// Now: unchanged (81 vs 89, 361 vs 385; twice: 345 vs 385, 108 vs 118): a restart is no
/// offence, so the anchor and the liar's rank do not apply.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): a job restart is a cheap second first claim"]
fn understating_then_restarting_instead_of_revealing_does_not_pay_in_a_queue() {
    let plans: Vec<(&str, Make)> = vec![
        (
            "half, restart once",
            Box::new(|| Box::new(UnderstateRestart::new(half, 1, 0))),
        ),
        (
            "half, restart twice",
            Box::new(|| Box::new(UnderstateRestart::new(half, 2, 0))),
        ),
    ];
    let paid = plans_paid(&plans);
    assert!(
        paid.is_empty(),
        "(plan, (seed, burst, truthful done, attack done, offences)): {paid:?}"
    );
}

/// Does not work. Claiming 1, and after every win saying the job restarted to claim 1
/// again: the n-th restart halves trust n times, and each restart adds the slot won to the
/// debt, so the ranked claim grows 2, 3, ... while power falls to the floor.
#[test]
fn restarting_after_every_win_does_not_pay_in_a_queue() {
    let plans: Vec<(&str, Make)> = vec![(
        "restart after every win, claim 1",
        Box::new(|| Box::new(UnderstateRestart::new(one, 64, 0))),
    )];
    let paid = plans_paid(&plans);
    assert!(
        paid.is_empty(),
        "(plan, (seed, burst, truthful done, attack done, offences)): {paid:?}"
    );
}

/// WORKS in the overloaded queue. A long job waits anyway: truthful until its trust is 0.9
/// (honest rounds above 0.5 build a margin that one restart's halving barely dents: power
/// stays about 90%), and while it has won nothing (restart debt 0), it says its job
/// restarted and opens a fresh, unchecked claim of 2 (then proven bought: floor, debt 1) or
/// 3 with the idle round (debt 0). Seed 1, 8 slots: done 253 / 142 instead of 385; 10
/// slots with the idle round: 379 instead of 387. A restart is a second first claim, priced
/// at one halving of a trust that may be banked.
/// Now: seed 1, 8 slots: done 369 (claim 2) and 363 (claim 3, idle) instead of 385.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): a job restart is a cheap second first claim"]
fn banking_trust_then_restarting_to_claim_short_does_not_pay_in_a_queue() {
    let plans: Vec<(&str, Make)> = vec![
        (
            "bank 0.9, restart, claim 2",
            Box::new(|| Box::new(Countdown::banking(two, false, 1, 900_000))),
        ),
        (
            "bank 0.9, restart, claim 3, idle",
            Box::new(|| Box::new(Countdown::banking(three, true, 1, 900_000))),
        ),
    ];
    let paid = plans_paid(&plans);
    assert!(
        paid.is_empty(),
        "(plan, (seed, burst, truthful done, attack done, offences)): {paid:?}"
    );
}

/// Overstating first (three times its job) to bank an expectation, then claiming 1: a claim
/// below the expectation is ranked on the expectation, and the overstatement only costs.
#[test]
fn overstating_then_understating_does_not_pay_in_a_queue() {
    let paid = queue_paid(&QUEUE_BURSTS, &|| {
        Box::new(OverThenUnder { me: attacker_key() })
    });
    assert!(
        paid.is_empty(),
        "(seed, burst, truthful done, attack done, offences): {paid:?}"
    );
}

/// Does not work. A slot won on a first claim of 1, then an absence to reset something:
/// silent until suspended and a plain rejoin (the record's expectation stands: its next
/// claim proves the slot bought, floor and debt 1), a rejoin saying the job restarted (the
/// slot goes to its debt), or a `Departed` leave and a join with the same key (ignored: the
/// job never completes).
#[test]
fn coming_back_after_an_understatement_resets_nothing() {
    for seed in 0..SEEDS {
        for burst in BURSTS {
            let base = play_seeded(burst, &mut Truthful::new(), seed);
            for how in [Return::Rejoin, Return::RejoinRestarted, Return::Departed] {
                let mut plan = ComeBack {
                    me: attacker_key(),
                    how,
                    won: false,
                    gone: false,
                };
                let run = play_seeded(burst, &mut plan, seed);
                let m = run.final_state.members.get(&attacker_key().id()).unwrap();
                assert!(run.honest_offences().is_empty());
                assert!(
                    done(&run) >= done(&base),
                    "seed {seed} burst {burst} {how:?}: {:?} vs {:?}",
                    run.attacker_done,
                    base.attacker_done
                );
                if plan.won && how != Return::Departed {
                    assert!(m.bought >= 1, "seed {seed} burst {burst} {how:?}: debt 0");
                }
                if how == Return::Departed && plan.won {
                    assert_eq!(m.status, slotmesh_proto::MemberStatus::Departed);
                }
            }
        }
    }
}

// ----- u32 saturation -----

/// Does not work. Claims and debts near `u32::MAX` (above the network's `max_claim`, but
/// `resolve_round` takes what it is given): a first claim of `u32::MAX`, a debt of
/// `u32::MAX - 1`, a record expecting `u32::MAX` with slots won since, a restart with
/// `u32::MAX` slots used: nothing panics, nothing wraps, the ranked claim saturates at
/// `u32::MAX` and never falls below the claim kept, and the attacker never outranks an honest
/// claim of 3 at equal bids and power.
#[test]
fn claims_and_debt_near_u32_max_saturate_without_gain() {
    let (s0, a, h) = pair();
    let aid = a.id();
    let set = |f: &dyn Fn(&mut MemberRecord)| {
        let mut s = s0.clone();
        f(s.members.get_mut(&aid).unwrap());
        s
    };
    let huge: [(&str, LedgerState, u32, Vec<SignedMessage>); 5] = [
        ("first claim u32::MAX", s0.clone(), u32::MAX, Vec::new()),
        (
            "debt u32::MAX - 1, claim 1",
            set(&|m| m.bought = u32::MAX - 1),
            1,
            Vec::new(),
        ),
        (
            "expects u32::MAX, won since, claims u32::MAX",
            set(&|m| {
                m.last_claim = Some(slotmesh_proto::ClaimRecord {
                    round: 0,
                    remaining: u32::MAX,
                    used_before: 0,
                    anchor_used: 0,
                });
                m.used_slots = u32::MAX - 2;
            }),
            u32::MAX,
            Vec::new(),
        ),
        (
            "restart with u32::MAX - 1 used, debt u32::MAX - 1, claim 1",
            set(&|m| {
                m.used_slots = u32::MAX - 1;
                m.bought = u32::MAX - 1;
            }),
            1,
            vec![join(&a, 1, true)],
        ),
        (
            "expects 0 after u32::MAX - 1 slots, claim 1",
            set(&|m| {
                m.last_claim = Some(slotmesh_proto::ClaimRecord {
                    round: 0,
                    remaining: 1,
                    used_before: u32::MAX - 2,
                    anchor_used: u32::MAX - 2,
                });
                m.used_slots = u32::MAX - 1;
            }),
            1,
            Vec::new(),
        ),
    ];
    for (name, state, ca, extra) in huge {
        let before = state.members.get(&aid).unwrap().clone();
        let (next, outcome) = duel(&state, &a, ca, &h, 3, extra);
        let after = next.members.get(&aid).unwrap();
        assert!(after.bought >= before.bought, "{name}: debt fell");
        let ranked = outcome
            .ranking
            .iter()
            .find(|c| c.id == aid)
            .map(|c| c.claim);
        // A claim in the round its restart counts is the lost job's: not ranked at all
        // (version 9); any other is ranked on at least what it claims.
        let restarted = after.restarts > before.restarts;
        assert!(
            if restarted {
                ranked.is_none()
            } else {
                ranked.is_some_and(|r| r >= ca)
            },
            "{name}: ranked {ranked:?}"
        );
        assert_eq!(outcome.winner, Some(h.id()), "{name}: {outcome:?}");
    }
}

// ----- (c) an honest restart's cost -----

/// WORKS (a cost, not a theft). An honest member whose job crashes once and says so
/// (`Join::restarted`, in time) pays a trust halving (power 50% for about 23 rounds) and is
/// ranked on its whole job plus the slots it lost: declaring the restart costs far more
/// than leaving and coming back under a fresh key with the same job (which the record
/// cannot tell from a newcomer). Fixed game, honest 5-slot job (done in round 14 without a
/// crash), crashing at round 10 / 11 / 12 / 14 (0 / 1 / 2 / 4 slots used): done 20 / 28 /
/// 29 / 39 with the restart declared (39: last of all), 15-20 / 16 / 17-22 / 19-24 under a
/// fresh key. In the queue (crash 3 rounds after arrival; no crash: 69 / 55 / 61 / 58):
/// restart 83 / 71 / 73 / 78, fresh key 72 / 57 / 73 / 68. (A first draft that ranked any
/// member below trust 0.5 on the longest claim made it worse: 30 / 30 / 30 / 39 and 94 / 78
/// / 80 / 110; only proven liars are now.) The protocol rewards the whitewash over the
/// honest declaration.
/// Now: unchanged (the liars' longest-claim rank spares a restart: it is no lie).
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): declaring a restart costs more than a fresh key; newcomers' dues are the next step"]
fn an_honest_restart_costs_no_more_than_a_fresh_key() {
    let mut worse = Vec::new();
    let mut check = |label: String, setup: &Setup, who: usize, round: u64| {
        let runs = crash_runs(setup, who, round);
        let done_of = |mode: &str| {
            runs.iter()
                .find(|(n, _)| n == mode)
                .map(|(_, r)| r.honest_done[who].unwrap_or(u64::MAX))
                .unwrap()
        };
        let plain = done_of("None");
        let restart = done_of("Some(Restart { lag: 0 })");
        let fresh = done_of("Some(FreshKey)");
        if restart > fresh {
            worse.push((label, plain, restart, fresh));
        }
    };
    for seed in 0..SEEDS {
        for round in [10u64, 11, 12, 14] {
            check(
                format!("fixed seed {seed} r{round}"),
                &fixed(seed),
                3,
                round,
            );
        }
    }
    for seed in 0..QUEUE_SEEDS {
        let setup = queue(seed);
        let who = setup.honest.iter().position(|(a, _)| *a > 50).unwrap();
        let round = setup.honest[who].0 + 3;
        check(format!("queue seed {seed} r{round}"), &setup, who, round);
    }
    assert!(
        worse.is_empty(),
        "(case, done without crash, done restart declared, done fresh key):\n{worse:#?}"
    );
}

// ----- (d) determinism -----

/// Does not work. Rounds taken from runs in which members carry debt (the proven-bought
/// countdown attacker, a banking restarter, an honest member that restarted), with extra
/// messages on top (the attacker's restart join, three different claims of the attacker,
/// every message twice): resolved from 40 permutations and the reverse order of the same
/// messages, every state and outcome is the same.
#[test]
fn resolution_is_independent_of_message_order_with_debt() {
    let mut snapshots = Vec::new();
    for seed in 0..2 {
        let mut setup = queue(seed);
        setup.snapshots = 3;
        snapshots.extend(play_stream(10, &mut Countdown::new(half, false), &setup).snapshots);
        snapshots.extend(
            play_stream(10, &mut Countdown::banking(two, false, 1, 900_000), &setup).snapshots,
        );
        let mut crash = fixed(seed);
        crash.snapshots = 3;
        crash.crash = Some(Crash {
            who: 3,
            round: 12,
            mode: CrashMode::Restart { lag: 0 },
        });
        snapshots.extend(play_stream(8, &mut Truthful::new(), &crash).snapshots);
    }
    assert!(snapshots.len() >= 12, "{} snapshots", snapshots.len());
    let a = attacker_key();
    let mut checked = 0;
    for (state, log) in &snapshots {
        let r = state.next_round;
        let variants: Vec<Vec<SignedMessage>> = vec![
            log.clone(),
            [log.clone(), vec![join(&a, r, true)]].concat(),
            [
                log.clone(),
                vec![claim(&a, r, 1), claim(&a, r, 2), claim(&a, r, 3)],
            ]
            .concat(),
            [log.clone(), log.clone()].concat(),
        ];
        for messages in variants {
            let resolve = |order: &[usize]| {
                let mut set = RoundMessages::new(r);
                for i in order {
                    set.insert(messages[*i].clone());
                }
                resolve_round(state, &set)
            };
            let n = messages.len();
            let (base, base_outcome) = resolve(&(0..n).collect::<Vec<_>>());
            let mut orders: Vec<Vec<usize>> = (0..40).map(|k| shuffled(n, k)).collect();
            orders.push((0..n).rev().collect());
            for order in orders {
                let (next, outcome) = resolve(&order);
                assert_eq!(next.digest(), base.digest(), "round {r}");
                assert!(next == base && outcome == base_outcome, "round {r}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1_000);
}
