//! The ledger state every peer derives from the final rounds: members, their public trust,
//! credits, claims and slots used, and coalitions. Its [`LedgerState::digest`] is what members
//! sign in checkpoint votes.

use crate::codec;
use crate::ids::{AgentId, Digest, SwarmId};
use crate::wire::CoalitionId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Credits every member starts with.
pub const INITIAL_CREDITS: u64 = 1_000;
/// Credits every active member receives at the end of each round.
pub const INCOME_PER_ROUND: u64 = 10;
/// Consecutive rounds with a missing claim, commit or reveal after which a member is
/// suspended: no longer waited for nor a voter, its record kept until it rejoins.
pub const SUSPEND_AFTER_MISSES: u8 = 3;
/// Rounds in a row of full participation (a valid, revealed bid) a member needs before it
/// may be admitted to the voters ([`LedgerState::voters`]).
pub const VOTING_STREAK: u32 = 2;
/// Joins and rejoins admitted per round at most, when the active members are few; with more,
/// half their number ([`admission_limit`]).
pub const MIN_ADMISSIONS_PER_ROUND: usize = 4;
/// Rounds a suspended member may stay away before it is removed for good, unless the
/// founders chose another bound (`Join::absence_limit`).
pub const DEFAULT_ABSENCE_LIMIT: u64 = 10_000;
/// A coalition whose beneficiary has not won for this many rounds is deadlocked and dissolves.
pub const DEADLOCK_ROUNDS: u8 = 3;

/// Where a member is in its life. Only `Active` members bid, win or vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Takes part in rounds.
    Active,
    /// It missed [`SUSPEND_AFTER_MISSES`] rounds in a row (crashed, paused or cut off): not
    /// waited for, not a voter, its record kept. A signed join from its key makes it active
    /// again from the next round.
    Suspended,
    /// Its job completed and it left.
    Completed,
    /// It left without completing.
    Departed,
    /// Suspended for longer than the swarm's absence limit: gone for good.
    Removed,
}

/// The last claim a member made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// Round of the claim.
    pub round: u64,
    /// Claimed remaining burst.
    pub remaining: u32,
    /// Slots the member had used when it claimed.
    pub used_before: u32,
    /// Slots the member had used when its own word last set what the record expects: its
    /// first claim (or its first after a job restart), or its last claim above what the
    /// record expected. Claims that follow the expectation leave it, so every slot won since
    /// is charged when a later claim shows the expectation too short.
    pub anchor_used: u32,
}

/// Counts of proven offences, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OffenceCounts {
    /// Inconsistent claims.
    pub lies: u32,
    /// Commits never revealed.
    pub withheld: u32,
    /// Reveals that did not open their commit.
    pub bad_reveals: u32,
    /// Equivocations.
    pub equivocations: u32,
    /// Broken coalition pledges.
    pub broken_pledges: u32,
    /// Proven contradictions in the agreement (two agreement messages that break the
    /// acceptor rule): one bars the member from voting for good.
    pub contradictions: u32,
}

impl OffenceCounts {
    /// All offences together.
    pub fn total(&self) -> u32 {
        self.lies
            + self.withheld
            + self.bad_reveals
            + self.equivocations
            + self.broken_pledges
            + self.contradictions
    }
}

