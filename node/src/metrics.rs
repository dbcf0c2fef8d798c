//! The daemon's Prometheus metrics (prometheus-client), beside libp2p's own (libp2p-metrics:
//! connections, identify, ping, gossipsub), in one registry served at `GET /metrics`.

use libp2p::metrics::{Metrics as Libp2pMetrics, Recorder};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A topic label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// Short topic name (`announce`, `bids`, ...).
    pub topic: String,
}

/// A rejection reason label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why a message was rejected (`decode`, `signature`, `swarm`, `version`, `topic`, `record`).
    pub reason: String,
}

/// A member label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabel {
    /// Display name.
    pub member: String,
}

/// Every metric the node updates.
pub struct NodeMetrics {
    /// libp2p's own metrics.
    pub libp2p: Libp2pMetrics,
    /// Final rounds.
    pub rounds: Counter,
    /// Seconds between consecutive final rounds.
    pub round_latency: Histogram,
    /// Messages received (validated) by topic.
    pub messages_in: Family<TopicLabel, Counter>,
    /// Messages sent by topic.
    pub messages_out: Family<TopicLabel, Counter>,
    /// Messages rejected by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Messages dropped unverified as of no use here (`Engine::of_use`).
    pub ignored: Counter,
    /// Public trust per member, ppm.
    pub trust: Family<MemberLabel, Gauge>,
    /// Credits per member.
    pub credits: Family<MemberLabel, Gauge>,
    /// Slots this agent executed.
    pub slots_executed: Counter,
    /// Strategy decisions asked of an LLM.
    pub llm_calls: Counter,
    /// Decisions that fell back to the heuristic.
    pub llm_fallbacks: Counter,
    /// Model answers corrected to the bounds.
    pub llm_clamped: Counter,
    /// Decisions not asked because the endpoint's breaker was open.
    pub llm_breaker_open: Counter,
}

impl NodeMetrics {
    /// Registers every metric in `registry`.
    pub fn new(registry: &mut Registry) -> NodeMetrics {
        let libp2p = Libp2pMetrics::new(registry);
        let sub = registry.sub_registry_with_prefix("slotmesh");
        let metrics = NodeMetrics {
            libp2p,
            rounds: Counter::default(),
            round_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            messages_in: Family::default(),
            messages_out: Family::default(),
            rejected: Family::default(),
            ignored: Counter::default(),
            trust: Family::default(),
            credits: Family::default(),
            slots_executed: Counter::default(),
            llm_calls: Counter::default(),
            llm_fallbacks: Counter::default(),
            llm_clamped: Counter::default(),
            llm_breaker_open: Counter::default(),
        };
        sub.register(
            "rounds_final",
            "Rounds that became final",
            metrics.rounds.clone(),
        );
        sub.register(
            "round_latency_seconds",
            "Time between consecutive final rounds",
            metrics.round_latency.clone(),
        );
        sub.register(
            "messages_in",
            "Valid messages received, by topic",
            metrics.messages_in.clone(),
        );
        sub.register(
            "messages_out",
            "Messages sent, by topic",
            metrics.messages_out.clone(),
        );
        sub.register(
            "rejected_messages",
            "Messages rejected by validation, by reason",
            metrics.rejected.clone(),
        );
        sub.register(
            "ignored_messages",
            "Messages dropped unverified as of no use here",
            metrics.ignored.clone(),
        );
        sub.register(
            "trust_ppm",
            "Public trust per member (ppm)",
            metrics.trust.clone(),
        );
        sub.register(
            "credits",
            "Credit balance per member",
            metrics.credits.clone(),
        );
        sub.register(
            "slots_executed",
            "Slots this agent executed",
            metrics.slots_executed.clone(),
        );
        sub.register(
            "llm_calls",
            "Decisions asked of an LLM",
            metrics.llm_calls.clone(),
        );
        sub.register(
            "llm_fallbacks",
            "Decisions that fell back to the heuristic",
            metrics.llm_fallbacks.clone(),
        );
        sub.register(
            "llm_clamped",
            "Model answers corrected to the bounds",
            metrics.llm_clamped.clone(),
        );
        sub.register(
            "llm_breaker_open",
            "Decisions not asked because the LLM endpoint's breaker was open",
            metrics.llm_breaker_open.clone(),
        );
        metrics
    }

    /// Records a libp2p event.
    pub fn record<E>(&self, event: &E)
    where
        Libp2pMetrics: Recorder<E>,
    {
        self.libp2p.record(event);
    }
}
