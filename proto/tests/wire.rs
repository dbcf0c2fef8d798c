//! Wire format: round trips, rejection of forged, truncated, oversized and foreign
//! envelopes with typed errors, and golden hashes that fail loudly on any format change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use slotmesh_proto::codec::{self, DecodeError};
use slotmesh_proto::*;
use slotmesh_proto::{
    open, AgentId, Digest, Envelope, Limits, OpenError, Payload, SwarmId, VerifyError,
};

fn stage() -> impl Strategy<Value = Stage> {
    prop_oneof![Just(Stage::Seal), Just(Stage::Outcome)]
}

fn limits() -> Limits {
    Limits::default()
}

fn arb_id() -> impl Strategy<Value = AgentId> {
    any::<[u8; 32]>().prop_map(AgentId)
}

fn arb_text(max_words: usize) -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,8}", 0..max_words).prop_map(|w| w.join(" "))
}

fn arb_payload(sender: AgentId) -> impl Strategy<Value = Payload> {
    prop_oneof![
        "[A-Za-z0-9 _-]{1,32}"
            .prop_filter("not blank", |s| !s.trim().is_empty())
            .prop_map(|name| Payload::Join(Join {
                name,
                founders: Vec::new(),
                absence_limit: 0,
                restarted: false,
            })),
        (1u32..=1_000_000).prop_map(|remaining| Payload::Claim(Claim { remaining })),
        (
            prop::collection::vec((prop::option::of(arb_id()), arb_text(50)), 0..=3),
            prop::option::of((
                prop::collection::btree_set(arb_id(), 1..5),
                arb_text(20),
                1u16..=64,
                any::<u64>()
            )),
        )
            .prop_map(move |(lines, proposal)| Payload::Negotiation(Negotiation {
                lines: lines
                    .into_iter()
                    .map(|(to, text)| NegotiationLine { to, text })
                    .collect(),
                proposal: proposal
                    .map(
                        |(partners, terms, duration_rounds, pledge)| CoalitionProposal {
                            partners: partners.into_iter().filter(|p| *p != sender).collect(),
                            terms,
                            duration_rounds,
                            pledge,
                        }
                    )
                    .filter(|p| !p.partners.is_empty()),
            })),
        prop::collection::btree_set(arb_id(), 0..5).prop_map(|ids| Payload::CoalitionAcceptance(
            CoalitionAcceptance {
                accepted: ids
                    .into_iter()
                    .map(|proposer| CoalitionId { round: 9, proposer })
                    .collect()
            }
        )),
        (any::<[u8; 32]>(), any::<u64>()).prop_map(|(c, deposit)| Payload::Commit(Commit {
            commitment: Digest(c),
            deposit
        })),
        (
            0u64..1 << 40,
            prop::option::of((arb_id(), 0u64..1 << 40)),
            any::<[u8; 32]>()
        )
            .prop_map(|(bid, support, nonce)| Payload::Reveal(Reveal {
                bid,
                support: support.map(|(beneficiary, amount)| Support {
                    beneficiary,
                    amount
                }),
                nonce
            })),
        prop_oneof![Just(LeaveReason::Completed), Just(LeaveReason::Departed)]
            .prop_map(|reason| Payload::Leave(Leave { reason })),
        (any::<[u8; 32]>(), any::<u32>(), stage()).prop_map(|(d, attempt, stage)| {
            Payload::CheckpointVote(CheckpointVote {
                stage,
                digest: Digest(d),
                attempt,
            })
        }),
        (any::<[u8; 32]>(), 1u32.., any::<bool>(), stage()).prop_map(
            |(d, attempt, bound, stage)| {
                Payload::Proposal(Proposal {
                    stage,
                    digest: Digest(d),
                    attempt,
                    bound: bound.then_some(attempt / 2),
                })
            }
        ),
        (any::<[u8; 32]>(), 1u32.., any::<bool>(), stage()).prop_map(
            |(d, attempt, voted, stage)| {
                Payload::Promise(Promise {
                    stage,
                    attempt,
                    accepted: voted.then_some(Accepted {
                        attempt: attempt - 1,
                        digest: Digest(d),
                    }),
                })
            }
        ),
    ]
}

