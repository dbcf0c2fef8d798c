//! Exhaustive model check of the per-round agreement (`proto/src/agreement.rs`) with the
//! `stateright` crate: every interleaving of 3 voters over 4 attempts and of 4 over 3 (5
//! voters over 3 attempts ran out of 24 GiB breadth first and did not end in 15 minutes
//! depth first).
//!
//! The model runs the engine's own agreement code — [`Acceptor`] (promises and votes),
//! [`choose`] (what a proposer may propose) and [`proposer`] (whose turn an attempt is) —
//! on a network that is the set of every message ever sent: any message may be read any
//! number of times, in any order, or never. That covers loss, duplication, reordering,
//! arbitrary delay and one-way links; a crashed or paused voter is one that takes no more
//! steps. What the model leaves to the engine (and to the tests in `agreement.rs`): signing,
//! fetching inputs, timers. How the engine maps onto it:
//! - `Promise(v, a)`: a timeout, or catching up with a later attempt, moves `v` to `a`
//!   (`Engine::move_to`); the model lets a voter move to any later attempt at any time.
//! - `Propose(a, q)`: the proposer of `a` proposes once, after reading the promises of the
//!   majority `q` (any majority whose promises were sent); attempt 0 needs none. Free, it
//!   proposes any value (its own resolution, whatever it holds by then).
//! - `Vote(v, a)`: `v` votes for attempt `a`'s proposal when its acceptor allows it
//!   (the engine votes only in its current attempt: a subset of these steps).
//! - `Learn(v, a, d)`: `v` stores `d` when a majority's votes for `(a, d)` were sent.
//!
//! Properties: no two different digests are ever certifiable in one round; every stored
//! digest is the certified one; and (reachability, so the check is not vacuous) a value
//! can be decided in a later attempt.

use slotmesh_proto::{choose, proposer, Accepted, Acceptor, AgentId, Choice, Digest, Stage};
use stateright::{Checker, Model, Property};
use std::collections::{BTreeMap, BTreeSet};

/// The values voters may hold: two different input sets (say, with and without a late bid).
const VALUES: [Digest; 2] = [Digest([1; 32]), Digest([2; 32])];
const ROUND: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    acceptors: Vec<Acceptor>,
    /// Promises sent: (attempt, voter) -> last vote reported.
    promises: BTreeMap<(u32, usize), Option<Accepted>>,
    /// The proposal of each attempt (its proposer proposes once).
    proposals: BTreeMap<u32, Digest>,
    /// Votes sent: (attempt, voter) -> digest.
    votes: BTreeMap<(u32, usize), Digest>,
    /// What each voter stored.
    stored: Vec<Option<Digest>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Promise(usize, u32),
    Propose(u32, Digest),
    Vote(usize, u32),
    Learn(usize, Digest),
}

struct Agreement {
    voters: usize,
    attempts: u32,
    ids: Vec<AgentId>,
}

impl Agreement {
    fn new(voters: usize, attempts: u32) -> Agreement {
        Agreement {
            voters,
            attempts,
            ids: (0..voters).map(|i| AgentId([i as u8 + 1; 32])).collect(),
        }
    }

    fn majority(&self) -> usize {
        self.voters / 2 + 1
    }

    /// The voter index of attempt `a`'s proposer, by the engine's rule.
    fn proposer_of(&self, attempt: u32) -> Option<usize> {
        let set: BTreeSet<AgentId> = self.ids.iter().copied().collect();
        let id = proposer(&set, ROUND, attempt)?;
        self.ids.iter().position(|x| *x == id)
    }

    /// Digests with a majority of votes in one attempt.
    fn certified(&self, state: &State) -> BTreeSet<Digest> {
        let mut counts: BTreeMap<(u32, Digest), usize> = BTreeMap::new();
        for ((attempt, _), digest) in &state.votes {
            *counts.entry((*attempt, *digest)).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n >= self.majority())
            .map(|((_, d), _)| d)
            .collect()
    }
}

