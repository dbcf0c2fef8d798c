//! The daemon's local HTTP endpoint (axum): `GET /status` (JSON), `GET /metrics`
//! (Prometheus text), `GET /events` (server-sent events), and `GET /` (the dashboard, served
//! from the binary). Bound to loopback unless the user says otherwise. Anything else is an
//! HTTP error, never a crash.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use slotmesh_node::NodeHandle;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::broadcast;

/// The dashboard page: one self-contained file (no CDN, no build step).
const DASHBOARD: &str = include_str!("dashboard.html");

/// What the handlers share: the node, for its status, live events and metrics.
#[derive(Clone)]
pub struct HttpState {
    /// The node.
    pub node: NodeHandle,
    /// The status file the node writes: its last status, served once the node has stopped
    /// (a daemon that lingers after its job, `--linger`).
    pub status_file: PathBuf,
}

/// Parses `--http`: `PORT`, `:PORT` (both on 127.0.0.1), `HOST:PORT`.
pub fn parse_http_addr(text: &str) -> Result<SocketAddr, String> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("--http {text:?}: expected PORT, :PORT or HOST:PORT"))
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/events", get(events))
        .with_state(state)
}

/// Serves until the listener fails or the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: HttpState) {
    if let Err(error) = axum::serve(listener, router(state)).await {
        tracing::warn!(%error, "HTTP server stopped");
    }
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn status(State(state): State<HttpState>) -> Response {
    if let Some(status) = state.node.status().await {
        return Json(status).into_response();
    }
    match std::fs::read(&state.status_file) {
        Ok(last) => ([(header::CONTENT_TYPE, "application/json")], last).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the node has stopped").into_response(),
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, state.node.registry()) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn events(
    State(state): State<HttpState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.node.subscribe();
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    let sse = Event::default().event(event.name()).data(data);
                    return Some((Ok(sse), receiver));
                }
                // A slow watcher misses events rather than slowing the node.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A plain HTTP/1.1 GET of `path` on `address` (for `slotmesh status --http` and tests):
/// the body of a 200 answer, or an error naming the status.
pub fn http_get(address: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, timeout).with_context(|| {
            format!("cannot reach http://{address} (is the daemon running with --http?)")
        })?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP answer")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status_line = head.lines().next().unwrap_or_default().to_string();
    if !status_line.contains(" 200 ") {
        anyhow::bail!("http://{address}{path}: {status_line}");
    }
    let body = &response[split + 4..];
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_vec())
}

/// Decodes a chunked HTTP body (as much as is well-formed).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 || body.len() < end + 2 + size {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[(end + 4 + size).min(body.len())..];
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_addresses_default_to_loopback() {
        assert_eq!(
            parse_http_addr("8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(parse_http_addr(":0").unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(
            parse_http_addr("0.0.0.0:9").unwrap().to_string(),
            "0.0.0.0:9"
        );
        assert!(parse_http_addr("localhost:x").is_err());
    }
}
