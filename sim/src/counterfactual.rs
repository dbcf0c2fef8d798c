//! The counterfactual `lying_gain`: the same seed run again with one agent playing another
//! way, to ask whether lying (or an attack) paid that agent. A counterfactual run ends once
//! its sampled agent has left the agreed record, and independent runs share the cores.

use super::{run, SimConfig, SimReport};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slotmesh_agent::scenario::AgentSpec;
use std::collections::{BTreeMap, BTreeSet};

/// `config` with agent `agent` played as `spec`, run only until that agent is gone.
fn with_agent(config: &SimConfig, agent: usize, spec: AgentSpec) -> SimConfig {
    let mut config = config.clone();
    config.agents[agent] = spec;
    config.until_done = Some(agent);
    // Only the run itself writes the ledger and the models' records.
    config.ledger = None;
    config.record_dir = None;
    config
}

/// Bias given to a sampled agent in the lying counterfactual when it is truthful.
pub const COUNTERFACTUAL_BIAS: f64 = 0.7;

/// Runs `jobs` on every core (each job is a whole simulation), results in job order.
fn on_every_core<J: Sync, R: Send>(jobs: &[J], work: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        done.push((i, work(job)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// `(T_honest − T_other) / T_honest`: positive when playing the other way shortened the
/// agent's turnaround (it paid), negative when it cost; −1 when the other way never
/// completed. `None` when the honest run did not complete (nothing to compare with).
fn relative_gain(honest: Option<u64>, other: Option<u64>) -> Option<f64> {
    let honest = honest.filter(|t| *t > 0)?;
    Some(match other {
        Some(other) => (honest as f64 - other as f64) / honest as f64,
        None => -1.0,
    })
}

/// Counterfactual `lying_gain`: for `samples` heuristic agents (chosen from the seed), runs
/// the same seed with only that agent truthful (bias 0) and lying (its bias, or 0.7 if it
/// has none), and averages the relative reduction of its turnaround when it lies,
/// `(T_truthful − T_lying) / T_truthful`: positive if lying paid, negative if it cost.
/// Agents that do not complete in both runs, or never lied, are skipped. `None` if no
/// sample counted.
pub fn lying_gain(config: &SimConfig, samples: usize) -> Option<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x1a2b_3c4d);
    let eligible: Vec<usize> = (0..config.agents.len())
        .filter(|i| {
            let agent = &config.agents[*i];
            agent.strategy_label() == "heuristic" && agent.crash_at_round.is_none()
        })
        .collect();
    let mut chosen: BTreeSet<usize> = BTreeSet::new();
    while chosen.len() < samples.min(eligible.len()) {
        chosen.insert(eligible[rng.gen_range(0..eligible.len())]);
    }
    let runs: Vec<(usize, bool)> = chosen
        .iter()
        .flat_map(|i| [(*i, false), (*i, true)])
        .collect();
    let reports = on_every_core(&runs, |(i, lying)| {
        let agent = &config.agents[*i];
        let bias = match (lying, agent.bias > 0.0) {
            (false, _) => 0.0,
            (true, true) => agent.bias,
            (true, false) => COUNTERFACTUAL_BIAS,
        };
        let spec = AgentSpec {
            bias,
            ..agent.clone()
        };
        let report = run(&with_agent(config, *i, spec), |_, _| {});
        let result = &report.per_agent[*i];
        (result.turnaround, result.lied)
    });
    let changes: Vec<f64> = reports
        .chunks(2)
        .filter_map(|pair| {
            let [(t_honest, _), (t_lying, lied)] = pair else {
                return None;
            };
            // Only completions compare: a lie that kept it from completing is not measured
            // here (lying_gain_by_kind counts it as −1).
            let t_lying = (*lied).then_some(*t_lying).flatten()?;
            relative_gain(*t_honest, Some(t_lying))
        })
        .collect();
    (!changes.is_empty()).then(|| changes.iter().sum::<f64>() / changes.len() as f64)
}

/// `lying_gain` per adversary kind, from a finished run `report` of `config`: for one agent
/// of each kind in the population (chosen from the seed), the same seed run again with that
/// agent honest (heuristic, bias 0, no attack), until it completes; its gain is the relative
/// change of its turnaround, `(T_honest − T_attack) / T_honest`, −1 when the attack kept it
/// from completing. Kinds whose sampled agent does not complete when honest are left out.
pub fn lying_gain_by_kind(config: &SimConfig, report: &SimReport) -> BTreeMap<&'static str, f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x006b_1d0f_a77a);
    let mut kinds: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, agent) in config.agents.iter().enumerate() {
        let label = agent.strategy_label();
        if label != "heuristic" && agent.crash_at_round.is_none() {
            kinds.entry(label).or_default().push(i);
        }
    }
    let sampled: Vec<(&'static str, usize)> = kinds
        .into_iter()
        .map(|(kind, agents)| (kind, agents[rng.gen_range(0..agents.len())]))
        .collect();
    let honest = on_every_core(&sampled, |(_, i)| {
        let spec = config.agents[*i].honest();
        run(&with_agent(config, *i, spec), |_, _| {}).per_agent[*i].turnaround
    });
    sampled
        .iter()
        .zip(honest)
        .filter_map(|((kind, i), t_honest)| {
            let t_attack = report.per_agent.get(*i)?.turnaround;
            Some((*kind, relative_gain(t_honest, t_attack)?))
        })
        .collect()
}
