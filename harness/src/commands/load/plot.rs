//! The load report's curves as an SVG: delivery, tick lateness, server CPU and memory
//! against the number of playing bots, one panel each.

use std::path::Path;

use plotters::prelude::*;

use super::Report;

pub(super) fn plot(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root_area = SVGBackend::new(path, (1100, 800)).into_drawing_area();
    root_area.fill(&WHITE)?;
    let panels = root_area.split_evenly((2, 2));
    let players: Vec<f64> = report.steps.iter().map(|s| s.players as f64).collect();
    let max_players = players.iter().copied().fold(1.0, f64::max) * 1.1;
    let series: [(&str, Vec<f64>, f64); 4] = [
        (
            "snapshot delivery, lowest bot (bar 0.98)",
            report.steps.iter().map(|s| s.delivery_min).collect(),
            1.05,
        ),
        (
            "tick lateness p99, ms (bar 2)",
            report
                .steps
                .iter()
                .map(|s| s.tick_lateness_ms.p99)
                .collect(),
            0.0,
        ),
        (
            "server CPU, cores",
            report.steps.iter().map(|s| s.server_cpu).collect(),
            0.0,
        ),
        (
            "server RSS, MiB",
            report.steps.iter().map(|s| s.server_rss_mib).collect(),
            0.0,
        ),
    ];
    for (panel, (title, values, fixed_top)) in panels.iter().zip(series) {
        let finite_max = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let top = if fixed_top > 0.0 {
            fixed_top
        } else {
            (finite_max * 1.2).max(1e-3)
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..max_players, 0.0..top)?;
        chart.configure_mesh().x_desc("playing bots").draw()?;
        let points: Vec<(f64, f64)> = players
            .iter()
            .copied()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), &BLUE))?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, BLUE.filled())))?;
    }
    root_area.present()?;
    Ok(())
}
