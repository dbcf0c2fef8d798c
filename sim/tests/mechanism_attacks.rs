//! Attacks on the "lying must not pay" mechanism of protocol versions 7 and 8 (docs/PROTOCOL.md §4–5),
//! played through the public API: honest members are the agent crate's real `Heuristic`
//! (cooperative, truthful; jobs of 2 to 7 slots, as in `sim/tests/adversaries.rs`), the
//! attacker is a scripted plan around the same heuristic that overrides its claims, bids,
//! restarts, leaves, keys and coalition moves. Rounds are resolved with
//! `slotmesh_proto::resolve_round` directly (no network), every phase in order: announce
//! (honest claims first, then the attacker, who may look at them), negotiate, coalition,
//! commit and reveal.
//!
//! Each test asserts the property that should hold (the attack does not bring the attacker's
//! job forward, or no honest member is charged), so a failing test is an attack that works.
//! Written by a reviewer with a fresh context against the first version 7: five attacks
//! worked; the three that got honest members charged are fixed, and of the two that still
//! paid, version 8 defeats the job restart that hid an understatement; the fresh key per
//! slot is ignored as a known limit (docs/PROTOCOL.md §5).
//! Honest strategies are not fed `observe` (no certified rounds here): that only affects
//! their private opinions of offenders, never their claims or bids.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mechanism;

use mechanism::*;
use slotmesh_proto::{LeaveReason, Offence};

#[test]
fn an_understated_first_claim_then_the_truth_does_not_pay() {
    let one = gains(&BURSTS, &|| {
        Box::new(FirstClaim {
            me: attacker_key(),
            first: one,
        })
    });
    let half = gains(&BURSTS, &|| {
        Box::new(FirstClaim {
            me: attacker_key(),
            first: half,
        })
    });
    assert!(
        one.is_empty() && half.is_empty(),
        "claim 1: {one:?}; claim half: {half:?}"
    );
}

#[test]
fn alternating_truthful_and_lying_claims_does_not_pay() {
    let paid = gains(&BURSTS, &|| Box::new(Alternate { me: attacker_key() }));
    assert!(paid.is_empty(), "{paid:?}");
}

#[test]
fn claiming_one_only_when_it_would_win_does_not_pay() {
    let paid = gains(&BURSTS, &|| {
        Box::new(OneWhenItWouldWin { me: attacker_key() })
    });
    assert!(paid.is_empty(), "{paid:?}");
}

#[test]
fn overstating_then_understating_does_not_pay() {
    let paid = gains(&BURSTS, &|| Box::new(OverThenUnder { me: attacker_key() }));
    assert!(paid.is_empty(), "{paid:?}");
}

/// Claims 1, and after each win says its job restarted (instead of proving the slot bought)
/// and claims 1 again: the n-th restart's n halvings put it at the floor in four.
#[test]
fn restarting_after_every_win_to_claim_one_again_does_not_pay() {
    let paid = gains(&BURSTS, &|| Box::new(UnderstateRestart::new(one, 64, 0)));
    assert!(paid.is_empty(), "{paid:?}");
}

/// The first claim (unchecked) is half the job; the attacker is ranked as a job of half its
/// size until the record expects nothing more; then, instead of the claim that would prove
/// the slots bought (trust to the floor), it says its job restarted (one halving, not an
/// offence) and claims the truth, honestly from then on. On version 7 the bought slots were
/// never proven: the longest job (8), last by SRPT in round 35, completed in round 22 with
/// no offence on its record. Version 8 charges a restarted job's used slots to its rank
/// (`MemberRecord::bought`): the second half is ranked as the whole job.
#[test]
fn understating_then_restarting_instead_of_revealing_does_not_pay() {
    let half = gains(&BURSTS, &|| Box::new(UnderstateRestart::new(half, 1, 0)));
    let less_one = gains(&BURSTS, &|| {
        Box::new(UnderstateRestart::new(less_one, 1, 0))
    });
    assert!(
        half.is_empty() && less_one.is_empty(),
        "(seed, burst, truthful round, attack round, wins, offences):\n half then restart: {half:?}\n truth-1 then restart: {less_one:?}"
    );
}

