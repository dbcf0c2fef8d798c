//! The host driver through its public API, one host alone: the regressions an attack on
//! the driver found (a publish before its spoken round is recorded, the slots of an agent
//! that crashed, a model's late reply).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::SeedableRng;
use slotmesh_agent::heuristic::{Heuristic, Personality};
use slotmesh_agent::memory::Memory;
use slotmesh_agent::model::{LlmCounts, Prompt, Question, Reply};
use slotmesh_agent::{
    Answer, Decision, DecisionKind, Effect, HostDriver, HostRules, Input, Job, Mind, Strategy, View,
};
use slotmesh_proto::{
    resolve_round, AgentId, Engine, EngineConfig, Finalized, Identity, Join, Leave, LeaveReason,
    LedgerState, Limits, Payload, Phase, RoundMessages, SwarmId,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const TIMEOUT: u64 = 1_000;

/// Asks a model for every negotiation (like the llm strategy), counting the replies it settles.
struct Asking {
    inner: Heuristic,
    settled: Arc<AtomicU64>,
}

impl Strategy for Asking {
    fn name(&self) -> &'static str {
        "asking"
    }
    fn decide(&mut self, kind: DecisionKind, view: &View<'_>) -> Answer {
        let fallback = self.inner.decision(kind, view);
        if kind == DecisionKind::of_phase(Phase::Negotiate).unwrap() {
            let prompt = Prompt {
                system: String::new(),
                user: String::new(),
                schema: serde_json::Value::Null,
            };
            return Answer::Ask(Box::new(Question::new(
                kind, view.round, prompt, fallback, None,
            )));
        }
        Answer::Now(fallback)
    }
    fn settle(&mut self, question: Question, _reply: Reply) -> Decision {
        self.settled.fetch_add(1, Ordering::SeqCst);
        question.into_fallback()
    }
    fn llm_counts(&self) -> LlmCounts {
        LlmCounts {
            calls: self.settled.load(Ordering::SeqCst),
            ..Default::default()
        }
    }
    fn observe(&mut self, me: AgentId, f: &Finalized) {
        self.inner.observe(me, f)
    }
    fn memory(&self) -> &Memory {
        self.inner.memory()
    }
    fn restore_memory(&mut self, m: Memory) {
        self.inner.restore_memory(m)
    }
}

fn founder(strategy: Box<dyn Strategy>, rules: HostRules, burst: u32) -> HostDriver {
    founder_of(strategy, rules, burst, 1)
}

/// A founder of a swarm that `min_members` found together.
fn founder_of(
    strategy: Box<dyn Strategy>,
    rules: HostRules,
    burst: u32,
    min_members: usize,
) -> HostDriver {
    let swarm = SwarmId::from_name("review");
    let identity = Identity::from_secret([7; 32]);
    let config = EngineConfig {
        swarm,
        name: "a".into(),
        limits: Limits::default(),
        phase_timeout_ms: TIMEOUT,
        founder: true,
        min_members,
        expected_members: min_members,
        known_founders: Default::default(),
        absence_limit: 0,
    };
    let engine = Engine::new(identity.clone(), config, LedgerState::genesis(swarm), 0);
    let mind = Mind::new(
        identity.id(),
        Job {
            burst,
            remaining: burst,
        },
        strategy,
        Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1)),
    );
    HostDriver::new(engine, mind, rules)
}

fn heuristic() -> Box<dyn Strategy> {
    Box::new(Heuristic::new(Personality::Cooperative, 0.0, 1))
}

/// Drains every effect at `now`, recording each spoken round as a daemon does; returns them.
fn drain(d: &mut HostDriver, now: u64) -> Vec<Effect> {
    let mut out = Vec::new();
    while let Some(e) = d.poll_effect(now) {
        if let Effect::Spoke(round) = e {
            d.spoken(round);
        }
        out.push(e);
    }
    out
}

/// A caller that could not record the spoken round (it never confirms [`HostDriver::spoken`])
/// must not get the round's messages to publish: the restart guard would not know.
#[test]
fn publish_is_not_handed_out_before_spoke_was_carried_out() {
    let rules = HostRules {
        phase_timeout_ms: TIMEOUT,
        slot_ms: None,
        spoken_round: None,
    };
    let mut d = founder(heuristic(), rules, 2);
    // Skip to the first Spoke.
    loop {
        match d.poll_effect(0).unwrap() {
            Effect::Spoke(0) => break,
            Effect::Publish(_) => panic!("publish before spoke"),
            _ => {}
        }
    }
    // The caller fails to persist Spoke(0) (disk full) and does not stop.
    let mut persisted: Option<u64> = None;
    for effect in drain(&mut d, 0) {
        match effect {
            Effect::Spoke(r) => persisted = Some(r),
            Effect::Publish(m) => assert!(
                persisted.is_some_and(|r| r >= m.round()),
                "published a message of round {} while the spoken round on disk is {persisted:?}",
                m.round()
            ),
            _ => {}
        }
    }
}

