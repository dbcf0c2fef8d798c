//! The asynchronous side: one chat completion per question through async-openai, on any
//! OpenAI-compatible endpoint, within a deadline, with retries and backoff while time remains.
//!
//! Servers differ in structured output (docs/OPERATING.md, LLM agents): OpenAI takes `response_format` of type
//! `json_schema`; llama.cpp's server takes `json_object` with a `schema` field; others only
//! follow the schema written in the prompt. With [`OutputFormat::Auto`] the client starts
//! with `json_schema`, steps down when the server refuses the request itself (a 4xx that is
//! not about authentication or rate), and keeps the first format that worked.

use crate::prompt::untrusted;
use crate::schema::schema;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use serde_json::{json, Value};
use slotmesh_agent::model::{Question, Reply};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the client asks for structured output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// Detect: `json-schema`, then `json-object`, then `prompt`; keep what works.
    Auto,
    /// `response_format: {type: json_schema, json_schema: {...}}` (OpenAI).
    JsonSchema,
    /// `response_format: {type: json_object, schema: {...}}` (llama.cpp's server).
    JsonObject,
    /// No `response_format`: the schema is only in the prompt.
    Prompt,
}

/// Where and how to ask.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Base URL of the OpenAI-compatible API (`.../v1`).
    pub base_url: String,
    /// API key (may be empty for local servers).
    pub api_key: String,
    /// Model name.
    pub model: String,
    /// Structured-output format.
    pub format: OutputFormat,
    /// Time for one decision, retries included.
    pub deadline: Duration,
    /// Most tokens in an answer.
    pub max_tokens: u32,
}

/// A shareable client: clones ask the same endpoint and share what was detected about it.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_openai::Client<OpenAIConfig>,
    settings: LlmSettings,
    /// The format in use (an index into [`LADDER`]), and whether it has worked once.
    format: AtomicU8,
    confirmed: std::sync::atomic::AtomicBool,
}

const LADDER: [OutputFormat; 3] = [
    OutputFormat::JsonSchema,
    OutputFormat::JsonObject,
    OutputFormat::Prompt,
];

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("base_url", &self.inner.settings.base_url)
            .field("model", &self.inner.settings.model)
            .field("format", &self.format())
            .finish()
    }
}

/// First wait between attempts; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(800);

impl LlmClient {
    /// A client for `settings`.
    pub fn new(settings: LlmSettings) -> LlmClient {
        // reqwest is built without a bundled TLS provider; ring is already in the tree.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.clone());
        let start = match settings.format {
            OutputFormat::Auto | OutputFormat::JsonSchema => 0,
            OutputFormat::JsonObject => 1,
            OutputFormat::Prompt => 2,
        };
        LlmClient {
            inner: Arc::new(Inner {
                client: async_openai::Client::with_config(config),
                format: AtomicU8::new(start),
                confirmed: std::sync::atomic::AtomicBool::new(
                    settings.format != OutputFormat::Auto,
                ),
                settings,
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &LlmSettings {
        &self.inner.settings
    }

    /// The structured-output format in use now.
    pub fn format(&self) -> OutputFormat {
        LADDER[usize::from(self.inner.format.load(Ordering::Relaxed)).min(LADDER.len() - 1)]
    }

    fn request(&self, question: &Question) -> Value {
        let settings = &self.inner.settings;
        let schema = schema(question.kind());
        let mut request = json!({
            "model": settings.model,
            "messages": [
                { "role": "system", "content": question.prompt().system },
                { "role": "user", "content": question.prompt().user },
            ],
            "temperature": 0.2,
            "max_tokens": settings.max_tokens,
            "stream": false,
        });
        let response_format = match self.format() {
            OutputFormat::JsonSchema | OutputFormat::Auto => Some(json!({
                "type": "json_schema",
                "json_schema": { "name": "decision", "strict": true, "schema": schema },
            })),
            OutputFormat::JsonObject => Some(json!({ "type": "json_object", "schema": schema })),
            OutputFormat::Prompt => None,
        };
        if let (Some(format), Some(object)) = (response_format, request.as_object_mut()) {
            object.insert("response_format".into(), format);
        }
        request
    }

    /// Whether `error` is the server refusing the request's form (so another structured-output
    /// format may work), rather than a failure of the service: a 4xx that is not about
    /// authentication, a missing model or the rate, or any error that names the
    /// structured-output fields (llama-cpp-python 0.3 answers `json_schema` with a 500 whose
    /// message is its validation error).
    fn refuses_format(error: &OpenAIError) -> bool {
        let names_format =
            |text: &str| text.contains("response_format") || text.contains("json_schema");
        match error {
            OpenAIError::ApiError(response) => {
                let status = response.status_code.as_u16();
                ((400..500).contains(&status) && ![401, 403, 404, 408, 429].contains(&status))
                    || names_format(&response.api_error.message)
            }
            // FastAPI-style validation errors are not OpenAI error objects.
            OpenAIError::JSONDeserialize(_, content) => names_format(content),
            _ => false,
        }
    }

    /// Asks `question`, retrying with backoff until the deadline. Never fails: a failure is
    /// a [`Reply::Failed`] with the reason.
    pub async fn ask(&self, question: &Question) -> Reply {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.inner.settings.deadline;
        let mut attempts = 0u32;
        let mut backoff = FIRST_BACKOFF;
        let failed = |reason: String, attempts| Reply::Failed {
            reason,
            attempts,
            ms: started.elapsed().as_millis() as u64,
        };
        loop {
            attempts += 1;
            let format_index = self.inner.format.load(Ordering::Relaxed);
            let chat = self.inner.client.chat();
            let call = chat.create_byot::<Value, Value>(self.request(question));
            let error = match tokio::time::timeout_at(deadline, call).await {
                Err(_) => return failed("deadline passed".into(), attempts),
                Ok(Ok(response)) => {
                    self.inner.confirmed.store(true, Ordering::Relaxed);
                    let message = &response["choices"][0]["message"];
                    return match (message["content"].as_str(), message["refusal"].as_str()) {
                        (Some(text), _) => Reply::Answered {
                            text: text.to_string(),
                            attempts,
                            ms: started.elapsed().as_millis() as u64,
                        },
                        (None, Some(refusal)) => {
                            failed(format!("refused: {}", untrusted(refusal)), attempts)
                        }
                        (None, None) => failed("no message content".into(), attempts),
                    };
                }
                Ok(Err(error)) => error,
            };
            let reason = untrusted(&error.to_string());
            if !self.inner.confirmed.load(Ordering::Relaxed)
                && Self::refuses_format(&error)
                && usize::from(format_index) + 1 < LADDER.len()
            {
                // Step down once per refusal, whichever task saw it first.
                if self
                    .inner
                    .format
                    .compare_exchange(
                        format_index,
                        format_index + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    tracing::info!(
                        from = ?LADDER[usize::from(format_index)],
                        to = ?LADDER[usize::from(format_index) + 1],
                        %reason,
                        "the LLM server refused the structured-output format; trying the next"
                    );
                }
                continue;
            }
            tracing::debug!(attempts, %reason, "LLM request failed");
            let now = tokio::time::Instant::now();
            if now + backoff >= deadline {
                return failed(reason, attempts);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