/// What the record says about one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Display name from its join message.
    pub name: String,
    /// Lifecycle status.
    pub status: MemberStatus,
    /// First round it takes part in.
    pub joined_round: u64,
    /// Round it left or failed in.
    pub left_round: Option<u64>,
    /// Public trust, ppm.
    pub trust: u32,
    /// Credit balance.
    pub credits: u64,
    /// Slots won (executed).
    pub used_slots: u32,
    /// Its latest claim.
    pub last_claim: Option<ClaimRecord>,
    /// Slots it had used when its current job started: 0, or its count at its last job
    /// restart.
    pub job_start_slots: u32,
    /// Slots the record proves it won on claims that a later claim showed too short, and the
    /// slots of every job it restarted: added to every claim it is ranked on for the rest of
    /// its membership, so an understatement that bought slots is paid back in rank, and a
    /// restart cannot hide one (docs/PROTOCOL.md section 4, steps 2 and 3).
    pub bought: u32,
    /// Rounds in a row with a missing claim, commit or reveal.
    pub consecutive_misses: u8,
    /// Rounds in a row with a valid, revealed bid (0 for a newcomer or a returning member).
    pub streak: u32,
    /// Times it came back after a suspension.
    pub rejoins: u32,
    /// The last round it was a voter of, if any: with no member active, the suspended
    /// members that were voters last bring the swarm back (never keys that never voted).
    pub last_voted: Option<u64>,
    /// Times it rejoined saying its process restarted and its job started over (a `--exec`
    /// daemon): its claims are checked again from its next claim.
    pub restarts: u32,
    /// Proven offences.
    pub offences: OffenceCounts,
    /// The coalition it belongs to, if any.
    pub coalition: Option<CoalitionId>,
}

impl MemberRecord {
    /// A member joining in `joined_round` with `name`.
    pub fn new(name: String, joined_round: u64) -> MemberRecord {
        MemberRecord {
            name,
            status: MemberStatus::Active,
            joined_round,
            left_round: None,
            trust: crate::trust::INITIAL_TRUST,
            credits: INITIAL_CREDITS,
            used_slots: 0,
            last_claim: None,
            job_start_slots: 0,
            bought: 0,
            consecutive_misses: 0,
            streak: 0,
            rejoins: 0,
            last_voted: None,
            restarts: 0,
            offences: OffenceCounts::default(),
            coalition: None,
        }
    }

    /// Whether it takes part in rounds.
    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Active
    }

    /// The remaining burst its record expects: its last (ranked) claim less the slots it won
    /// since; `None` before its first claim (or after a job restart).
    pub fn expected_remaining(&self) -> Option<i64> {
        self.last_claim.map(|last| {
            i64::from(last.remaining) - i64::from(self.used_slots.saturating_sub(last.used_before))
        })
    }

    /// The claim its record keeps when it claims `claimed`: its claim, or what its record
    /// expects when that is more (a lie never shortens a rank; docs/PROTOCOL.md section 4).
    pub fn kept_claim(&self, claimed: u32) -> u32 {
        self.expected_remaining()
            .and_then(|expected| u32::try_from(expected).ok())
            .map_or(claimed, |expected| claimed.max(expected))
    }

    /// The slots a claim of `claimed` proves were bought with an understatement: every slot
    /// won since its own word last set the record's expectation ([`ClaimRecord::anchor_used`]),
    /// when `claimed` is above what the record expects: a run of claims that only follow the
    /// expectation down (or an idle round) hides none of them.
    pub fn bought_by(&self, claimed: u32) -> u32 {
        match (self.expected_remaining(), self.last_claim) {
            (Some(expected), Some(last)) if i64::from(claimed) > expected => {
                self.used_slots.saturating_sub(last.anchor_used)
            }
            _ => 0,
        }
    }

    /// The claim the rule ranks it on when it claims `claimed`: the claim its record keeps
    /// plus every slot proven bought with an understatement, this claim's proof included.
    /// Known from the record and the claim alone, before anyone commits.
    pub fn ranked_claim(&self, claimed: u32) -> u32 {
        self.kept_claim(claimed)
            .saturating_add(self.bought)
            .saturating_add(self.bought_by(claimed))
    }

    /// Whether it is suspended (and may rejoin).
    pub fn is_suspended(&self) -> bool {
        self.status == MemberStatus::Suspended
    }

    /// Whether it may vote: an active member never proven to have signed contradicting
    /// agreement messages.
    pub fn may_vote(&self) -> bool {
        self.is_active() && self.offences.contradictions == 0
    }
}

/// A formed coalition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coalition {
    /// Proposal it formed from.
    pub id: CoalitionId,
    /// Proposer and partners.
    pub members: BTreeSet<AgentId>,
    /// Support each member pledged to the beneficiary per round.
    pub pledge: u64,
    /// Free-text terms of the proposal.
    pub terms: String,
    /// Last round in which it exists.
    pub last_round: u64,
    /// Rounds in a row in which no member won.
    pub rounds_without_win: u8,
}

