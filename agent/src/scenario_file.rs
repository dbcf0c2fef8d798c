//! Scenario files: who takes part in a run, written down in TOML (`--scenario FILE` of
//! `slotmesh sim` and `slotmesh swarm`). A file lists single agents (`[[agent]]`) and groups
//! (`[[group]]`: a count, bursts and arrivals drawn from the run's seed within the ranges it
//! gives), each with its strategy: `heuristic` (with a personality and a bias), an adversary
//! kind, or `withhold`. The run lists single agents first, then the groups, each in the
//! file's order. Any mistake is refused with the line it is on.

use crate::adversary::Adversary;
use crate::heuristic::Personality;
use crate::scenario::{AgentSpec, Byzantine};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// Most agents a scenario file may name (groups included).
pub const MAX_AGENTS: u64 = 100_000;

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mistake at a line of the file.
    #[error("{path}:{line}: {message}")]
    At {
        /// The file.
        path: String,
        /// Its line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A number, or an inclusive range `[low, high]` to draw from.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Range {
    One(u64),
    Between([u64; 2]),
}

impl Range {
    fn bounds(self) -> (u64, u64) {
        match self {
            Range::One(n) => (n, n),
            Range::Between([low, high]) => (low, high),
        }
    }
}

/// What an `[[agent]]` or a `[[group]]` says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// An agent's name, or a group's name prefix.
    name: Option<String>,
    /// A group's size (absent for an agent).
    count: Option<u64>,
    burst: Range,
    #[serde(default)]
    arrival_ms: Option<Range>,
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    personality: Option<String>,
    #[serde(default)]
    bias: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    agent: Vec<toml::Spanned<Entry>>,
    #[serde(default)]
    group: Vec<toml::Spanned<Entry>>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The agents of the scenario `text` (read from `path`, which errors name); `seed` draws the
/// groups' bursts and arrivals.
pub fn parse(text: &str, path: &str, seed: u64) -> Result<Vec<AgentSpec>, ScenarioError> {
    let at = |offset: usize, message: String| ScenarioError::At {
        path: path.to_string(),
        line: line_of(text, offset),
        message,
    };
    let file: File = toml::from_str(text).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        at(offset, error.message().to_string())
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce9_a210);
    let mut agents: Vec<AgentSpec> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut total: u64 = 0;
    let entries = file
        .agent
        .iter()
        .map(|e| (false, e))
        .chain(file.group.iter().map(|e| (true, e)));
    for (index, (group, spanned)) in entries.enumerate() {
        let offset = spanned.span().start;
        let fail = |message: String| at(offset, message);
        let entry = spanned.get_ref();
        let (count, kind) = match (group, entry.count) {
            (false, None) => (1, "agent"),
            (false, Some(_)) => {
                return Err(fail("an [[agent]] has no count: use a [[group]]".into()))
            }
            (true, Some(count)) if count >= 1 => (count, "group"),
            (true, _) => return Err(fail("a [[group]] needs a count of at least 1".into())),
        };
        total = total.saturating_add(count);
        if total > MAX_AGENTS {
            return Err(fail(format!("more than {MAX_AGENTS} agents")));
        }
        let (burst_low, burst_high) = entry.burst.bounds();
        if burst_low == 0 || burst_low > burst_high || burst_high > u64::from(u32::MAX) {
            return Err(fail(format!(
                "burst must be at least 1 (or a range [low, high] with 1 <= low <= high), got {burst_low}..{burst_high}"
            )));
        }
        let (arrival_low, arrival_high) = entry.arrival_ms.map_or((0, 0), Range::bounds);
        if arrival_low > arrival_high {
            return Err(fail(format!(
                "arrival_ms range [{arrival_low}, {arrival_high}] is empty"
            )));
        }
        let bias = entry.bias.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&bias) {
            return Err(fail(format!("bias must be in [0, 1], got {bias}")));
        }
        let personality: Personality = entry
            .personality
            .as_deref()
            .unwrap_or("cooperative")
            .parse()
            .map_err(|e: String| {
                fail(format!("{e} (known: cooperative, aggressive, strategic)"))
            })?;
        let (adversary, byzantine) = match entry.strategy.as_deref().unwrap_or("heuristic") {
            "heuristic" => (None, None),
            "withhold" => (None, Some(Byzantine::Withholder)),
            "late-commit" => (None, Some(Byzantine::LateCommitter)),
            other => match other.parse::<Adversary>() {
                Ok(kind) => (Some(kind), None),
                Err(_) => {
                    return Err(fail(format!(
                        "unknown strategy `{other}` (known: heuristic, underclaim, pledge-break, withhold, late-commit)"
                    )))
                }
            },
        };
        let prefix = entry.name.clone().unwrap_or_else(|| format!("g{index}"));
        for i in 0..count {
            let name = if group {
                format!("{prefix}{i}")
            } else {
                prefix.clone()
            };
            if name.is_empty() || name.len() > 32 {
                return Err(fail(format!("{kind} name must have 1 to 32 characters")));
            }
            if !names.insert(name.clone()) {
                return Err(fail(format!("the name `{name}` is given twice")));
            }
            agents.push(AgentSpec {
                name,
                burst: u32::try_from(rng.gen_range(burst_low..=burst_high)).unwrap_or(u32::MAX),
                personality,
                bias,
                arrival_ms: rng.gen_range(arrival_low..=arrival_high),
                byzantine,
                adversary,
                crash_at_round: None,
            });
        }
    }
    if agents.is_empty() {
        return Err(at(0, "no [[agent]] or [[group]]: nobody takes part".into()));
    }
    if agents.iter().all(|a| a.arrival_ms > 0) {
        return Err(at(
            0,
            "every agent arrives late: at least one must have arrival_ms = 0 (a founder)".into(),
        ));
    }
    Ok(agents)
}

