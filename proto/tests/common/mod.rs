//! Helpers shared by proto's integration tests: identities, signed messages, and a
//! rule-level driver that plays whole rounds of truthful or scripted agents; agreement
//! messages and evidence signed by hand.
#![allow(dead_code, unreachable_pub)]

use slotmesh_proto::{
    commitment, resolve_round, Accepted, CheckpointVote, Digest, Envelope, Evidence, Identity,
    LedgerState, Payload, Promise, Proposal, RoundMessages, RoundOutcome, SignedMessage, Stage,
    SwarmId,
};
use slotmesh_proto::{
    Claim, CoalitionAcceptance, CoalitionId, CoalitionProposal, Commit, Join, Leave, LeaveReason,
    Negotiation, Reveal, Support,
};

pub fn swarm() -> SwarmId {
    SwarmId::from_name("test")
}

pub fn agent(n: u8) -> Identity {
    Identity::from_secret([n.wrapping_add(1); 32])
}

pub fn sign(who: &Identity, round: u64, payload: Payload) -> SignedMessage {
    who.sign(swarm(), round, payload)
}

pub fn join(who: &Identity, round: u64, name: &str) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Join(Join {
            name: name.into(),
            founders: Vec::new(),
            absence_limit: 0,
            restarted: false,
        }),
    )
}

pub fn claim(who: &Identity, round: u64, remaining: u32) -> SignedMessage {
    sign(who, round, Payload::Claim(Claim { remaining }))
}

pub fn leave(who: &Identity, round: u64) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Leave(Leave {
            reason: LeaveReason::Completed,
        }),
    )
}

/// A commit and its matching reveal.
pub fn sealed_bid(
    who: &Identity,
    round: u64,
    bid: u64,
    support: Option<Support>,
    deposit: u64,
) -> (SignedMessage, SignedMessage) {
    let nonce = [round as u8 ^ 0x5a; 32];
    let commit = Commit {
        commitment: commitment(round, who.id(), bid, support, nonce),
        deposit,
    };
    let reveal = Reveal {
        bid,
        support,
        nonce,
    };
    (
        sign(who, round, Payload::Commit(commit)),
        sign(who, round, Payload::Reveal(reveal)),
    )
}

/// `proposer` proposes `proposal` in its negotiation turn of `round` and `partner` accepts
/// it: the coalition's id and the two messages.
pub fn propose_and_accept(
    proposer: &Identity,
    partner: &Identity,
    round: u64,
    proposal: CoalitionProposal,
) -> (CoalitionId, [SignedMessage; 2]) {
    let id = CoalitionId {
        round,
        proposer: proposer.id(),
    };
    let offer = Payload::Negotiation(Negotiation {
        lines: vec![],
        proposal: Some(proposal),
    });
    let accept = Payload::CoalitionAcceptance(CoalitionAcceptance { accepted: vec![id] });
    (
        id,
        [sign(proposer, round, offer), sign(partner, round, accept)],
    )
}

/// Genesis plus a round 0 in which all `agents` join.
pub fn founded(agents: &[Identity]) -> LedgerState {
    let mut messages = RoundMessages::new(0);
    for (i, a) in agents.iter().enumerate() {
        messages.insert(join(a, 0, &format!("agent-{i}")));
    }
    resolve_round(&LedgerState::genesis(swarm()), &messages).0
}

/// One round in which every agent with `remaining[i] > 0` claims `claims[i]` and bids
/// `bids[i]`, and agents with nothing left leave. Returns the outcome.
pub fn play_round(
    state: &mut LedgerState,
    agents: &[Identity],
    remaining: &mut [u32],
    claims: &[u32],
    bids: &[u64],
) -> RoundOutcome {
    let round = state.next_round;
    let mut messages = RoundMessages::new(round);
    for (i, a) in agents.iter().enumerate() {
        if !state.is_active(&a.id()) {
            continue;
        }
        if remaining[i] == 0 {
            messages.insert(leave(a, round));
            continue;
        }
        messages.insert(claim(a, round, claims[i].max(1)));
        let (commit, reveal) = sealed_bid(a, round, bids[i], None, bids[i]);
        messages.insert(commit);
        messages.insert(reveal);
    }
    let (next, outcome) = resolve_round(state, &messages);
    *state = next;
    if let Some(winner) = outcome.winner {
        if let Some(i) = agents.iter().position(|a| a.id() == winner) {
            remaining[i] = remaining[i].saturating_sub(1);
        }
    }
    outcome
}

// ----- agreement messages and evidence -----

/// A digest made of the byte `n`.
pub fn d(n: u8) -> Digest {
    Digest([n; 32])
}

/// `who`'s vote in `stage` of `round`, attempt `attempt`, for `digest`.
pub fn vote(
    who: &Identity,
    round: u64,
    stage: Stage,
    attempt: u32,
    digest: Digest,
) -> SignedMessage {
    sign(
        who,
        round,
        Payload::CheckpointVote(CheckpointVote {
            stage,
            digest,
            attempt,
        }),
    )
}

/// `who`'s promise in `stage` of `round` for `attempt`, reporting `accepted`.
pub fn promise_in(
    who: &Identity,
    round: u64,
    stage: Stage,
    attempt: u32,
    accepted: Option<Accepted>,
) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Promise(Promise {
            stage,
            attempt,
            accepted,
        }),
    )
}

/// `who`'s proposal in `stage` of `round`.
pub fn proposal_in(
    who: &Identity,
    round: u64,
    stage: Stage,
    attempt: u32,
    digest: Digest,
    bound: Option<u32>,
) -> SignedMessage {
    sign(
        who,
        round,
        Payload::Proposal(Proposal {
            stage,
            attempt,
            digest,
            bound,
        }),
    )
}

/// `reporter`'s report that `first` and `second` contradict.
pub fn evidence(
    reporter: &Identity,
    round: u64,
    first: Envelope,
    second: Envelope,
) -> SignedMessage {
    sign(
        reporter,
        round,
        Payload::Evidence(Evidence { first, second }),
    )
}

/// Round `state.next_round` with every active member claiming and bidding honestly, plus
/// `extra` messages.
pub fn round_with(
    state: &LedgerState,
    all: &[Identity],
    extra: Vec<SignedMessage>,
) -> (LedgerState, slotmesh_proto::RoundOutcome) {
    let round = state.next_round;
    let mut messages = RoundMessages::new(round);
    for a in all.iter().filter(|a| state.is_active(&a.id())) {
        messages.insert(claim(a, round, 5));
        let (commit, reveal) = sealed_bid(a, round, 3, None, 3);
        messages.insert(commit);
        messages.insert(reveal);
    }
    for m in extra {
        messages.insert(m);
    }
    resolve_round(state, &messages)
}

/// The voters of the round after `state`.
pub fn voters(state: &LedgerState) -> std::collections::BTreeSet<slotmesh_proto::AgentId> {
    state.voters_for(state)
}

/// Identities from a seed space no other test uses.
pub fn key(n: u64) -> Identity {
    let mut secret = [0x77u8; 32];
    secret[..8].copy_from_slice(&n.to_le_bytes());
    Identity::from_secret(secret)
}
