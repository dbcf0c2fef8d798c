//! The life of a simulated host: its replica created when its first agent arrives, more
//! agents hosted on it, crashes, a resync from the agreed state when it is further behind
//! than the kept records, restarts, its own wake-ups, and its retirement once its agents are
//! done (after running their slots and lingering, when hosts execute slots).

use super::*;

impl Sim {
    pub(super) fn arrive(&mut self, i: usize) {
        let now = self.net.now();
        let agent = &mut self.agents[i];
        agent.life = Life::Live;
        let founder = agent.spec.arrival_ms == 0;
        let Some(mind) = agent.mind.take() else {
            return;
        };
        let host = &mut self.hosts[agent.host];
        if let Some(driver) = host.driver.as_mut() {
            driver.host(
                agent.identity.clone(),
                agent.spec.name.clone(),
                founder,
                mind,
                now,
            );
            return;
        }
        // A new replica catches up by fetching every final record from the first; when the
        // first records are no longer kept, it starts from the agreed state (a snapshot sync).
        let ledger = match &self.last_state {
            Some(state) if self.archive.first_round() != Some(0) => LedgerState::clone(state),
            _ => LedgerState::genesis(self.swarm),
        };
        let engine = self.new_replica(i, founder, ledger, now);
        let rules = self.rules(None);
        self.hosts[self.agents[i].host].driver = Some(HostDriver::new(engine, mind, rules));
    }

    /// A replica created by agent `i` from `ledger`, sharing resolutions with the others.
    pub(super) fn new_replica(
        &self,
        i: usize,
        founder: bool,
        ledger: LedgerState,
        now: u64,
    ) -> Engine {
        let agent = &self.agents[i];
        let known_founders = if founder {
            self.founder_ids.clone()
        } else {
            BTreeSet::new()
        };
        let min_members = if known_founders.is_empty() {
            self.founders.max(1)
        } else {
            slotmesh_proto::majority(known_founders.len())
        };
        let config = EngineConfig {
            swarm: self.swarm,
            name: agent.spec.name.clone(),
            limits: Limits::default(),
            phase_timeout_ms: self.config.phase_timeout_ms,
            founder,
            min_members,
            expected_members: self.founders.max(1),
            known_founders,
            absence_limit: 0,
        };
        let mut engine = Engine::new(agent.identity.clone(), config, ledger, now);
        engine.share_resolutions(self.resolutions.clone());
        engine
    }

    /// Host `h` is further behind than the records kept: its replica starts again from the
    /// agreed state (a snapshot sync), speaking for the same live agents.
    pub(super) fn resync(&mut self, h: usize) {
        let Some(state) = self.last_state.as_deref().cloned() else {
            return;
        };
        let now = self.net.now();
        let Some(engine) = self.fresh_replica(h, state, now) else {
            return;
        };
        if let Some(driver) = self.hosts[h].driver.as_mut() {
            driver.replace_engine(engine);
        }
    }

    /// A new replica of host `h` from `state`, speaking for its live agents.
    fn fresh_replica(&self, h: usize, state: LedgerState, now: u64) -> Option<Engine> {
        let mut live = self.hosts[h]
            .agents
            .iter()
            .copied()
            .filter(|i| self.agents[*i].life == Life::Live);
        let mut engine = self.new_replica(live.next()?, false, state, now);
        for i in live {
            let agent = &self.agents[i];
            engine.host(agent.identity.clone(), agent.spec.name.clone(), false, now);
        }
        Some(engine)
    }

    /// The host rules of this run, for a host that last spoke in `spoken_round`.
    pub(super) fn rules(&self, spoken_round: Option<u64>) -> HostRules {
        HostRules {
            phase_timeout_ms: self.config.phase_timeout_ms,
            slot_ms: self.config.slot_ms,
            spoken_round,
        }
    }

