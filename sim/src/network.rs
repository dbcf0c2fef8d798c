//! The simulated network: a seeded event queue of deliveries and timers on a fake clock,
//! with per-message delay, loss, and a partition that cuts the swarm in two for a while.
//!
//! It models what the daemon's transport (gossipsub) gives: a message is forwarded through
//! the mesh and a lost transmission is repaired at a later heartbeat (IHAVE/IWANT), so loss
//! costs delay, not the message. Only a partition really drops messages; replicas recover
//! what they missed there by fetching certified rounds.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{Digest, Phase, SignedMessage};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Something that happens at a simulated instant.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message reaches a host.
    Deliver {
        /// Receiving host index.
        to: usize,
        /// The message.
        message: SignedMessage,
    },
    /// An engine timer fires.
    Timer {
        /// Host index.
        host: usize,
        /// Round of the timer.
        round: u64,
        /// Phase of the timer.
        phase: Phase,
    },
    /// Bytes that claim to be a message reach a host, which must open them (decode and
    /// verify) as a daemon opens what gossip brings.
    DeliverBytes {
        /// Receiving host index.
        to: usize,
        /// The bytes.
        bytes: Arc<[u8]>,
    },
    /// A peer's answer to a fetch of the inputs that give `digest` reaches a host.
    DeliverInputs {
        /// Receiving host index.
        to: usize,
        /// The round.
        round: u64,
        /// The digest asked for.
        digest: Digest,
        /// The messages.
        messages: Arc<[SignedMessage]>,
    },
    /// A host's own deadline (a deferred decision, a slot boundary) is due.
    Wake {
        /// Host index.
        host: usize,
    },
    /// An agent arrives (starts its replica).
    Arrive {
        /// Agent index.
        agent: usize,
    },
    /// A model's answer to an agent's question is due.
    Settle {
        /// Agent index.
        agent: usize,
        /// Which question.
        ticket: u64,
    },
}

/// Gossip heartbeat: a lost transmission is retried this much later.
pub const HEARTBEAT_MS: u64 = 100;
/// Transmissions tried before a message is given up (0.1 loss: 1 in 10^12 is given up).
const MAX_TRANSMISSIONS: u32 = 12;

/// Network faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability a transmission is lost (and retried a heartbeat later), per mille.
    pub loss_permille: u32,
    /// Largest one-way delay, ms (delays are uniform in 1..=max).
    pub max_delay_ms: u64,
}

/// The event queue and the network's random choices.
#[derive(Debug)]
pub struct Network {
    now: u64,
    /// Events by instant; the events of one instant in the order they were scheduled. (Few
    /// instants are pending at once, so this is cheaper than a heap of every event.)
    queue: BTreeMap<u64, VecDeque<Event>>,
    rng: ChaCha8Rng,
    faults: Faults,
    /// Hosts on the minority side while a partition is in force.
    cut_off: Option<Vec<bool>>,
    /// Deliveries sent, lost, and cut by the partition.
    pub stats: NetworkStats,
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkStats {
    /// Deliveries scheduled.
    pub delivered: u64,
    /// Transmissions lost at random (and retried).
    pub lost: u64,
    /// Deliveries dropped by the partition.
    pub partitioned: u64,
}

impl Network {
    /// An empty network at time 0.
    pub fn new(rng: ChaCha8Rng, faults: Faults) -> Network {
        Network {
            now: 0,
            queue: BTreeMap::new(),
            rng,
            faults,
            cut_off: None,
            stats: NetworkStats::default(),
        }
    }

    /// The simulated time, ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Schedules `event` at `at`.
    pub fn schedule(&mut self, at: u64, event: Event) {
        self.queue
            .entry(at.max(self.now))
            .or_default()
            .push_back(event);
    }

    /// Sends `message` from host `from` to each host in `to`, subject to loss, delay and
    /// partition.
    pub fn broadcast(
        &mut self,
        from: usize,
        to: impl Iterator<Item = usize>,
        message: &SignedMessage,
    ) {
        self.transmit(from, to, 0, |to| Event::Deliver {
            to,
            message: message.clone(),
        });
    }

    /// Sends raw `bytes` from host `from` to each host in `to` (a forger's), like
    /// [`Network::broadcast`].
    pub fn broadcast_bytes(
        &mut self,
        from: usize,
        to: impl Iterator<Item = usize>,
        bytes: &Arc<[u8]>,
    ) {
        self.transmit(from, to, 0, |to| Event::DeliverBytes {
            to,
            bytes: bytes.clone(),
        });
    }

    /// Host `from`'s answer to host `to`'s fetch of the inputs of `digest`: delayed, lost
    /// or cut like any transmission.
    pub fn answer_inputs(
        &mut self,
        from: usize,
        to: usize,
        round: u64,
        digest: Digest,
        messages: Arc<[SignedMessage]>,
    ) {
        self.transmit(from, std::iter::once(to), 0, |to| Event::DeliverInputs {
            to,
            round,
            digest,
            messages: messages.clone(),
        });
    }

    /// Like [`Network::broadcast`], one heartbeat later: a message that reaches these peers
    /// only through forwarding by others.
    pub fn forward(
        &mut self,
        from: usize,
        to: impl Iterator<Item = usize>,
        message: &SignedMessage,
    ) {
        self.transmit(from, to, HEARTBEAT_MS, |to| Event::Deliver {
            to,
            message: message.clone(),
        });
    }

    fn transmit(
        &mut self,
        from: usize,
        to: impl Iterator<Item = usize>,
        extra_delay: u64,
        event: impl Fn(usize) -> Event,
    ) {
        for receiver in to {
            if receiver == from {
                continue;
            }
            if let Some(cut) = &self.cut_off {
                if cut.get(from) != cut.get(receiver) {
                    self.stats.partitioned += 1;
                    continue;
                }
            }
            let mut delay = extra_delay + self.rng.gen_range(1..=self.faults.max_delay_ms.max(1));
            let mut transmissions = 1;
            while self.faults.loss_permille > 0
                && self.rng.gen_range(0..1000) < self.faults.loss_permille
            {
                self.stats.lost += 1;
                transmissions += 1;
                if transmissions > MAX_TRANSMISSIONS {
                    break;
                }
                delay += HEARTBEAT_MS + self.rng.gen_range(1..=self.faults.max_delay_ms.max(1));
            }
            if transmissions > MAX_TRANSMISSIONS {
                continue;
            }
            self.stats.delivered += 1;
            self.schedule(self.now + delay, event(receiver));
        }
    }

    /// Cuts the hosts marked `true` off from the others, or heals with `None`.
    pub fn set_partition(&mut self, cut_off: Option<Vec<bool>>) {
        self.cut_off = cut_off;
    }

    /// Whether a partition is in force.
    pub fn partitioned(&self) -> bool {
        self.cut_off.is_some()
    }

    /// The next event, advancing the clock.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let mut first = self.queue.first_entry()?;
            let at = *first.key();
            let event = first.get_mut().pop_front();
            if first.get().is_empty() {
                first.remove();
            }
            if let Some(event) = event {
                self.now = self.now.max(at);
                return Some(event);
            }
        }
    }
}
