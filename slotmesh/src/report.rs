//! `slotmesh report`: from ledgers, a page a person can open (`index.html`, inline SVG, no
//! scripts or external files) and a plain-text summary (`summary.txt`). Charts: a Gantt of
//! the schedule, trust over time, completion order, turnaround and waiting per agent, and
//! the coalitions formed.

use crate::history::{self, History};
use anyhow::{bail, Context, Result};
use slotmesh_proto::AgentId;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One colour per agent, in name order, the same in every chart (and in the dashboard's).
const COLORS: [&str; 8] = [
    "#3b7dd8", "#e07b24", "#2a8a3e", "#c0392b", "#8e44ad", "#16a085", "#d4ac0d", "#7f8c8d",
];
/// The waiting bars' colour: a dark grey no agent has.
const WAITING_COLOR: &str = "#4a4f57";

/// The ledgers under `paths`: each path is a data dir (or ledger file), or a directory whose
/// subdirectories are data dirs (a swarm's `--out`).
pub fn find_ledgers(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        if history::ledger_path(path).is_file() {
            found.push(path.clone());
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(path) {
            let mut dirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(slotmesh_node::files::LEDGER).is_file())
                .collect();
            dirs.sort();
            found.extend(dirs);
        }
    }
    found
}

/// Writes `index.html` and `summary.txt` into `out` from the ledgers under `paths`. The
/// longest ledger is charted; all of them must verify and agree.
pub fn write(paths: &[PathBuf], out: &Path) -> Result<History> {
    let ledgers = find_ledgers(paths);
    if ledgers.is_empty() {
        bail!("no ledger.log found under the given directories");
    }
    let verdict = history::verify(&ledgers);
    if !verdict.ok {
        bail!("the ledgers do not agree: {}", verdict.line);
    }
    let mut histories = Vec::new();
    for path in &ledgers {
        histories.push(History::load(path)?);
    }
    let Some(history) = histories.into_iter().max_by_key(|h| h.rounds.len()) else {
        bail!("no ledger could be read");
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let summary = format!("{}{}\n", history.summary(), verdict.line);
    std::fs::write(out.join("summary.txt"), &summary)
        .with_context(|| format!("cannot write {}", out.join("summary.txt").display()))?;
    std::fs::write(out.join("index.html"), html(&history, &summary))
        .with_context(|| format!("cannot write {}", out.join("index.html").display()))?;
    Ok(history)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Members in a stable order (by name), with their colours.
fn agents(history: &History) -> Vec<(AgentId, String, &'static str)> {
    let mut list: Vec<(AgentId, String)> = history
        .state
        .members
        .iter()
        .map(|(id, m)| (*id, m.name.clone()))
        .collect();
    list.sort_by(|a, b| a.1.cmp(&b.1));
    list.into_iter()
        .enumerate()
        .map(|(i, (id, name))| (id, name, COLORS[i % COLORS.len()]))
        .collect()
}

/// Opens a chart row `<g class=... data-agent=...>` with the agent's name as its label at
/// height `y`; the caller closes it.
fn open_labelled_row(svg: &mut String, class: &str, name: &str, y: f64) {
    let _ = write!(
        svg,
        r#"<g class="{class}" data-agent="{n}"><text x="6" y="{ty:.0}" class="label">{n}</text>"#,
        n = escape(name),
        ty = y + 14.0
    );
}

fn gantt(history: &History) -> String {
    let agents = agents(history);
    let (left, row) = (90.0, 22.0);
    let cell = ((860.0 - left) / history.rounds.len().max(1) as f64).clamp(4.0, 24.0);
    let width = (left + cell * history.rounds.len() as f64 + 20.0).max(900.0);
    let height = 30.0 + row * agents.len() as f64;
    let mut svg = format!(
        r#"<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}">"#
    );
    for (i, (id, name, color)) in agents.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        open_labelled_row(&mut svg, "row", name, y);
        for (j, entry) in history.rounds.iter().enumerate() {
            if entry.winner == Some(*id) {
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.0}" fill="{color}"><title>round {r}: {n}</title></rect>"#,
                    x = left + cell * j as f64,
                    y = y + 3.0,
                    w = (cell - 1.0).max(1.0),
                    h = row - 6.0,
                    r = entry.round,
                    n = escape(name)
                );
            }
        }
        svg.push_str("</g>");
    }
    for (j, entry) in history.rounds.iter().enumerate().step_by(10) {
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="12" class="axis">{r}</text>"#,
            x = left + cell * j as f64,
            r = entry.round
        );
    }
    svg.push_str("</svg>");
    svg
}

