//! What a node does with a protocol message before the engine sees it, whether it came by
//! gossip or directly (`Deliver`): decode it, check its header (version, swarm) and topic,
//! weigh what it claims ([`slotmesh_proto::Engine::of_use`]: could it be of any use here?),
//! and only then check its signature, the costly part. A message of no use is dropped
//! unverified (gossip: `Ignore`, so it is not relayed and its sender is not penalised: two
//! replicas a round apart may judge one message differently), but a peer that sends more
//! than [`MAX_USELESS_PER_ROUND`] in a round is disconnected. An invalid one is rejected and
//! costs the peer that sent it (gossipsub scoring, and after [`MAX_REJECTIONS`] the
//! connection).

use super::*;
use slotmesh_proto::{OpenError, Unverified};

/// A peer whose messages fail validation this many times is disconnected and ignored.
const MAX_REJECTIONS: u32 = 3;
/// A peer that sends this many messages of no use within one round is disconnected and
/// ignored (an honest peer relays only what it found of use, so it sends a few at most,
/// where its view of the round differs from this node's).
const MAX_USELESS_PER_ROUND: u32 = 1_024;

/// What screening made of one message.
pub(super) enum Screened {
    /// Verified and of possible use: for the engine.
    Valid(SignedMessage),
    /// Of no use here whatever its signature: dropped unverified.
    Useless,
    /// Undecodable, of another swarm or version, on the wrong topic, or badly signed: the
    /// reason's kind (a metrics label) and its text.
    Invalid(&'static str, String),
}

impl Node {
    /// Screens a decoded message; `topic`: the gossip topic it came on, if it did.
    pub(super) fn screen(
        &self,
        decoded: Result<Unverified, OpenError>,
        topic: Option<&gossipsub::TopicHash>,
    ) -> Screened {
        let invalid = |e: &OpenError| Screened::Invalid(rejection_reason(e), e.to_string());
        let unverified = match decoded.and_then(|u| u.check_header(self.swarm_id).map(|()| u)) {
            Ok(unverified) => unverified,
            Err(error) => return invalid(&error),
        };
        if topic.is_some_and(|t| self.topics.for_kind(unverified.payload().kind()).hash() != *t) {
            return Screened::Invalid("topic", "payload on the wrong topic".into());
        }
        let engine = self.driver.engine();
        if !engine.of_use(
            unverified.round(),
            &unverified.sender(),
            unverified.payload(),
        ) {
            return Screened::Useless;
        }
        match unverified.verify(self.swarm_id, &self.limits) {
            Ok(message) => Screened::Valid(message),
            Err(error) => invalid(&error),
        }
    }

    /// A gossip message: screened, then reported to gossipsub (`Accept`, `Ignore` or
    /// `Reject`) and, if valid, handed to the engine.
    pub(super) fn handle_gossip(
        &mut self,
        source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let decoded = slotmesh_proto::decode_unverified(&message.data, &self.limits);
        let screened = self.screen(decoded, Some(&message.topic));
        let acceptance = match &screened {
            Screened::Valid(_) => MessageAcceptance::Accept,
            Screened::Useless => MessageAcceptance::Ignore,
            Screened::Invalid(..) => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&message_id, &source, acceptance);
        if let Screened::Valid(_) = &screened {
            let topic = self.topics.name_of(&message.topic);
            self.observer
                .metrics
                .messages_in
                .get_or_create(&metrics::TopicLabel {
                    topic: topic.into(),
                })
                .inc();
        }
        self.take_screened(source, screened);
    }

    /// Envelopes a peer delivered directly, each screened as gossip is.
    pub(super) fn take_envelopes(&mut self, peer: PeerId, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            let decoded = Unverified::of(envelope, &self.limits);
            let screened = self.screen(decoded, None);
            self.take_screened(peer, screened);
        }
    }

    fn take_screened(&mut self, peer: PeerId, screened: Screened) {
        match screened {
            Screened::Valid(message) => self.input(Input::Message(message)),
            Screened::Useless => self.useless(peer),
            Screened::Invalid(kind, reason) => self.reject(peer, kind, &reason),
        }
    }

    fn useless(&mut self, peer: PeerId) {
        self.observer.metrics.ignored.inc();
        self.observer.status.ignored_messages += 1;
        let round = self.driver.engine().round();
        if self.useless.0 != round {
            self.useless = (round, BTreeMap::new());
        }
        let count = self.useless.1.entry(peer).or_default();
        *count += 1;
        if *count == MAX_USELESS_PER_ROUND {
            tracing::warn!(%peer, "too many messages of no use in one round: disconnecting and ignoring the peer");
            self.cut_off(peer);
        }
    }

    pub(super) fn reject(&mut self, peer: PeerId, kind: &str, reason: &str) {
        self.observer
            .metrics
            .rejected
            .get_or_create(&metrics::ReasonLabel {
                reason: kind.into(),
            })
            .inc();
        let count = self.rejections.entry(peer).or_default();
        *count += 1;
        self.observer.status.rejected_messages += 1;
        tracing::warn!(%peer, %reason, rejections = *count, "rejected a message");
        if *count >= MAX_REJECTIONS {
            tracing::warn!(%peer, "too many rejected messages: disconnecting and ignoring the peer");
            self.cut_off(peer);
        }
    }

    fn cut_off(&mut self, peer: PeerId) {
        self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }
}

pub(super) fn rejection_reason(error: &slotmesh_proto::OpenError) -> &'static str {
    use slotmesh_proto::{OpenError, VerifyError};
    match error {
        OpenError::Verify(VerifyError::Version(_)) => "version",
        OpenError::Verify(VerifyError::WrongSwarm) => "swarm",
        OpenError::Verify(_) => "signature",
        _ => "decode",
    }
}
