//! Prints what signing and verifying one protocol message costs on this machine (the floor
//! under the simulator's cost per round: every agent signs about 6 messages a round).
//! `cargo run --release -p slotmesh-proto --example sign_cost`

use slotmesh_proto::{open_envelope, Identity, Limits, SwarmId};
use slotmesh_proto::{Claim, Payload};
use std::time::Instant;

const MESSAGES: u32 = 20_000;

fn main() {
    let identity = Identity::from_secret([7; 32]);
    let swarm = SwarmId::from_name("sign-cost");
    let limits = Limits::default();
    let mut medians = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut signed = Vec::with_capacity(MESSAGES as usize);
        for round in 0..MESSAGES {
            let payload = Payload::Claim(Claim { remaining: 5 });
            let message = identity.sign(swarm, u64::from(round), payload);
            // The signature is made when first asked for.
            message.signature();
            signed.push(message);
        }
        let sign = started.elapsed() / MESSAGES;
        let started = Instant::now();
        let mut opened = 0;
        for message in &signed {
            opened += usize::from(open_envelope(message.envelope(), swarm, &limits).is_ok());
        }
        let verify = started.elapsed() / MESSAGES;
        assert_eq!(opened, signed.len(), "every message verifies");
        medians.push((sign, verify));
    }
    medians.sort();
    let (sign, verify) = medians[medians.len() / 2];
    println!(
        "sign {:.1} us, verify {:.1} us per message (median of 5 x {MESSAGES})",
        sign.as_secs_f64() * 1e6,
        verify.as_secs_f64() * 1e6
    );
}
