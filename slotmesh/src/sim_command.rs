//! `slotmesh sim`: turns the command line into a simulation, shows progress on a terminal,
//! and prints the summary or the JSON measures.

use crate::cli::{strategy_choice, Preset, SimArgs, StrategyKind};
use anyhow::{bail, Context, Result};
use slotmesh_agent::scenario::{population, Population};
use slotmesh_agent::scenario_file;
use slotmesh_llm::record::ReplayBook;
use slotmesh_node::files::LLM_RECORD;
use slotmesh_sim::network::Faults;
use slotmesh_sim::summary::render;
use slotmesh_sim::{self as sim, SimConfig};
use std::io::IsTerminal;

pub(crate) fn run(args: &SimArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.loss) {
        bail!("--loss must be in [0, 1), got {}", args.loss);
    }
    if !(0.0..=1.0).contains(&args.liars) {
        bail!("--liars must be in [0, 1], got {}", args.liars);
    }
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    if args.preset.is_some() && args.mix.is_some() {
        bail!("--mix spreads strategies over generated agents: leave out --preset");
    }
    let mut config = match args.preset {
        _ if args.scenario.is_some() => {
            let path = args.scenario.as_deref().unwrap_or(std::path::Path::new(""));
            SimConfig::generated(scenario_file::load(path, args.seed)?, args.seed)
        }
        Some(Preset::Seed) => SimConfig::seed_preset(args.seed),
        None => SimConfig::generated(
            population(
                Population {
                    agents: args.agents,
                    liars: args.liars,
                    crash: args.crash,
                    equivocators: args.equivocators,
                    withholders: args.withholders,
                    forgers: args.forgers,
                    double_voters: args.double_voters,
                    arrivals: args.arrivals,
                },
                args.seed,
            ),
            args.seed,
        ),
    };
    if let Some(mix) = &args.mix {
        mix.apply(&mut config.agents, args.seed);
    }
    config.faults = Faults {
        loss_permille: (args.loss * 1000.0).round() as u32,
        max_delay_ms: args.max_delay_ms.max(1),
        nemeses: args.nemeses(),
    };
    config.partition = args.partition.map(|p| (p.round, p.duration));
    config.phase_timeout_ms = args.phase_timeout_ms.max(1);
    config.llm_concurrency = args.llm_concurrency.max(1);
    config.record_dir = args.out.clone();
    config.hosts = args.hosts;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        config.ledger = Some(dir.join(slotmesh_node::files::LEDGER));
    }
    config.max_rounds = args.max_rounds;
    config.slot_ms = args.slot_ms.filter(|ms| *ms > 0);
    if config.partition.is_some() && config.host_count() < 3 {
        anyhow::bail!(
            "--partition cuts a third of the hosts off: it needs at least 3 hosts (--hosts)"
        );
    }
    // The sim's clock is simulated; a model's deadline is real time.
    let mut llm = args.llm.clone();
    let deadline_ms = *llm.deadline_ms.get_or_insert(args.llm_sim_deadline_ms);
    config.strategy = strategy_choice(&args.strategy, &llm, deadline_ms.saturating_add(1))?;
    if config.strategy.client().is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(crate::cli::warn_if_llm_unusable(&config.strategy));
    }
    if let StrategyKind::Replay(dir) = &args.strategy {
        for agent in &config.agents {
            ReplayBook::load(dir, &agent.name)?;
        }
    }
    if let Some(dir) = &args.out {
        if args.strategy != StrategyKind::Heuristic {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for agent in &config.agents {
                let record = dir.join(&agent.name).join(LLM_RECORD);
                if record.exists() && !matches!(&args.strategy, StrategyKind::Replay(d) if d == dir)
                {
                    std::fs::remove_file(&record)
                        .with_context(|| format!("cannot replace {}", record.display()))?;
                }
            }
        }
    }

    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(config.agents.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} round {msg} [{bar:30}] {pos}/{len} agents done",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut report = sim::run(&config, |rounds, done| {
        if let Some(bar) = &bar {
            bar.set_message(rounds.to_string());
            bar.set_position(done as u64);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if args.lying_samples > 0 && args.strategy != StrategyKind::Heuristic {
        eprintln!("lying_gain is measured on heuristic agents only; skipped");
    } else if args.lying_samples > 0 {
        report.lying_gain = sim::lying_gain(&config, args.lying_samples);
        report.lying_gain_by_kind = sim::lying_gain_by_kind(&config, &report);
    }
    report.peak_rss_kib = slotmesh_agent::sys::peak_rss_kib();
    if let Some(error) = &report.ledger_error {
        bail!("{error}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if report.invariant_violations > 0 {
        bail!("{} invariant violations", report.invariant_violations);
    }
    Ok(())
}
