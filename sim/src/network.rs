//! The simulated network: a seeded event queue of deliveries and timers on a fake clock,
//! with per-message delay, loss, and a partition that cuts the swarm in two for a while.
//!
//! It models what the daemon's transport (gossipsub) gives: a message is forwarded through
//! the mesh and a lost transmission is repaired at a later heartbeat (IHAVE/IWANT), so loss
//! costs delay, not the message. Only a partition really drops messages; replicas recover
//! what they missed there by fetching certified rounds.
//!
//! [`Nemeses`] break the timing assumptions that friendly schedules hide: links that fail
//! one way for several phase timeouts, agreement messages (votes, proposals, promises)
//! delayed by many timeouts, one host's votes held back for long and then published, and
//! hosts that pause and resume to a backlog of stale messages and late timers.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use slotmesh_proto::{Digest, Payload, Phase, SignedMessage};
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

impl Event {
    /// The host an event happens at, if it is one host's.
    fn host(&self) -> Option<usize> {
        match self {
            Event::Deliver { to, .. }
            | Event::DeliverBytes { to, .. }
            | Event::DeliverInputs { to, .. } => Some(*to),
            Event::Timer { host, .. } | Event::Wake { host } => Some(*host),
            Event::Arrive { .. } | Event::Settle { .. } => None,
        }
    }
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
    /// Hostile schedules on top.
    pub nemeses: Nemeses,
}

/// Hostile schedules, seeded and composable. Each outage lasts up to `outage_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nemeses {
    /// From time to time a directed link (host to host) drops everything sent over it,
    /// one way only, for up to `outage_ms`.
    pub one_way: bool,
    /// One agreement message (vote, proposal, promise) in ten is delayed by up to
    /// `outage_ms`, and every vote of host 0 by `outage_ms`: withheld, then published.
    pub slow_votes: bool,
    /// From time to time a host pauses for up to `outage_ms`: what reaches it meanwhile,
    /// and its timers, wait until it resumes.
    pub pauses: bool,
    /// Longest outage, ms (a few phase timeouts).
    pub outage_ms: u64,
}

impl Nemeses {
    /// Every nemesis, with outages of up to `outage_ms`.
    pub fn all(outage_ms: u64) -> Nemeses {
        Nemeses {
            one_way: true,
            slow_votes: true,
            pauses: true,
            outage_ms,
        }
    }

    fn any(&self) -> bool {
        self.one_way || self.slow_votes || self.pauses
    }
}

/// Per mille of transmissions that start a one-way outage of their link.
const ONE_WAY_PERMILLE: u32 = 2;
/// One event in this many pauses its host.
const PAUSE_ONE_IN: u32 = 3_000;

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
    /// Directed links failed by the one-way nemesis, until when.
    one_way_cuts: BTreeMap<(usize, usize), u64>,
    /// Hosts paused, until when.
    paused: BTreeMap<usize, u64>,
    /// Deliveries sent, lost, and cut by the partition.
    pub stats: NetworkStats,
    /// How late a late committer's commits go out, ms.
    late_ms: u64,
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct NetworkStats {
    /// Deliveries scheduled.
    pub delivered: u64,
    /// Transmissions lost at random (and retried).
    pub lost: u64,
    /// Deliveries dropped by the partition.
    pub partitioned: u64,
    /// Deliveries dropped on a link failed one way.
    pub one_way: u64,
    /// Agreement messages held back by the slow-votes nemesis.
    pub delayed_votes: u64,
    /// Pauses of a host.
    pub pauses: u64,
}

impl Network {
    /// An empty network at time 0, on which a late committer's commits go out `late_ms`
    /// after it sends them.
    pub fn new(rng: ChaCha8Rng, faults: Faults, late_ms: u64) -> Network {
        Network {
            now: 0,
            queue: BTreeMap::new(),
            rng,
            faults,
            cut_off: None,
            one_way_cuts: BTreeMap::new(),
            paused: BTreeMap::new(),
            stats: NetworkStats::default(),
            late_ms,
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
        let extra = self.vote_delay(from, message);
        self.transmit(from, to, extra, |to| Event::Deliver {
            to,
            message: message.clone(),
        });
    }

    /// Puts `message` on the wire from host `from` to `to`, `late_ms` later than now.
    pub fn broadcast_late(
        &mut self,
        from: usize,
        to: impl Iterator<Item = usize>,
        message: &SignedMessage,
    ) {
        let late = self.late_ms;
        self.transmit(from, to, late, |to| Event::Deliver {
            to,
            message: message.clone(),
        });
    }

    /// The slow-votes nemesis: extra delay for an agreement message from host `from`.
    fn vote_delay(&mut self, from: usize, message: &SignedMessage) -> u64 {
        let nemeses = self.faults.nemeses;
        if !nemeses.slow_votes || !message.payload().kind().is_agreement() {
            return 0;
        }
        let vote = matches!(message.payload(), Payload::CheckpointVote(_));
        let delay = if from == 0 && vote {
            nemeses.outage_ms
        } else if self.rng.gen_range(0..10) == 0 {
            self.rng.gen_range(0..=nemeses.outage_ms)
        } else {
            return 0;
        };
        self.stats.delayed_votes += 1;
        delay
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
            if self.faults.nemeses.one_way && self.link_is_cut(from, receiver) {
                self.stats.one_way += 1;
                continue;
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

    /// The one-way nemesis: whether the link `from` → `to` is down now (and, now and
    /// then, takes it down).
    fn link_is_cut(&mut self, from: usize, to: usize) -> bool {
        let now = self.now;
        if self
            .one_way_cuts
            .get(&(from, to))
            .is_some_and(|until| *until > now)
        {
            return true;
        }
        if self.rng.gen_range(0..1000) < ONE_WAY_PERMILLE {
            let until = now + self.rng.gen_range(1..=self.faults.nemeses.outage_ms.max(1));
            self.one_way_cuts.insert((from, to), until);
            return true;
        }
        false
    }

    /// Cuts the hosts marked `true` off from the others, or heals with `None`.
    pub fn set_partition(&mut self, cut_off: Option<Vec<bool>>) {
        self.cut_off = cut_off;
    }

    /// Whether a partition is in force.
    pub fn partitioned(&self) -> bool {
        self.cut_off.is_some()
    }

    /// The next event, advancing the clock. A paused host's events wait until it resumes.
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
                if self.faults.nemeses.any() && self.faults.nemeses.pauses {
                    if let Some(host) = event.host() {
                        if let Some(until) = self.pause_of(host) {
                            self.schedule(until, event);
                            continue;
                        }
                    }
                }
                return Some(event);
            }
        }
    }

    /// The pauses nemesis: until when `host` is paused, if it is (now and then it starts
    /// a pause).
    fn pause_of(&mut self, host: usize) -> Option<u64> {
        let now = self.now;
        if let Some(until) = self.paused.get(&host).copied().filter(|u| *u > now) {
            return Some(until);
        }
        if self.rng.gen_range(0..PAUSE_ONE_IN) == 0 {
            let until = now + self.rng.gen_range(1..=self.faults.nemeses.outage_ms.max(1));
            self.paused.insert(host, until);
            self.stats.pauses += 1;
            return Some(until);
        }
        None
    }
}