/// The agents of the scenario file at `path`.
pub fn load(path: &Path, seed: u64) -> Result<Vec<AgentSpec>, ScenarioError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::seed_preset;

    #[test]
    fn the_shipped_seed_scenario_is_the_seed_preset() -> Result<(), ScenarioError> {
        let agents = parse(include_str!("../../scenarios/seed.toml"), "seed.toml", 1)?;
        let shown = |a: &[AgentSpec]| format!("{a:?}");
        assert_eq!(shown(&agents), shown(&seed_preset()));
        Ok(())
    }

    #[test]
    fn groups_draw_from_their_ranges_and_the_seed() -> Result<(), ScenarioError> {
        let text = include_str!("../../scenarios/underclaim.toml");
        let agents = parse(text, "underclaim.toml", 3)?;
        assert_eq!(agents.len(), 7);
        // Single agents first, then the groups, each in the file's order.
        assert_eq!(agents[0].adversary, Some(Adversary::Underclaim));
        assert_eq!((agents[0].name.as_str(), agents[0].burst), ("X", 8));
        assert!(agents[1..].iter().all(|a| (2..=7).contains(&a.burst)));
        assert_eq!(agents[1].name, "h0");
        let again = parse(text, "underclaim.toml", 3)?;
        assert_eq!(format!("{agents:?}"), format!("{again:?}"));
        Ok(())
    }

    #[test]
    fn a_bad_file_is_refused_with_its_line() {
        let error = |text: &str| {
            parse(text, "f.toml", 1).map_or_else(|e| e.to_string(), |_| "accepted".into())
        };
        let good = "[[agent]]\nname = \"A\"\nburst = 2\n";
        assert_eq!(error(good), "accepted");
        let unknown = format!("{good}\n[[agent]]\nname = \"B\"\nburst = 2\nstrategy = \"liar\"\n");
        assert!(
            error(&unknown).starts_with("f.toml:5: unknown strategy `liar`"),
            "{}",
            error(&unknown)
        );
        let bad_number = format!("{good}\n[[agent]]\nname = \"B\"\nburst = -2\n");
        assert!(
            error(&bad_number).starts_with("f.toml:7:"),
            "{}",
            error(&bad_number)
        );
        let missing = format!("{good}\n[[agent]]\nname = \"B\"\n");
        assert!(
            error(&missing).starts_with("f.toml:5:") && error(&missing).contains("burst"),
            "{}",
            error(&missing)
        );
        let bias = format!("{good}\n[[group]]\ncount = 2\nburst = 1\nbias = 1.5\n");
        assert!(
            error(&bias).starts_with("f.toml:5: bias"),
            "{}",
            error(&bias)
        );
        let twice = format!("{good}{good}");
        assert!(
            error(&twice).contains("`A` is given twice"),
            "{}",
            error(&twice)
        );
        assert!(error("").contains("nobody takes part"));
        assert!(error("[[agent]]\nname = \"A\"\nburst = 2\ncolour = 3\n").starts_with("f.toml:4:"));
    }
}
