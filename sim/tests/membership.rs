//! Membership that heals, through the simulator's public API: members cut off, paused or
//! silent for longer than the suspension threshold are suspended and come back with their
//! record; join floods neither take over the voters nor stall the swarm. Every run also
//! checks, at each final round, that the voters of consecutive rounds overlap in a majority
//! and that new voters earned the vote, and at its end that every honest agent that came
//! back completed (`invariant_violations`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use slotmesh_agent::heuristic::Personality;
use slotmesh_agent::scenario::{population, AgentSpec, Byzantine, Population};
use slotmesh_sim::network::{Faults, Nemeses};
use slotmesh_sim::{run, SimConfig, SimReport};

fn failure(seed: u64, report: &SimReport) -> Option<String> {
    (report.invariant_violations > 0 || report.agreement < 1.0 || report.stalled).then(|| {
        format!(
            "seed {seed}: {} violations, agreement {}, stalled {}: {:?}",
            report.invariant_violations, report.agreement, report.stalled, report.violations
        )
    })
}

fn statuses(report: &SimReport, byzantine: bool) -> Vec<(String, String)> {
    report
        .per_agent
        .iter()
        .filter(|a| a.fault.as_deref().is_some_and(|f| f == "silent newcomer") == byzantine)
        .map(|a| (a.name.clone(), a.status.clone().unwrap_or_default()))
        .collect()
}

/// The issue's `sim --agents 9 --liars 0 --partition 3:5 --seed 1` left an honest agent
/// failed with its job unfinished: a third of the replicas cut off for five rounds, longer
/// than the three misses that suspend a member. They are suspended, rejoin when the
/// partition heals, and finish.
#[test]
fn a_partition_longer_than_the_suspension_heals_and_every_agent_completes() {
    let mut failures = Vec::new();
    let mut rejoins = 0;
    for seed in 1..=8 {
        let mut config = SimConfig::generated(population(Population::honest(9), seed), seed);
        config.hosts = 9;
        config.partition = Some((3, 5));
        let report = run(&config, |_, _| {});
        failures.extend(failure(seed, &report));
        for (name, status) in statuses(&report, false) {
            if status != "completed" {
                failures.push(format!("seed {seed}: {name} ended {status}"));
            }
        }
        rejoins += report.rejoins;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rejoins > 0, "no cut-off member was ever suspended");
}

fn paused(seed: u64, outage_timeouts: u64) -> SimConfig {
    let agents = 5 + (seed % 4) as usize;
    let mut config = SimConfig::generated(population(Population::honest(agents), seed), seed);
    config.faults = Faults {
        loss_permille: if seed.is_multiple_of(2) { 50 } else { 0 },
        max_delay_ms: 15,
        nemeses: Nemeses {
            pauses: true,
            outage_ms: outage_timeouts * config.phase_timeout_ms,
            ..Nemeses::default()
        },
    };
    config.known_founders = seed % 2 == 1;
    config.max_events = 5_000_000;
    config
}

/// Hosts pause for up to 20 phase timeouts (several rounds' worth, well past the three
/// misses that suspend a member) and resume to a backlog of stale messages: the paused
/// members are suspended, come back, and every honest member completes. (A founder paused
/// through the whole run may find every member gone when it resumes: a swarm whose members
/// all left admits no one, and the run ends stalled; that is not a member left behind.)
#[test]
fn long_pauses_suspend_members_that_come_back_and_complete() {
    let mut failures = Vec::new();
    let (mut suspensions, mut rejoins) = (0, 0);
    for seed in 0..30 {
        let report = run(&paused(seed, 20), |_, _| {});
        if report.invariant_violations > 0 || report.agreement < 1.0 {
            failures.push(format!("seed {seed}: {:?}", report.violations));
        }
        for (name, status) in statuses(&report, false) {
            if !matches!(status.as_str(), "completed" | "") {
                failures.push(format!("seed {seed}: {name} ended {status}"));
            }
        }
        suspensions += report.suspensions;
        rejoins += report.rejoins;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        suspensions > 0 && rejoins > 0,
        "no pause outlasted the suspension threshold: {suspensions} suspensions, {rejoins} rejoins"
    );
}

/// A known limit, kept failing: with two voters and pauses of up to 40 phase timeouts, one
/// voter goes on through attempts alone and the other, back, cannot assemble the
/// justification of the value the first keeps proposing (the chain outgrows the promises
/// and proposals a log keeps: `PROMISES_KEPT`, `OLDER_KEPT`), so the seal never completes.
#[test]
#[ignore = "known limit: long justifications after a long pause of one of two voters"]
fn a_long_pause_of_one_of_two_voters_does_not_stall_the_seal() {
    let report = run(&paused(13, 40), |_, _| {});
    assert_eq!(report.invariant_violations, 0, "{:?}", report.violations);
}

/// Three founders, then twelve fresh keys arriving at once.
fn flood(seed: u64, byzantine: Option<Byzantine>) -> SimConfig {
    let agent = |name: String, burst, arrival_ms, byzantine| AgentSpec {
        name,
        burst,
        personality: Personality::Cooperative,
        bias: 0.0,
        arrival_ms,
        byzantine,
        adversary: None,
        crash_at_round: None,
    };
    let mut agents: Vec<AgentSpec> = ["A", "B", "C"]
        .iter()
        .map(|n| agent((*n).into(), 6, 0, None))
        .collect();
    agents.extend((0..12).map(|i| agent(format!("n{i:02}"), 2, 300, byzantine)));
    let mut config = SimConfig::generated(agents, seed);
    config.hosts = 15;
    config.known_founders = seed % 2 == 1;
    config
}

/// Twelve newcomers beside three members earn their votes a few at a time (the per-round
/// check), so they never outvote the members that were there; everyone completes.
#[test]
fn a_live_join_flood_earns_votes_a_few_at_a_time() {
    let mut failures = Vec::new();
    for seed in 0..10 {
        let report = run(&flood(seed, None), |_, _| {});
        failures.extend(failure(seed, &report));
        for (name, status) in statuses(&report, false) {
            if status != "completed" {
                failures.push(format!("seed {seed}: {name} ended {status}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Twelve newcomers that join and then say nothing: the swarm is not stalled (before, it sat
/// in round 2 for 1,200 timeouts), they never vote (the per-round check), never win, and the
/// record suspends them. (Once the honest members are done, only silent ones are left and the
/// run ends stalled.)
#[test]
fn a_silent_join_flood_neither_stalls_the_swarm_nor_votes() {
    let mut failures = Vec::new();
    for seed in 0..10 {
        let report = run(&flood(seed, Some(Byzantine::Silent)), |_, _| {});
        if report.invariant_violations > 0 || report.agreement < 1.0 {
            failures.push(format!("seed {seed}: {:?}", report.violations));
        }
        for (name, status) in statuses(&report, false) {
            if status != "completed" {
                failures.push(format!("seed {seed}: {name} ended {status}"));
            }
        }
        // They never take part: suspended after their misses, they ask to come back (a
        // rejoin) and are suspended again; none ever wins a slot.
        for a in report
            .per_agent
            .iter()
            .filter(|a| a.fault.as_deref() == Some("silent newcomer"))
        {
            if !a.slots.is_empty() || a.status.as_deref() == Some("completed") {
                failures.push(format!("seed {seed}: silent {} won {:?}", a.name, a.slots));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