/// The won slots of an agent the host stops speaking for (it crashed) never start.
#[test]
fn unhosted_agent_slots_still_execute() {
    let rules = HostRules {
        phase_timeout_ms: TIMEOUT,
        slot_ms: Some(300),
        spoken_round: None,
    };
    let mut d = founder(heuristic(), rules, 3);
    let me = Identity::from_secret([7; 32]).id();
    let mut now = 0;
    // Run until a won slot is queued.
    let mut won = false;
    for _ in 0..50 {
        for e in drain(&mut d, now) {
            if let Effect::Final(f) = &e {
                won |= f.outcome.winner == Some(me);
            }
            if let Effect::SetTimer { round, phase, at } = e {
                if at > now {
                    now = at;
                }
                d.handle(Input::Timer { round, phase }, now).unwrap();
            }
        }
        if won {
            break;
        }
    }
    assert!(won, "no slot won");
    assert!(!d.slots_done());
    assert!(d.unhost(&me).is_some());
    let at = d.next_wakeup().unwrap();
    d.handle(Input::Wake, at).unwrap();
    let started: Vec<_> = drain(&mut d, at)
        .into_iter()
        .filter(|e| matches!(e, Effect::SlotStarted { .. }))
        .collect();
    assert!(
        started.is_empty(),
        "a crashed (unhosted) agent's slot started: {started:?}; slots_done={}",
        d.slots_done()
    );
}

/// A model reply that comes back after the agent's membership ended still reaches the
/// strategy, which counts and records it.
#[test]
fn late_reply_after_leave_is_still_counted() {
    let settled = Arc::new(AtomicU64::new(0));
    let strategy = Box::new(Asking {
        inner: Heuristic::new(Personality::Cooperative, 0.0, 1),
        settled: settled.clone(),
    });
    let rules = HostRules {
        phase_timeout_ms: TIMEOUT,
        slot_ms: None,
        spoken_round: None,
    };
    let mut d = founder(strategy, rules, 5);
    let me = Identity::from_secret([7; 32]).id();
    let mut now = 0;
    let mut pending: Option<Box<Question>> = None;
    let mut left = false;
    let mut done = false;
    for _ in 0..200 {
        let effects = drain(&mut d, now);
        if effects.is_empty() {
            break;
        }
        for e in effects {
            match e {
                Effect::Ask { question, .. } if pending.is_none() => {
                    pending = Some(question);
                    // Ctrl-C while the model thinks.
                    d.handle(
                        Input::Leave {
                            agent: me,
                            reason: LeaveReason::Departed,
                        },
                        now,
                    )
                    .unwrap();
                    left = true;
                }
                Effect::Ask { question, .. } => {
                    d.handle(
                        Input::Reply {
                            agent: me,
                            question,
                            reply: Reply::unanswered("x"),
                        },
                        now,
                    )
                    .unwrap();
                }
                Effect::SetTimer { round, phase, at } => {
                    if at > now {
                        now = at;
                    }
                    d.handle(Input::Timer { round, phase }, now).unwrap();
                }
                Effect::Final(f) if f.state.members.get(&me).is_some_and(|m| !m.is_active()) => {
                    done = true;
                }
                _ => {}
            }
        }
        if done {
            break;
        }
    }
    assert!(left && done, "left {left} done {done}");
    let question = pending.unwrap();
    d.handle(
        Input::Reply {
            agent: me,
            question,
            reply: Reply::unanswered("slow model"),
        },
        now,
    )
    .unwrap();
    let effects = drain(&mut d, now);
    let decided = effects.iter().any(|e| matches!(e, Effect::Decided { .. }));
    assert!(
        settled.load(Ordering::SeqCst) == 1 && decided,
        "reply settled {} times, Decided emitted: {decided}",
        settled.load(Ordering::SeqCst)
    );
}

