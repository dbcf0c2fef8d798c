//! Agreement under omission faults and withheld votes, through the engine's own API: a
//! handful of replicas on a seeded, adversarial in-test network (one-way links, messages
//! that reach one peer only, votes published late). The invariant checked is the strongest
//! one: from every vote any replica ever signed, no two certificates for different digests
//! of one round can be assembled, and every replica that finalizes a round stores the same
//! digest.

mod common;
mod net;

use common::*;
use net::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{Limits, PayloadKind, SignedMessage};

#[test]
fn omission_faults_never_make_two_certificates() {
    let n = 5;
    let mut finished = 0;
    let mut runs = 0;
    for seed in 0..4u64 {
        for late in 0..n {
            for reached in (0..n).filter(|r| *r != late) {
                for muted in (0..n).filter(|m| *m != late && *m != reached) {
                    let muted_since = std::rc::Rc::new(std::cell::Cell::new(u64::MAX));
                    let flag = muted_since.clone();
                    let nemesis: Nemesis = Box::new(move |from, to, m, now| {
                        let bid = m.is_some_and(|m| {
                            m.round() == 1
                                && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
                        });
                        if from == late && bid && to != reached {
                            return Fate::Drop;
                        }
                        let vote = m.is_some_and(|m| {
                            m.round() >= 1 && turn_kind(m) == PayloadKind::CheckpointVote
                        });
                        if from == muted && vote {
                            flag.set(flag.get().min(now));
                        }
                        if from == muted && now >= flag.get() {
                            return Fate::Drop;
                        }
                        Fate::Deliver
                    });
                    let mut net = Net::new(n, seed * 100 + (late * 10 + muted) as u64, nemesis);
                    net.run(40 * TIMEOUT_MS);
                    net.check_agreement();
                    net.publish_all_votes();
                    net.check_agreement();
                    net.check_records();
                    net.check_no_contradictions();
                    runs += 1;
                    // The four that are heard finish round 1 and go on.
                    if (0..n)
                        .filter(|h| *h != muted)
                        .all(|h| net.final_round_of(h) >= Some(2))
                    {
                        finished += 1;
                    }
                }
            }
        }
    }
    assert_eq!(finished, runs, "runs in which the heard majority went on");
}

/// No network fault at all: a byzantine bidder shows its commit and reveal to one replica
/// only, and one voter withholds every vote it signs in round 1 for many timeouts, then
/// publishes them all. On the old engine the withheld attempt-0 votes completed a second
/// certificate; here no second certificate can be made.
#[test]
fn a_withheld_vote_published_late_certifies_nothing_new() {
    let n = 5;
    for seed in 0..40u64 {
        let late = (seed % n as u64) as usize;
        let reached = (late + 1 + (seed / 5 % 4) as usize) % n;
        let withholder = (reached + 1 + (seed / 20) as usize) % n;
        if withholder == late {
            continue;
        }
        let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
            let bid = m.is_some_and(|m| {
                m.round() == 1 && matches!(turn_kind(m), PayloadKind::Commit | PayloadKind::Reveal)
            });
            if from == late && bid && to != reached {
                return Fate::Drop;
            }
            let vote =
                m.is_some_and(|m| m.round() == 1 && turn_kind(m) == PayloadKind::CheckpointVote);
            if from == withholder && (vote || m.is_none()) {
                return Fate::Delay(30 * TIMEOUT_MS);
            }
            Fate::Deliver
        });
        let mut net = Net::new(n, seed, nemesis);
        net.run(25 * TIMEOUT_MS);
        net.check_agreement();
        net.publish_all_votes();
        net.check_agreement();
        net.check_records();
        net.check_no_contradictions();
        for h in (0..n).filter(|h| *h != withholder) {
            assert!(
                net.final_round_of(h) >= Some(2),
                "seed {seed}: host {h} stuck"
            );
        }
    }
}

