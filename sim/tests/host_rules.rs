//! The host rules that a daemon runs under and the simulator now runs too (the same host
//! driver): pacing and the slot timeline with executed slots, and the restart guard when a
//! host is restarted mid-round. Each test also runs the case the rule exists for without
//! it, so it shows the rule is what makes it hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use slotmesh_agent::scenario::{population, Population};
use slotmesh_sim::{run, Restart, SimConfig, SimReport};

fn truthful(agents: usize, seed: u64) -> SimConfig {
    SimConfig::generated(population(Population::honest(agents), seed), seed)
}

fn won_slots(report: &SimReport) -> u64 {
    report.per_agent.iter().map(|a| a.slots.len() as u64).sum()
}

/// With slots of 300 ms the schedule is decided at most one slot ahead of execution: the
/// run lasts at least as long as its slots but the last, every won slot starts on its
/// host, and nothing else changes (every agent completes, no violation). Without slots the
/// same population decides far faster than that.
#[test]
fn pacing_keeps_the_schedule_one_slot_ahead_of_execution() {
    for seed in [1, 2, 3] {
        let unpaced = run(&truthful(6, seed), |_, _| {});
        let mut config = truthful(6, seed);
        config.phase_timeout_ms = 1_000;
        config.slot_ms = Some(300);
        let paced = run(&config, |_, _| {});
        for report in [&unpaced, &paced] {
            assert_eq!(report.invariant_violations, 0, "{:?}", report.violations);
            assert!(report
                .per_agent
                .iter()
                .all(|a| a.status.as_deref() == Some("completed")));
        }
        let slots = won_slots(&paced);
        assert_eq!(paced.slots_executed, slots, "seed {seed}");
        assert_eq!(unpaced.slots_executed, 0);
        assert!(
            paced.simulated_ms >= (slots - 1) * 300,
            "seed {seed}: {} slots decided in {} ms",
            slots,
            paced.simulated_ms
        );
        assert!(
            unpaced.simulated_ms < (won_slots(&unpaced) - 1) * 300,
            "seed {seed}: without pacing the run is not slower than its slots"
        );
    }
}

/// A host restarted right after publishing its commit replays the agreed state and would
/// decide that round again: a second commit with a new nonce is equivocation, and only the
/// order in which its old messages come back decides whether it is caught. The restart
/// guard (the host remembers the last round it spoke in) keeps its turns silent through
/// that round (its agreement resumes from the promises and votes it stored: none yet, right
/// after a commit); a host that forgot it speaks in it again. (It cannot reveal the commit
/// whose nonce it lost: today that is punished as withholding.)
#[test]
fn a_host_restarted_mid_round_stays_silent_through_it() {
    for seed in [4, 5, 6] {
        for remembers_spoken in [true, false] {
            let mut config = truthful(5, seed);
            config.restarts = vec![Restart {
                agent: 1,
                round: 3,
                remembers_spoken,
            }];
            let report = run(&config, |_, _| {});
            assert_eq!(report.invariant_violations, 0, "{:?}", report.violations);
            let restarted = &report.per_agent[1];
            assert_eq!(
                restarted.status.as_deref(),
                Some("completed"),
                "seed {seed}"
            );
            if remembers_spoken {
                assert_eq!(report.restart_repeats, 0, "seed {seed}");
                assert_eq!(restarted.equivocations, 0, "seed {seed}: {restarted:?}");
            } else {
                assert!(report.restart_repeats > 0, "seed {seed}");
            }
        }
    }
}

/// Pacing releases a deferred announce as soon as the last decided slot starts, on every
/// host, not at its cap (half a phase timeout): the length of a paced run does not grow with
/// the phase timeout beyond the founding round's one timeout.
#[test]
fn paced_run_length_should_not_depend_on_phase_timeout() {
    for seed in [1, 2, 3] {
        let mut lens = Vec::new();
        for timeout in [1_000u64, 10_000] {
            let mut c = truthful(6, seed);
            c.phase_timeout_ms = timeout;
            c.slot_ms = Some(300);
            let r = run(&c, |_, _| {});
            assert_eq!(r.invariant_violations, 0);
            let slots: u64 = r.per_agent.iter().map(|a| a.slots.len() as u64).sum();
            lens.push((slots, r.simulated_ms));
        }
        let (_, short) = lens[0];
        let (_, long) = lens[1];
        // One founding timeout (9 s more) is expected; more than that is pacing waiting for its cap.
        assert!(
            long <= short + 9_000 + 1_000,
            "seed {seed}: {short} ms with 1 s timeouts, {long} ms with 10 s timeouts"
        );
    }
}
