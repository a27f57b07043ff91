//! What a failed run leaves behind: the history of each failing key and an SVG timeline of
//! the operations on it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::check::Anomaly;
use crate::history::{Op, Outcome, NEVER};

pub fn write_failure(out: &Path, run: usize, history: &[Op], anomalies: &[Anomaly]) -> Result<()> {
    let mut keys: Vec<&str> = anomalies
        .iter()
        .map(|a| a.key.as_str())
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let ops: Vec<&Op> = history.iter().filter(|o| o.key == key).collect();
        let safe = key.replace('/', "_");
        crate::history::write_jsonl(&out.join(format!("run-{run}-{safe}.jsonl")), &ops)?;
        std::fs::write(
            out.join(format!("run-{run}-{safe}.svg")),
            timeline(key, &ops),
        )?;
    }
    std::fs::write(
        out.join(format!("run-{run}-anomalies.json")),
        serde_json::to_string_pretty(anomalies)?,
    )?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One lane per client; a bar from invoke to completion (to the end for unknown outcomes),
/// green for ok, grey for failed, orange for unknown, labelled with what was written or read.
/// Written by hand rather than with the benchmarks' plotting library: each bar carries its
/// operation as an SVG `<title>` (shown on hover), which that library's SVG backend cannot
/// emit, and most bars are too narrow to carry their label as text.
pub fn timeline(key: &str, ops: &[&Op]) -> String {
    let mut clients: Vec<u32> = ops.iter().map(|o| o.client).collect();
    clients.sort_unstable();
    clients.dedup();
    let t0 = ops.iter().map(|o| o.invoke).min().unwrap_or(0);
    let t1 = ops
        .iter()
        .map(|o| {
            if o.complete == NEVER {
                o.invoke
            } else {
                o.complete
            }
        })
        .max()
        .unwrap_or(t0 + 1)
        .max(t0 + 1);
    let (w, lane, left) = (1600.0, 22.0, 90.0);
    let h = 40.0 + lane * clients.len() as f64;
    let x = |t: i64| left + (t - t0) as f64 / (t1 - t0) as f64 * (w - left - 10.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="monospace" font-size="10"><text x="5" y="15">{}: {} operations over {:.3} s</text>"#,
        escape(key),
        ops.len(),
        (t1 - t0) as f64 / 1e9
    );
    for (i, c) in clients.iter().enumerate() {
        let y = 30.0 + lane * i as f64;
        let _ = write!(s, r#"<text x="5" y="{}">client {c}</text>"#, y + 12.0);
        for o in ops.iter().filter(|o| o.client == *c) {
            let end = if o.complete == NEVER { t1 } else { o.complete };
            let color = match o.outcome {
                Outcome::Ok => "#4caf50",
                Outcome::Fail => "#bbbbbb",
                Outcome::Unknown => "#ff9800",
            };
            let label = match (&o.list, o.value) {
                (Some(l), _) => format!("{:?} {l:?}", o.kind),
                (None, v) => format!(
                    "{:?} {}",
                    o.kind,
                    v.map(|v| v.to_string()).unwrap_or("nil".into())
                ),
            };
            let (x0, x1) = (x(o.invoke), x(end).max(x(o.invoke) + 1.0));
            let _ = write!(
                s,
                r#"<rect x="{x0:.1}" y="{y}" width="{:.1}" height="16" fill="{color}" opacity="0.8"><title>{label} [{} .. {} ns] {}</title></rect>"#,
                x1 - x0,
                o.invoke,
                o.complete,
                escape(o.error.as_deref().unwrap_or(""))
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
