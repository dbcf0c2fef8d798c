//! The request–response side of a node (`/slotmesh/sync/1`): answering peers' requests
//! from the engine and the ledger, taking their answers (each message and record verified),
//! direct delivery, and fetching final rounds.

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
                    if self.fetch_in_flight == Some(request_id) {
                        self.fetch_in_flight = None;
                    }
                    self.take_response(peer, response);
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
            SyncRequest::RoundMessages { round } => {
                let held: Vec<Envelope> = match self.engine.messages(round) {
                    Some(messages) => messages.iter().map(|m| m.envelope()).collect(),
                    None => self
                        .records
                        .get(round as usize)
                        .map(|r| r.messages.clone())
                        .unwrap_or_default(),
                };
                SyncResponse::RoundMessages(held)
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

    pub(super) fn take_response(&mut self, peer: PeerId, response: SyncResponse) {
        match response {
            SyncResponse::Delivered => {}
            SyncResponse::RoundMessages(envelopes) => self.take_envelopes(peer, envelopes),
            SyncResponse::FinalRounds(rounds) => {
                let got = rounds.len();
                for record in rounds {
                    if record.round != self.engine.round() {
                        continue;
                    }
                    let now = self.now();
                    if let Err(error) = self.engine.handle_final_round(&record, now) {
                        self.reject(
                            peer,
                            "record",
                            &format!("final round {}: {error}", record.round),
                        );
                        return;
                    }
                    // Persist each record before applying the next.
                    if let Err(error) = self.drain_engine() {
                        tracing::error!(%error, "cannot store a synced round");
                        return;
                    }
                }
                if got as u32 == MAX_SYNC_ROUNDS {
                    self.fetch_rounds(self.engine.round());
                }
            }
        }
    }

    pub(super) fn take_envelopes(&mut self, peer: PeerId, envelopes: Vec<Envelope>) {
        for envelope in envelopes {
            match open_envelope(envelope, self.swarm_id, &self.limits) {
                Ok(message) => {
                    let now = self.now();
                    self.engine.handle_message(message, now);
                }
                Err(error) => self.reject(peer, rejection_reason(&error), &error.to_string()),
            }
        }
    }

    /// Sends envelopes by request–response to `peer`, or to every connected peer.
    pub(super) fn deliver_direct(&mut self, peer: Option<PeerId>, envelopes: Vec<Envelope>) {
        let peers: Vec<PeerId> = match peer {
            Some(p) => vec![p],
            None => self.swarm.connected_peers().copied().collect(),
        };
        for p in peers {
            self.swarm
                .behaviour_mut()
                .sync
                .send_request(&p, SyncRequest::Deliver(envelopes.clone()));
        }
    }

    pub(super) fn fetch_rounds(&mut self, from: u64) {
        if self.fetch_in_flight.is_some() {
            return;
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        self.fetch_rotation = self.fetch_rotation.wrapping_add(1);
        let peer = peers[self.fetch_rotation % peers.len()];
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