/// Every subset of `items` of size `k`.
fn subsets(items: &[usize], k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for (i, first) in items.iter().enumerate() {
        for mut rest in subsets(&items[i + 1..], k - 1) {
            rest.insert(0, *first);
            out.push(rest);
        }
    }
    out
}

impl Model for Agreement {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            acceptors: vec![Acceptor::default(); self.voters],
            promises: BTreeMap::new(),
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            stored: vec![None; self.voters],
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for v in 0..self.voters {
            for a in state.acceptors[v].promised() + 1..self.attempts {
                actions.push(Action::Promise(v, a));
            }
            for a in state.proposals.keys() {
                if state.acceptors[v].may_vote(*a) {
                    actions.push(Action::Vote(v, *a));
                }
            }
            if state.stored[v].is_none() {
                for d in self.certified(state) {
                    actions.push(Action::Learn(v, d));
                }
            }
        }
        for a in 0..self.attempts {
            if state.proposals.contains_key(&a) {
                continue;
            }
            let Some(p) = self.proposer_of(a) else {
                continue;
            };
            // The proposer proposes in the attempt it is in.
            if state.acceptors[p].promised() != a {
                continue;
            }
            let mut choices = BTreeSet::new();
            if a == 0 {
                choices.extend(VALUES);
            } else {
                let promisers: Vec<usize> = (0..self.voters)
                    .filter(|v| state.promises.contains_key(&(a, *v)))
                    .collect();
                for k in self.majority()..=promisers.len() {
                    for q in subsets(&promisers, k) {
                        let reported: Vec<Option<Accepted>> =
                            q.iter().map(|v| state.promises[&(a, *v)]).collect();
                        match choose(&reported) {
                            Choice::Free => choices.extend(VALUES),
                            Choice::Bound(latest) => {
                                choices.insert(latest.digest);
                            }
                        }
                    }
                }
            }
            for d in choices {
                actions.push(Action::Propose(a, d));
            }
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        let mut next = state.clone();
        match action {
            Action::Promise(v, a) => {
                let promise = next.acceptors[v].promise(Stage::Outcome, a)?;
                next.promises.insert((a, v), promise.accepted);
            }
            Action::Propose(a, d) => {
                next.proposals.insert(a, d);
            }
            Action::Vote(v, a) => {
                let d = *next.proposals.get(&a)?;
                if !next.acceptors[v].vote(a, d) {
                    return None;
                }
                next.votes.insert((a, v), d);
            }
            Action::Learn(v, d) => next.stored[v] = Some(d),
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "no two certified digests",
                |model: &Agreement, s: &State| model.certified(s).len() <= 1,
            ),
            Property::always("stored is certified", |model: &Agreement, s: &State| {
                let certified = model.certified(s);
                s.stored.iter().flatten().all(|d| certified.contains(d))
            }),
            Property::sometimes("decided after attempt 0", |model: &Agreement, s: &State| {
                let majority = model.majority();
                (1..model.attempts).any(|a| {
                    s.votes.keys().filter(|(attempt, _)| *attempt == a).count() >= majority
                })
            }),
        ]
    }
}

fn check(voters: usize, attempts: u32) -> usize {
    // Depth first: the checker keeps a fingerprint per state seen, not a queue of states
    // (breadth first ran 5 voters × 3 attempts out of 24 GiB).
    let checker = Agreement::new(voters, attempts)
        .checker()
        .spawn_dfs()
        .join();
    checker.assert_properties();
    let states = checker.unique_state_count();
    println!("{voters} voters, {attempts} attempts: {states} states, every property holds");
    states
}

#[test]
fn three_voters_four_attempts() {
    assert!(check(3, 4) > 1_000);
}

#[test]
fn four_voters_three_attempts() {
    assert!(check(4, 3) > 1_000);
}
