//! Agent memory: a short-term window of the last rounds and a long-term summary of the
//! whole lifetime, serialisable so the daemon can persist it across restarts.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Rounds kept in short-term memory.
pub const SHORT_TERM_ROUNDS: usize = 5;
/// Offenders named per remembered round (the rest are counted): memory stays the same size
/// among thousands of agents.
pub const OFFENDERS_NAMED: usize = 8;
/// Offenders the long-term summary keeps counts for: the most frequent (a newcomer replaces
/// the least counted one when it is full).
pub const OFFENDERS_COUNTED: usize = 32;

/// One remembered round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundMemory {
    /// The round.
    pub round: u64,
    /// Name of the winner, if any.
    pub winner: Option<String>,
    /// Whether this agent won.
    pub won: bool,
    /// Names of agents proven to offend this round (at most [`OFFENDERS_NAMED`]).
    pub offenders: Vec<String>,
    /// How many offended this round, named or not.
    #[serde(default)]
    pub offenders_total: usize,
    /// Coalitions formed (proposer names).
    pub coalitions_formed: Vec<String>,
}

/// Compressed lifetime memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongTermSummary {
    /// Rounds observed.
    pub rounds_seen: u64,
    /// Slots won.
    pub wins: u64,
    /// Proven offences seen, by agent name, for the [`OFFENDERS_COUNTED`] most frequent.
    pub offences_by_agent: BTreeMap<String, u32>,
    /// Coalitions this agent was part of.
    pub coalitions_joined: u32,
    /// Free-text summary: written by the model when it answers, else by [`Memory::summarise`].
    pub note: String,
    /// Whether `note` was written by a model.
    #[serde(default)]
    pub note_by_model: bool,
}

/// Short-term window plus long-term summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// The last [`SHORT_TERM_ROUNDS`] rounds, oldest first.
    pub short_term: VecDeque<RoundMemory>,
    /// The whole lifetime, compressed.
    pub long_term: LongTermSummary,
}

/// Counts one offence of `name`, keeping at most [`OFFENDERS_COUNTED`] names: a name not
/// counted yet replaces the least counted one (ties: the last by name), so repeat offenders
/// stay while one-off ones come and go.
fn count_offence(counts: &mut BTreeMap<String, u32>, name: &str) {
    if let Some(count) = counts.get_mut(name) {
        *count += 1;
        return;
    }
    if counts.len() >= OFFENDERS_COUNTED {
        let least = counts
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(n, _)| n.clone());
        if let Some(least) = least {
            counts.remove(&least);
        }
    }
    counts.insert(name.to_owned(), 1);
}

impl Memory {
    /// Remembers a round: into the window, and folded into the summary.
    pub fn remember(&mut self, entry: RoundMemory, joined_coalition: bool) {
        let summary = &mut self.long_term;
        summary.rounds_seen += 1;
        summary.wins += u64::from(entry.won);
        summary.coalitions_joined += u32::from(joined_coalition);
        for name in &entry.offenders {
            count_offence(&mut summary.offences_by_agent, name);
        }
        self.short_term.push_back(entry);
        while self.short_term.len() > SHORT_TERM_ROUNDS {
            self.short_term.pop_front();
        }
    }

    /// The deterministic summariser: the long-term counts as one short paragraph (used as
    /// the note when no model wrote one).
    pub fn summarise(&self) -> String {
        let summary = &self.long_term;
        let mut text = format!(
            "Seen {} rounds, won {} slots, joined {} coalitions.",
            summary.rounds_seen, summary.wins, summary.coalitions_joined
        );
        let mut offenders: Vec<(&String, &u32)> = summary.offences_by_agent.iter().collect();
        offenders.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !offenders.is_empty() {
            let listed: Vec<String> = offenders
                .iter()
                .take(8)
                .map(|(name, count)| format!("{name} x{count}"))
                .collect();
            text.push_str(&format!(" Proven offences seen: {}.", listed.join(", ")));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_last_rounds_and_summary_keeps_everything() {
        let mut memory = Memory::default();
        for round in 0..8 {
            memory.remember(
                RoundMemory {
                    round,
                    winner: Some("A".into()),
                    won: round % 2 == 0,
                    offenders: vec!["B".into()],
                    offenders_total: 1,
                    coalitions_formed: vec![],
                },
                false,
            );
        }
        let rounds: Vec<u64> = memory.short_term.iter().map(|r| r.round).collect();
        assert_eq!(rounds, vec![3, 4, 5, 6, 7]);
        assert_eq!(memory.long_term.rounds_seen, 8);
        assert_eq!(memory.long_term.wins, 4);
        assert_eq!(memory.long_term.offences_by_agent.get("B"), Some(&8));
        // A memory saved before `note_by_model` existed still loads.
        let old = r#"{"short_term":[],"long_term":{"rounds_seen":2,"wins":1,"offences_by_agent":{},"coalitions_joined":0,"note":"n"}}"#;
        let loaded: Memory = serde_json::from_str(old).unwrap_or_default();
        assert_eq!(
            (loaded.long_term.rounds_seen, loaded.long_term.note_by_model),
            (2, false)
        );
        assert_eq!(
            memory.summarise(),
            "Seen 8 rounds, won 4 slots, joined 0 coalitions. Proven offences seen: B x8."
        );
    }

    #[test]
    fn offence_counts_stay_bounded_and_keep_the_most_frequent() {
        let mut counts = BTreeMap::new();
        for _ in 0..5 {
            count_offence(&mut counts, "liar");
        }
        for i in 0..1000 {
            count_offence(&mut counts, &format!("once{i}"));
        }
        assert_eq!(counts.len(), OFFENDERS_COUNTED);
        assert_eq!(counts.get("liar"), Some(&5));
    }
}
