//! The set of verified messages of one round, keyed canonically by (sender, kind), that the
//! slot-resolution rule consumes. Insertion order never matters: the set, its iteration order
//! and its digest depend only on which messages it holds.

use crate::envelope::SignedMessage;
use crate::ids::{AgentId, Digest};
use crate::wire::{CoalitionProposal, Negotiation, Payload, PayloadKind, Reveal};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

/// The distinct messages of one turn, lowest id first: two are enough to prove
/// equivocation, so no more are kept.
#[derive(Debug, Clone)]
struct Held {
    first: SignedMessage,
    second: Option<SignedMessage>,
}

impl Held {
    fn iter(&self) -> impl Iterator<Item = &SignedMessage> + '_ {
        std::iter::once(&self.first).chain(self.second.as_ref())
    }
}

/// What one sender said in one turn of a round.
#[derive(Debug, Clone, Copy)]
pub enum Turn<'a> {
    /// Nothing.
    Missing,
    /// Exactly one message.
    One(&'a SignedMessage),
    /// Two different signed messages: equivocation, with the evidence pair.
    Equivocated(&'a SignedMessage, &'a SignedMessage),
}

/// Result of [`RoundMessages::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A message not held before.
    New,
    /// The same message was already held.
    Duplicate,
    /// A second, different message of a turn: the sender equivocated.
    Equivocation,
    /// Not kept: the sender already equivocated on this turn, the message belongs to another
    /// round, or it is a checkpoint vote (votes are tallied, not resolved).
    Ignored,
}

/// The verified messages of one round.
///
/// Besides the messages it keeps two indexes for strategies, so that an agent deciding
/// among thousands does not scan them all: claims by sender and by size, and coalition
/// proposals by partner. Both record the first message of a turn; the rule never reads them.
#[derive(Debug, Clone, Default)]
pub struct RoundMessages {
    round: u64,
    turns: BTreeMap<(AgentId, PayloadKind), Held>,
    /// Held messages, and the sum of their ids as 256-bit integers ([`RoundMessages::set_key`]).
    count: usize,
    id_sum: [u64; 4],
    claims: BTreeMap<AgentId, u32>,
    claims_ranked: BTreeSet<(u32, AgentId)>,
    /// (partner, proposer) of every proposal held.
    proposals_to: BTreeSet<(AgentId, AgentId)>,
}

impl RoundMessages {
    /// An empty set for `round`.
    pub fn new(round: u64) -> RoundMessages {
        RoundMessages {
            round,
            ..RoundMessages::default()
        }
    }

    /// The round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Adds a verified message of this round.
    pub fn insert(&mut self, message: SignedMessage) -> Inserted {
        let kind = message.payload().kind();
        if message.round() != self.round || kind.is_agreement() {
            return Inserted::Ignored;
        }
        let id = message.id();
        let inserted = match self.turns.entry((message.sender(), kind)) {
            Entry::Vacant(vacant) => {
                vacant.insert(Held {
                    first: message.clone(),
                    second: None,
                });
                Inserted::New
            }
            Entry::Occupied(mut occupied) => {
                let held = occupied.get_mut();
                if held.iter().any(|m| m.id() == id) {
                    return Inserted::Duplicate;
                }
                // The two lowest ids of every variant seen, whatever the arrival order: a
                // third variant replaces the higher one it undercuts, and is ignored otherwise.
                let replaced = match &held.second {
                    Some(second) if id > second.id() => return Inserted::Ignored,
                    Some(second) => Some(second.id()),
                    None => None,
                };
                if id < held.first.id() {
                    held.second = Some(std::mem::replace(&mut held.first, message.clone()));
                } else {
                    held.second = Some(message.clone());
                }
                if let Some(old) = replaced {
                    self.count -= 1;
                    sub_id(&mut self.id_sum, &old);
                }
                Inserted::Equivocation
            }
        };
        self.count += 1;
        add_id(&mut self.id_sum, &id);
        if inserted == Inserted::New {
            self.index(&message);
        }
        inserted
    }

    fn index(&mut self, message: &SignedMessage) {
        let sender = message.sender();
        match message.payload() {
            Payload::Claim(claim) => {
                self.claims.insert(sender, claim.remaining);
                self.claims_ranked.insert((claim.remaining, sender));
            }
            Payload::Negotiation(Negotiation {
                proposal: Some(proposal),
                ..
            }) => {
                for partner in &proposal.partners {
                    self.proposals_to.insert((*partner, sender));
                }
            }
            _ => {}
        }
    }

    /// The claims held, by sender (each sender's first claim).
    pub fn claims(&self) -> &BTreeMap<AgentId, u32> {
        &self.claims
    }

