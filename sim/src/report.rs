//! The outcome of a run: per-agent results and the measures of docs/SIMULATION.md, built from the agreed
//! final rounds and the replicas' views.

use super::{measures, Life, Sim};
use crate::network::NetworkStats;
use serde::Serialize;
use slotmesh_agent::heuristic::Personality;
use slotmesh_agent::sys::peak_rss_kib;
use slotmesh_proto::{AgentId, Digest, LedgerState, MemberStatus};
use std::collections::BTreeMap;

/// What happened to one agent.
#[derive(Debug, Clone, Serialize)]
pub struct AgentResult {
    /// Display name.
    pub name: String,
    /// Agent id (hex).
    pub id: String,
    /// True burst.
    pub burst: u32,
    /// Personality.
    pub personality: Personality,
    /// Bias.
    pub bias: f64,
    /// The strategy it played (`heuristic`, an adversary kind, `withhold`).
    pub strategy: &'static str,
    /// Whether any of its claims differed from the truth.
    pub lied: bool,
    /// The round of its first claim that differed from the truth.
    pub first_lie_round: Option<u64>,
    /// The first round in which the record proved a lie of it.
    pub first_caught_round: Option<u64>,
    /// Final status in the agreed ledger (`None`: never admitted).
    pub status: Option<String>,
    /// Round it became a member.
    pub arrival_round: Option<u64>,
    /// Round after its last slot, when it completed.
    pub completion_round: Option<u64>,
    /// Completion − arrival.
    pub turnaround: Option<u64>,
    /// Turnaround − burst.
    pub waiting: Option<u64>,
    /// Final public trust, ppm.
    pub trust: u32,
    /// Proven lies.
    pub lies_caught: u32,
    /// All proven offences.
    pub offences: u32,
    /// Of which equivocations: two different signed messages for one turn.
    pub equivocations: u32,
    /// Of which contradictions in the agreement (two votes of one attempt, ...): the record
    /// bars the agent from voting.
    pub contradictions: u32,
    /// The fault the run injected into this agent, if any (why it may have failed).
    pub fault: Option<String>,
    /// Final credits.
    pub credits: u64,
    /// Rounds it won.
    pub slots: Vec<u64>,
}

/// What the agents playing one strategy got, on average.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StrategyFigures {
    /// Agents playing it.
    pub agents: usize,
    /// Of which completed their jobs.
    pub completed: usize,
    /// Mean turnaround of those that completed.
    pub mean_turnaround: Option<f64>,
    /// Mean waiting of those that completed.
    pub mean_waiting: Option<f64>,
    /// Proven lies, all agents together.
    pub lies_caught: u64,
    /// Mean final trust (0-1).
    pub mean_trust: f64,
    /// Mean final credits.
    pub mean_credits: f64,
}

impl StrategyFigures {
    /// The figures of each strategy played in `agents`, by its name.
    pub fn of(agents: &[AgentResult]) -> BTreeMap<&'static str, StrategyFigures> {
        let mut groups: BTreeMap<&'static str, Vec<&AgentResult>> = BTreeMap::new();
        for agent in agents {
            groups.entry(agent.strategy).or_default().push(agent);
        }
        let mean = |values: Vec<u64>| {
            (!values.is_empty()).then(|| values.iter().sum::<u64>() as f64 / values.len() as f64)
        };
        groups
            .into_iter()
            .map(|(name, group)| {
                let n = group.len() as f64;
                let figures = StrategyFigures {
                    agents: group.len(),
                    completed: group.iter().filter(|a| a.turnaround.is_some()).count(),
                    mean_turnaround: mean(group.iter().filter_map(|a| a.turnaround).collect()),
                    mean_waiting: mean(group.iter().filter_map(|a| a.waiting).collect()),
                    lies_caught: group.iter().map(|a| u64::from(a.lies_caught)).sum(),
                    mean_trust: group.iter().map(|a| f64::from(a.trust)).sum::<f64>() / n / 1e6,
                    mean_credits: group.iter().map(|a| a.credits as f64).sum::<f64>() / n,
                };
                (name, figures)
            })
            .collect()
    }
}

