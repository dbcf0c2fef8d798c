//! The simulator's byzantine agents, one type each: what a byzantine agent's host puts on
//! the wire in place of the honest agent's message. Their offences must be proven from the
//! shared record (equivocation, withholding) or refused on arrival (forgeries), and the
//! invariants must hold whatever they do.

use crate::network::Network;
use slotmesh_agent::scenario::Byzantine;
use slotmesh_proto::{CheckpointVote, Commit, Payload, PayloadKind};
use slotmesh_proto::{Digest, Identity, SignedMessage, SwarmId};
use std::sync::Arc;

/// What a byzantine agent sends.
pub(crate) trait Misbehaviour {
    /// Puts `message`, signed by `signer` on host `from`, on the wire to the hosts `to`.
    fn transmit(
        &self,
        net: &mut Network,
        from: usize,
        to: Vec<usize>,
        message: &SignedMessage,
        signer: &Identity,
        swarm: SwarmId,
    );
}

/// Sends three different commits each round, each to a third of its peers first; gossip
/// forwarding brings every variant to everyone a heartbeat later.
pub(crate) struct Equivocator;

/// Treats the messages of one kind apart from the rest: a withholder drops its reveals, a
/// silent newcomer sends its joins and nothing else, a late committer sends its commits
/// late, after the round's seal (as one would that waits to see the others' reveals before
/// it bids).
pub(crate) struct ByKind {
    /// The kind treated apart.
    kind: PayloadKind,
    /// What is done with messages of that kind.
    treatment: Treatment,
}

/// What [`ByKind`] does with its kind's messages (and the rest).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Treatment {
    /// Drops them; sends the rest.
    Drop,
    /// Sends them alone; drops the rest.
    Only,
    /// Sends them late; sends the rest on time.
    Late,
}

/// Sends each message, and a copy altered after signing (one byte of the signature
/// flipped) that every receiver must refuse.
pub(crate) struct Forger;

/// Sends each checkpoint vote, and a second vote of the same attempt for another digest to
/// a third of its peers first (gossip brings both to everyone a heartbeat later).
pub(crate) struct DoubleVoter;

/// The behaviour of `byzantine`.
pub(crate) fn of(byzantine: Byzantine) -> &'static dyn Misbehaviour {
    match byzantine {
        Byzantine::Equivocator => &Equivocator,
        Byzantine::Withholder => &ByKind {
            kind: PayloadKind::Reveal,
            treatment: Treatment::Drop,
        },
        Byzantine::Forger => &Forger,
        Byzantine::DoubleVoter => &DoubleVoter,
        Byzantine::Silent => &ByKind {
            kind: PayloadKind::Join,
            treatment: Treatment::Only,
        },
        Byzantine::LateCommitter => &ByKind {
            kind: PayloadKind::Commit,
            treatment: Treatment::Late,
        },
    }
}

impl Misbehaviour for Equivocator {
    fn transmit(
        &self,
        net: &mut Network,
        from: usize,
        to: Vec<usize>,
        message: &SignedMessage,
        signer: &Identity,
        swarm: SwarmId,
    ) {
        let Payload::Commit(commit) = message.payload() else {
            net.broadcast(from, to.into_iter(), message);
            return;
        };
        // Two twins besides the original: three signed variants of one turn, each reaching
        // a third of the hosts first and the rest a heartbeat later, so every host sees them
        // in its own order.
        let twins: Vec<SignedMessage> = [0usize, 1]
            .iter()
            .map(|byte| {
                let mut other = commit.commitment.0;
                other[*byte] ^= 0xff;
                signer.sign(
                    swarm,
                    message.round(),
                    Payload::Commit(Commit {
                        commitment: Digest(other),
                        deposit: commit.deposit,
                    }),
                )
            })
            .collect();
        let variants = [message, &twins[0], &twins[1]];
        for (k, variant) in variants.iter().enumerate() {
            let first: Vec<usize> = to.iter().copied().filter(|j| j % 3 == k).collect();
            let later: Vec<usize> = to.iter().copied().filter(|j| j % 3 != k).collect();
            net.broadcast(from, first.into_iter(), variant);
            net.forward(from, later.into_iter(), variant);
        }
    }
}

impl Misbehaviour for ByKind {
    fn transmit(
        &self,
        net: &mut Network,
        from: usize,
        to: Vec<usize>,
        message: &SignedMessage,
        _signer: &Identity,
        _swarm: SwarmId,
    ) {
        let of_kind = message.payload().kind() == self.kind;
        match (self.treatment, of_kind) {
            (Treatment::Late, true) => net.broadcast_late(from, to.into_iter(), message),
            (Treatment::Drop, true) | (Treatment::Only, false) => {}
            _ => net.broadcast(from, to.into_iter(), message),
        }
    }
}

impl Misbehaviour for Forger {
    fn transmit(
        &self,
        net: &mut Network,
        from: usize,
        to: Vec<usize>,
        message: &SignedMessage,
        _signer: &Identity,
        _swarm: SwarmId,
    ) {
        let mut forged = message.bytes().to_vec();
        if let Some(last) = forged.last_mut() {
            *last ^= 0x01;
        }
        let forged: Arc<[u8]> = forged.into();
        net.broadcast(from, to.iter().copied(), message);
        net.broadcast_bytes(from, to.into_iter(), &forged);
    }
}

impl Misbehaviour for DoubleVoter {
    fn transmit(
        &self,
        net: &mut Network,
        from: usize,
        to: Vec<usize>,
        message: &SignedMessage,
        signer: &Identity,
        swarm: SwarmId,
    ) {
        net.broadcast(from, to.iter().copied(), message);
        let Payload::CheckpointVote(vote) = message.payload() else {
            return;
        };
        let mut other = vote.digest.0;
        other[0] ^= 0xff;
        let twin = signer.sign(
            swarm,
            message.round(),
            Payload::CheckpointVote(CheckpointVote {
                digest: Digest(other),
                ..*vote
            }),
        );
        let first: Vec<usize> = to.iter().copied().filter(|j| j % 3 == 0).collect();
        let later: Vec<usize> = to.iter().copied().filter(|j| j % 3 != 0).collect();
        net.broadcast(from, first.into_iter(), &twin);
        net.forward(from, later.into_iter(), &twin);
    }
}
