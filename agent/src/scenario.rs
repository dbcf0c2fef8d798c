//! Who takes part in a run: one [`AgentSpec`] per agent (its job, personality, bias, arrival
//! and injected faults), the seeds' preset, and seeded generated populations. The simulator
//! runs them in one process; `slotmesh swarm` starts one daemon per agent.

use crate::heuristic::Personality;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Injected byzantine behaviour, carried out by the simulated network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Byzantine {
    /// Sends a second, different commit to half of its peers.
    Equivocator,
    /// Commits but never reveals.
    Withholder,
    /// Sends, beside each of its messages, a forged copy (its bytes altered after signing)
    /// that every receiver must refuse when it opens the bytes.
    Forger,
    /// Signs, beside each of its checkpoint votes, a second vote of the same attempt for
    /// another digest: a contradiction of the agreement that replicas must prove and the
    /// record must punish by barring it from voting.
    DoubleVoter,
    /// Joins, then says nothing more (a join flood's silent newcomers): it must never stall
    /// the swarm nor earn a vote.
    Silent,
}

/// One simulated agent.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSpec {
    /// Display name.
    pub name: String,
    /// True burst, slots.
    pub burst: u32,
    /// Personality.
    pub personality: Personality,
    /// Bias in [0, 1].
    pub bias: f64,
    /// Simulated ms at which it starts (0: a founder).
    pub arrival_ms: u64,
    /// Injected misbehaviour.
    pub byzantine: Option<Byzantine>,
    /// The round (of its own replica) at which it crashes.
    pub crash_at_round: Option<u64>,
}

/// The seeds' three agents: A burst 5 aggressive 0.7, B burst 5 cooperative 0.1, C burst 3
/// strategic 0.4.
pub fn seed_preset() -> Vec<AgentSpec> {
    let agent = |name: &str, burst, personality, bias| AgentSpec {
        name: name.into(),
        burst,
        personality,
        bias,
        arrival_ms: 0,
        byzantine: None,
        crash_at_round: None,
    };
    vec![
        agent("A", 5, Personality::Aggressive, 0.7),
        agent("B", 5, Personality::Cooperative, 0.1),
        agent("C", 3, Personality::Strategic, 0.4),
    ]
}

/// What `slotmesh sim --agents N ...` asks for.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    /// Number of agents.
    pub agents: usize,
    /// Fraction of liars (bias drawn in [0.4, 0.9]); the others are truthful.
    pub liars: f64,
    /// Agents that crash at a seeded round.
    pub crash: usize,
    /// Agents that equivocate on commits.
    pub equivocators: usize,
    /// Agents that never reveal.
    pub withholders: usize,
    /// Agents that forge messages.
    pub forgers: usize,
    /// Agents that sign two votes for different digests in an attempt.
    pub double_voters: usize,
    /// Whether a third of the agents arrives over time instead of at the start.
    pub arrivals: bool,
}

impl Population {
    /// `agents` truthful agents, no faults, all there from the start.
    pub fn honest(agents: usize) -> Population {
        Population {
            agents,
            liars: 0.0,
            crash: 0,
            equivocators: 0,
            withholders: 0,
            forgers: 0,
            double_voters: 0,
            arrivals: false,
        }
    }

    /// The same population with this fraction of liars.
    pub fn with_liars(self, liars: f64) -> Population {
        Population { liars, ..self }
    }
}

/// A seeded population: bursts 1–8, personalities and liars drawn from the seed.
pub fn population(spec: Population, seed: u64) -> Vec<AgentSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_a6e7);
    let n = spec.agents.max(1);
    let personalities = [
        Personality::Cooperative,
        Personality::Aggressive,
        Personality::Strategic,
    ];
    let mut agents: Vec<AgentSpec> = (0..n)
        .map(|i| AgentSpec {
            name: format!("a{i:04}"),
            burst: rng.gen_range(1..=8),
            personality: personalities[rng.gen_range(0..3)],
            bias: 0.0,
            arrival_ms: 0,
            byzantine: None,
            crash_at_round: None,
        })
        .collect();
    let total_burst: u64 = agents.iter().map(|a| u64::from(a.burst)).sum();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let liars = ((spec.liars.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    for &i in &order[..liars] {
        agents[i].bias = f64::from(rng.gen_range(40u32..=90)) / 100.0;
    }
    // Faulty agents are drawn from the other end of the order, disjoint from each other.
    let mut faulty = order.iter().rev().copied();
    for _ in 0..spec.crash.min(n / 2) {
        if let Some(i) = faulty.next() {
            agents[i].crash_at_round = Some(rng.gen_range(2..=(total_burst / 2).max(3)));
        }
    }
    for _ in 0..spec.equivocators {
        if let Some(i) = faulty.next() {
            agents[i].byzantine = Some(Byzantine::Equivocator);
        }
    }
    for _ in 0..spec.withholders {
        if let Some(i) = faulty.next() {
            agents[i].byzantine = Some(Byzantine::Withholder);
        }
    }
    for _ in 0..spec.forgers {
        if let Some(i) = faulty.next() {
            agents[i].byzantine = Some(Byzantine::Forger);
        }
    }
    for _ in 0..spec.double_voters {
        if let Some(i) = faulty.next() {
            agents[i].byzantine = Some(Byzantine::DoubleVoter);
        }
    }
    if spec.arrivals {
        for &i in order.iter().skip(1).step_by(3) {
            agents[i].arrival_ms = rng.gen_range(100..=(total_burst * 5).max(200));
        }
    }
    agents
}
