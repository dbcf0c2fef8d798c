//! A replica restarted in the middle of a round's agreement (a daemon killed and started
//! again on its data dir): it resumes as the acceptor and proposer it was from the promises,
//! proposals and votes it stored before sending them (`Engine::resume_agreement`), so it
//! takes part in that round again without contradicting what it signed; without them it sits
//! the round out, and with two voters the round can then never end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use net::*;
use slotmesh_proto::{Phase, Stage};

/// Runs until replica `h` is in the turns of `round` (it claimed, it signed nothing in the
/// round's agreement yet).
fn run_until_in_turns(net: &mut Net, h: usize, round: u64) -> bool {
    net.run_until(net.now + 60 * TIMEOUT_MS, |net| {
        [Phase::Negotiate, Phase::Coalition, Phase::Commit]
            .iter()
            .any(|phase| in_phase(net, h, round, *phase))
    })
}

/// Two voters; one is restarted in the turns of round 2 (the CI's stall: three daemons, one
/// finished and left, another killed and started again). Resumed, it votes in that round
/// (it signed nothing in its agreement before) and both go on; sitting the round out (the
/// restart guard alone), it leaves one vote of the two needed, and the round never ends.
#[test]
fn two_voters_one_restarted_in_its_turns_both_go_on() {
    for seed in 0..6u64 {
        let h = (seed % 2) as usize;
        for resume in [true, false] {
            let mut net = Net::new(2, seed, Box::new(|_, _, _, _| Fate::Deliver));
            assert!(run_until_in_turns(&mut net, h, 2), "seed {seed}");
            net.restart(h, resume);
            let went_on = net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
                (0..2).all(|h| net.final_round_of(h) >= Some(5))
            });
            net.check_agreement();
            net.check_records();
            net.check_no_contradictions();
            if resume {
                assert!(went_on, "seed {seed}: resumed, yet the swarm stalled");
            } else {
                assert!(
                    (0..2).all(|h| net.final_round_of(h) == Some(1)),
                    "seed {seed}: round 2 ended without the restarted voter"
                );
            }
        }
    }
}

/// The replica that voted in the outcome of `round` and is still in it (its vote has not
/// completed a certificate there), if any.
fn voted_in_outcome(net: &Net, round: u64) -> Option<usize> {
    (0..net.engines.len()).find(|h| {
        round_of(net, *h) == round
            && net.votes.iter().any(|(r, stage, voter, _, _)| {
                *r == round && *stage == Stage::Outcome && *voter == net.ids[*h]
            })
    })
}

/// Two voters; the first to vote in the outcome of round 2 is restarted right after its
/// vote, which the other may not hold yet. Resumed, it counts that vote again, never votes
/// otherwise in that attempt, and both go on.
#[test]
fn two_voters_one_restarted_after_its_vote_both_go_on() {
    for seed in 0..6u64 {
        let mut net = Net::new(2, seed, Box::new(|_, _, _, _| Fate::Deliver));
        let voted = net.run_until(net.now + 60 * TIMEOUT_MS, |net| {
            voted_in_outcome(net, 2).is_some()
        });
        let h = voted_in_outcome(&net, 2);
        assert!(voted && h.is_some(), "seed {seed}: nobody voted");
        net.restart(h.unwrap_or(0), true);
        let went_on = net.run_until(net.now + 100 * TIMEOUT_MS, |net| {
            (0..2).all(|h| net.final_round_of(h) >= Some(5))
        });
        net.check_agreement();
        net.check_records();
        net.check_no_contradictions();
        assert!(went_on, "seed {seed}: the swarm stalled");
    }
}

/// Honest engines under loss, long delays and every vote delivered again and again, with
/// replicas restarted at random moments of a round (its turns, seal or outcome, any
/// attempt) and resumed from what it stored: no replica ever holds proof against anyone, no
/// record punishes anyone, agreement holds, and every replica goes on.
#[test]
fn restarted_replicas_resume_without_contradicting_themselves() {
    use rand::{Rng, SeedableRng};
    for seed in 0..16u64 {
        let n = 2 + (seed % 4) as usize;
        let mut fate = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let nemesis: Nemesis = Box::new(move |_from, _to, _m, _now| match fate.gen_range(0..30) {
            0 => Fate::Drop,
            1 | 2 => Fate::Delay(fate.gen_range(0..3 * TIMEOUT_MS)),
            _ => Fate::Deliver,
        });
        let mut net = Net::new(n, seed, nemesis);
        net.last_decided_round = 12;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let mut restarts = 0;
        let all_at = |net: &Net, round: u64| (0..n).all(|h| net.final_round_of(h) >= Some(round));
        for _ in 0..1_000 {
            if all_at(&net, 10) || net.now > 400 * TIMEOUT_MS {
                break;
            }
            let step = rng.gen_range(1..4 * TIMEOUT_MS / 2);
            let until = net.now + step;
            net.run_until(until, |net| all_at(net, 10));
            net.now = net.now.max(until);
            if restarts < 6 && rng.gen_range(0..3) == 0 {
                net.restart(rng.gen_range(0..n), true);
                restarts += 1;
            }
            net.publish_all_votes();
            net.check_no_contradictions();
        }
        assert!(restarts > 0, "seed {seed}: no restart happened");
        net.check_agreement();
        net.check_records();
        net.check_no_contradictions();
        assert!(all_at(&net, 10), "seed {seed}: the replicas did not go on");
    }
}