    /// The claims held as (claim, sender), shortest first (ties: lowest sender id).
    pub fn claims_ranked(&self) -> impl DoubleEndedIterator<Item = (u32, AgentId)> + '_ {
        self.claims_ranked.iter().copied()
    }

    /// The coalition proposals held that name `partner`, as (proposer, proposal), by proposer.
    pub fn proposals_to(
        &self,
        partner: AgentId,
    ) -> impl Iterator<Item = (AgentId, &CoalitionProposal)> + '_ {
        self.proposals_to
            .range((partner, AgentId([0; 32]))..=(partner, AgentId([0xff; 32])))
            .filter_map(move |(_, proposer)| {
                match self.one(proposer, PayloadKind::Negotiation)?.payload() {
                    Payload::Negotiation(Negotiation {
                        proposal: Some(proposal),
                        ..
                    }) => Some((*proposer, proposal)),
                    _ => None,
                }
            })
    }

    /// What `sender` said for `kind`.
    pub fn turn(&self, sender: &AgentId, kind: PayloadKind) -> Turn<'_> {
        let Some(held) = self.turns.get(&(*sender, kind)) else {
            return Turn::Missing;
        };
        match &held.second {
            None => Turn::One(&held.first),
            Some(second) => Turn::Equivocated(&held.first, second),
        }
    }

    /// The single message `sender` sent for `kind`, if it sent exactly one.
    pub fn one(&self, sender: &AgentId, kind: PayloadKind) -> Option<&SignedMessage> {
        match self.turn(sender, kind) {
            Turn::One(message) => Some(message),
            _ => None,
        }
    }

    /// Whether this very message is held.
    pub fn contains(&self, message: &SignedMessage) -> bool {
        let key = (message.sender(), message.payload().kind());
        self.turns
            .get(&key)
            .is_some_and(|held| held.iter().any(|m| m.id() == message.id()))
    }

    /// Whether `sender` sent anything for `kind`.
    pub fn has_spoken(&self, sender: &AgentId, kind: PayloadKind) -> bool {
        self.turns.contains_key(&(*sender, kind))
    }

    /// The reveal `sender` sent, if exactly one.
    pub fn reveal(&self, sender: &AgentId) -> Option<Reveal> {
        match self.one(sender, PayloadKind::Reveal)?.payload() {
            crate::wire::Payload::Reveal(reveal) => Some(*reveal),
            _ => None,
        }
    }

    /// Every held message, in canonical (sender, kind, id) order.
    pub fn iter(&self) -> impl Iterator<Item = &SignedMessage> + '_ {
        self.turns.values().flat_map(Held::iter)
    }

    /// Every (sender, kind) turn that holds messages, in canonical order.
    pub fn turns(&self) -> impl Iterator<Item = (AgentId, PayloadKind, Turn<'_>)> + '_ {
        self.turns
            .keys()
            .map(move |(sender, kind)| (*sender, *kind, self.turn(sender, *kind)))
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// A key for the set of held messages, in O(1): their count and the sum of their ids as
    /// 256-bit integers (independent of insertion order). It names a set in a process's
    /// cache of resolutions ([`crate::SharedResolutions`], which checks
    /// [`RoundMessages::same_set`] on a hit, as sums can be made to collide); it is not part
    /// of the protocol.
    pub fn set_key(&self) -> (usize, [u64; 4]) {
        (self.count, self.id_sum)
    }

    /// Whether `other` holds exactly the same messages.
    pub fn same_set(&self, other: &RoundMessages) -> bool {
        self.round == other.round
            && self.count == other.count
            && self.iter().zip(other.iter()).all(|(a, b)| a.id() == b.id())
    }

    /// Every held message but the reveals: what a round's seal agreement fixes.
    pub fn sealed_part(&self) -> RoundMessages {
        self.iter()
            .filter(|m| m.payload().kind() != PayloadKind::Reveal)
            .fold(RoundMessages::new(self.round), |mut set, m| {
                set.insert(m.clone());
                set
            })
    }

    /// Hash of the ids of all held messages, in canonical order.
    pub fn inputs_digest(&self) -> Digest {
        let ids: Vec<[u8; 32]> = self.iter().map(|m| m.id().0).collect();
        let flat: Vec<u8> = ids.concat();
        Digest::of(
            b"slotmesh/round-inputs/v1",
            &[&self.round.to_le_bytes(), &flat],
        )
    }
}

/// `sum -= id` as little-endian 256-bit integers, wrapping.
fn sub_id(sum: &mut [u64; 4], id: &Digest) {
    let mut borrow = false;
    for (limb, chunk) in sum.iter_mut().zip(id.0.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let (partial, under_a) = limb.overflowing_sub(u64::from_le_bytes(bytes));
        let (total, under_b) = partial.overflowing_sub(u64::from(borrow));
        *limb = total;
        borrow = under_a || under_b;
    }
}

/// `sum += id` as little-endian 256-bit integers, wrapping.
fn add_id(sum: &mut [u64; 4], id: &Digest) {
    let mut carry = false;
    for (limb, chunk) in sum.iter_mut().zip(id.0.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let (partial, overflow_a) = limb.overflowing_add(u64::from_le_bytes(bytes));
        let (total, overflow_b) = partial.overflowing_add(u64::from(carry));
        *limb = total;
        carry = overflow_a || overflow_b;
    }
}
