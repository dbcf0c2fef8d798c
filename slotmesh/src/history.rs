//! What a ledger says happened, read back from a data directory: every final round replayed
//! and verified from genesis (messages, resolution, certificate), the schedule, and each
//! agent's course. Used by `slotmesh verify`, the summary of `slotmesh swarm`, and reports.

use slotmesh_node::ledger::{Ledger, LedgerError};
use slotmesh_proto::LeaveReason;
use slotmesh_proto::{AgentId, Digest, FinalRoundError, LedgerState, Limits, MemberStatus};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Why a ledger could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A record does not follow from the ones before it.
    #[error("{path}: round {round} does not verify: {source}")]
    Invalid {
        /// The ledger.
        path: PathBuf,
        /// The round.
        round: u64,
        /// Why.
        source: FinalRoundError,
    },
}

/// One final round as the schedule shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundEntry {
    /// The round.
    pub round: u64,
    /// Who won its slot.
    pub winner: Option<AgentId>,
    /// The certified state digest.
    pub digest: Digest,
    /// Public trust of every member after the round, ppm.
    pub trust: BTreeMap<AgentId, u32>,
    /// Coalitions formed in the round: (proposer, members).
    pub coalitions_formed: Vec<(AgentId, Vec<AgentId>)>,
    /// Coalitions dissolved at the end of the round.
    pub coalitions_dissolved: usize,
}

/// A verified ledger.
#[derive(Debug, Clone)]
pub struct History {
    /// The ledger file.
    pub path: PathBuf,
    /// Final rounds in order.
    pub rounds: Vec<RoundEntry>,
    /// The state after the last round.
    pub state: LedgerState,
    /// Round in which each agent completed (left with its job done).
    pub completed: BTreeMap<AgentId, u64>,
    /// Bytes of a torn last record that were left out.
    pub dropped_tail_bytes: u64,
}

/// The ledger file of a data dir (or the path itself if it is a file).
pub fn ledger_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(slotmesh_node::files::LEDGER)
    } else {
        path.to_path_buf()
    }
}

impl History {
    /// Reads and verifies the ledger of the data dir (or ledger file) `path`.
    pub fn load(path: &Path) -> Result<History, HistoryError> {
        let path = ledger_path(path);
        let limits = Limits::default();
        let loaded = Ledger::read(&path, &limits)?;
        let mut state = LedgerState::genesis(loaded.swarm);
        let mut rounds = Vec::new();
        let mut completed = BTreeMap::new();
        for record in &loaded.records {
            let (next, outcome, _) =
                record
                    .apply(&state, &limits)
                    .map_err(|source| HistoryError::Invalid {
                        path: path.clone(),
                        round: record.round,
                        source,
                    })?;
            for (id, reason) in &outcome.left {
                if *reason == LeaveReason::Completed {
                    completed.insert(*id, record.round);
                }
            }
            let coalitions_formed = outcome
                .coalitions_formed
                .iter()
                .map(|id| {
                    let members = next
                        .coalitions
                        .get(id)
                        .map(|c| c.members.iter().copied().collect())
                        .unwrap_or_default();
                    (id.proposer, members)
                })
                .collect();
            rounds.push(RoundEntry {
                round: record.round,
                winner: outcome.winner,
                digest: record.certificate.digest,
                trust: next.members.iter().map(|(id, m)| (*id, m.trust)).collect(),
                coalitions_formed,
                coalitions_dissolved: outcome.coalitions_dissolved.len(),
            });
            state = next;
        }
        Ok(History {
            path,
            rounds,
            state,
            completed,
            dropped_tail_bytes: loaded.dropped_tail_bytes,
        })
    }

    /// The display name of an agent.
    pub fn name(&self, id: &AgentId) -> String {
        self.state.name_of(id)
    }

    /// Each member's course: (id, turnaround, waiting) in rounds, for members that
    /// completed (turnaround from joining to the slot that finished the job).
    pub fn courses(&self) -> Vec<(AgentId, Option<(u64, u64)>)> {
        self.state
            .members
            .iter()
            .map(|(id, member)| {
                let last_win = self
                    .rounds
                    .iter()
                    .rev()
                    .find(|r| r.winner == Some(*id))
                    .map(|r| r.round);
                let course = match (member.status, last_win) {
                    (MemberStatus::Completed, Some(last)) => {
                        let turnaround = last + 1 - member.joined_round;
                        Some((
                            turnaround,
                            turnaround.saturating_sub(u64::from(member.used_slots)),
                        ))
                    }
                    _ => None,
                };
                (*id, course)
            })
            .collect()
    }

