//! The simulator's byzantine agents, one type each: what a byzantine agent's host puts on
//! the wire in place of the honest agent's message. Their offences must be proven from the
//! shared record (equivocation, withholding) or refused on arrival (forgeries), and the
//! invariants must hold whatever they do.

use crate::network::Network;
use slotmesh_agent::scenario::Byzantine;
use slotmesh_proto::{Commit, Payload};
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

/// Sends a second, different commit to half of its peers each round; gossip forwarding
/// brings each commit to everyone a heartbeat later.
pub(crate) struct Equivocator;

/// Commits but never reveals.
pub(crate) struct Withholder;

/// Sends each message, and a copy altered after signing (one byte of the signature
/// flipped) that every receiver must refuse.
pub(crate) struct Forger;

/// The behaviour of `byzantine`.
pub(crate) fn of(byzantine: Byzantine) -> &'static dyn Misbehaviour {
    match byzantine {
        Byzantine::Equivocator => &Equivocator,
        Byzantine::Withholder => &Withholder,
        Byzantine::Forger => &Forger,
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
        let mut other = commit.commitment.0;
        other[0] ^= 0xff;
        let twin = signer.sign(
            swarm,
            message.round(),
            Payload::Commit(Commit {
                commitment: Digest(other),
                deposit: commit.deposit,
            }),
        );
        // Half the hosts get one commit first and the other half the other.
        let (odd, even): (Vec<usize>, Vec<usize>) = to.into_iter().partition(|j| j % 2 == 1);
        net.broadcast(from, even.iter().copied(), message);
        net.broadcast(from, odd.iter().copied(), &twin);
        net.forward(from, odd.into_iter(), message);
        net.forward(from, even.into_iter(), &twin);
    }
}

impl Misbehaviour for Withholder {
    fn transmit(
        &self,
        net: &mut Network,
        from: usize,
        to: Vec<usize>,
        message: &SignedMessage,
        _signer: &Identity,
        _swarm: SwarmId,
    ) {
        if !matches!(message.payload(), Payload::Reveal(_)) {
            net.broadcast(from, to.into_iter(), message);
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