/// Whitewashing: every key's first claim is unchecked, so a job that moves to a fresh key
/// (joined a round before) after each slot won on a claim of 1 is ranked first every round,
/// at full power, with 1,000 fresh credits a key, and the record holds no offence at all
/// (a `Completed` leave where the record expects 0 is consistent). docs/PROTOCOL.md §5
/// lists "one understatement per key" as open; this measures what it is worth.
#[test]
#[ignore = "known limit (docs/PROTOCOL.md §5): a fresh key's first claim is unchecked; newcomers' dues are the next step"]
fn a_fresh_key_for_every_slot_does_not_pay() {
    let departed = gains(&BURSTS, &|| Box::new(FreshKeys::new(LeaveReason::Departed)));
    let completed = gains(&BURSTS, &|| {
        Box::new(FreshKeys::new(LeaveReason::Completed))
    });
    assert!(
        departed.is_empty() && completed.is_empty(),
        "departed: {departed:?}\ncompleted: {completed:?}"
    );
}

/// At the trust floor, bidding all 1,000 starting credits and more every round: the
/// liar must not do better than a truthful member bidding the same way (money buys priority
/// by design; lying on top of it must not).
#[test]
fn bidding_everything_at_the_floor_does_not_beat_the_truth_with_the_same_bids() {
    for seed in 0..SEEDS {
        for burst in BURSTS {
            let truth = play_seeded(burst, &mut TruthAllIn { me: attacker_key() }, seed);
            let liar = play_seeded(burst, &mut LiarAllIn { me: attacker_key() }, seed);
            assert!(
                done(&liar) >= done(&truth),
                "seed {seed}, burst {burst}: liar {:?} truthful {:?}",
                liar.attacker_done,
                truth.attacker_done
            );
            assert!(liar.honest_offences().is_empty());
        }
    }
}

/// Offences charged to honest members: (round, honest index, offence).
type Charges = Vec<(u64, usize, Offence)>;
/// Each victim's completion: (honest index, round in the truthful run, round in the attack).
type Delays = Vec<(usize, Option<u64>, Option<u64>)>;

/// Plays a coalition trick and returns the offences charged to honest members, with the
/// round each victim's job completed against its round in the truthful run.
fn honest_charges(trick: Trick, burst: u32) -> (Charges, Delays) {
    let mut all = Vec::new();
    let mut delays = Vec::new();
    for seed in 0..SEEDS {
        let base = play_seeded(burst, &mut Truthful::new(), seed);
        let mut plan = CoalitionTrick::new(trick);
        let run = play_seeded(burst, &mut plan, seed);
        // A pledge no partner can keep is refused: the coalition never forms, which
        // defeats the trick as well.
        assert!(
            plan.formed.is_some() || trick == Trick::BigPledge,
            "seed {seed}: the coalition never formed"
        );
        let charged = run.honest_offences();
        for (_, victim, _) in &charged {
            delays.push((*victim, base.honest_done[*victim], run.honest_done[*victim]));
        }
        all.extend(charged);
    }
    (all, delays)
}

/// Found on the first version 7: an honest heuristic accepted any pledge, and backed its
/// beneficiary with `min(pledge, credits - own bid)`; the rule owes `min(pledge, credits)`.
/// Now it refuses a pledge it could not keep while bidding its income, and gives what it
/// pledged before it bids. A proposer that
/// names a pledge above the partners' credits gets every partner that is not the
/// beneficiary charged a broken pledge (trust halved, power 50%) in the first round
/// pledges are owed — and, being the beneficiary on an understated first claim with a bid
/// of 0, its slot is paid for by their support.
#[test]
fn no_honest_member_is_charged_for_a_pledge_it_could_not_keep() {
    let (charged, delays) = honest_charges(Trick::BigPledge, 8);
    assert!(charged.is_empty(), "charged (round, honest index, offence): {charged:?}; (victim, done truthful run, done attack run): {delays:?}");
}

