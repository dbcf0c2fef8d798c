//! Agents that ask a model in the simulator: their strategies, and the questions in flight
//! while the simulated clock goes on. Live questions need the `llm` feature (the client and
//! a tokio runtime); without it, and for replays, every answer is known when it is asked.

use super::SimConfig;
use slotmesh_agent::adversary::Adversarial;
use slotmesh_agent::heuristic::Heuristic;
use slotmesh_agent::model::{Question, Reply};
use slotmesh_agent::scenario::AgentSpec;
use slotmesh_agent::Strategy;

/// The strategy of agent `spec` in `config`: its adversary's, or the run's. A replay record that cannot be read leaves the
/// agent with an empty one: every decision falls back to the heuristic, and is counted so
/// (`slotmesh sim` checks the records before it runs).
pub(super) fn strategy_of(
    config: &SimConfig,
    heuristic: Heuristic,
    spec: &AgentSpec,
) -> Box<dyn Strategy> {
    if let Some(kind) = spec.adversary {
        return Box::new(Adversarial::new(kind, heuristic));
    }
    let name = spec.name.as_str();
    let record_dir = config.record_dir.as_ref().map(|d| d.join(name));
    match config
        .strategy
        .build(heuristic.clone(), name, record_dir.as_deref())
    {
        Ok(strategy) => strategy,
        Err(error) => {
            tracing::error!(agent = name, %error, "strategy set-up failed");
            Box::new(slotmesh_llm::Llm::replay(
                heuristic,
                Default::default(),
                None,
            ))
        }
    }
}

/// An answer takes a quarter of a phase timeout of simulated time.
pub(super) const THINK_FRACTION: u64 = 4;

/// A question waiting for its answer's simulated time.
pub(super) enum Pending {
    /// Asked of the model.
    #[cfg(feature = "llm")]
    Asked(tokio::task::JoinHandle<(Box<Question>, Reply)>),
    /// Already answered (a replay, or no model client).
    Ready(Box<Question>, Reply),
}

/// Questions to the model in flight, at most `concurrency` at once, while the simulation
/// goes on. The simulated clock gives each answer [`THINK_FRACTION`]'s share of a phase
/// timeout; when that time comes, the run waits (in real time, at most the client's
/// deadline) for it. A replayed answer is handed back at the same simulated time.
#[cfg(feature = "llm")]
pub(super) struct Asker {
    runtime: tokio::runtime::Runtime,
    client: slotmesh_llm::LlmClient,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Without the `llm` feature there is no model to ask.
#[cfg(not(feature = "llm"))]
pub(super) enum Asker {}

impl Asker {
    /// The asker of `config`'s live model, if its strategy has one.
    #[cfg(feature = "llm")]
    pub(super) fn of(config: &SimConfig) -> Option<Asker> {
        let client = config.strategy.client()?.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| tracing::error!(%error, "cannot start the LLM runtime"))
            .ok()?;
        Some(Asker {
            runtime,
            client,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(
                config.llm_concurrency.max(1),
            )),
        })
    }

    /// The asker of `config`'s live model: none without the `llm` feature.
    #[cfg(not(feature = "llm"))]
    pub(super) fn of(_config: &SimConfig) -> Option<Asker> {
        None
    }

    /// Asks the model `question` in the background.
    pub(super) fn ask(&self, question: Box<Question>) -> Pending {
        #[cfg(feature = "llm")]
        {
            let (client, permits) = (self.client.clone(), self.permits.clone());
            Pending::Asked(self.runtime.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let reply = client.ask(&question).await;
                (question, reply)
            }))
        }
        #[cfg(not(feature = "llm"))]
        {
            let _ = question;
            match *self {}
        }
    }

    /// Waits (in real time) for the answer of a question asked with [`Asker::ask`].
    #[cfg(feature = "llm")]
    fn wait(
        &self,
        handle: tokio::task::JoinHandle<(Box<Question>, Reply)>,
    ) -> Option<(Box<Question>, Reply)> {
        self.runtime.block_on(handle).ok()
    }
}

impl Pending {
    /// The question and its reply: at once when it is known, else waiting for `asker`.
    pub(super) fn answer(self, asker: Option<&Asker>) -> Option<(Box<Question>, Reply)> {
        match self {
            Pending::Ready(question, reply) => Some((question, reply)),
            #[cfg(feature = "llm")]
            Pending::Asked(handle) => asker?.wait(handle),
        }
        .or_else(|| {
            let _ = asker;
            None
        })
    }
}