/// The whole replicated state after some number of final rounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Swarm this ledger belongs to.
    pub swarm: SwarmId,
    /// The next round to resolve.
    pub next_round: u64,
    /// Digest of the state before the last resolved round (hash chain).
    pub previous: Digest,
    /// Hash of the ids of the messages the last round was resolved from.
    pub last_inputs: Digest,
    /// Winner of the last resolved round.
    pub last_winner: Option<AgentId>,
    /// Every agent that ever joined, by id.
    pub members: BTreeMap<AgentId, MemberRecord>,
    /// Coalitions in force.
    pub coalitions: BTreeMap<CoalitionId, Coalition>,
    /// The founders a swarm founded by known keys named (the voters of its founding round);
    /// empty for a swarm founded by whoever joined first.
    pub founders: BTreeSet<AgentId>,
    /// The voters of round `next_round` (see [`LedgerState::voters_for`]).
    pub voters: BTreeSet<AgentId>,
    /// Rounds a suspended member may stay away before it is removed, fixed in the founding
    /// round.
    pub absence_limit: u64,
}

impl LedgerState {
    /// The empty state before round 0 of `swarm`.
    pub fn genesis(swarm: SwarmId) -> LedgerState {
        LedgerState {
            swarm,
            next_round: 0,
            previous: Digest::default(),
            last_inputs: Digest::default(),
            last_winner: None,
            members: BTreeMap::new(),
            coalitions: BTreeMap::new(),
            founders: BTreeSet::new(),
            voters: BTreeSet::new(),
            absence_limit: DEFAULT_ABSENCE_LIMIT,
        }
    }

    /// The state digest: SHA-256 of the canonical encoding (ordered maps throughout).
    pub fn digest(&self) -> Digest {
        Digest::of(b"slotmesh/state/v1", &[&codec::encode(self)])
    }

    /// The display name of `id`: its member name, or its short id if it never joined.
    pub fn name_of(&self, id: &AgentId) -> String {
        self.members
            .get(id)
            .map_or_else(|| id.short(), |m| m.name.clone())
    }

