//! The asynchronous side: one chat completion per question through async-openai, on any
//! OpenAI-compatible endpoint, within a deadline, with retries and backoff while time remains
//! (ours only: async-openai's own retry layer is left out, so a failing server costs one
//! request per attempt, not four). Each endpoint has a circuit breaker ([`crate::breaker`]):
//! a dead endpoint costs a few requests, then decisions fall back at once; a refused
//! connection is never retried; a bad key or an unknown model stops the asking for good.
//! Every failure names its root cause ("connection refused", not "error sending request").
//!
//! Servers differ in structured output (docs/OPERATING.md, LLM agents): OpenAI takes `response_format` of type
//! `json_schema`; llama.cpp's server takes `json_object` with a `schema` field; others only
//! follow the schema written in the prompt. With [`OutputFormat::Auto`] the client starts
//! with `json_schema`, steps down when the server refuses the request itself (a 4xx that is
//! not about authentication or rate), and keeps the first format that worked.

use crate::breaker::{Admission, Breaker};
use crate::prompt::untrusted;
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
    /// How long the breaker stays open before a probe.
    pub breaker_cool_down: Duration,
}

impl LlmSettings {
    /// The breaker's cool-down for a decision `deadline`: two deadlines, at least a second.
    pub fn cool_down_for(deadline: Duration) -> Duration {
        (deadline * 2).max(Duration::from_secs(1))
    }
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
    breaker: Breaker,
    /// A plain HTTP client for the start-up check.
    http: reqwest::Client,
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
        // Our retry loop only: async-openai's default stack retries 429, 5xx and connect
        // errors three times inside each of our attempts.
        let http = reqwest::Client::builder()
            .connect_timeout(settings.deadline)
            .build()
            .unwrap_or_default();
        let openai = async_openai::Client::with_config(config)
            .with_http_service(async_openai::middleware::ReqwestService::new(http.clone()));
        let start = match settings.format {
            OutputFormat::Auto | OutputFormat::JsonSchema => 0,
            OutputFormat::JsonObject => 1,
            OutputFormat::Prompt => 2,
        };
        LlmClient {
            inner: Arc::new(Inner {
                client: openai,
                format: AtomicU8::new(start),
                confirmed: std::sync::atomic::AtomicBool::new(
                    settings.format != OutputFormat::Auto,
                ),
                breaker: Breaker::new(settings.breaker_cool_down),
                http,
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
        let schema = question.prompt().schema.clone();
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
    /// a [`Reply::Failed`] with its root cause, and a question the breaker holds back is a
    /// [`Reply::Skipped`] at once.
    pub async fn ask(&self, question: &Question) -> Reply {
        let probe = match self.inner.breaker.admit(Instant::now()) {
            Admission::Ask => false,
            Admission::Probe => true,
            Admission::Refuse(reason) => return Reply::Skipped { reason },
        };
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
                Err(_) => {
                    let reason = "deadline passed".to_string();
                    self.inner.breaker.failure(&reason, Instant::now());
                    return failed(reason, attempts);
                }
                Ok(Ok(response)) => {
                    self.inner.confirmed.store(true, Ordering::Relaxed);
                    self.inner.breaker.success();
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
            let failure = Failure::of(&error);
            let reason = untrusted(&failure.to_string());
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
            match failure {
                Failure::Fatal(_) => {
                    self.inner.breaker.stop(&reason);
                    return failed(reason, attempts);
                }
                Failure::Refused(_) | Failure::Transient(_) => {
                    self.inner.breaker.failure(&reason, Instant::now());
                }
            }
            let now = tokio::time::Instant::now();
            if probe
                || matches!(failure, Failure::Refused(_))
                || !self.inner.breaker.is_closed()
                || now + backoff >= deadline
            {
                return failed(reason, attempts);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One cheap check of the endpoint before the first question: its models list, within
    /// the decision deadline. `Err` says, for a user, what is wrong (no API key for a
    /// remote endpoint, nothing listening, a refused key, the model not served).
    pub async fn check_endpoint(&self) -> Result<(), String> {
        let settings = &self.inner.settings;
        let base = settings.base_url.trim_end_matches('/');
        let local = is_local(base);
        if settings.api_key.is_empty() && !local {
            return Err(format!(
                "OPENAI_API_KEY is not set and {base} is not a local server: every request will be refused"
            ));
        }
        let mut request = self.inner.http.get(format!("{base}/models"));
        if !settings.api_key.is_empty() {
            request = request.bearer_auth(&settings.api_key);
        }
        let response = tokio::time::timeout(settings.deadline, request.send())
            .await
            .map_err(|_| {
                format!(
                    "{base}/models did not answer within {} ms",
                    settings.deadline.as_millis()
                )
            })?
            .map_err(|error| format!("{base} is unreachable: {}", root_cause(&error)))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(format!(
                "{base} refuses the API key (HTTP {}): check OPENAI_API_KEY",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            // Some compatible servers serve no models list; the first question will tell.
            tracing::debug!(
                status = status.as_u16(),
                "no models list at the LLM endpoint"
            );
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let served: Vec<&str> = body["data"]
            .as_array()
            .map(|models| models.iter().filter_map(|m| m["id"].as_str()).collect())
            .unwrap_or_default();
        if !served.is_empty() && !served.iter().any(|m| *m == settings.model) {
            return Err(format!(
                "{base} does not list the model {:?} (it serves {}): the server may refuse it",
                settings.model,
                untrusted(&served.join(", "))
            ));
        }
        Ok(())
    }
}

/// Whether `base` is a server on this host or a private network, where no key is needed.
fn is_local(base: &str) -> bool {
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_private())
}

/// What a failed request says about the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Nothing listens there: not retried.
    Refused(String),
    /// The endpoint refuses this client (a bad key, an unknown model or path): nothing more
    /// is asked.
    Fatal(String),
    /// Anything else (5xx, a timeout, a reset): retried while the deadline allows.
    Transient(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(cause) | Failure::Fatal(cause) | Failure::Transient(cause) => {
                f.write_str(cause)
            }
        }
    }
}

impl Failure {
    fn of(error: &OpenAIError) -> Failure {
        match error {
            OpenAIError::Reqwest(error) => {
                let cause = root_cause(error);
                if error.is_connect() && refused(error) {
                    Failure::Refused(cause)
                } else {
                    Failure::Transient(cause)
                }
            }
            OpenAIError::ApiError(response) => {
                let status = response.status_code.as_u16();
                let message = untrusted(&response.api_error.message);
                let cause = format!("HTTP {status}: {message}");
                match status {
                    401 | 403 => Failure::Fatal(format!("{cause} (check OPENAI_API_KEY)")),
                    404 => Failure::Fatal(format!(
                        "{cause} (check the model name and that the base URL ends in /v1)"
                    )),
                    _ => Failure::Transient(cause),
                }
            }
            other => Failure::Transient(root_cause(other)),
        }
    }
}

/// Whether a connection error was a refusal (nothing listening), not a timeout or a reset.
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = error.source();
    }
    false
}

/// The messages of an error and its sources, the deepest last, each said once: "error
/// sending request for url (…): client error (Connect): tcp connect error: Connection
/// refused (os error 111)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_endpoints_need_no_key() {
        for base in [
            "http://127.0.0.1:8090/v1",
            "http://localhost/v1",
            "http://192.168.1.5:8000/v1",
        ] {
            assert!(is_local(base), "{base}");
        }
        assert!(!is_local("https://api.openai.com/v1"));
    }
}
