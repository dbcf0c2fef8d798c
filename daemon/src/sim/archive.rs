//! The final rounds the simulator keeps: served to replicas that fall behind, and written by
//! `sim --out`.
//!
//! The recent rounds are held as the replicas hold them ([`CertifiedRound`]: shared,
//! verified messages, not yet encoded), so a run that never sends a record never signs one.
//! When every round is kept (`--out`), a round leaving the recent window is encoded as the
//! ledger record ([`FinalRound`]), which signs its messages once.

use slotmesh_proto::{CertifiedRound, FinalRound};
use std::collections::BTreeMap;

/// Rounds held unencoded when every round is kept.
const HELD_WHEN_KEEPING_ALL: u64 = 64;

/// The kept final rounds.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    held: BTreeMap<u64, CertifiedRound>,
    encoded: BTreeMap<u64, FinalRound>,
    /// Rounds held; older ones are dropped, or encoded if `keep_all`.
    window: u64,
    keep_all: bool,
}

impl Archive {
    /// Keeps the last `rounds` rounds, or every round if `None`.
    pub(super) fn new(rounds: Option<u64>) -> Archive {
        Archive {
            held: BTreeMap::new(),
            encoded: BTreeMap::new(),
            window: rounds.unwrap_or(HELD_WHEN_KEEPING_ALL).max(1),
            keep_all: rounds.is_none(),
        }
    }

    /// Keeps `certified`, the newest final round.
    pub(super) fn insert(&mut self, certified: CertifiedRound) {
        let round = certified.round();
        self.held.insert(round, certified);
        while self.held.len() as u64 > self.window {
            let Some((old, certified)) = self.held.pop_first() else {
                break;
            };
            if self.keep_all {
                self.encoded.insert(old, certified.record());
            }
        }
    }

    /// The record of `round`, as a peer would send it, if kept.
    pub(super) fn record(&self, round: u64) -> Option<FinalRound> {
        match self.held.get(&round) {
            Some(certified) => Some(certified.record()),
            None => self.encoded.get(&round).cloned(),
        }
    }

    /// The oldest round kept.
    pub(super) fn first_round(&self) -> Option<u64> {
        let held = self.held.keys().next();
        let encoded = self.encoded.keys().next();
        held.into_iter().chain(encoded).min().copied()
    }

    /// Every kept record, in round order (what `sim --out` writes).
    pub fn records(&self) -> Vec<FinalRound> {
        let mut records: Vec<FinalRound> = self.encoded.values().cloned().collect();
        records.extend(self.held.values().map(CertifiedRound::record));
        records
    }
}
