//! The cheap filter a node applies before it checks a signature (`Engine::of_use`, issue 20):
//! on a running swarm of three replicas, what it lets through (members' turns of this round
//! and the next, joins, the voters' agreement messages, the last round's agreement as
//! evidence, a member's message far ahead as a sign of lag) and what it drops unverified (an
//! outsider's turns, votes and far-ahead rounds; a member's stale turns; a non-voter's vote).
//! That it drops nothing an honest run needs is shown by every other engine test:
//! `Engine::handle_message` applies the same filter first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod net;

use common::*;
use net::*;
use slotmesh_proto::{Digest, Payload, Stage};

#[test]
fn of_use_lets_members_joins_and_voters_through_and_drops_the_rest() {
    let mut net = Net::new(3, 7, Box::new(|_, _, _, _| Fate::Deliver));
    run_to(&mut net, None, 3);
    let engine = net.engines[0].as_ref().unwrap();
    let round = engine.round();
    assert!(round >= 4);
    let member = agent(1);
    let outsider = agent(40);
    let of_use = |who: &slotmesh_proto::Identity, round: u64, payload: &Payload| {
        engine.of_use(round, &who.id(), payload)
    };
    let claim = claim(&member, round, 2).payload().clone();
    let join = join(&outsider, round, "X").payload().clone();
    let vote = vote(&member, round, Stage::Seal, 1, Digest([3; 32]))
        .payload()
        .clone();

    // A member's turn of this round and the next; any key's join.
    assert!(of_use(&member, round, &claim));
    assert!(of_use(&member, round + 1, &claim));
    assert!(of_use(&outsider, round, &join));
    // An outsider's turn, at any round, is of no use (nor a sign that this replica lags).
    for r in [round, round + 1, round + 50] {
        assert!(!of_use(&outsider, r, &claim), "round {r}");
    }
    // A member's stale turn is of no use; its message far ahead is (this replica lags).
    assert!(!of_use(&member, round - 2, &claim));
    assert!(of_use(&member, round + 50, &claim));
    // Agreement: an outsider's vote never; the last round's from a member (evidence).
    assert!(!of_use(&outsider, round, &vote));
    assert!(!of_use(&outsider, round + 1, &vote));
    assert!(of_use(&member, round - 1, &vote));
    assert!(!of_use(&member, round - 2, &vote));
}
