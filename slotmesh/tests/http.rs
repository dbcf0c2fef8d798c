#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The HTTP endpoint of real daemons (status JSON, Prometheus text, server-sent events,
//! errors), and the dashboard and a report rendered by headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs; elsewhere these two tests say they skipped).

mod common;

use common::*;
use slotmesh::history::History;
use slotmesh::http::http_get;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn http_address(daemon: &Daemon) -> SocketAddr {
    daemon.wait_until("serving HTTP", |s| s.http.is_some());
    daemon.status().unwrap().http.unwrap().parse().unwrap()
}

/// A raw request, for status codes.
fn status_code(address: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Reads server-sent events for at most `limit`, until `enough` finals were seen.
fn read_events(address: SocketAddr, limit: Duration, enough: usize) -> Vec<(String, String)> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let mut events = Vec::new();
    let mut name = String::new();
    let mut line = String::new();
    while started.elapsed() < limit {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => continue, // read timeout: check the clock
        }
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            events.push((name.clone(), data.trim().to_string()));
            if events.iter().filter(|(n, _)| n == "final").count() >= enough {
                break;
            }
        }
    }
    events
}

#[test]
fn status_metrics_and_events_of_running_daemons() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(
        dir.path(),
        &[("A", 6), ("B", 6), ("C", 6)],
        &["--http", "127.0.0.1:0"],
    );
    let address = http_address(&daemons[1]);
    // Events while the swarm runs: phase changes and final rounds, each one JSON object.
    let events = read_events(address, WAIT, 3);
    let finals: Vec<serde_json::Value> = events
        .iter()
        .filter(|(name, _)| name == "final")
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    assert!(finals.len() >= 3, "final events: {events:?}");
    assert!(finals[0]["trust"].as_object().unwrap().len() == 3);
    assert!(events.iter().any(|(name, _)| name == "phase"));
    for (name, data) in &events {
        let value: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(value["type"].as_str(), Some(name.as_str()));
    }
    // Status: its shape.
    let status: serde_json::Value =
        serde_json::from_slice(&http_get(address, "/status").unwrap()).unwrap();
    assert_eq!(status["name"], "B");
    for key in [
        "id",
        "peer_id",
        "round",
        "phase",
        "burst",
        "remaining",
        "schedule",
    ] {
        assert!(!status[key].is_null(), "status lacks {key}: {status}");
    }
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for member in members {
        for key in ["name", "status", "trust_ppm", "credits", "used_slots"] {
            assert!(!member[key].is_null(), "member lacks {key}: {member}");
        }
    }
    assert!(status["coalitions"].is_array());
    // Metrics: Prometheus text that parses, with ours and libp2p's.
    let text = String::from_utf8(http_get(address, "/metrics").unwrap()).unwrap();
    let sample = regex_lite(&text);
    assert!(sample
        .iter()
        .any(|(name, _)| name == "slotmesh_rounds_final_total"));
    assert!(sample
        .iter()
        .any(|(name, labels)| name == "slotmesh_trust_ppm" && labels.contains("member=\"A\"")));
    assert!(sample
        .iter()
        .any(|(name, labels)| name == "slotmesh_messages_out_total"
            && labels.contains("topic=\"bids\"")));
    assert!(sample
        .iter()
        .any(|(name, _)| name.starts_with("libp2p_swarm_")));
    assert!(sample
        .iter()
        .any(|(name, _)| name == "slotmesh_round_latency_seconds_bucket"));
    assert!(text.trim_end().ends_with("# EOF"));
    // Bad requests are HTTP errors, and the daemon goes on.
    assert_eq!(status_code(address, "GET", "/nope"), "404");
    assert_eq!(status_code(address, "POST", "/status"), "405");
    for daemon in &mut daemons {
        let status = daemon.wait_exit();
        assert!(status.success(), "{}", daemon.log());
    }
}

/// Every sample line of a Prometheus/OpenMetrics text as (name, labels); panics on a line
/// that is neither a comment nor `name{labels} value`.
fn regex_lite(text: &str) -> Vec<(String, String)> {
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("value of {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                assert!(labels.ends_with('}'), "{line}");
                (name, labels.to_string())
            }
            None => (series, String::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        samples.push((name.to_string(), labels));
    }
    samples
}

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(output) = Command::new("which").arg(name).output() {
            if output.status.success() {
                return Some(PathBuf::from(
                    String::from_utf8_lossy(&output.stdout).trim(),
                ));
            }
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have chromium (.ci/run installs it)"
    );
    eprintln!("skipped: no chromium on this machine (CI installs it)");
    None
}

/// Runs headless Chromium on `url` with `flags`; returns stdout and stderr.
fn chromium_run(browser: &Path, url: &str, flags: &[String]) -> (String, String) {
    // Its own profile, so that no other Chromium can take the work over.
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([
            "--window-size=1100,1000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(flags)
        .arg(url)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// The page's console errors in Chromium's log.
fn console_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("Uncaught")))
        .map(str::to_string)
        .collect()
}

