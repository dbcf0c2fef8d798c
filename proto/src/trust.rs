//! Public trust: a fixed-point score (parts per million) that every peer computes from the
//! signed record alone, and the bid-power multiplier derived from it.
//!
//! - Every member starts at 0.5 ([`INITIAL_TRUST`]).
//! - Each proven offence halves trust once per point of severity (an integer shift), down to
//!   [`TRUST_FLOOR`]. A lie's severity grows with its size and with the lies proven before.
//! - A round of full, honest participation repairs 1/32 of the distance to 1.0 above 0.5, and
//!   below 0.5 1/32 of the trust itself, halved once per lie proven against the member after
//!   the first (at most [`LIE_REPAIR_HALVINGS`] times): a first liar's way back from the floor
//!   takes about 150 honest rounds, a serial liar's over 2,000; an honest member's trust
//!   never falls below 0.5.
//! - Bid power is `clamp(2 × trust, 1%, 100%)`: honest members (trust ≥ 0.5) keep full power,
//!   proven liars fall exponentially to the 1% floor: the "99% penalty".
//!
//! No floats anywhere: consensus code must give the same bits on every machine.

use serde::{Deserialize, Serialize};

/// One million: fixed-point 1.0 for trust and power.
pub const PPM: u32 = 1_000_000;
/// Trust of a new member (0.5).
pub const INITIAL_TRUST: u32 = 500_000;
/// Lowest trust (0.005), which maps to the lowest power.
pub const TRUST_FLOOR: u32 = 5_000;
/// Lowest bid power (1%).
pub const POWER_FLOOR: u32 = 10_000;
/// An honest round moves trust `1 / 2^REPAIR_SHIFT` of the way to 1.0.
pub const REPAIR_SHIFT: u32 = 5;
/// Most halvings of the repair below 0.5 a member's proven lies can cost (one per lie after
/// the first).
pub const LIE_REPAIR_HALVINGS: u32 = 4;

/// Halvings for a member's first job restart (`Join::restarted`), times the restarts it has
/// made: its claim history is forgotten, and that is not free (docs/PROTOCOL.md §4 step 2).
pub const RESTART_SEVERITY: u32 = 1;

/// Halvings for a proven contradiction: enough to take any trust to the floor.
pub const CONTRADICTION_SEVERITY: u32 = 8;

/// A misbehaviour proven by signed messages in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Offence {
    /// A claim inconsistent with the member's earlier claim and the slots it has used since
    /// (or a completion that contradicts its last claim).
    Lie {
        /// What it claimed (0 for a completion).
        claimed: u32,
        /// What its earlier claim and the slots used imply.
        expected: i64,
        /// Lies the member was proven to have told before this one.
        earlier: u32,
        /// Slots it won since its own word last set the record's expectation, when this
        /// claim shows that expectation too short: what the understatement bought.
        bought: u32,
    },
    /// A commit never revealed.
    Withheld,
    /// A reveal that does not open its commit, or exceeds its deposit.
    BadReveal,
    /// Two different signed messages of one kind for one round.
    Equivocation,
    /// A coalition member gave its beneficiary less support than it pledged.
    BrokenPledge,
    /// Two signed agreement messages that break the acceptor rule, reported as
    /// [`crate::Evidence`]: the signer attacked the ledger's safety.
    Contradiction,
}

impl Offence {
    /// How many times this offence halves trust.
    pub fn severity(&self) -> u32 {
        match self {
            Offence::Lie {
                claimed,
                expected,
                earlier,
                bought,
            } => {
                // An understatement that won a slot is the one lie that can have paid: any
                // trust to the floor. Otherwise 1 for a lie by one slot, one more per
                // doubling of its size, one more per lie proven before.
                if *bought > 0 {
                    return CONTRADICTION_SEVERITY;
                }
                let size = (i64::from(*claimed) - expected).unsigned_abs().max(1);
                (1 + size.ilog2())
                    .saturating_add(*earlier)
                    .min(CONTRADICTION_SEVERITY)
            }
            Offence::BrokenPledge => 1,
            Offence::Withheld | Offence::BadReveal => 2,
            Offence::Equivocation => 3,
            Offence::Contradiction => CONTRADICTION_SEVERITY,
        }
    }
}

/// Trust after offences of total `severity` in one round.
pub fn after_offences(trust: u32, severity: u32) -> u32 {
    (trust >> severity.min(31)).max(TRUST_FLOOR)
}

