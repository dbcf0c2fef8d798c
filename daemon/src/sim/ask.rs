//! Agents that ask a model in the simulator: their strategies, and the questions in flight
//! while the simulated clock goes on.

use super::SimConfig;
use crate::strategy::heuristic::Heuristic;
use crate::strategy::llm::{LlmClient, Question, Reply};
use crate::strategy::Strategy;

/// The strategy of agent `name` in `config`. A replay record that cannot be read leaves the
/// agent with an empty one: every decision falls back to the heuristic, and is counted so
/// (`slotmesh sim` checks the records before it runs).
pub(super) fn strategy_of(
    config: &SimConfig,
    heuristic: Heuristic,
    name: &str,
) -> Box<dyn Strategy> {
    let record_dir = config.record_dir.as_ref().map(|d| d.join(name));
    match config
        .strategy
        .build(heuristic.clone(), name, record_dir.as_deref())
    {
        Ok(strategy) => strategy,
        Err(error) => {
            tracing::error!(agent = name, %error, "strategy set-up failed");
            Box::new(crate::strategy::llm::Llm::replay(
                heuristic,
                Default::default(),
                None,
            ))
        }
    }
}

/// Questions to the model in flight, at most `concurrency` at once, while the simulation
/// goes on. The simulated clock gives each answer [`THINK_FRACTION`]'s share of a phase
/// timeout; when that time comes, the run waits (in real time, at most the client's
/// deadline) for it. A replayed answer is handed back at the same simulated time.
pub(super) struct Asker {
    runtime: tokio::runtime::Runtime,
    client: LlmClient,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// An answer takes a quarter of a phase timeout of simulated time.
pub(super) const THINK_FRACTION: u64 = 4;

/// A question waiting for its answer's simulated time.
pub(super) enum Pending {
    /// Asked of the model.
    Asked(tokio::task::JoinHandle<(Box<Question>, Reply)>),
    /// Already answered (a replay, or no model client).
    Ready(Box<Question>, Reply),
}

impl Asker {
    pub(super) fn new(client: LlmClient, concurrency: usize) -> std::io::Result<Asker> {
        Ok(Asker {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
            client,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
        })
    }

    /// Waits (in real time) for the answer of a question asked with [`Asker::ask`].
    pub(super) fn wait(
        &self,
        handle: tokio::task::JoinHandle<(Box<Question>, Reply)>,
    ) -> Option<(Box<Question>, Reply)> {
        self.runtime.block_on(handle).ok()
    }

    pub(super) fn ask(&self, question: Box<Question>) -> Pending {
        let (client, permits) = (self.client.clone(), self.permits.clone());
        Pending::Asked(self.runtime.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let reply = client.ask(&question).await;
            (question, reply)
        }))
    }
}