/// Found on the first version 7: the beneficiary was chosen among members with a valid bid,
/// after the reveals; partners commit their support before they can know who that is. Now
/// it is the shortest ranked claim (known before anyone commits), and when it makes no
/// valid bid nothing is owed that round. A member with the shortest claim
/// (truthful: a job of 1) that makes no commit in the first round pledges are owed (a
/// crash does the same; it is only a miss, no offence) moves the beneficiary to another
/// partner, and every partner that backed it is charged a broken pledge.
#[test]
fn no_honest_member_is_charged_when_its_beneficiary_makes_no_bid() {
    let (charged, delays) = honest_charges(Trick::NoShow, 1);
    assert!(charged.is_empty(), "charged (round, honest index, offence): {charged:?}; (victim, done truthful run, done attack run): {delays:?}");
}

/// Found on the first version 7: a partner that says its job restarted (`Join::restarted`)
/// and claims 1 in the round pledges are first owed is ranked on 1 by the rule (its history
/// is cleared in step 2), but on its old expectation by `View::ranked_claim` (the state
/// before the round): the honest partner backed nobody and was charged a broken pledge. Now
/// nothing is owed to a coalition in a round one of its members restarted.
#[test]
fn no_honest_member_is_charged_when_a_partner_restarts() {
    let (charged, delays) = honest_charges(Trick::Restart, 8);
    assert!(charged.is_empty(), "charged (round, honest index, offence): {charged:?}; (victim, done truthful run, done attack run): {delays:?}");
}

/// Not an assertion: the table of every plan against the truthful heuristic
/// (`cargo test -p slotmesh-sim --test mechanism_attacks survey -- --nocapture`).
#[test]
fn survey() {
    for burst in [3, 4, 6, 8] {
        let base = play(burst, &mut Truthful::new());
        show("truthful", burst, &base, &base);
        let plans: Vec<(&str, Box<dyn Plan>)> = vec![
            (
                "first claim 1",
                Box::new(FirstClaim {
                    me: attacker_key(),
                    first: one,
                }),
            ),
            (
                "first claim half",
                Box::new(FirstClaim {
                    me: attacker_key(),
                    first: half,
                }),
            ),
            ("alternate", Box::new(Alternate { me: attacker_key() })),
            (
                "one when it would win",
                Box::new(OneWhenItWouldWin { me: attacker_key() }),
            ),
            (
                "over then under",
                Box::new(OverThenUnder { me: attacker_key() }),
            ),
            (
                "restart each win (1)",
                Box::new(UnderstateRestart::new(one, 64, 0)),
            ),
            (
                "half, restart once",
                Box::new(UnderstateRestart::new(half, 1, 0)),
            ),
            (
                "half, restart twice",
                Box::new(UnderstateRestart::new(half, 2, 0)),
            ),
            (
                "third, restart once",
                Box::new(UnderstateRestart::new(third, 1, 0)),
            ),
            (
                "t-1, restart once",
                Box::new(UnderstateRestart::new(less_one, 1, 0)),
            ),
            (
                "bank 10, half, 2 restarts",
                Box::new(UnderstateRestart::new(half, 2, 10)),
            ),
            (
                "fresh keys (departed)",
                Box::new(FreshKeys::new(LeaveReason::Departed)),
            ),
            (
                "fresh keys (completed)",
                Box::new(FreshKeys::new(LeaveReason::Completed)),
            ),
            ("liar all in", Box::new(LiarAllIn { me: attacker_key() })),
            ("truth all in", Box::new(TruthAllIn { me: attacker_key() })),
        ];
        for (name, mut plan) in plans {
            let run = play(burst, plan.as_mut());
            show(name, burst, &run, &base);
        }
    }
    for (trick, burst) in [
        (Trick::BigPledge, 8),
        (Trick::NoShow, 1),
        (Trick::Restart, 8),
    ] {
        let base = play(burst, &mut Truthful::new());
        let run = play(burst, &mut CoalitionTrick::new(trick));
        show(&format!("{trick:?}"), burst, &run, &base);
    }
}
