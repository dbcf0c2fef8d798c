//! The record of every question and answer (`llm-record.jsonl` in the agent's directory, one
//! JSON object per line, bounded in size), and the replay book that answers the same
//! questions from it with the service gone (`--strategy replay:DIR`).

use serde::{Deserialize, Serialize};
use slotmesh_agent::model::{Prompt, Reply};
use slotmesh_agent::{Decision, DecisionKind};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The record's file name in an agent's directory.
pub const RECORD_FILE: &str = "llm-record.jsonl";
/// The previous record, once the current one reached [`MAX_RECORD_BYTES`].
pub const OLD_RECORD_FILE: &str = "llm-record.old.jsonl";
/// Size at which the record is rotated (so at most twice this is kept).
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// What became of a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The model's answer, as it was.
    Model,
    /// The model's answer, corrected to the bounds.
    Clamped,
    /// The heuristic's decision: the model failed, was late or answered garbage.
    Fallback,
}

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The round.
    pub round: u64,
    /// The decision asked for.
    pub kind: DecisionKind,
    /// What the model was told.
    pub prompt: Prompt,
    /// What came back.
    pub reply: Reply,
    /// What became of it.
    pub outcome: Outcome,
    /// Corrections made to the answer, or why it was refused.
    pub notes: Vec<String>,
    /// The decision taken.
    pub decision: Decision,
    /// The true remaining job the model was told (a claim is asked as an understatement of
    /// it, so a replay judges the answer against this truth, not its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told_remaining: Option<u32>,
}

/// Errors of the record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a record entry.
    #[error("{path} line {line}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
    /// No record where one was looked for.
    #[error("no {RECORD_FILE} in {0} (nor in {0}/NAME/)")]
    Missing(PathBuf),
}

/// Appends entries to an agent's record, rotating it at [`MAX_RECORD_BYTES`].
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    file: std::fs::File,
    written: u64,
    limit: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Recorder {
    /// Opens (or creates) the record in `dir`, appending.
    pub fn open(dir: &Path) -> Result<Recorder, RecordError> {
        Recorder::open_with_limit(dir, MAX_RECORD_BYTES)
    }

    /// Opens the record in `dir`, rotating it at `limit` bytes instead.
    pub fn open_with_limit(dir: &Path, limit: u64) -> Result<Recorder, RecordError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(RECORD_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let written = file.metadata().map_err(io(&path))?.len();
        Ok(Recorder {
            dir: dir.to_path_buf(),
            file,
            written,
            limit,
        })
    }

    /// Appends `entry` as one line.
    pub fn append(&mut self, entry: &Entry) -> Result<(), RecordError> {
        let path = self.dir.join(RECORD_FILE);
        let mut line = serde_json::to_vec(entry).map_err(|source| RecordError::Format {
            path: path.clone(),
            line: 0,
            source,
        })?;
        line.push(b'\n');
        if self.written > 0 && self.written + line.len() as u64 > self.limit {
            let old = self.dir.join(OLD_RECORD_FILE);
            std::fs::rename(&path, &old).map_err(io(&old))?;
            self.file = std::fs::File::create(&path).map_err(io(&path))?;
            self.written = 0;
        }
        self.file.write_all(&line).map_err(io(&path))?;
        self.written += line.len() as u64;
        Ok(())
    }
}

/// Recorded replies by round and decision: the last one recorded for each.
#[derive(Debug, Clone, Default)]
pub struct ReplayBook {
    replies: BTreeMap<(u64, DecisionKind), (Reply, Option<u32>)>,
    /// Where it was read from.
    pub source: PathBuf,
}

impl ReplayBook {
    /// The record of agent `name` under `dir`: `dir/NAME/llm-record.jsonl` (a swarm's or a
    /// sim's `--out`) or `dir/llm-record.jsonl` (a data dir), with its rotated part first.
    pub fn load(dir: &Path, name: &str) -> Result<ReplayBook, RecordError> {
        let agent_dir = [dir.join(name), dir.to_path_buf()]
            .into_iter()
            .find(|d| d.join(RECORD_FILE).is_file())
            .ok_or_else(|| RecordError::Missing(dir.to_path_buf()))?;
        let mut book = ReplayBook {
            replies: BTreeMap::new(),
            source: agent_dir.join(RECORD_FILE),
        };
        for file in [OLD_RECORD_FILE, RECORD_FILE] {
            let path = agent_dir.join(file);
            if !path.is_file() {
                continue;
            }
            let reader = std::io::BufReader::new(std::fs::File::open(&path).map_err(io(&path))?);
            for (index, line) in reader.lines().enumerate() {
                let line = line.map_err(io(&path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let entry: Entry =
                    serde_json::from_str(&line).map_err(|source| RecordError::Format {
                        path: path.clone(),
                        line: index + 1,
                        source,
                    })?;
                book.replies.insert(
                    (entry.round, entry.kind),
                    (entry.reply, entry.told_remaining),
                );
            }
        }
        Ok(book)
    }

    /// The reply recorded for `kind` in `round`.
    pub fn reply(&self, round: u64, kind: DecisionKind) -> Option<&Reply> {
        self.replies.get(&(round, kind)).map(|(reply, _)| reply)
    }

    /// The true remaining job the model was told when it answered `kind` in `round`.
    pub fn told_remaining(&self, round: u64, kind: DecisionKind) -> Option<u32> {
        self.replies.get(&(round, kind)).and_then(|(_, told)| *told)
    }

    /// How many replies it holds.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(round: u64, text: &str) -> Entry {
        Entry {
            round,
            kind: DecisionKind::Claim,
            prompt: Prompt {
                system: "s".into(),
                user: "u".into(),
                schema: serde_json::Value::Null,
            },
            reply: Reply::Answered {
                text: text.into(),
                attempts: 1,
                ms: 3,
            },
            outcome: Outcome::Model,
            notes: Vec::new(),
            told_remaining: None,
            decision: Decision::Claim(2),
        }
    }

    #[test]
    fn the_record_is_bounded_and_replays_from_both_parts() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = Recorder::open_with_limit(dir.path(), 1_000).unwrap();
        for round in 0..40 {
            recorder
                .append(&entry(round, &format!("{{\"remaining\": {round}}}")))
                .unwrap();
        }
        let size = |f: &str| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len());
        assert!(size(RECORD_FILE) <= 1_000 && size(OLD_RECORD_FILE) <= 1_000);
        assert!(size(OLD_RECORD_FILE) > 0);
        let book = ReplayBook::load(dir.path(), "any").unwrap();
        // Older rounds went out with the rotation; the newest are all there.
        assert!(book.reply(39, DecisionKind::Claim).is_some());
        assert!(book.reply(0, DecisionKind::Claim).is_none());
        assert!(book.len() < 40 && book.len() > 4);
    }

    #[test]
    fn a_damaged_record_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = Recorder::open(dir.path()).unwrap();
        recorder.append(&entry(1, "{}")).unwrap();
        std::fs::write(
            dir.path().join(RECORD_FILE),
            [
                std::fs::read(dir.path().join(RECORD_FILE)).unwrap(),
                b"{oops\n".to_vec(),
            ]
            .concat(),
        )
        .unwrap();
        let error = ReplayBook::load(dir.path(), "any").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(matches!(
            ReplayBook::load(&dir.path().join("nowhere"), "any"),
            Err(RecordError::Missing(_))
        ));
    }
}
