//! Who takes part in a run: one [`AgentSpec`] per agent (its job, personality, bias, arrival,
//! adversary kind and injected faults), the seeds' preset, seeded generated populations and
//! the `--mix` that spreads strategies over them. The simulator runs them in one process;
//! `slotmesh swarm` starts one daemon per agent.

use crate::adversary::Adversary;
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
    /// Sends its commits only after the round's seal, as one would that waits for the
    /// others' reveals before it bids: the seal leaves them out, so they must be void.
    LateCommitter,
}

impl Byzantine {
    /// Its name in reports and in `--mix` (`withhold`).
    pub fn name(self) -> &'static str {
        match self {
            Byzantine::Equivocator => "equivocator",
            Byzantine::Withholder => "withhold",
            Byzantine::Forger => "forger",
            Byzantine::DoubleVoter => "double-voter",
            Byzantine::Silent => "silent",
            Byzantine::LateCommitter => "late-commit",
        }
    }
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
    /// The attack its decisions play, if it is an adversary.
    pub adversary: Option<Adversary>,
    /// The round (of its own replica) at which it crashes.
    pub crash_at_round: Option<u64>,
}

impl AgentSpec {
    /// The name of the strategy it plays, as `--mix` and the per-strategy figures write it:
    /// its adversary kind, its injected fault, or `heuristic`.
    pub fn strategy_label(&self) -> &'static str {
        match (self.adversary, self.byzantine) {
            (Some(kind), _) => kind.name(),
            (None, Some(byzantine)) => byzantine.name(),
            (None, None) => "heuristic",
        }
    }

    /// The same agent playing honestly: no attack, no injected fault, bias 0 (the
    /// counterfactual of `lying_gain`).
    pub fn honest(&self) -> AgentSpec {
        AgentSpec {
            bias: 0.0,
            byzantine: None,
            adversary: None,
            ..self.clone()
        }
    }
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
        adversary: None,
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
            adversary: None,
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

/// One strategy of a `--mix`: the heuristic, an adversary, or withholding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixKind {
    /// The heuristic with the population's personality and bias.
    Heuristic,
    /// An attack played by the agent's decisions.
    Adversary(Adversary),
    /// Commits and never reveals.
    Withhold,
    /// Commits after the round's seal.
    LateCommit,
}

/// A `--mix`: strategies with their weights, e.g. `heuristic:80,underclaim:10,withhold:10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(MixKind, u32)>);

/// A `--mix` that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// A part is not `NAME:WEIGHT`.
    #[error("`{0}` is not NAME:WEIGHT (e.g. heuristic:80,underclaim:20)")]
    Part(String),
    /// An unknown strategy name.
    #[error(
        "unknown strategy `{0}` in --mix (known: heuristic, underclaim, pledge-break, withhold, late-commit)"
    )]
    Unknown(String),
    /// A name given twice.
    #[error("`{0}` is named twice in --mix")]
    Twice(String),
    /// All weights are 0.
    #[error("--mix needs a weight above 0")]
    Empty,
}

impl std::str::FromStr for Mix {
    type Err = MixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts: Vec<(MixKind, u32)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once(':')
                .ok_or_else(|| MixError::Part(part.to_string()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| MixError::Part(part.to_string()))?;
            let kind = match name.trim() {
                "heuristic" => MixKind::Heuristic,
                "withhold" => MixKind::Withhold,
                "late-commit" => MixKind::LateCommit,
                other => MixKind::Adversary(
                    other
                        .parse()
                        .map_err(|_| MixError::Unknown(other.to_string()))?,
                ),
            };
            if parts.iter().any(|(k, _)| *k == kind) {
                return Err(MixError::Twice(name.trim().to_string()));
            }
            parts.push((kind, weight));
        }
        if parts.iter().all(|(_, w)| *w == 0) {
            return Err(MixError::Empty);
        }
        Ok(Mix(parts))
    }
}

impl Mix {
    /// How many of `n` agents play each kind: shares of the weights, rounded by largest
    /// remainder (ties to the earlier kind), so they add up to `n`.
    pub fn counts(&self, n: usize) -> Vec<(MixKind, usize)> {
        let total: u64 = self
            .0
            .iter()
            .map(|(_, w)| u64::from(*w))
            .sum::<u64>()
            .max(1);
        let n64 = n as u64;
        let mut counts: Vec<(MixKind, usize, u64)> = self
            .0
            .iter()
            .map(|(k, w)| {
                let exact = n64 * u64::from(*w);
                (*k, (exact / total) as usize, exact % total)
            })
            .collect();
        let mut left = n - counts.iter().map(|(_, c, _)| c).sum::<usize>();
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by(|a, b| counts[*b].2.cmp(&counts[*a].2).then(a.cmp(b)));
        for i in order {
            if left == 0 {
                break;
            }
            counts[i].1 += 1;
            left -= 1;
        }
        counts.into_iter().map(|(k, c, _)| (k, c)).collect()
    }

    /// Gives the agents their strategies: the seed shuffles who plays what; agents with an
    /// injected fault or crash keep theirs and play the heuristic. An adversary plays its
    /// attack alone (bias 0); a pledge-breaker seeks coalitions (cooperative).
    pub fn apply(&self, agents: &mut [AgentSpec], seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0000_3197_a11c);
        let mut free: Vec<usize> = (0..agents.len())
            .filter(|i| agents[*i].byzantine.is_none() && agents[*i].crash_at_round.is_none())
            .collect();
        free.shuffle(&mut rng);
        let mut next = free.into_iter();
        for (kind, count) in self.counts(agents.len()) {
            for _ in 0..count {
                let Some(i) = next.next() else { return };
                let agent = &mut agents[i];
                match kind {
                    MixKind::Heuristic => {}
                    MixKind::Adversary(adversary) => {
                        // The attack alone: no heuristic lies on top of it.
                        agent.bias = 0.0;
                        agent.adversary = Some(adversary);
                        if adversary == Adversary::PledgeBreak {
                            // Breaking pledges needs coalitions: it seeks them.
                            agent.personality = Personality::Cooperative;
                        }
                    }
                    MixKind::Withhold => {
                        agent.bias = 0.0;
                        agent.byzantine = Some(Byzantine::Withholder);
                    }
                    MixKind::LateCommit => {
                        agent.bias = 0.0;
                        agent.byzantine = Some(Byzantine::LateCommitter);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_reads_and_shares_out_every_agent() -> Result<(), MixError> {
        let mix: Mix = "heuristic:70, underclaim:10,withhold:10,pledge-break:10".parse()?;
        let counts: Vec<usize> = mix.counts(31).into_iter().map(|(_, c)| c).collect();
        assert_eq!(counts, vec![22, 3, 3, 3]);
        let mut agents = population(Population::honest(30), 1);
        mix.apply(&mut agents, 1);
        let labels = |l: &str| agents.iter().filter(|a| a.strategy_label() == l).count();
        assert_eq!(
            (
                labels("heuristic"),
                labels("underclaim"),
                labels("withhold")
            ),
            (21, 3, 3)
        );
        Ok(())
    }

    #[test]
    fn a_bad_mix_says_what_is_wrong() {
        let error = |s: &str| {
            s.parse::<Mix>()
                .map_or_else(|e| e.to_string(), |_| String::new())
        };
        assert!(error("heuristic").contains("NAME:WEIGHT"));
        assert!(error("heuristic:x").contains("NAME:WEIGHT"));
        assert!(error("liar:3").contains("unknown strategy `liar`"));
        assert!(error("heuristic:1,heuristic:2").contains("twice"));
        assert_eq!(error("heuristic:0"), "--mix needs a weight above 0");
    }
}