    /// Schedules host `h`'s next wake-up, if it wants one earlier than the one scheduled.
    pub(super) fn schedule_wake(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        let Some(at) = host.driver.as_ref().and_then(HostDriver::next_wakeup) else {
            return;
        };
        if host.wake_at.is_some_and(|scheduled| scheduled <= at) {
            return;
        }
        host.wake_at = Some(at);
        self.net.schedule(at, Event::Wake { host: h });
    }

    /// Restarts host `h` if a restart of `agent`'s host is due after its commit of `round`:
    /// its replica starts again from the agreed state, as a daemon replays its ledger.
    pub(super) fn restart_due(&mut self, h: usize, agent: AgentId, round: u64) {
        let Some(i) = self.by_id.get(&agent).copied() else {
            return;
        };
        let Some(k) = self
            .restarts
            .iter()
            .position(|r| r.agent == i && r.round == round)
        else {
            return;
        };
        let restart = self.restarts.swap_remove(k);
        let Some(state) = self.last_state.as_deref().cloned() else {
            return;
        };
        let now = self.net.now();
        let Some(engine) = self.fresh_replica(h, state, now) else {
            return;
        };
        let Some(old) = self.hosts[h].driver.take() else {
            return;
        };
        // The live agents' minds go on in the restarted host; the others wait outside it.
        let mut live = Vec::new();
        for (id, mind) in old.into_minds() {
            let Some(j) = self.by_id.get(&id).copied() else {
                continue;
            };
            if self.agents[j].life == Life::Live {
                live.push(mind);
            } else {
                self.agents[j].mind = Some(mind);
            }
        }
        let spoken = self.hosts[h].spoken.filter(|_| restart.remembers_spoken);
        let rules = self.rules(spoken);
        let mut driver = HostDriver::with_minds(engine, live, rules);
        if restart.remembers_spoken {
            driver.resume_agreement(self.hosts[h].agreement_sent.clone(), now);
        }
        let driver = Some(driver);
        tracing::debug!(host = h, round, "host restarted");
        self.hosts[h].driver = driver;
        self.hosts[h].wake_at = None;
        self.hosts[h].spoken_before_restart = self.hosts[h].spoken;
    }

    /// Crashes the agents of host `h` whose crash round its replica has reached.
    pub(super) fn crash_due(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        let round = host.driver.as_ref().map_or(0, |d| d.engine().round());
        while let Some((at, i)) = host.crashes.last().copied() {
            if round < at {
                return;
            }
            host.crashes.pop();
            let agent = &mut self.agents[i];
            if agent.life != Life::Live {
                continue;
            }
            agent.life = Life::Crashed;
            self.finished += 1;
            if let Some(driver) = host.driver.as_mut() {
                agent.mind = driver.unhost(&agent.id);
            }
        }
        self.retire_if_idle(h);
    }

    /// Stops host `h`'s replica once none of its agents is live or still to arrive. A host
    /// that executes slots first runs the slots its agents won and lingers as a daemon does,
    /// until the members still running no longer need it.
    pub(super) fn retire_if_idle(&mut self, h: usize) {
        let idle = self.hosts[h]
            .agents
            .iter()
            .all(|i| matches!(self.agents[*i].life, Life::Crashed | Life::Done));
        if idle && self.config.slot_ms.is_some() {
            let now = self.net.now();
            let running: BTreeSet<AgentId> = self
                .agents
                .iter()
                .filter(|a| a.life == Life::Live && self.hosts[a.host].driver.is_some())
                .map(|a| a.id)
                .collect();
            let Some(driver) = self.hosts[h].driver.as_mut() else {
                return;
            };
            if !driver.slots_done() || !driver.lingered(now, |id| running.contains(id)) {
                return;
            }
        }
        if idle {
            if let Some(driver) = self.hosts[h].driver.take() {
                for (id, mind) in driver.into_minds() {
                    if let Some(i) = self.by_id.get(&id) {
                        self.agents[*i].mind = Some(mind);
                    }
                }
            }
        }
    }
}