    /// Names of the agents in the order they completed.
    pub fn completion_order(&self) -> Vec<String> {
        let mut order: Vec<(&AgentId, &u64)> = self.completed.iter().collect();
        order.sort_by_key(|(id, round)| (**round, **id));
        order.iter().map(|(id, _)| self.name(id)).collect()
    }

    /// A plain-text summary: the schedule, then each agent's course.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let schedule: Vec<String> = self
            .rounds
            .iter()
            .filter_map(|r| r.winner.as_ref().map(|w| self.name(w)))
            .collect();
        let _ = writeln!(
            out,
            "schedule ({} slots): {}",
            schedule.len(),
            schedule.join(" ")
        );
        let _ = writeln!(
            out,
            "completion order: {}",
            self.completion_order().join(", ")
        );
        let formed: Vec<String> = self
            .rounds
            .iter()
            .flat_map(|r| {
                r.coalitions_formed.iter().map(move |(proposer, members)| {
                    let names: Vec<String> = members.iter().map(|m| self.name(m)).collect();
                    if names.is_empty() {
                        // Dissolved within the round it formed in.
                        format!("{}'s in round {}", self.name(proposer), r.round)
                    } else {
                        format!("{} in round {}", names.join("+"), r.round)
                    }
                })
            })
            .collect();
        let dissolved: usize = self.rounds.iter().map(|r| r.coalitions_dissolved).sum();
        let _ = writeln!(
            out,
            "coalitions: {} formed{}{}, {dissolved} dissolved",
            formed.len(),
            if formed.is_empty() { "" } else { ": " },
            formed.join(", ")
        );
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>8} {:>10} {:>9} {:>8} {:>8}",
            "agent", "slots", "status", "turnaround", "waiting", "trust", "offences"
        );
        for (id, course) in self.courses() {
            let Some(member) = self.state.members.get(&id) else {
                continue;
            };
            let (turnaround, waiting) = match course {
                Some((t, w)) => (t.to_string(), w.to_string()),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "{:<10} {:>6} {:>8} {:>10} {:>9} {:>7.3} {:>8}",
                member.name,
                member.used_slots,
                format!("{:?}", member.status).to_lowercase(),
                turnaround,
                waiting,
                f64::from(member.trust) / 1e6,
                member.offences.total()
            );
        }
        out
    }
}

/// The verdict of comparing several ledgers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether every ledger verifies and they agree on every round they share.
    pub ok: bool,
    /// One line saying so.
    pub line: String,
}

/// Do these ledgers verify, and agree on every round they share?
pub fn verify(paths: &[PathBuf]) -> Verdict {
    let mut histories = Vec::new();
    for path in paths {
        match History::load(path) {
            Ok(h) => histories.push(h),
            Err(e) => {
                return Verdict {
                    ok: false,
                    line: format!("FAIL: {e}"),
                }
            }
        }
    }
    let mut agreed: BTreeMap<u64, (Digest, &Path)> = BTreeMap::new();
    for history in &histories {
        for entry in &history.rounds {
            match agreed.get(&entry.round) {
                Some((digest, other)) if *digest != entry.digest => {
                    return Verdict {
                        ok: false,
                        line: format!(
                            "FAIL: round {} differs: {} has {}, {} has {}",
                            entry.round,
                            other.display(),
                            digest.to_hex(),
                            history.path.display(),
                            entry.digest.to_hex()
                        ),
                    }
                }
                Some(_) => {}
                None => {
                    agreed.insert(entry.round, (entry.digest, &history.path));
                }
            }
        }
    }
    let certificates: usize = histories.iter().map(|h| h.rounds.len()).sum();
    let shortest = histories.iter().map(|h| h.rounds.len()).min().unwrap_or(0);
    Verdict {
        ok: true,
        line: if histories.len() == 1 {
            format!(
                "OK: the ledger verifies: {} final rounds; {certificates} certificates verified",
                agreed.len()
            )
        } else {
            format!(
                "OK: {} ledgers agree on every round they share: {} final rounds in all, {shortest} in the shortest ledger (a daemon that leaves stops recording); {certificates} certificates verified",
                histories.len(),
                agreed.len(),
            )
        },
    }
}