/// The measures of one run (docs/SIMULATION.md), printed as the last JSON line with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Mean turnaround ÷ the optimal SRPT mean turnaround (completed agents).
    pub turnaround_ratio: Option<f64>,
    /// The same for honest agents alone (heuristic, never lied, no fault): their mean
    /// turnaround against theirs in the SRPT schedule of every completed job.
    pub honest_turnaround_ratio: Option<f64>,
    /// Mean relative turnaround reduction a sampled agent gets by lying (filled by
    /// [`crate::lying_gain`]; must be <= 0: lying must not pay).
    pub lying_gain: Option<f64>,
    /// The same per adversary kind (filled by [`crate::lying_gain_by_kind`]): for one agent
    /// of each kind, the relative change of its turnaround when it attacks rather than plays
    /// honestly, `(T_honest − T_attack) / T_honest`, or −1 when its attack kept it from
    /// completing. Must be <= 0 for every kind.
    pub lying_gain_by_kind: BTreeMap<&'static str, f64>,
    /// Figures per strategy played (`heuristic`, each adversary kind).
    pub by_strategy: BTreeMap<&'static str, StrategyFigures>,
    /// Median rounds from a liar's first lie to the first round the record proved one of
    /// its lies (liars never caught are left out; `detected` says how many were).
    pub detection_rounds_median: Option<f64>,
    /// Agents that lied in a claim, and how many of them the record caught.
    pub liars_detected: (usize, usize),
    /// ROC AUC of final trust separating truthful agents from liars.
    pub trust_auc: Option<f64>,
    /// Fraction of live replicas whose final digest equals the majority's.
    pub agreement: f64,
    /// Broken invariants.
    pub invariant_violations: u64,
    /// Rounds finalized.
    pub rounds: u64,
    /// Slots awarded per wall-clock second.
    pub slots_per_sec: f64,
    /// Wall-clock time of the run, ms.
    pub wall_ms: u64,
    /// Peak resident memory of the process, KiB.
    pub peak_rss_kib: u64,
    /// LLM calls.
    pub llm_calls: u64,
    /// LLM fallbacks to the heuristic.
    pub llm_fallbacks: u64,
    /// LLM decisions not asked because the endpoint's breaker was open.
    pub llm_breaker_open: u64,
    /// Agents.
    pub agents: usize,
    /// Simulated hosts (engine replicas) the agents ran on.
    pub hosts: usize,
    /// Seed.
    pub seed: u64,
    /// Coalitions formed.
    pub coalitions_formed: u64,
    /// Simulated time, ms.
    pub simulated_ms: u64,
    /// Won slots that started executing on their host (0 without a slot length).
    pub slots_executed: u64,
    /// Certified records hosts fetched (each verified whole on arrival, as a daemon does).
    pub records_fetched: u64,
    /// Answers hosts gave to fetches of a digest's inputs.
    pub inputs_fetched: u64,
    /// Messages that restarted hosts published again for a round they had already spoken
    /// in (what the restart guard prevents: a second, different message is equivocation).
    pub restart_repeats: u64,
    /// Forged bytes (from `--forgers`) that hosts refused when they opened them.
    pub forgeries_refused: u64,
    /// Members the agreed record suspended (they missed rounds in a row: crashed, paused,
    /// cut off or silent).
    pub suspensions: u64,
    /// Suspended members that came back with their key and record.
    pub rejoins: u64,
    /// What the simulated network did: deliveries, losses, and the nemeses' work.
    pub network: NetworkStats,
    /// The run ended because too few voters were alive to finalize (allowed by the fault
    /// model: crash tolerance is for a minority).
    pub stalled: bool,
    /// The run stopped at `--max-rounds`, before every job was done: turnaround and trust
    /// measures cover only what happened until then.
    pub truncated: bool,
    /// Hash of every message and certificate, in order (same seed, same hash).
    pub transcript: String,
    /// Descriptions of the first violations.
    pub violations: Vec<String>,
    /// Per agent.
    pub per_agent: Vec<AgentResult>,
    /// Why the ledger file (`SimConfig::ledger`) could not be written completely.
    #[serde(skip)]
    pub ledger_error: Option<String>,
}

