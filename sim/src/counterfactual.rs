//! The counterfactual `lying_gain`: the same seed run again with one agent truthful and
//! lying, to ask whether lying paid that agent.

use super::{run, SimConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// `config` with agent `agent`'s bias changed.
fn with_bias(config: &SimConfig, agent: usize, bias: f64) -> SimConfig {
    let mut config = config.clone();
    config.agents[agent].bias = bias;
    // Only the run itself writes the ledger.
    config.ledger = None;
    config
}

/// Bias given to a sampled agent in the lying counterfactual when it is truthful.
pub const COUNTERFACTUAL_BIAS: f64 = 0.7;

/// Counterfactual `lying_gain`: for `samples` agents (chosen from the seed), runs the same
/// seed with only that agent truthful (bias 0) and lying (its bias, or 0.7 if it has none),
/// and averages the relative reduction of its turnaround when it lies,
/// `(T_truthful − T_lying) / T_truthful`: positive if lying paid, negative if it cost. Agents that do not
/// complete in both runs are skipped. `None` if no sample completed.
pub fn lying_gain(config: &SimConfig, samples: usize) -> Option<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x1a2b_3c4d);
    let eligible: Vec<usize> = (0..config.agents.len())
        .filter(|i| {
            config.agents[*i].byzantine.is_none() && config.agents[*i].crash_at_round.is_none()
        })
        .collect();
    let mut chosen: BTreeSet<usize> = BTreeSet::new();
    while chosen.len() < samples.min(eligible.len()) {
        chosen.insert(eligible[rng.gen_range(0..eligible.len())]);
    }
    let mut changes = Vec::new();
    for i in chosen {
        let lie_bias = if config.agents[i].bias > 0.0 {
            config.agents[i].bias
        } else {
            COUNTERFACTUAL_BIAS
        };
        let honest = run(&with_bias(config, i, 0.0), |_, _| {});
        let lying = run(&with_bias(config, i, lie_bias), |_, _| {});
        let (Some(t_honest), Some(t_lying)) = (
            honest.per_agent[i].turnaround,
            lying.per_agent[i].turnaround,
        ) else {
            continue;
        };
        if lying.per_agent[i].lied && t_honest > 0 {
            // Positive when lying shortened its turnaround (lying paid), negative when it cost.
            changes.push((t_honest as f64 - t_lying as f64) / t_honest as f64);
        }
    }
    (!changes.is_empty()).then(|| changes.iter().sum::<f64>() / changes.len() as f64)
}
