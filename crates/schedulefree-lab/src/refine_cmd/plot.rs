//! PNG of a refinement (plotters): the input gradient norms (log scale) above the refined
//! schedule, with the warmup that emerged in the title.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

/// What [`plot_refinement`] draws.
#[derive(Debug, Clone, Copy)]
pub struct RefinementPlot<'a> {
    /// Title prefix, e.g. the log's file name.
    pub name: &'a str,
    /// Legend of the norms, e.g. `grad_l2 (ℓ2)`.
    pub norm_label: &'a str,
    /// The logged norms, one per update of the logged run (non-finite or non-positive ones
    /// are not drawn).
    pub norms: &'a [f64],
    /// The refined schedule, one multiplier per update.
    pub schedule: &'a [f64],
    /// Warmup length of the schedule in updates (see [`super::warmup_length`]).
    pub warmup: usize,
}

const NORM_COLOR: RGBColor = RGBColor(127, 127, 127);
const SCHEDULE_COLOR: RGBColor = RGBColor(214, 39, 40);

/// Draw `path` (a 900×700 PNG): top panel the norms on a log-10 axis against the logged
/// update index, bottom panel the schedule against the update index.
///
/// # Errors
/// Drawing errors (e.g. no usable font for the labels).
pub fn plot_refinement(path: &Path, plot: &RefinementPlot<'_>) -> anyhow::Result<()> {
    draw(path, plot).with_context(|| format!("drawing {}", path.display()))
}

fn draw(path: &Path, plot: &RefinementPlot<'_>) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let steps = plot.schedule.len();
    let title = format!(
        "{}: refined schedule, warmup {} of {} updates ({:.1} %)",
        plot.name,
        plot.warmup,
        steps,
        100.0 * plot.warmup as f64 / steps.max(1) as f64
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    let (top, bottom) = root.split_vertically(330);

    let logs: Vec<(f64, f64)> = plot
        .norms
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(i, v)| (i as f64, v.log10()))
        .collect();
    let (lo, hi) = logs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(0.05);
    let x_norms = plot.norms.len().max(2) as f64 - 1.0;
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_norms, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("update of the logged run")
        .y_desc("gradient norm (log scale)")
        .y_label_formatter(&|v| {
            let y = 10f64.powf(*v);
            if (0.01..1e4).contains(&y) {
                format!("{y:.3}")
            } else {
                format!("{y:.1e}")
            }
        })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(logs, NORM_COLOR.stroke_width(1)))?
        .label(plot.norm_label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], NORM_COLOR.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let x_sched = steps.max(2) as f64 - 1.0;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_sched, 0f64..1.05)?;
    chart
        .configure_mesh()
        .x_desc("update")
        .y_desc("lr multiplier")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let pts = plot
        .schedule
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64, *v));
    chart
        .draw_series(LineSeries::new(pts, SCHEDULE_COLOR.stroke_width(2)))?
        .label("refined schedule")
        .legend(|(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], SCHEDULE_COLOR.stroke_width(2))
        });
    if plot.warmup > 0 {
        let w = plot.warmup as f64;
        chart.draw_series(DashedLineSeries::new(
            vec![(w, 0.0), (w, 1.05)],
            6,
            4,
            BLACK.mix(0.5).stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
