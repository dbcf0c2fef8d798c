//! What a running daemon reports about itself (`status.json` in its data dir, and later the
//! HTTP status): identity, round and phase, its job, the members as the ledger sees them,
//! the schedule so far and its own executed slots.

use super::NodeConfig;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use slotmesh_proto::{Finalized, Identity, LedgerState};
use std::collections::BTreeMap;

/// Most schedule entries kept in the status.
const MAX_SCHEDULE: usize = 10_000;

/// A member as the ledger sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberStatus {
    /// Agent id (hex).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Lifecycle status.
    pub status: String,
    /// Public trust, ppm.
    pub trust_ppm: u32,
    /// Credits.
    pub credits: u64,
    /// Slots won.
    pub used_slots: u32,
    /// Latest claim.
    pub last_claim: Option<u32>,
}

/// One final round of the schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleEntry {
    /// The round.
    pub round: u64,
    /// The winner's name, if any.
    pub winner: Option<String>,
    /// The certified state digest (hex).
    pub digest: String,
    /// When this node learned it was final (Unix ms).
    pub final_unix_ms: u64,
    /// Public trust of every member after the round, ppm.
    pub trust: BTreeMap<String, u32>,
}

/// A coalition in force.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CoalitionStatus {
    /// Proposer's name.
    pub proposer: String,
    /// Members' names.
    pub members: Vec<String>,
    /// Support each member pledged per round.
    pub pledge: u64,
    /// Last round it exists in.
    pub last_round: u64,
}

/// A slot this agent executed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlotRecord {
    /// The round it won.
    pub round: u64,
    /// Start (Unix ms).
    pub start_unix_ms: u64,
    /// End (Unix ms).
    pub end_unix_ms: u64,
    /// CPU time the `--exec` job used in the slot, ms.
    pub job_cpu_ms: Option<u64>,
}

/// A daemon's status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// Display name.
    pub name: String,
    /// Agent id (hex).
    pub id: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Process id of the daemon.
    pub pid: u32,
    /// Address of its HTTP endpoint, if it has one.
    pub http: Option<String>,
    /// Pid (and process group) of the `--exec` job.
    pub job_pid: Option<u32>,
    /// How the `--exec` job ended (`exit 0`, `signal 9`, ...).
    pub job_exit: Option<String>,
    /// Listen addresses, with the peer id.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: usize,
    /// Round in progress.
    pub round: u64,
    /// Phase in progress.
    pub phase: String,
    /// True burst.
    pub burst: u32,
    /// Remaining burst.
    pub remaining: u32,
    /// The round whose slot it is executing now.
    pub executing: Option<u64>,
    /// Whether the daemon is finished.
    pub done: bool,
    /// Messages sent.
    pub messages_out: u64,
    /// Bytes of messages sent (each publish or direct delivery counted once per message).
    pub bytes_out: u64,
    /// Peak resident memory of the daemon, KiB.
    pub peak_rss_kib: u64,
    /// Messages rejected by validation.
    pub rejected_messages: u64,
    /// Messages dropped unverified as of no use here.
    #[serde(default)]
    pub ignored_messages: u64,
    /// Members.
    pub members: Vec<MemberStatus>,
    /// Coalitions in force.
    pub coalitions: Vec<CoalitionStatus>,
    /// The schedule: final rounds in order.
    pub schedule: Vec<ScheduleEntry>,
    /// Slots this agent executed.
    pub slots: Vec<SlotRecord>,
    /// The strategy's name (`heuristic`, `llm`, `replay`).
    #[serde(default)]
    pub strategy: String,
    /// Questions asked of a model, fallbacks and corrected answers.
    #[serde(default)]
    pub llm: slotmesh_agent::model::LlmCounts,
}

impl NodeStatus {
    /// The status of a node that has just started.
    pub fn new(config: &NodeConfig, identity: &Identity, peer_id: &PeerId) -> NodeStatus {
        NodeStatus {
            name: config.name.clone(),
            id: identity.id().to_hex(),
            peer_id: peer_id.to_string(),
            pid: std::process::id(),
            http: None,
            job_pid: None,
            job_exit: None,
            listen: Vec::new(),
            peers: 0,
            round: 0,
            phase: String::new(),
            burst: config.burst,
            remaining: config.burst,
            executing: None,
            done: false,
            messages_out: 0,
            bytes_out: 0,
            peak_rss_kib: 0,
            rejected_messages: 0,
            ignored_messages: 0,
            members: Vec::new(),
            coalitions: Vec::new(),
            schedule: Vec::new(),
            slots: Vec::new(),
            strategy: String::new(),
            llm: Default::default(),
        }
    }

    /// Adds a final round to the schedule.
    pub fn record_final(
        &mut self,
        finalized: &Finalized,
        winner: Option<String>,
        now_unix_ms: u64,
    ) {
        if self.schedule.len() >= MAX_SCHEDULE {
            self.schedule.remove(0);
        }
        self.schedule.push(ScheduleEntry {
            round: finalized.certified.round(),
            winner,
            digest: finalized.certified.digest().to_hex(),
            final_unix_ms: now_unix_ms,
            trust: finalized
                .state
                .members
                .values()
                .map(|m| (m.name.clone(), m.trust))
                .collect(),
        });
    }

    /// Refreshes the members and coalitions from the ledger state.
    pub fn update_members(&mut self, state: &LedgerState) {
        let name = |id: &slotmesh_proto::AgentId| state.name_of(id);
        self.coalitions = state
            .coalitions
            .values()
            .map(|c| CoalitionStatus {
                proposer: name(&c.id.proposer),
                members: c.members.iter().map(name).collect(),
                pledge: c.pledge,
                last_round: c.last_round,
            })
            .collect();
        self.members = state
            .members
            .iter()
            .map(|(id, m)| MemberStatus {
                id: id.to_hex(),
                name: m.name.clone(),
                status: format!("{:?}", m.status),
                trust_ppm: m.trust,
                credits: m.credits,
                used_slots: m.used_slots,
                last_claim: m.last_claim.as_ref().map(|c| c.remaining),
            })
            .collect();
    }
}