fn trust_chart(history: &History) -> String {
    let agents = agents(history);
    let (left, width, height, top) = (40.0, 820.0, 180.0, 15.0);
    let n = history.rounds.len();
    let mut svg = format!(
        r#"<svg id="trust" xmlns="http://www.w3.org/2000/svg" width="920" height="{h:.0}"><text x="{tx:.0}" y="{t:.0}" class="axis">trust</text><text x="{rx:.0}" y="{ry:.0}" class="axis">round</text>"#,
        h = height + 50.0,
        tx = left + 4.0,
        t = top - 4.0,
        rx = left + width / 2.0,
        ry = top + height + 30.0
    );
    // Axes: trust 0-1 (0.5 at the start: below it bid power falls), rounds along the bottom.
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = top + height * (1.0 - tick);
        let _ = write!(
            svg,
            r#"<line x1="{left}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="{line}"/><text x="4" y="{ty:.1}" class="axis">{tick:.2}</text>"#,
            right = left + width,
            line = if tick == 0.5 { "#bbb" } else { "#eee" },
            ty = y + 4.0
        );
    }
    let every = n.div_ceil(10).max(1);
    for (j, entry) in history.rounds.iter().enumerate().step_by(every) {
        let x = left
            + if n > 1 {
                width * j as f64 / (n - 1) as f64
            } else {
                0.0
            };
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y:.0}" class="axis">{r}</text>"#,
            y = top + height + 14.0,
            r = entry.round
        );
    }
    for (i, (id, name, color)) in agents.iter().enumerate() {
        let points: Vec<String> = history
            .rounds
            .iter()
            .enumerate()
            .filter_map(|(j, entry)| {
                let trust = entry.trust.get(id)?;
                let x = left
                    + if n > 1 {
                        width * j as f64 / (n - 1) as f64
                    } else {
                        0.0
                    };
                let y = top + height * (1.0 - f64::from(*trust) / 1e6);
                Some(format!("{x:.1},{y:.1}"))
            })
            .collect();
        let _ = write!(
            svg,
            r#"<g class="trust-line" data-agent="{n}"><polyline points="{p}" fill="none" stroke="{color}" stroke-width="2"/><text x="{lx:.0}" y="{ly:.0}" class="label" style="fill:{color}">{n}</text></g>"#,
            n = escape(name),
            p = points.join(" "),
            lx = left + width + 6.0,
            ly = top + 12.0 + 14.0 * i as f64
        );
    }
    svg.push_str("</svg>");
    svg
}

fn courses_chart(history: &History) -> String {
    let agents = agents(history);
    let courses: std::collections::BTreeMap<AgentId, Option<(u64, u64)>> =
        history.courses().into_iter().collect();
    let longest = courses
        .values()
        .filter_map(|c| c.map(|(t, _)| t))
        .max()
        .unwrap_or(1)
        .max(1);
    let (left, row, width) = (90.0, 22.0, 600.0);
    // Turnaround in each agent's colour, waiting in a grey no agent has; a legend on top.
    let mut svg = format!(
        r##"<svg id="courses" xmlns="http://www.w3.org/2000/svg" width="900" height="{h:.0}"><rect x="{left}" y="4" width="12" height="10" fill="#bbb"/><text x="{l1}" y="13" class="axis">turnaround (rounds from joining to its last slot)</text><rect x="{l2}" y="4" width="12" height="10" fill="{WAITING_COLOR}"/><text x="{l3}" y="13" class="axis">waiting (turnaround less its slots)</text>"##,
        h = 30.0 + row * agents.len() as f64,
        l1 = left + 16.0,
        l2 = left + 300.0,
        l3 = left + 316.0
    );
    for (i, (id, name, color)) in agents.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        open_labelled_row(&mut svg, "course", name, y);
        match courses.get(id).copied().flatten() {
            Some((turnaround, waiting)) => {
                let scale = width / longest as f64;
                let _ = write!(
                    svg,
                    r##"<rect x="{left}" y="{y1:.0}" width="{tw:.1}" height="14" fill="{color}" fill-opacity="0.45"><title>turnaround {turnaround} rounds</title></rect><rect x="{left}" y="{y1:.0}" width="{ww:.1}" height="14" fill="{WAITING_COLOR}"><title>waiting {waiting} rounds</title></rect><text x="{tx:.0}" y="{ty:.0}" class="axis">turnaround {turnaround}, waiting {waiting}</text>"##,
                    y1 = y + 3.0,
                    tw = scale * turnaround as f64,
                    ww = scale * waiting as f64,
                    tx = left + scale * turnaround as f64 + 6.0,
                    ty = y + 14.0
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r#"<text x="{left}" y="{ty:.0}" class="axis">did not complete</text>"#,
                    ty = y + 14.0
                );
            }
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn html(history: &History, summary: &str) -> String {
    let order: Vec<String> = history
        .completion_order()
        .iter()
        .map(|n| format!("<li>{}</li>", escape(n)))
        .collect();
    let coalitions: Vec<String> = history
        .rounds
        .iter()
        .flat_map(|r| {
            r.coalitions_formed.iter().map(move |(proposer, members)| {
                let names: Vec<String> = members.iter().map(|m| history.name(m)).collect();
                let names = if names.is_empty() {
                    "dissolved in the round it formed".to_string()
                } else {
                    names.join(" + ")
                };
                format!(
                    "<li>round {}: {} (proposed by {})</li>",
                    r.round,
                    escape(&names),
                    escape(&history.name(proposer))
                )
            })
        })
        .collect();
    let coalitions = if coalitions.is_empty() {
        "<li>none formed</li>".to_string()
    } else {
        coalitions.join("")
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>slotmesh report</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.2em; color: #1d2330; background: #fafbfc; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.05em; margin: 1.2em 0 .4em; }}
svg {{ background: #fff; border: 1px solid #e3e6ea; }}
.label {{ font-size: 12px; fill: #333; }} .axis {{ font-size: 10px; fill: #888; }}
pre {{ background: #fff; border: 1px solid #e3e6ea; padding: .6em; }}
</style></head><body>
<h1>slotmesh report — {rounds} final rounds, {slots} slots</h1>
<h2>Schedule (who held the slot, round by round)</h2>
{gantt}
<h2>Public trust over time</h2>
{trust}
<h2>Completion order</h2>
<ol id="completion">{order}</ol>
<h2>Turnaround and waiting per agent (rounds)</h2>
{courses}
<h2>Coalitions formed</h2>
<ul id="coalitions">{coalitions}</ul>
<h2>Summary</h2>
<pre>{summary}</pre>
</body></html>
"#,
        rounds = history.rounds.len(),
        slots = history.rounds.iter().filter(|r| r.winner.is_some()).count(),
        gantt = gantt(history),
        trust = trust_chart(history),
        order = order.join(""),
        courses = courses_chart(history),
        summary = escape(summary),
    )
}