/// One fetch of final rounds at a time: the engine asks again and again while a fetch is
/// out, the driver hands out one, numbered; when it ends another goes out with the next
/// number (the daemon asks the next peer), and a full answer fetches on at once.
#[test]
fn one_fetch_in_flight_each_attempt_numbered() {
    let rules = HostRules {
        phase_timeout_ms: TIMEOUT,
        slot_ms: None,
        spoken_round: None,
    };
    // A founder waiting for a second one: it knows no member yet, like a joiner before its
    // first sync, so messages far ahead from any key are a sign it lags.
    let mut d = founder_of(heuristic(), rules, 2, 2);
    drain(&mut d, 0);
    let fetches = |effects: &[Effect]| -> Vec<(u64, u64)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::FetchRounds { from, attempt } => Some((*from, *attempt)),
                _ => None,
            })
            .collect()
    };
    // Messages of a round far ahead make the engine fetch the final rounds it lacks (once it
    // knows members, only theirs: `Engine::of_use`).
    let stranger = Identity::from_secret([9; 32]);
    let swarm = SwarmId::from_name("review");
    let far = stranger.sign(
        swarm,
        50,
        slotmesh_proto::Payload::Claim(slotmesh_proto::Claim { remaining: 1 }),
    );
    let mut seen = Vec::new();
    for now in [10, 20, 30] {
        d.handle(Input::Message(far.clone()), now).unwrap();
        seen.extend(fetches(&drain(&mut d, now)));
    }
    assert_eq!(seen.len(), 1, "exactly one fetch in flight: {seen:?}");
    let (from, attempt) = seen[0];
    d.fetch_ended(Some(from));
    let next = fetches(&drain(&mut d, 40));
    assert_eq!(next, vec![(from, attempt + 1)], "a full answer fetches on");
}

/// A host that may go lingers while a member it can reach has not spoken in the current
/// round, and goes after four phase timeouts at the latest; with nobody to wait for it goes
/// at once.
#[test]
fn a_finished_host_lingers_for_reachable_members() {
    let rules = HostRules {
        phase_timeout_ms: TIMEOUT,
        slot_ms: None,
        spoken_round: None,
    };
    let mut d = founder(heuristic(), rules, 1);
    let me = Identity::from_secret([7; 32]).id();
    // Found the swarm: stop right after round 0 is final, before anyone speaks in round 1.
    let mut now = 0;
    let mut founded = false;
    for _ in 0..100 {
        let Some(effect) = d.poll_effect(now) else {
            break;
        };
        match effect {
            Effect::Spoke(round) => d.spoken(round),
            Effect::SetTimer { round, phase, at } => {
                now = now.max(at);
                d.handle(Input::Timer { round, phase }, now).unwrap();
            }
            Effect::Final(_) => {
                founded = true;
                break;
            }
            _ => {}
        }
    }
    assert!(founded);
    assert!(
        d.lingered(now, |_| false),
        "nobody reachable: nothing to wait for"
    );
    assert!(
        !d.lingered(now + 1, |id| *id == me),
        "a reachable member has not spoken in round {}",
        d.engine().round()
    );
    assert!(
        d.lingered(now + 4 * TIMEOUT, |id| *id == me),
        "goes after four phase timeouts"
    );
}

/// A finished host stays two phase timeouts while a member that left is still connected:
/// that member may still lack the certificate of its leave round (the last votes this host
/// sent can be lost with its exit), and fetches the record from it meanwhile. Seen on
/// loopback: a three-node swarm whose last two members left in consecutive rounds hung.
#[test]
fn a_finished_host_waits_for_a_member_that_left_and_is_still_connected() {
    let swarm = SwarmId::from_name("review");
    let me = Identity::from_secret([7; 32]);
    let other = Identity::from_secret([8; 32]);
    let mut round0 = RoundMessages::new(0);
    for (who, name) in [(&me, "a"), (&other, "b")] {
        round0.insert(who.sign(
            swarm,
            0,
            Payload::Join(Join {
                name: name.into(),
                founders: Vec::new(),
                absence_limit: 0,
                restarted: false,
            }),
        ));
    }
    let (state, _) = resolve_round(&LedgerState::genesis(swarm), &round0);
    let mut round1 = RoundMessages::new(1);
    round1.insert(other.sign(
        swarm,
        1,
        Payload::Leave(Leave {
            reason: LeaveReason::Completed,
        }),
    ));
    let (state, _) = resolve_round(&state, &round1);
    let config = EngineConfig {
        swarm,
        name: "a".into(),
        limits: Limits::default(),
        phase_timeout_ms: TIMEOUT,
        founder: false,
        min_members: 1,
        expected_members: 1,
        known_founders: Default::default(),
        absence_limit: 0,
    };
    let engine = Engine::new(me.clone(), config, state, 0);
    let mind = Mind::new(
        me.id(),
        Job {
            burst: 1,
            remaining: 1,
        },
        heuristic(),
        Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(1)),
    );
    let rules = HostRules {
        phase_timeout_ms: TIMEOUT,
        slot_ms: None,
        spoken_round: None,
    };
    let mut d = HostDriver::new(engine, mind, rules);
    let left = other.id();
    assert!(!d.lingered(0, |id| *id == left), "it left and is connected");
    assert!(!d.lingered(TIMEOUT, |id| *id == left));
    assert!(
        d.lingered(2 * TIMEOUT, |id| *id == left),
        "two phase timeouts"
    );
    assert!(
        d.lingered(1, |_| false),
        "once it is gone, nothing to wait for"
    );
}
