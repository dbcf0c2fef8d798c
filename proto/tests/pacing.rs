//! Pacing through the engine's API (proto/src/engine/pacing.rs): a phase waits only for the
//! turns that matter, so a member that skips its optional turns (negotiation, coalition
//! acceptance) costs the swarm little. Before pacing, such a member made every round wait
//! two phase timeouts (600 rounds fell to 48 in the same time).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use net::*;

/// Rounds stored by every replica after `ms` of simulated time, with `skippers` never taking
/// an optional turn.
fn rounds_in(ms: u64, skippers: &[usize], seed: u64) -> u64 {
    let n = 4;
    let mut net = Net::new(n, seed, Box::new(|_, _, _, _| Fate::Deliver));
    net.optional_skippers = skippers.iter().copied().collect();
    net.last_decided_round = 2_000;
    net.run(ms);
    net.check_agreement();
    (0..n)
        .map(|h| net.final_round_of(h).unwrap_or(0))
        .min()
        .unwrap_or(0)
}

/// A member that never negotiates nor answers coalitions slows the swarm by well under half:
/// it is waited for in those turns only every 2^s rounds after s skips (at most every 32nd).
#[test]
fn a_member_that_skips_optional_turns_costs_the_swarm_little() {
    for seed in 0..3u64 {
        let ms = 120 * TIMEOUT_MS;
        let everyone = rounds_in(ms, &[], seed);
        let one_skips = rounds_in(ms, &[3], seed);
        assert!(everyone > 100, "seed {seed}: {everyone} rounds");
        assert!(
            2 * one_skips >= everyone,
            "seed {seed}: {one_skips} rounds with a member skipping its optional turns, {everyone} without"
        );
    }
}