impl Sim {
    /// The fault injected into agent `i`, in words.
    fn fault_of(&self, i: usize) -> Option<String> {
        let agent = &self.agents[i];
        if let Some(byzantine) = agent.spec.byzantine {
            return Some(
                match byzantine {
                    crate::Byzantine::Equivocator => "equivocator",
                    crate::Byzantine::Withholder => "withholder",
                    crate::Byzantine::Forger => "forger",
                    crate::Byzantine::DoubleVoter => "double voter",
                    crate::Byzantine::Silent => "silent newcomer",
                    crate::Byzantine::LateCommitter => "late committer",
                }
                .to_string(),
            );
        }
        if agent.life == Life::Crashed {
            let round = agent.spec.crash_at_round.unwrap_or(0);
            return Some(format!("crashed in round {round}"));
        }
        let cut = self.partition_since.is_some() && crate::cut_by_partition(agent.host);
        cut.then(|| "cut off by the partition".to_string())
    }

    pub(super) fn report(mut self, wall: std::time::Duration) -> SimReport {
        let ledger_error = std::mem::take(&mut self.archive)
            .finish()
            .err()
            .map(|error| error.to_string());
        let llm = self.llm_counts();
        let state = self
            .last_state
            .as_deref()
            .cloned()
            .unwrap_or_else(|| LedgerState::genesis(self.swarm));
        let mut slots: BTreeMap<AgentId, Vec<u64>> = BTreeMap::new();
        for (round, (_, winner)) in &self.agreed {
            if let Some(w) = winner {
                slots.entry(*w).or_default().push(*round);
            }
        }
        let lied: Vec<(bool, Option<u64>)> = (0..self.agents.len())
            .map(|i| {
                self.mind(i)
                    .map_or((false, None), |m| (m.lied, m.first_lie_round))
            })
            .collect();
        let per_agent: Vec<AgentResult> = self
            .agents
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                let id = agent.id;
                let record = state.members.get(&id);
                let won = slots.get(&id).cloned().unwrap_or_default();
                let completed = record.is_some_and(|m| m.status == MemberStatus::Completed);
                let arrival = record.map(|m| m.joined_round);
                let completion = if completed {
                    won.last().map(|r| r + 1)
                } else {
                    None
                };
                let turnaround = completion.zip(arrival).map(|(c, a)| c.saturating_sub(a));
                AgentResult {
                    name: agent.spec.name.clone(),
                    id: id.to_hex(),
                    burst: agent.spec.burst,
                    personality: agent.spec.personality,
                    bias: agent.spec.bias,
                    strategy: agent.spec.strategy_label(),
                    lied: lied[i].0,
                    first_lie_round: lied[i].1,
                    first_caught_round: self.first_caught.get(&id).copied(),
                    status: record.map(|m| format!("{:?}", m.status).to_lowercase()),
                    arrival_round: arrival,
                    completion_round: completion,
                    turnaround,
                    waiting: turnaround.map(|t| t.saturating_sub(u64::from(agent.spec.burst))),
                    trust: record.map_or(0, |m| m.trust),
                    lies_caught: record.map_or(0, |m| m.offences.lies),
                    offences: record.map_or(0, |m| m.offences.total()),
                    equivocations: record.map_or(0, |m| m.offences.equivocations),
                    contradictions: record.map_or(0, |m| m.offences.contradictions),
                    credits: record.map_or(0, |m| m.credits),
                    slots: won,
                    fault: self.fault_of(i),
                }
            })
            .collect();
        let completed: Vec<&AgentResult> = per_agent
            .iter()
            .filter(|a| a.turnaround.is_some())
            .collect();
        let completed: Vec<&AgentResult> = completed
            .into_iter()
            .filter(|a| a.arrival_round.is_some())
            .collect();
        let jobs: Vec<(u64, u32)> = completed
            .iter()
            .filter_map(|a| a.arrival_round.map(|r| (r, a.burst)))
            .collect();
        let optimal = measures::srpt_turnarounds(&jobs);
        // Mean turnaround of the agents `counted` picks, against theirs in the SRPT schedule
        // of every completed job.
        let ratio = |counted: &dyn Fn(&AgentResult) -> bool| {
            let (actual, best) = completed
                .iter()
                .zip(&optimal)
                .filter(|(a, _)| counted(a))
                .fold((0u64, 0u64), |(actual, best), (a, o)| {
                    (actual + a.turnaround.unwrap_or(0), best + o)
                });
            (best > 0).then(|| actual as f64 / best as f64)
        };
        let turnaround_ratio = ratio(&|_| true);
        let honest_turnaround_ratio =
            ratio(&|a| a.strategy == "heuristic" && !a.lied && a.fault.is_none());
        // Liars against truthful heuristic agents: byzantine agents and adversaries that
        // never lied in a claim are in neither class.
        let admitted = per_agent.iter().filter(|a| a.status.is_some());
        let (liars, truthful): (Vec<&AgentResult>, Vec<&AgentResult>) = admitted
            .filter(|a| a.lied || a.strategy == "heuristic")
            .partition(|a| a.lied);
        let trust_auc = measures::roc_auc(
            &truthful
                .iter()
                .map(|a| u64::from(a.trust))
                .collect::<Vec<_>>(),
            &liars.iter().map(|a| u64::from(a.trust)).collect::<Vec<_>>(),
        );
        let delays: Vec<u64> = per_agent
            .iter()
            .filter_map(|a| Some(a.first_caught_round?.saturating_sub(a.first_lie_round?)))
            .collect();
        let liars_detected = (
            per_agent.iter().filter(|a| a.lied).count(),
            per_agent
                .iter()
                .filter(|a| a.lied && a.first_caught_round.is_some())
                .count(),
        );
        let detection_rounds_median = measures::median(&delays);
        let agreement = self.agreement();
        let rounds = self.agreed.keys().next_back().map_or(0, |r| r + 1);
        let slots_awarded = self.agreed.values().filter(|(_, w)| w.is_some()).count() as f64;
        let wall_secs = wall.as_secs_f64().max(1e-9);
        SimReport {
            turnaround_ratio,
            honest_turnaround_ratio,
            lying_gain: None,
            lying_gain_by_kind: BTreeMap::new(),
            by_strategy: StrategyFigures::of(&per_agent),
            trust_auc,
            detection_rounds_median,
            liars_detected,
            agreement,
            invariant_violations: self.violation_count,
            rounds,
            slots_per_sec: slots_awarded / wall_secs,
            wall_ms: wall.as_millis() as u64,
            peak_rss_kib: peak_rss_kib(),
            llm_calls: llm.calls,
            llm_fallbacks: llm.fallbacks,
            llm_breaker_open: llm.breaker_open,
            agents: self.agents.len(),
            hosts: self.hosts.len(),
            seed: self.config.seed,
            coalitions_formed: self.coalitions_formed,
            simulated_ms: self.net.now(),
            slots_executed: self.slots_executed,
            records_fetched: self.records_fetched,
            inputs_fetched: self.inputs_fetched,
            restart_repeats: self.restart_repeats,
            forgeries_refused: self.forgeries_refused,
            suspensions: self.membership.suspensions,
            rejoins: self.membership.rejoins,
            network: self.net.stats,
            stalled: self.stalled,
            truncated: self.truncated,
            transcript: self.transcript.hex(),
            violations: self.violations.clone(),
            per_agent,
            ledger_error,
        }
    }

    /// Among replicas (hosts) with an agent that did not crash: the fraction whose last
    /// final digest is the one a majority certified for that round. (Replicas stop at
    /// different rounds: one whose agents all completed early stops there.)
    fn agreement(&self) -> f64 {
        let last_finals: Vec<(u64, Digest)> = self
            .hosts
            .iter()
            .filter(|h| {
                h.agents
                    .iter()
                    .any(|i| self.agents[*i].life != Life::Crashed)
            })
            .filter_map(|h| h.last_final)
            .collect();
        if last_finals.is_empty() {
            return 1.0;
        }
        let agreeing = last_finals
            .iter()
            .filter(|(round, digest)| self.agreed.get(round).is_some_and(|(d, _)| d == digest))
            .count();
        agreeing as f64 / last_finals.len() as f64
    }
}