/// Links fail one way at random for several timeouts at a time (a replica hears but is not
/// heard, or the reverse), and agreement messages are delayed by up to several timeouts:
/// agreement always holds, and once links heal every replica goes on.
#[test]
fn one_way_links_and_long_delays_keep_agreement() {
    for seed in 0..40u64 {
        let n = 3 + (seed % 3) as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
        // (from, to, start): the link is cut for 4 timeouts from `start`.
        let cut: Vec<(usize, usize, u64)> = (0..2 * n)
            .map(|_| {
                (
                    rng.gen_range(0..n),
                    rng.gen_range(0..n),
                    rng.gen_range(0..20 * TIMEOUT_MS),
                )
            })
            .collect();
        let mut delays = ChaCha8Rng::seed_from_u64(seed);
        let nemesis: Nemesis = Box::new(move |from, to, m, now| {
            if cut.iter().any(|(a, b, start)| {
                *a == from && *b == to && (*start..*start + 4 * TIMEOUT_MS).contains(&now)
            }) {
                return Fate::Drop;
            }
            if m.is_some_and(|m| m.payload().kind().is_agreement()) && delays.gen_range(0..10) == 0
            {
                return Fate::Delay(delays.gen_range(0..5 * TIMEOUT_MS));
            }
            Fate::Deliver
        });
        let mut net = Net::new(n, seed, nemesis);
        net.run(80 * TIMEOUT_MS);
        net.check_agreement();
        net.publish_all_votes();
        net.check_agreement();
        net.check_records();
        net.check_no_contradictions();
        for h in 0..n {
            assert!(
                net.final_round_of(h) >= Some(4),
                "seed {seed}: host {h} at {:?}: {:?} {:?}; others {:?}",
                net.final_round_of(h),
                net.engines[h].as_ref().map(|e| (e.round(), e.phase())),
                net.engines[h].as_ref().and_then(|e| e.finality()),
                (0..n).map(|j| net.final_round_of(j)).collect::<Vec<_>>()
            );
        }
    }
}

/// An equivocator sends a different claim to every replica (five variants, each replica
/// hearing them in its own order): every replica resolves the turn alike, the round
/// finalizes, and later rounds go on.
#[test]
fn many_variants_of_one_turn_still_finalize_alike() {
    for seed in 0..10u64 {
        let n = 4;
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
        // At once, while the replicas found the swarm: round 1 is the next round, whose
        // messages they hold until it starts.
        let liar = agent((seed % n as u64) as u8);
        let variants: Vec<SignedMessage> = (0..5u32).map(|c| claim(&liar, 1, 10 + c)).collect();
        for to in 0..n {
            let mut order = variants.clone();
            order.rotate_left((to + seed as usize) % variants.len());
            for v in order {
                inject(&mut net, to, v);
            }
        }
        net.run(30 * TIMEOUT_MS);
        net.check_agreement();
        for h in 0..n {
            assert!(net.final_round_of(h) >= Some(3), "seed {seed}: host {h}");
        }
        let first = &net.finals[0][&1];
        assert_eq!(
            first.certificate().attempt,
            0,
            "seed {seed}: variants alone must not cost an attempt"
        );
    }
}

/// Validly signed messages of this swarm from keys that are not members reach some
/// replicas only: they never enter the inputs or the digest, so they cost nothing.
#[test]
fn outsiders_cannot_split_the_vote() {
    for seed in 0..10u64 {
        let n = 4;
        let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
        let outsider = agent(200);
        for to in (0..n).filter(|h| (*h as u64 + seed).is_multiple_of(2)) {
            inject(&mut net, to, claim(&outsider, 1, 1));
            let (commit, reveal) = sealed_bid(&outsider, 1, 5, None, 5);
            inject(&mut net, to, commit);
            inject(&mut net, to, reveal);
        }
        net.run(30 * TIMEOUT_MS);
        net.check_agreement();
        let record = net.finals[0][&1].record();
        assert!(
            record.messages.iter().all(|e| {
                slotmesh_proto::open_envelope(e.clone(), swarm(), &Limits::default())
                    .is_ok_and(|m| m.sender() != outsider.id())
            }),
            "seed {seed}: an outsider's message entered the record"
        );
        assert_eq!(net.finals[0][&1].certificate().attempt, 0, "seed {seed}");
    }
}

/// A founder's join reaches one replica only after that replica closed the founding round
/// without it: whatever each stores verifies, and all agree.
#[test]
fn a_late_founding_join_never_yields_a_record_that_fails() {
    for seed in 0..20u64 {
        let n = 4;
        let late = (seed % n as u64) as usize;
        let slow = ((seed / n as u64 + 1 + late as u64) % n as u64) as usize;
        let nemesis: Nemesis = Box::new(move |from, to, m, _now| {
            if from == late && to == slow && m.is_some_and(|m| turn_kind(m) == PayloadKind::Join) {
                Fate::Delay(TIMEOUT_MS + TIMEOUT_MS / 2)
            } else {
                Fate::Deliver
            }
        });
        let mut net = Net::founding(n, n - 1, seed, nemesis);
        net.run(40 * TIMEOUT_MS);
        net.check_agreement();
        net.check_records();
        net.check_no_contradictions();
        for h in 0..n {
            assert!(net.final_round_of(h) >= Some(2), "seed {seed}: host {h}");
        }
    }
}
