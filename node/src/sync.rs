//! The request–response side of a node (`/slotmesh/sync/1`): answering peers' requests
//! from the engine and the ledger, taking their answers (each message and record verified),
//! direct delivery, and fetching final rounds.

use super::screen::rejection_reason;
use super::*;

impl Node {
    pub(super) fn handle_sync_event(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.answer(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let ours = self.fetch_in_flight == Some(request_id);
                    if ours {
                        self.fetch_in_flight = None;
                    }
                    let more_from = self.take_response(peer, response);
                    if ours {
                        self.driver.fetch_ended(more_from);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.fetch_in_flight == Some(request_id) {
                    self.fetch_in_flight = None;
                    self.driver.fetch_ended(None);
                }
                tracing::debug!(%peer, %error, "sync request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync answer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn answer(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let response = match request {
            SyncRequest::Deliver(envelopes) => {
                self.take_envelopes(peer, envelopes);
                SyncResponse::Delivered
            }
            SyncRequest::Inputs { round, digest } => {
                let envelopes: Vec<Envelope> = match self.driver.engine().inputs(round, digest) {
                    Some(messages) => messages.iter().map(|m| m.envelope()).collect(),
                    None => Vec::new(),
                };
                SyncResponse::Inputs {
                    round,
                    digest,
                    envelopes,
                }
            }
            SyncRequest::FinalRounds { from, max } => {
                let mut budget = MAX_SYNC_BYTES / 2;
                let mut rounds = Vec::new();
                for record in self
                    .records
                    .iter()
                    .skip(from as usize)
                    .take(max.min(MAX_SYNC_ROUNDS) as usize)
                {
                    let size = record.encode().len();
                    if size > budget {
                        break;
                    }
                    budget -= size;
                    rounds.push(record.clone());
                }
                SyncResponse::FinalRounds(rounds)
            }
        };
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, "peer went away before the answer");
        }
    }

    /// Takes a peer's answer; for a full answer of final rounds, returns the round to
    /// fetch on from.
    pub(super) fn take_response(&mut self, peer: PeerId, response: SyncResponse) -> Option<u64> {
        match response {
            SyncResponse::Delivered => None,
            SyncResponse::Inputs {
                round,
                digest,
                envelopes,
            } => {
                let mut messages = Vec::with_capacity(envelopes.len());
                for envelope in envelopes {
                    match open_envelope(envelope, self.swarm_id, &self.limits) {
                        Ok(message) => messages.push(message),
                        Err(error) => {
                            self.reject(peer, rejection_reason(&error), &error.to_string());
                            return None;
                        }
                    }
                }
                self.input(Input::Inputs {
                    round,
                    digest,
                    messages,
                });
                None
            }
            SyncResponse::FinalRounds(rounds) => {
                let got = rounds.len();
                for record in rounds {
                    let round = record.round;
                    if round != self.driver.engine().round() {
                        continue;
                    }
                    let now = self.now();
                    if let Err(error) = self.driver.handle(Input::FinalRound(record), now) {
                        self.reject(peer, "record", &format!("final round {round}: {error}"));
                        return None;
                    }
                    // Persist each record before applying the next.
                    if let Err(error) = self.drain() {
                        // The event loop stops on it, as on any failure to persist.
                        self.fatal = Some(error);
                        return None;
                    }
                }
                (got as u32 == MAX_SYNC_ROUNDS).then(|| self.driver.engine().round())
            }
        }
    }

    /// Sends envelopes by request–response to `peer`, or to every connected peer, in
    /// requests within the receiver's limits ([`MAX_DELIVER_ENVELOPES`], [`MAX_REQUEST_BYTES`]).
    pub(super) fn deliver_direct(&mut self, peer: Option<PeerId>, envelopes: Vec<Envelope>) {
        let peers: Vec<PeerId> = match peer {
            Some(p) => vec![p],
            None => self.swarm.connected_peers().copied().collect(),
        };
        let batches = delivery_batches(envelopes);
        for p in peers {
            for batch in &batches {
                self.swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&p, SyncRequest::Deliver(batch.clone()));
            }
        }
    }

    /// Fetches final rounds from `from` on, attempt `attempt` going to the next connected
    /// peer in turn; with no peer connected the fetch ends at once (the engine asks again).
    pub(super) fn fetch_rounds(&mut self, from: u64, attempt: u64) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            self.driver.fetch_ended(None);
            return;
        }
        let peer = peers[(attempt % peers.len() as u64) as usize];
        tracing::debug!(from, %peer, "fetching final rounds");
        self.fetch_in_flight = Some(self.swarm.behaviour_mut().sync.send_request(
            &peer,
            SyncRequest::FinalRounds {
                from,
                max: MAX_SYNC_ROUNDS,
            },
        ));
    }
}

/// Splits envelopes into [`SyncRequest::Deliver`] batches a receiver takes: at most
/// [`MAX_DELIVER_ENVELOPES`] each, and half of [`MAX_REQUEST_BYTES`] of bodies (the rest is
/// room for signatures and framing).
fn delivery_batches(envelopes: Vec<Envelope>) -> Vec<Vec<Envelope>> {
    let mut batches: Vec<Vec<Envelope>> = Vec::new();
    let mut bytes = 0;
    for envelope in envelopes {
        let size = envelope.body.len() + 64;
        match batches.last_mut() {
            Some(batch)
                if batch.len() < MAX_DELIVER_ENVELOPES && bytes + size <= MAX_REQUEST_BYTES / 2 =>
            {
                bytes += size;
                batch.push(envelope);
            }
            _ => {
                bytes = size;
                batches.push(vec![envelope]);
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn deliveries_are_split_within_the_receivers_limits() {
        let signed = Identity::from_secret([1; 32]).sign(
            slotmesh_proto::SwarmId::from_name("t"),
            0,
            slotmesh_proto::Payload::Claim(slotmesh_proto::Claim { remaining: 1 }),
        );
        let envelope = |len| Envelope {
            body: vec![7; len],
            signature: signed.envelope().signature,
        };
        let small = delivery_batches(vec![envelope(100); 2 * MAX_DELIVER_ENVELOPES + 1]);
        assert_eq!(
            small.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_DELIVER_ENVELOPES, MAX_DELIVER_ENVELOPES, 1]
        );
        let large = delivery_batches(vec![envelope(8_000); 40]);
        for batch in &large {
            let request = SyncRequest::Deliver(batch.clone());
            assert!(request.encode().len() <= MAX_REQUEST_BYTES);
            assert_eq!(SyncRequest::decode(&request.encode()), Ok(request));
        }
        assert_eq!(large.iter().map(Vec::len).sum::<usize>(), 40);
        assert!(delivery_batches(Vec::new()).is_empty());
    }
}