proptest! {
    #[test]
    fn signed_envelopes_round_trip(n in 0u8..8, round in 0u64..1 << 40, payload in arb_payload(agent(0).id())) {
        let who = agent(n);
        let payload = match payload {
            Payload::Reveal(mut r) => { if r.support.is_some_and(|s| s.beneficiary == who.id()) { r.support = None; } Payload::Reveal(r) }
            Payload::Negotiation(mut t) => {
                if let Some(p) = &mut t.proposal { p.partners.retain(|x| *x != who.id()); if p.partners.is_empty() { t.proposal = None; } }
                Payload::Negotiation(t)
            }
            Payload::CoalitionAcceptance(mut a) => {
                for id in &mut a.accepted { id.round = round; }
                Payload::CoalitionAcceptance(a)
            }
            other => other,
        };
        let sent = sign(&who, round, payload.clone());
        let received = open(sent.bytes(), swarm(), &limits()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(received.message(), sent.message());
        prop_assert_eq!(received.id(), sent.id());
        prop_assert_eq!(received.bytes(), sent.bytes());
        prop_assert_eq!(received.sender(), who.id());
    }

    #[test]
    fn every_truncation_is_rejected(round in 0u64..1000, cut in 0usize..200) {
        let sent = sign(&agent(1), round, Payload::Claim(Claim { remaining: 4 }));
        let bytes = sent.bytes();
        let cut = cut % bytes.len();
        prop_assert!(open(&bytes[..cut], swarm(), &limits()).is_err());
    }

    #[test]
    fn any_flipped_bit_is_rejected(byte in 0usize..200, bit in 0u8..8) {
        let sent = sign(&agent(1), 3, Payload::Claim(Claim { remaining: 4 }));
        let mut bytes = sent.bytes().to_vec();
        let byte = byte % bytes.len();
        bytes[byte] ^= 1 << bit;
        prop_assert!(open(&bytes, swarm(), &limits()).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = open(&bytes, swarm(), &limits());
    }
}

#[test]
fn forged_signature_is_rejected() {
    let honest = sign(&agent(1), 5, Payload::Claim(Claim { remaining: 2 }));
    // The attacker re-signs agent 1's body with its own key.
    let forger = agent(2);
    let forged = sign(&forger, 5, Payload::Claim(Claim { remaining: 2 }));
    let spliced = Envelope {
        body: honest.body().to_vec(),
        signature: forged.signature(),
    };
    let bytes = codec::encode(&spliced);
    assert_eq!(
        open(&bytes, swarm(), &limits()).err(),
        Some(OpenError::Verify(VerifyError::BadSignature))
    );
}

#[test]
fn message_for_another_swarm_is_rejected() {
    let foreign = agent(1).sign(
        SwarmId::from_name("other"),
        1,
        Payload::Claim(Claim { remaining: 2 }),
    );
    assert_eq!(
        open(foreign.bytes(), swarm(), &limits()).err(),
        Some(OpenError::Verify(VerifyError::WrongSwarm))
    );
}

#[test]
fn oversized_and_trailing_bytes_are_rejected() {
    let sent = sign(&agent(1), 1, Payload::Claim(Claim { remaining: 2 }));
    let mut longer = sent.bytes().to_vec();
    longer.push(0);
    assert!(matches!(
        open(&longer, swarm(), &limits()),
        Err(OpenError::Decode(DecodeError::TrailingBytes { extra: 1 }))
    ));
    let huge = vec![0u8; limits().max_message_bytes + 1];
    assert!(matches!(
        open(&huge, swarm(), &limits()),
        Err(OpenError::Decode(DecodeError::TooLarge { .. }))
    ));
}

#[test]
fn field_limits_are_enforced_on_receipt() {
    let long_text = vec!["word"; 51].join(" ");
    let too_wordy = sign(
        &agent(1),
        1,
        Payload::Negotiation(Negotiation {
            lines: vec![NegotiationLine {
                to: None,
                text: long_text,
            }],
            proposal: None,
        }),
    );
    assert!(matches!(
        open(too_wordy.bytes(), swarm(), &limits()),
        Err(OpenError::Decode(DecodeError::OutOfBounds {
            field: "text words",
            ..
        }))
    ));
    let zero_claim = sign(&agent(1), 1, Payload::Claim(Claim { remaining: 0 }));
    assert!(matches!(
        open(zero_claim.bytes(), swarm(), &limits()),
        Err(OpenError::Decode(DecodeError::OutOfBounds {
            field: "remaining",
            ..
        }))
    ));
    let huge_name = sign(
        &agent(1),
        0,
        Payload::Join(Join {
            name: "x".repeat(33),
            founders: Vec::new(),
            absence_limit: 0,
            restarted: false,
        }),
    );
    assert!(open(huge_name.bytes(), swarm(), &limits()).is_err());
}

#[test]
fn invalid_public_key_is_rejected() {
    // A body whose sender is not a point on the curve: no signature can verify.
    let mut message = sign(&agent(1), 1, Payload::Claim(Claim { remaining: 2 }))
        .message()
        .clone();
    message.sender = AgentId([0xff; 32]);
    let spliced = Envelope {
        body: codec::encode(&message),
        signature: sign(&agent(1), 1, Payload::Claim(Claim { remaining: 2 })).signature(),
    };
    let result = open(&codec::encode(&spliced), swarm(), &limits());
    assert!(matches!(
        result,
        Err(OpenError::Verify(
            VerifyError::BadKey | VerifyError::BadSignature
        ))
    ));
}

/// Golden hashes of one envelope per payload kind. A change here is a wire-format change:
/// bump PROTOCOL_VERSION and say so in docs/PROTOCOL.md before updating them.
#[test]
fn golden_envelopes() {
    let a = agent(1);
    let b = agent(2);
    let cases: Vec<(&str, Payload)> = vec![
        (
            "join",
            Payload::Join(Join {
                name: "A".into(),
                founders: Vec::new(),
                absence_limit: 0,
                restarted: false,
            }),
        ),
        ("claim", Payload::Claim(Claim { remaining: 5 })),
        (
            "negotiation",
            Payload::Negotiation(Negotiation {
                lines: vec![NegotiationLine {
                    to: Some(b.id()),
                    text: "let us ally".into(),
                }],
                proposal: Some(CoalitionProposal {
                    partners: vec![b.id()],
                    terms: "back the shorter job".into(),
                    duration_rounds: 3,
                    pledge: 5,
                }),
            }),
        ),
        (
            "acceptance",
            Payload::CoalitionAcceptance(CoalitionAcceptance {
                accepted: vec![CoalitionId {
                    round: 7,
                    proposer: b.id(),
                }],
            }),
        ),
        (
            "commit",
            Payload::Commit(Commit {
                commitment: Digest([3; 32]),
                deposit: 40,
            }),
        ),
        (
            "reveal",
            Payload::Reveal(Reveal {
                bid: 30,
                support: Some(Support {
                    beneficiary: b.id(),
                    amount: 10,
                }),
                nonce: [9; 32],
            }),
        ),
        (
            "leave",
            Payload::Leave(Leave {
                reason: LeaveReason::Completed,
            }),
        ),
        (
            "vote",
            Payload::CheckpointVote(CheckpointVote {
                stage: Stage::Outcome,
                digest: Digest([4; 32]),
                attempt: 0,
            }),
        ),
        (
            "proposal",
            Payload::Proposal(Proposal {
                stage: Stage::Seal,
                attempt: 1,
                digest: Digest([5; 32]),
                bound: Some(0),
            }),
        ),
        (
            "promise",
            Payload::Promise(Promise {
                stage: Stage::Seal,
                attempt: 2,
                accepted: Some(Accepted {
                    attempt: 1,
                    digest: Digest([5; 32]),
                }),
            }),
        ),
        (
            "evidence",
            Payload::Evidence(Evidence {
                first: sign(
                    &a,
                    7,
                    Payload::CheckpointVote(CheckpointVote {
                        stage: Stage::Outcome,
                        digest: Digest([4; 32]),
                        attempt: 0,
                    }),
                )
                .envelope(),
                second: sign(
                    &a,
                    7,
                    Payload::CheckpointVote(CheckpointVote {
                        stage: Stage::Outcome,
                        digest: Digest([6; 32]),
                        attempt: 0,
                    }),
                )
                .envelope(),
            }),
        ),
    ];
    let got: Vec<(&str, String)> = cases
        .into_iter()
        .map(|(name, payload)| {
            (
                name,
                Digest::of(b"golden", &[sign(&a, 7, payload).bytes()]).to_hex()[..16].to_string(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = vec![
        ("join", "418626b6c4ad6a6e"),
        ("claim", "6c4baeac07fc7768"),
        ("negotiation", "701b2535eeb4f19e"),
        ("acceptance", "8737dc9fea47fc63"),
        ("commit", "4395ea692ad6ed98"),
        ("reveal", "c823abd9dd58f814"),
        ("leave", "15a5f1abc8285796"),
        ("vote", "a9317975c9ef9541"),
        ("proposal", "3c4d809288443460"),
        ("promise", "e2a418bba4b02cd5"),
        ("evidence", "44e804fc29a04a9f"),
    ];
    let got_ref: Vec<(&str, &str)> = got.iter().map(|(n, h)| (*n, h.as_str())).collect();
    assert_eq!(got_ref, expected, "wire format changed");
}

#[test]
fn a_correctly_signed_but_non_canonical_body_is_rejected() {
    // Regression from the `payload` fuzz target: bincode also decodes a small integer from a
    // longer varint form, which would give one message two byte strings, two ids and two
    // signatures. Here the protocol version (one byte) is written as 0xfb VERSION 0x00 and
    // signed.
    use ed25519_dalek::Signer;
    let secret = [9u8; 32];
    let identity = slotmesh_proto::Identity::from_secret(secret);
    let swarm = SwarmId::from_name("canonical");
    let honest = identity.sign(swarm, 1, Payload::Claim(Claim { remaining: 3 }));
    let body = honest.body();
    let version = u8::try_from(slotmesh_proto::PROTOCOL_VERSION).unwrap();
    assert_eq!(body[0], version, "the version comes first, in one byte");
    let mut stretched = vec![0xfb, version, 0x00];
    stretched.extend_from_slice(&body[1..]);
    let mut signed_input = slotmesh_proto::DOMAIN_TAG.to_vec();
    signed_input.extend_from_slice(&stretched);
    let signature = ed25519_dalek::SigningKey::from_bytes(&secret).sign(&signed_input);
    let envelope = Envelope {
        body: stretched,
        signature,
    };
    assert_eq!(
        open(&codec::encode(&envelope), swarm, &limits()).unwrap_err(),
        OpenError::Decode(DecodeError::NonCanonical)
    );
    assert!(open(honest.bytes(), swarm, &limits()).is_ok());
}