    /// Active members, in id order.
    pub fn active_members(&self) -> impl Iterator<Item = (&AgentId, &MemberRecord)> + '_ {
        self.members.iter().filter(|(_, m)| m.is_active())
    }

    /// Whether `id` is an active member.
    pub fn is_active(&self, id: &AgentId) -> bool {
        self.members.get(id).is_some_and(MemberRecord::is_active)
    }

    /// The members whose votes finalize the next round. For the founding round: the known
    /// founders it names, or else the members it admits (`resolved`). Past it: the agreed
    /// [`LedgerState::voters`] (members that earned the right, admitted a few per round,
    /// docs/PROTOCOL.md §6) still active and allowed; if none is left, the active members
    /// that may vote with the longest streak; if none may, the active members with the
    /// longest streak (a swarm of proven cheats still moves on); with no active member at
    /// all, the suspended members never barred that were voters last, or else that were
    /// suspended last (their rejoins bring the swarm back); with none of those either, the
    /// members the round admits.
    ///
    /// The set is a function of the agreed state before the round, so every replica uses the
    /// same one, and any two majorities of it intersect.
    pub fn voters_for(&self, resolved: &LedgerState) -> BTreeSet<AgentId> {
        let admitted = || resolved.active_members().map(|(id, _)| *id).collect();
        if self.next_round == 0 {
            if !resolved.founders.is_empty() {
                return resolved.founders.clone();
            }
            return admitted();
        }
        let ids = |keep: &dyn Fn(&MemberRecord) -> bool| -> BTreeSet<AgentId> {
            self.members
                .iter()
                .filter(|(_, m)| keep(m))
                .map(|(id, _)| *id)
                .collect()
        };
        let agreed: BTreeSet<AgentId> = self
            .voters
            .iter()
            .filter(|id| self.members.get(id).is_some_and(MemberRecord::may_vote))
            .copied()
            .collect();
        if !agreed.is_empty() {
            return agreed;
        }
        // No voter left: the active members allowed to vote with the longest streak (the
        // most established: keys admitted in the round the last voter left never outvote
        // the members that were there), then any active member; with no active member, the
        // suspended members never barred that were voters last (the most recently heard of:
        // a member that crashed long before them would otherwise make their majority
        // impossible; keys that joined and fell silent never voted), and failing those the
        // suspended members never barred that were suspended last.
        let longest = |keep: &dyn Fn(&MemberRecord) -> bool| -> BTreeSet<AgentId> {
            let best = self
                .members
                .values()
                .filter(|m| keep(m))
                .map(|m| m.streak)
                .max();
            ids(&|m: &MemberRecord| keep(m) && Some(m.streak) == best)
        };
        let keeps: [&dyn Fn(&MemberRecord) -> bool; 2] =
            [&MemberRecord::may_vote, &MemberRecord::is_active];
        for keep in keeps {
            let set = longest(keep);
            if !set.is_empty() {
                return set;
            }
        }
        let returnable = |m: &MemberRecord| m.is_suspended() && m.offences.contradictions == 0;
        let last = |key: &dyn Fn(&MemberRecord) -> Option<u64>| -> BTreeSet<AgentId> {
            let latest = self
                .members
                .values()
                .filter(|m| returnable(m))
                .filter_map(key)
                .max();
            match latest {
                Some(latest) => ids(&|m: &MemberRecord| returnable(m) && key(m) == Some(latest)),
                None => BTreeSet::new(),
            }
        };
        type RoundOf = dyn Fn(&MemberRecord) -> Option<u64>;
        let keys: [&RoundOf; 2] = [&|m| m.last_voted, &|m| m.left_round];
        for key in keys {
            let set = last(key);
            if !set.is_empty() {
                return set;
            }
        }
        admitted()
    }

    /// How many of its voters the round this state starts needs to certify `resolved`:
    /// all of them when they are only known from `resolved` itself (the founding round of a
    /// swarm founded by whoever joined), a majority otherwise.
    pub fn quorum(&self, resolved: &LedgerState) -> Quorum {
        if self.next_round == 0 && resolved.founders.is_empty() {
            Quorum::All
        } else {
            Quorum::Majority
        }
    }
}

/// Joins and rejoins the round after a state with `active` members admits at most: half the
/// active members, and at least [`MIN_ADMISSIONS_PER_ROUND`].
pub fn admission_limit(active: usize) -> usize {
    (active / 2).max(MIN_ADMISSIONS_PER_ROUND)
}

/// Members that earned the vote the next round may add to `kept` voters of this one: fewer
/// than half of `kept` (one if `kept` is one or two), so that the voters of consecutive rounds
/// overlap in a majority of the new set.
pub fn voter_additions(kept: usize) -> usize {
    (kept.saturating_sub(1) / 2).max(1)
}

/// Votes needed for a majority of `voters`: more than half.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// How many of a round's voters a certificate needs ([`LedgerState::quorum`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// Every voter: the founding round of a swarm whose voters are the members it admits
    /// (two replicas that saw different joins must not both finalize). No proposer, no
    /// justification.
    All,
    /// More than half (Paxos, with an accountable justification).
    Majority,
}

impl Quorum {
    /// The quorum of `round` when the founders are not known in advance.
    pub fn for_round(round: u64) -> Quorum {
        if round == 0 {
            Quorum::All
        } else {
            Quorum::Majority
        }
    }

    /// Votes needed of `voters`.
    pub fn of(self, voters: usize) -> usize {
        match self {
            Quorum::All => voters,
            Quorum::Majority => majority(voters),
        }
    }
}

/// Votes a certificate of `round` needs from its `voters` when the founders are not known
/// in advance: all of them for the founding round, a majority for every later round.
pub fn votes_needed(round: u64, voters: usize) -> usize {
    Quorum::for_round(round).of(voters)
}
