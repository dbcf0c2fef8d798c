//! Which strategy an agent runs, chosen once on the command line and built for each agent
//! the same way by the daemon and the simulator.

use crate::record::{RecordError, Recorder, ReplayBook};
use crate::Llm;
use slotmesh_agent::heuristic::Heuristic;
use slotmesh_agent::Strategy;

/// Which strategy an agent runs: the same choice for the daemon and the simulator.
#[derive(Debug, Clone, Default)]
pub enum StrategyChoice {
    /// Personality and bias templates.
    #[default]
    Heuristic,
    /// A model on an OpenAI-compatible endpoint, the heuristic as fallback.
    #[cfg(feature = "client")]
    Llm(crate::LlmClient),
    /// The replies recorded under this directory (a data dir, or a swarm's or sim's `--out`).
    Replay(std::path::PathBuf),
}

impl StrategyChoice {
    /// The model client, for a live `llm` strategy.
    #[cfg(feature = "client")]
    pub fn client(&self) -> Option<&crate::LlmClient> {
        match self {
            StrategyChoice::Llm(client) => Some(client),
            _ => None,
        }
    }

    /// The strategy of agent `name`, around its `heuristic`; `record_dir` (if any) is where
    /// an `llm` or `replay` strategy records its questions and answers.
    pub fn build(
        &self,
        heuristic: Heuristic,
        name: &str,
        record_dir: Option<&std::path::Path>,
    ) -> Result<Box<dyn Strategy>, RecordError> {
        let recorder = || record_dir.map(Recorder::open).transpose();
        Ok(match self {
            StrategyChoice::Heuristic => Box::new(heuristic),
            #[cfg(feature = "client")]
            StrategyChoice::Llm(_) => Box::new(Llm::live(heuristic, recorder()?)),
            StrategyChoice::Replay(dir) => {
                let book = ReplayBook::load(dir, name)?;
                tracing::info!(
                    agent = name,
                    replies = book.len(),
                    source = %book.source.display(),
                    "replaying recorded LLM replies"
                );
                Box::new(Llm::replay(heuristic, book, recorder()?))
            }
        })
    }
}
