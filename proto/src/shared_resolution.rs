//! Round resolutions shared between replicas in one process. Replicas that hold the same
//! state and the same round inputs compute the same result (the rule is a pure function), so
//! the simulator's hosts compute it once: the result is keyed by the digest of the state
//! before the round and the key of the set of inputs ([`RoundMessages::set_key`]), and
//! handed to every replica that asks.
//! A replica that holds different messages (loss, a partition, an equivocator's twin) gets a
//! different key and resolves on its own.

use crate::ids::Digest;
use crate::round_messages::RoundMessages;
use crate::rules::{resolve_round, RoundOutcome};
use crate::state::LedgerState;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One resolution: the messages resolved, the state after the round, what happened, and the
/// state's digest.
#[derive(Debug)]
pub struct Resolved {
    /// The messages resolved.
    pub inputs: Arc<RoundMessages>,
    /// The state after the round.
    pub state: Arc<LedgerState>,
    /// What happened in the round.
    pub outcome: RoundOutcome,
    /// Digest of `state`.
    pub digest: Digest,
}

/// (round, digest of the state before it, key of its inputs' set).
type Key = (u64, Digest, (usize, [u64; 4]));

/// A cache of resolutions that replicas in one process share ([`crate::Engine::share_resolutions`]).
/// Cloning it shares it. Only the two most recent rounds are kept.
#[derive(Debug, Clone, Default)]
pub struct SharedResolutions {
    inner: Arc<Mutex<BTreeMap<Key, Arc<Resolved>>>>,
}

impl SharedResolutions {
    /// An empty cache.
    pub fn new() -> SharedResolutions {
        SharedResolutions::default()
    }

    /// Resolves the messages `held` from `before` (whose digest is `before_digest`), or
    /// returns the result another replica computed for the same state and messages.
    pub fn resolve(
        &self,
        before: &LedgerState,
        before_digest: Digest,
        held: &RoundMessages,
    ) -> Arc<Resolved> {
        let key = (held.round(), before_digest, held.set_key());
        if let Ok(cache) = self.inner.lock() {
            if let Some(resolved) = cache.get(&key) {
                if resolved.inputs.same_set(held) {
                    return resolved.clone();
                }
            }
        }
        let inputs = Arc::new(held.clone());
        let (state, outcome) = resolve_round(before, &inputs);
        let digest = state.digest();
        let resolved = Arc::new(Resolved {
            inputs,
            state: Arc::new(state),
            outcome,
            digest,
        });
        // A poisoned lock only loses the sharing, never the result.
        if let Ok(mut cache) = self.inner.lock() {
            let oldest = key.0.saturating_sub(1);
            if cache.keys().next().is_some_and(|k| k.0 < oldest) {
                *cache = cache.split_off(&(oldest, Digest([0; 32]), (0, [0; 4])));
            }
            cache.insert(key, resolved.clone());
        }
        resolved
    }
}