/// Trust after one round of full honest participation of a member proven to have lied
/// `lies` times: `1 / 2^REPAIR_SHIFT` of the way to 1.0 from 0.5 up; below 0.5, that share
/// of the trust itself, halved once per lie after the first, up to [`LIE_REPAIR_HALVINGS`]
/// times (at least one ppm): the way back from the floor takes about 150 rounds after one
/// lie and over 2,000 after five, so a lie's penalty lasts while the liar's record stands.
pub fn after_honest_round(trust: u32, lies: u32) -> u32 {
    let trust = trust.min(PPM);
    let step = if trust < PPM - trust {
        trust >> (REPAIR_SHIFT + lies.saturating_sub(1).min(LIE_REPAIR_HALVINGS))
    } else {
        (PPM - trust) >> REPAIR_SHIFT
    };
    trust + step.max(u32::from(trust < PPM))
}

/// Bid power (ppm) of a member with `trust` (ppm): `clamp(2 × trust, 1%, 100%)`.
pub fn trust_multiplier(trust: u32) -> u32 {
    trust.saturating_mul(2).clamp(POWER_FLOOR, PPM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_protocol_doc() {
        // docs/PROTOCOL.md, "Trust": a lie by 1, then a lie by 3, then honest rounds.
        let first = Offence::Lie {
            claimed: 1,
            expected: 2,
            earlier: 0,
            bought: 0,
        };
        let t1 = after_offences(INITIAL_TRUST, first.severity());
        assert_eq!((t1, trust_multiplier(t1)), (250_000, 500_000));
        let second = Offence::Lie {
            claimed: 1,
            expected: 4,
            earlier: 1,
            bought: 0,
        };
        assert_eq!(second.severity(), 3);
        let t2 = after_offences(t1, second.severity());
        assert_eq!((t2, trust_multiplier(t2)), (31_250, 62_500));
        // Two lies: the repair below 0.5 is halved once.
        let to_full_power = |t: u32, lies| rounds_until(t, lies, |t| trust_multiplier(t) == PPM);
        assert_eq!(to_full_power(t2, 2), WORKED_EXAMPLE_REPAIR_ROUNDS);
        assert_eq!(after_offences(INITIAL_TRUST, 30), TRUST_FLOOR);
        assert_eq!(trust_multiplier(TRUST_FLOOR), POWER_FLOOR);
        let from_floor: Vec<u32> = (0..=6)
            .map(|lies| rounds_until(TRUST_FLOOR, lies, |t| t >= INITIAL_TRUST))
            .collect();
        assert_eq!(from_floor, FROM_FLOOR_ROUNDS);
    }

    /// Honest rounds of a member proven to have lied `lies` times, from `trust` until `done`.
    fn rounds_until(mut trust: u32, lies: u32, done: impl Fn(u32) -> bool) -> u32 {
        let mut rounds = 0;
        while !done(trust) && rounds < 1_000_000 {
            trust = after_honest_round(trust, lies);
            rounds += 1;
        }
        rounds
    }

    const WORKED_EXAMPLE_REPAIR_ROUNDS: u32 = 179;
    /// From the floor back to 0.5 after 0, 1, ... 6 lies: each lie after the first doubles
    /// the way, up to four times.
    const FROM_FLOOR_ROUNDS: [u32; 7] = [150, 150, 298, 594, 1189, 2388, 2388];

    #[test]
    fn an_honest_member_never_falls_below_its_start() {
        let mut t = INITIAL_TRUST;
        for _ in 0..1_000 {
            t = after_honest_round(t, 0);
            assert!((INITIAL_TRUST..=PPM).contains(&t));
        }
        assert_eq!(t, PPM);
    }

    #[test]
    fn a_lies_severity_grows_with_its_size_and_the_lies_before() {
        let lie = |claimed, expected, earlier| {
            Offence::Lie {
                claimed,
                expected,
                earlier,
                bought: 0,
            }
            .severity()
        };
        assert_eq!(
            [lie(1, 2, 0), lie(1, 3, 0), lie(1, 5, 0), lie(1, 9, 0)],
            [1, 2, 3, 4]
        );
        assert_eq!(
            [lie(1, 0, 0), lie(1, 0, 1), lie(1, 0, 5), lie(1, 0, 50)],
            [1, 2, 6, 8]
        );
        assert_eq!(
            lie(u32::MAX, i64::MIN / 2, u32::MAX),
            CONTRADICTION_SEVERITY
        );
        let bought = Offence::Lie {
            claimed: 1,
            expected: 0,
            earlier: 0,
            bought: 1,
        };
        assert_eq!(bought.severity(), CONTRADICTION_SEVERITY);
    }
}
