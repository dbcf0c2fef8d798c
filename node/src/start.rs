//! Starting a node: flags checked, the data dir opened and locked, the ledger replayed and
//! verified, the strategy's memory restored, the swarm built, listening and dialing.

use super::*;

impl Node {
    /// Opens the data dir, replays and verifies the ledger, builds the swarm, starts
    /// listening and dialing. Errors are the user's to read: a bad flag, an unreadable or
    /// locked data dir, a damaged ledger, a port in use.
    pub fn start(config: NodeConfig) -> Result<(Node, NodeHandle)> {
        let limits = Limits::default();
        let swarm_id = SwarmId::from_name(&config.swarm_name);
        let data = DataDir::open(&config.data_dir)?;
        let (identity, generated) = keys::load_or_generate(&data.key_path())?;
        if generated {
            tracing::info!(key = %data.key_path().display(), "generated a new identity key");
        }
        let (ledger, loaded) = Ledger::open(&data.ledger_path(), swarm_id, &limits)?;
        if loaded.dropped_tail_bytes > 0 {
            tracing::warn!(
                bytes = loaded.dropped_tail_bytes,
                "the ledger ended in a torn record (a crash while writing); it was dropped and will be fetched again from peers"
            );
        }
        let mut state = LedgerState::genesis(swarm_id);
        for record in &loaded.records {
            let (next, _, _) =
                record
                    .apply(&state, &limits)
                    .map_err(|source| NodeError::Unverified {
                        path: data.ledger_path(),
                        round: record.round,
                        source,
                    })?;
            state = next;
        }
        let won = state
            .members
            .get(&identity.id())
            .map_or(0, |m| m.used_slots);
        let spoken_round = data.spoken_round()?;
        let agreement_sent = match data.agreement_sent(swarm_id, &limits)? {
            Some(sent) => Some(sent),
            None if spoken_round.is_none() => {
                // A new data dir: from now on every promise and vote is stored.
                data.set_agreement_sent(&[])?;
                Some(Vec::new())
            }
            None => None,
        };
        let heuristic = Heuristic::new(
            config.personality,
            config.bias,
            config
                .seed
                .unwrap_or_else(|| u64::from_le_bytes(seed_bytes(&identity))),
        );
        let mut strategy: Box<dyn slotmesh_agent::Strategy> = match config.adversary {
            Some(kind) => Box::new(slotmesh_agent::adversary::Adversarial::new(kind, heuristic)),
            None => config
                .strategy
                .build(heuristic, &config.name, Some(data.root()))
                .map_err(NodeError::Strategy)?,
        };
        match std::fs::read(data.memory_path()) {
            Ok(bytes) => match serde_json::from_slice::<Memory>(&bytes) {
                Ok(memory) => strategy.restore_memory(memory),
                Err(e) => {
                    tracing::warn!(error = %e, "memory.json does not parse; starting with an empty memory")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(NodeError::file("cannot read", data.memory_path(), e)),
        }
        let strategy_name = strategy.name();
        let mind = Mind::new(
            identity.id(),
            Job {
                burst: config.burst,
                remaining: config.burst.saturating_sub(won),
            },
            strategy,
            Box::new(rand::rngs::OsRng),
        );
        let topics = Topics::new(swarm_id);
        let key = keypair(&identity)?;
        let swarm_key = match &config.swarm_key {
            Some(path) => {
                let psk = read_swarm_key(path)?;
                tracing::info!(fingerprint = %psk.fingerprint(), "private swarm");
                Some(psk)
            }
            None => None,
        };
        let mut swarm = build_swarm(
            key,
            &topics,
            config.mdns,
            Duration::from_millis(config.phase_timeout_ms.max(500) * 4),
            swarm_key,
        )?;
        for address in &config.listen {
            ensure_port_free(address)?;
            swarm
                .listen_on(address.clone())
                .map_err(|error| NodeError::listen(address.clone(), &error))?;
        }
        for peer in &config.peers {
            if let Err(e) = swarm.dial(peer.clone()) {
                tracing::warn!(%peer, error = %e, "cannot dial peer");
            }
        }
        // Members known from an earlier run: found again even when the --peer node is gone.
        let saved = match std::fs::read(data.peers_path()) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(NodeError::file("cannot read", data.peers_path(), e)),
        };
        let peers = peers::PeerBook::new(saved.as_deref(), config.peers.clone());
        for address in peers.addresses() {
            if config.peers.contains(&address) {
                continue;
            }
            tracing::debug!(%address, "dialling a member known from an earlier run");
            let _ = swarm.dial(address);
        }
        let founder = loaded.records.is_empty() && !config.join;
        let known = &config.known_founders;
        if founder && !known.is_empty() && !known.contains(&identity.id()) {
            return Err(NodeError::NotAFounder(identity.id().to_hex()));
        }
        let (min_members, expected_members) = if known.is_empty() {
            (config.founders, config.founders)
        } else {
            (slotmesh_proto::majority(known.len()), known.len())
        };
        let engine_config = EngineConfig {
            swarm: swarm_id,
            name: config.name.clone(),
            limits,
            phase_timeout_ms: config.phase_timeout_ms,
            founder,
            min_members,
            expected_members,
            known_founders: if founder {
                known.clone()
            } else {
                Default::default()
            },
            absence_limit: config.absence_limit,
        };
        let engine = Engine::new(identity.clone(), engine_config, state, 0);
        let (answers, answers_in) = mpsc::unbounded_channel();
        let (sender, commands) = mpsc::channel(16);
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = NodeMetrics::new(&mut registry);
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let handle = NodeHandle {
            commands: sender,
            events: events.clone(),
            registry: std::sync::Arc::new(registry),
        };
        let mut status = NodeStatus::new(&config, &identity, swarm.local_peer_id());
        status.strategy = strategy_name.to_string();
        status.http = config.http.map(|address| address.to_string());
        tracing::info!(
            name = %config.name,
            id = %identity.id(),
            peer = %swarm.local_peer_id(),
            rounds = loaded.records.len(),
            remaining = mind.job.remaining,
            founder,
            "daemon started"
        );
        let stored_round = agreement_sent
            .as_ref()
            .and_then(|sent| sent.first())
            .map_or(0, SignedMessage::round);
        let stored = agreement_sent
            .iter()
            .flatten()
            .map(SignedMessage::envelope)
            .collect();
        let mut node = Node {
            limits,
            swarm_id,
            identity,
            swarm,
            topics,
            driver: HostDriver::new(
                engine,
                mind,
                HostRules {
                    phase_timeout_ms: config.phase_timeout_ms,
                    slot_ms: Some(config.slot_ms),
                    spoken_round,
                },
            ),
            data,
            ledger,
            records: loaded.records,
            started: Instant::now(),
            timers: BTreeMap::new(),
            commands,
            unsent: VecDeque::new(),
            rejections: BTreeMap::new(),
            useless: (0, BTreeMap::new()),
            fetch_in_flight: None,
            peers,
            next_lookup: 0,
            alone: None,
            fatal: None,
            shutdown_requested: None,
            sent_this_round: (0, Vec::new()),
            agreement_sent: data_dir::AgreementSent::new(stored_round, stored),
            observer: Observer {
                status,
                dirty: true,
                written_at: None,
                events,
                metrics,
                last_final_at: None,
                llm_counted: Default::default(),
            },
            runner: SlotRunner {
                job: None,
                cpu_at_slot_start: None,
            },
            model: ModelLink {
                client: config.strategy.client().cloned(),
                answers,
                answers_in,
            },
            config,
        };
        if let Some(round) = node.driver.silent_through() {
            match agreement_sent {
                Some(sent) => {
                    tracing::info!(
                        round,
                        stored = sent.len(),
                        "restarted in a round this agent may have spoken in: no new turn in it; its agreement resumes from the promises and votes stored"
                    );
                    node.driver.resume_agreement(sent, 0);
                }
                None => tracing::info!(
                    round,
                    "restarted in a round this agent may have spoken in: staying silent through it"
                ),
            }
        }
        Ok((node, handle))
    }
}

/// Fails if the TCP port of `address` is taken. libp2p's TCP transport sets SO_REUSEPORT on
/// its listeners, so a second daemon on a port another daemon holds would "listen" too and
/// share its connections; a plain bind, which sets no such option, is refused instead.
fn ensure_port_free(address: &Multiaddr) -> Result<()> {
    use libp2p::multiaddr::Protocol;
    let mut parts = address.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    match std::net::TcpListener::bind((ip, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(NodeError::port_in_use(address.clone()))
        }
        Err(e) => Err(NodeError::listen(address.clone(), &e)),
    }
}