/// Takes a screenshot of `url` after `wait` (page scripts running live); returns the console
/// errors.
fn screenshot(browser: &Path, url: &str, path: &Path, wait: &str) -> Vec<String> {
    let (_, stderr) = chromium_run(
        browser,
        url,
        &[wait.to_string(), format!("--screenshot={}", path.display())],
    );
    let png = std::fs::read(path)
        .unwrap_or_else(|e| panic!("no screenshot ({e}); chromium said:\n{stderr}"));
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    console_errors(&stderr)
}

/// The DOM of `url` once its scripts ran and it went idle, and the console errors.
fn dom(browser: &Path, url: &str) -> (String, Vec<String>) {
    let (stdout, stderr) = chromium_run(
        browser,
        url,
        &["--virtual-time-budget=2000".into(), "--dump-dom".into()],
    );
    (stdout, console_errors(&stderr))
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_dashboard_and_a_report_render_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(
        dir.path(),
        &[("A", 12), ("B", 10), ("C", 6)],
        &["--http", "127.0.0.1:0", "--slot-ms", "300"],
    );
    let address = http_address(&daemons[0]);
    daemons[0].wait_until("reached round 4", |s| s.round >= 4);
    // Live, with the event stream: a screenshot after 3 s, no console errors.
    let errors = screenshot(
        &browser,
        &format!("http://{address}/"),
        &artifacts().join("dashboard.png"),
        "--timeout=3000",
    );
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // A snapshot of the DOM (the event stream would keep the page from going idle).
    let (page, errors) = dom(&browser, &format!("http://{address}/?live=0"));
    assert!(errors.is_empty(), "console errors: {errors:?}");
    for name in ["A", "B", "C"] {
        assert!(
            page.contains(&format!(r#"class="row" data-agent="{name}""#)),
            "the dashboard's Gantt has a row for {name}:\n{page}"
        );
    }
    assert_eq!(
        page.matches(r#"class="row""#).count(),
        3,
        "one row per agent"
    );
    assert!(page.contains(r#"class="trust-line""#));
    for daemon in &mut daemons {
        assert!(daemon.wait_exit().success(), "{}", daemon.log());
    }
    // The report of the run, from the data dirs.
    let out = dir.path().join("report");
    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .arg("report")
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let url = format!("file://{}", out.join("index.html").display());
    let errors = screenshot(
        &browser,
        &url,
        &artifacts().join("report.png"),
        "--virtual-time-budget=1000",
    );
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let (page, errors) = dom(&browser, &url);
    assert!(errors.is_empty(), "console errors: {errors:?}");
    assert_eq!(
        page.matches(r#"class="row""#).count(),
        3,
        "one row per agent"
    );
    // The completion order shown is the one the ledger holds.
    let history = ["A", "B", "C"]
        .iter()
        .map(|n| History::load(&dir.path().join(n)).unwrap())
        .max_by_key(|h| h.rounds.len())
        .unwrap();
    let expected: String = history
        .completion_order()
        .iter()
        .map(|n| format!("<li>{n}</li>"))
        .collect();
    assert!(
        page.contains(&format!(r#"<ol id="completion">{expected}</ol>"#)),
        "completion order {expected} in:\n{page}"
    );
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    assert!(summary.contains(&format!(
        "completion order: {}",
        history.completion_order().join(", ")
    )));
}

/// `--linger`: a daemon with `--http` serves its final status and its dashboard after its
/// job is done, then exits 0 by itself; `swarm --http` prints its summary (with its legends
/// and progress lines), then keeps the dashboards up for its linger and exits 0.
#[test]
fn a_finished_daemon_keeps_its_dashboard_up_while_it_lingers() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemons = start_swarm(
        dir.path(),
        &[("A", 2), ("B", 3)],
        &["--http", "127.0.0.1:0", "--linger", "4"],
    );
    let address = http_address(&daemons[0]);
    daemons[0].wait_until("done", |s| s.done);
    let status: serde_json::Value =
        serde_json::from_slice(&http_get(address, "/status").unwrap()).unwrap();
    assert_eq!(
        (&status["done"], &status["remaining"]),
        (&true.into(), &0.into())
    );
    assert_eq!(status_code(address, "GET", "/"), "200");
    assert_all_exit_ok(&mut daemons);
    assert!(
        daemons[0].log().contains("the dashboard stays up"),
        "{}",
        daemons[0].log()
    );

    let output = Command::new(env!("CARGO_BIN_EXE_slotmesh"))
        .args(["swarm", "--preset", "seed", "--http", "127.0.0.1:0"])
        .args(["--linger", "2", "--out"])
        .arg(dir.path().join("swarm"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ledgers agree"), "{stdout}");
    // The demo explains itself: who plays what, a legend, progress lines that name each
    // round's winner, and what the summary's columns mean.
    for said in [
        "A: job of 5 slots, aggressive bias 0.7",
        "\"done\": its job complete",
        " final, won by ",
    ] {
        assert!(stderr.contains(said), "{said:?} in:\n{stderr}");
    }
    assert!(
        stdout.contains("(turnaround: rounds from joining"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the dashboards stay up for 2 s") && stderr.contains("http://127.0.0.1:"),
        "{stderr}"
    );
}
