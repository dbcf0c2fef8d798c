//! Building simulated populations from the command line, and the readable summary of a run
//! (schedule, completion order, turnaround and waiting per agent, trust, lies caught).

use super::{AgentResult, AgentSpec, SimConfig, SimReport};
use std::fmt::Write;

impl SimConfig {
    /// A generated population with default timing.
    pub fn generated(agents: Vec<AgentSpec>, seed: u64) -> SimConfig {
        SimConfig {
            agents,
            ..SimConfig::seed_preset(seed)
        }
    }
}

fn trust(ppm: u32) -> String {
    format!("{:.3}", f64::from(ppm) / 1e6)
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The per-strategy table: what each strategy's agents got, and whether attacking paid.
fn render_by_strategy(out: &mut String, report: &SimReport) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<13} {:>6} {:>9} {:>10} {:>8} {:>5} {:>6} {:>8} {:>11}",
        "strategy",
        "agents",
        "completed",
        "turnaround",
        "waiting",
        "lies",
        "trust",
        "credits",
        "lying gain"
    );
    let mean = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
    for (name, f) in &report.by_strategy {
        let gain = report
            .lying_gain_by_kind
            .get(name)
            .map_or_else(|| "-".into(), |g| format!("{g:+.3}"));
        let _ = writeln!(
            out,
            "{:<13} {:>6} {:>9} {:>10} {:>8} {:>5} {:>6.3} {:>8.0} {:>11}",
            name,
            f.agents,
            f.completed,
            mean(f.mean_turnaround),
            mean(f.mean_waiting),
            f.lies_caught,
            f.mean_trust,
            f.mean_credits,
            gain
        );
    }
}

/// The readable summary printed without `--json`.
pub fn render(report: &SimReport) -> String {
    let mut out = String::new();
    let slots: usize = report.per_agent.iter().map(|a| a.slots.len()).sum();
    let _ = writeln!(
        out,
        "slotmesh sim: {} agents, seed {}: {} rounds, {} slots awarded",
        report.agents, report.seed, report.rounds, slots
    );
    if report.agents <= 26 {
        let mut schedule: Vec<(u64, &str)> = report
            .per_agent
            .iter()
            .flat_map(|a| a.slots.iter().map(move |r| (*r, a.name.as_str())))
            .collect();
        schedule.sort();
        let line: Vec<&str> = schedule.iter().map(|(_, n)| *n).collect();
        let _ = writeln!(out, "schedule: {}", line.join(" "));
    }
    let mut done: Vec<&AgentResult> = report
        .per_agent
        .iter()
        .filter(|a| a.completion_round.is_some())
        .collect();
    done.sort_by_key(|a| (a.completion_round, a.name.clone()));
    let order: Vec<String> = done
        .iter()
        .take(20)
        .map(|a| format!("{} (round {})", a.name, opt(a.completion_round)))
        .collect();
    let more = if done.len() > 20 {
        format!(", ... {} more", done.len() - 20)
    } else {
        String::new()
    };
    let _ = writeln!(out, "completion order: {}{more}", order.join(", "));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:<12} {:>5} {:>6} {:>8} {:>10} {:>8} {:>6} {:>5} {:>8}  status",
        "agent",
        "personality",
        "bias",
        "burst",
        "arrival",
        "turnaround",
        "waiting",
        "trust",
        "lies",
        "credits"
    );
    for a in report.per_agent.iter().take(30) {
        let _ = writeln!(
            out,
            "{:<8} {:<12} {:>5.2} {:>6} {:>8} {:>10} {:>8} {:>6} {:>5} {:>8}  {}{}",
            a.name,
            a.personality.to_string(),
            a.bias,
            a.burst,
            opt(a.arrival_round),
            opt(a.turnaround),
            opt(a.waiting),
            trust(a.trust),
            a.lies_caught,
            a.credits,
            a.status.clone().unwrap_or_else(|| "never admitted".into()),
            match (&a.fault, a.lied) {
                (Some(fault), _) => format!(" ({fault})"),
                (None, _) if a.strategy != "heuristic" => format!(" ({})", a.strategy),
                (None, true) => " (lied)".to_string(),
                (None, false) => String::new(),
            }
        );
    }
    if report.per_agent.len() > 30 {
        let _ = writeln!(
            out,
            "... {} more agents (use --json for all)",
            report.per_agent.len() - 30
        );
    }
    if report.by_strategy.len() > 1 {
        render_by_strategy(&mut out, report);
    }
    let lies: u32 = report.per_agent.iter().map(|a| a.lies_caught).sum();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "lies caught {lies}, coalitions formed {}, LLM calls {}, fallbacks {}, breaker open {}",
        report.coalitions_formed, report.llm_calls, report.llm_fallbacks, report.llm_breaker_open
    );
    let _ = writeln!(
        out,
        "turnaround ratio vs optimal SRPT {} (honest agents {}), lying gain {}, trust AUC {}",
        report
            .turnaround_ratio
            .map_or("-".into(), |r| format!("{r:.3}")),
        report
            .honest_turnaround_ratio
            .map_or("-".into(), |r| format!("{r:.3}")),
        report.lying_gain.map_or("-".into(), |r| format!("{r:+.3}")),
        report.trust_auc.map_or(
            "- (no liars, or no truthful agents, to separate)".into(),
            |r| format!("{r:.3}")
        )
    );
    let _ = writeln!(
        out,
        "agreement {:.3}, invariant violations {}, {} ms wall, {:.0} slots/s, peak RSS {} KiB",
        report.agreement,
        report.invariant_violations,
        report.wall_ms,
        report.slots_per_sec,
        report.peak_rss_kib
    );
    if report.liars_detected.0 > 0 {
        let _ = writeln!(
            out,
            "liars caught {} of {}, median {} rounds from a liar's first lie to its first proven one",
            report.liars_detected.1,
            report.liars_detected.0,
            report
                .detection_rounds_median
                .map_or("-".into(), |m| format!("{m:.1}"))
        );
    }
    if report.suspensions > 0 {
        let _ = writeln!(
            out,
            "membership: {} suspensions (members that missed {} rounds in a row), {} rejoins",
            report.suspensions,
            slotmesh_proto::SUSPEND_AFTER_MISSES,
            report.rejoins
        );
    }
    if report.stalled {
        let _ = writeln!(
            out,
            "stalled: too few voters alive to finalize (a majority crashed)"
        );
    }
    if report.truncated {
        let _ = writeln!(
            out,
            "truncated: stopped at --max-rounds; the measures cover only these rounds"
        );
    }
    for v in &report.violations {
        let _ = writeln!(out, "  violation: {v}");
    }
    out
}
