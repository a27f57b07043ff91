//! The comparison's SVG: throughput against client count, one panel per workload, brisk and
//! etcd side by side.

use std::fmt::Write as _;

use super::systems::System;
use super::Report;

pub fn throughput(r: &Report) -> String {
    let mut workloads: Vec<_> = r.ratios.iter().map(|x| x.workload).collect();
    workloads.dedup();
    let (pw, ph, pad) = (320.0, 220.0, 40.0);
    let width = pad + workloads.len() as f64 * (pw + pad);
    let height = ph + 2.0 * pad + 20.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><text x="{pad}" y="18" font-size="13">ops/s against clients (log scale), {}: brisk (blue) vs etcd 3.4 (red)</text>"#,
        r.machine
    );
    for (i, w) in workloads.iter().enumerate() {
        let x0 = pad + i as f64 * (pw + pad);
        let y0 = pad;
        let cells: Vec<_> = r.ratios.iter().filter(|x| x.workload == *w).collect();
        let max = cells
            .iter()
            .map(|c| c.brisk_ops_per_s.max(c.etcd_ops_per_s.unwrap_or(0.0)))
            .fold(1.0, f64::max);
        let n = cells.len().max(1) as f64;
        let _ = write!(
            s,
            r##"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/><text x="{}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{max:.0}</text>"##,
            x0 + 4.0,
            y0 + 14.0,
            format!("{w:?}").to_lowercase(),
            x0 - 2.0,
            y0 + 10.0
        );
        let xs = |j: usize| x0 + (j as f64 + 0.5) / n * pw;
        let ys = |v: f64| y0 + ph - v / max * (ph - 20.0);
        for (system, color) in [(System::Brisk, "#1f77b4"), (System::Etcd, "#d62728")] {
            let pts: Vec<String> = cells
                .iter()
                .enumerate()
                .filter_map(|(j, c)| {
                    let v = match system {
                        System::Brisk => Some(c.brisk_ops_per_s),
                        System::Etcd => c.etcd_ops_per_s,
                    }?;
                    Some(format!("{:.1},{:.1}", xs(j), ys(v)))
                })
                .collect();
            if !pts.is_empty() {
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                    pts.join(" ")
                );
            }
        }
        for (j, c) in cells.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                xs(j),
                y0 + ph + 14.0,
                c.clients
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
