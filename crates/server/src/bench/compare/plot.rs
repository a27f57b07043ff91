//! The comparison's SVG: throughput against client count, one panel per workload, brisk and
//! etcd side by side.

use anyhow::Result;
use plotters::prelude::{
    BindKeyPoints, ChartBuilder, Color, IntoLogRange, LineSeries, SeriesLabelPosition,
};

use super::systems::System;
use super::{Ratio, Report};
use crate::bench::plot::{legend, legend_line, svg, BASELINE, BRISK, FONT};

const PANEL: (u32, u32) = (360, 300);

pub fn throughput(r: &Report) -> Result<String> {
    let mut workloads: Vec<_> = r.ratios.iter().map(|x| x.workload).collect();
    workloads.dedup();
    let size = (PANEL.0 * workloads.len().max(1) as u32, PANEL.1 + 40);
    let title = format!("ops/s against clients (log scale), {}", r.machine);
    svg(size, &title, |area| {
        let panels = area.split_evenly((1, workloads.len().max(1)));
        for (panel, w) in panels.iter().zip(&workloads) {
            let cells: Vec<&Ratio> = r.ratios.iter().filter(|x| x.workload == *w).collect();
            let name = w.to_string();
            let mut clients: Vec<f64> = cells.iter().map(|c| c.clients.max(1) as f64).collect();
            clients.sort_by(f64::total_cmp);
            clients.dedup();
            let (lo, hi) = match (clients.first(), clients.last()) {
                (Some(lo), Some(hi)) => (*lo, *hi),
                _ => (1.0, 1.0),
            };
            let max = cells
                .iter()
                .map(|c| c.brisk_ops_per_s.max(c.etcd_ops_per_s.unwrap_or(0.0)))
                .fold(1.0, f64::max);
            let mut chart = ChartBuilder::on(panel)
                .caption(&name, (FONT, 15))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    (lo / 1.5..hi * 1.5).log_scale().with_key_points(clients),
                    0.0..max * 1.1,
                )?;
            chart
                .configure_mesh()
                .x_desc("clients")
                .y_desc("ops/s")
                .x_label_formatter(&|c| format!("{c:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .draw()?;
            for (system, color, label) in [
                (System::Brisk, BRISK, "brisk"),
                (System::Etcd, BASELINE, "etcd 3.4"),
            ] {
                let points: Vec<(f64, f64)> = cells
                    .iter()
                    .filter_map(|c| {
                        let v = match system {
                            System::Brisk => Some(c.brisk_ops_per_s),
                            System::Etcd => c.etcd_ops_per_s,
                        }?;
                        Some((c.clients as f64, v))
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(3))?
                    .label(label)
                    .legend(legend_line(color));
            }
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::driver::Workload;
    use super::*;

    fn ratio(workload: Workload, clients: usize, brisk: f64, etcd: Option<f64>) -> Ratio {
        Ratio {
            workload,
            clients,
            brisk_ops_per_s: brisk,
            etcd_ops_per_s: etcd,
            throughput_ratio: etcd.map(|e| brisk / e),
            brisk_p99_ms: 1.0,
            etcd_p99_ms: etcd.map(|_| 2.0),
        }
    }

    #[test]
    fn one_panel_per_workload_with_a_line_per_system() {
        let mut ratios = Vec::new();
        for w in [Workload::Put, Workload::Get] {
            for (c, ops) in [(1, 900.0), (16, 9_000.0), (64, 30_000.0)] {
                ratios.push(ratio(w, c, ops, Some(ops / 2.0)));
            }
        }
        let report = Report {
            machine: "2 cores".into(),
            spread: false,
            rows: vec![],
            ratios,
            restarts: vec![],
        };
        let svg = throughput(&report).unwrap();
        crate::bench::plot::assert_shows(
            &svg,
            &[
                "2 cores", "put", "get", "clients", "ops/s", "brisk", "etcd 3.4",
            ],
        );
        for color in ["#1F77B4", "#D62728"] {
            assert!(svg.contains(&format!(
                r#"<polyline fill="none" opacity="1" stroke="{color}""#
            )));
        }
    }

    #[test]
    fn brisk_alone_draws_no_etcd_line() {
        let report = Report {
            machine: String::new(),
            spread: false,
            rows: vec![],
            ratios: vec![ratio(Workload::Put, 1, 10.0, None)],
            restarts: vec![],
        };
        let svg = throughput(&report).unwrap();
        let texts = crate::bench::plot::texts(&svg);
        assert!(texts.iter().any(|t| t == "brisk"), "{texts:?}");
        assert!(!svg.contains("etcd"), "{svg}");
    }
}
