//! The SVG chart: operations per second for every workload (W8, a size, is
//! left out) and engine, grouped bars on a log scale.

use plotters::prelude::*;

use super::{Report, Status};
use crate::engines::label;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Renders the chart as an SVG document.
pub fn render(report: &Report) -> Result<String, String> {
    let rows: Vec<&str> = report
        .workloads
        .iter()
        .filter(|w| w.higher_is_better)
        .map(|w| w.id.as_str())
        .collect();
    let engines: Vec<&str> = report.engines.iter().map(|e| e.id.as_str()).collect();
    let value = |w: &str, e: &str| {
        report
            .get(w, e)
            .filter(|m| matches!(m.status, Status::Ok | Status::Capped))
            .and_then(|m| m.value)
            .filter(|v| *v > 0.0)
    };
    let all: Vec<f64> = rows
        .iter()
        .flat_map(|w| engines.iter().filter_map(move |e| value(w, e)))
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if all.is_empty() {
        (1.0, 10.0)
    } else {
        (lo / 3.0, hi * 3.0)
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 620)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = rows.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "operations per second, N = {} documents, log scale ({} {})",
                    report.config.docs, report.date, report.machine.cpu_model
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(n - 0.5), (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        let labels = rows.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(rows.len() + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("ops/s")
            .y_label_formatter(&|y| super::fmt_num(*y))
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.8 / engines.len().max(1) as f64;
        for (j, e) in engines.iter().enumerate() {
            let color = COLORS[j % COLORS.len()];
            let bars: Vec<Rectangle<(f64, f64)>> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, w)| {
                    let v = value(w, e)?;
                    let x0 = i as f64 - 0.4 + j as f64 * width;
                    Some(Rectangle::new(
                        [(x0, lo), (x0 + width * 0.9, v)],
                        color.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(label(e))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
