//! PNG of a refinement (plotters): the input gradient norms (log scale) above the refined
//! schedule, with the warmup that emerged in the title.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::RefineNorm;
use crate::output::figure::{DrawResult, legend, lin_range, line_key, pow10_label};
use crate::output::{Figure, palette, save_png};

/// What [`plot_refinement`] draws.
#[derive(Debug, Clone, Copy)]
pub struct RefinementPlot<'a> {
    /// Title prefix, e.g. the log's file name.
    pub name: &'a str,
    /// Legend of the norms, e.g. `grad_l2 (ℓ2)`.
    pub norm_label: &'a str,
    /// Which norm the schedule was refined from (its colour: the lab's refined ℓ2 or ℓ1).
    pub norm: RefineNorm,
    /// The logged norms, one per update of the logged run (non-finite or non-positive ones
    /// are not drawn).
    pub norms: &'a [f64],
    /// The refined schedule, one multiplier per update.
    pub schedule: &'a [f64],
    /// Warmup length of the schedule in updates (see [`super::warmup_length`]).
    pub warmup: usize,
}

/// Draw `path` (a 900×700 PNG): top panel the norms on a log-10 axis against the logged
/// update index, bottom panel the schedule against the update index.
///
/// # Errors
/// Drawing or writing errors (e.g. no usable font for the labels).
pub fn plot_refinement(path: &Path, plot: &RefinementPlot<'_>) -> anyhow::Result<()> {
    save_png(plot, path).map(|_| ())
}

impl Figure for RefinementPlot<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 700)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let steps = self.schedule.len();
        let title = format!(
            "{}: refined schedule, warmup {} of {} updates ({:.1} %)",
            self.name,
            self.warmup,
            steps,
            100.0 * self.warmup as f64 / steps.max(1) as f64
        );
        let root = root.titled(&title, ("sans-serif", 20))?;
        let (top, bottom) = root.split_vertically(330);

        let logs: Vec<(f64, f64)> = self
            .norms
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(i, v)| (i as f64, v.log10()))
            .collect();
        let (lo, hi) = lin_range(logs.iter().map(|p| p.1), 0.05, 0.05).unwrap_or((-0.05, 1.05));
        let x_norms = self.norms.len().max(2) as f64 - 1.0;
        let mut chart = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_norms, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("update of the logged run")
            .y_desc("gradient norm (log scale)")
            .y_label_formatter(&pow10_label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart
            .draw_series(LineSeries::new(logs, palette::DATA.stroke_width(1)))?
            .label(self.norm_label)
            .legend(line_key(palette::DATA, 2));
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;

        let color = match self.norm {
            RefineNorm::L2 => palette::REFINED_L2,
            RefineNorm::L1 => palette::REFINED_L1,
        };
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
        let pts = self
            .schedule
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, *v));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label("refined schedule")
            .legend(line_key(color, 2));
        if self.warmup > 0 {
            let w = self.warmup as f64;
            chart.draw_series(DashedLineSeries::new(
                vec![(w, 0.0), (w, 1.05)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)
    }
}
