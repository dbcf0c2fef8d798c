//! Runs one seed of the test sweep and prints its violations (a debugging aid).
#![allow(clippy::unwrap_used)]
use slotmesh::sim::network::Faults;
use slotmesh::sim::summary::{population, Population};
use slotmesh::sim::{run, SimConfig};

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let spec = Population {
        agents: 5 + (seed % 4) as usize,
        liars: 0.3,
        crash: (seed % 2) as usize,
        equivocators: usize::from(seed % 5 == 0),
        withholders: usize::from(seed % 7 == 0),
        arrivals: seed % 3 == 0,
    };
    let mut config = SimConfig::generated(population(spec, seed), seed);
    config.faults = Faults {
        loss_permille: if seed % 2 == 0 { 50 } else { 0 },
        max_delay_ms: 15,
    };
    if seed % 11 == 0 {
        config.partition = Some((3, 2));
    }
    let report = run(&config, |_, _| {});
    println!(
        "rounds {} violations {:?}",
        report.rounds, report.violations
    );
}
