//! The two figures of `sflab refine-run` (plotters, PNG and SVG): the lr multipliers of the
//! schedules, and the held-out loss curves of the two runs.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One curve of a [`LineFigure`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Line colour.
    pub color: RGBColor,
    /// Points `(x, y)` in drawing order (non-finite ones are left out).
    pub points: Vec<(f64, f64)>,
}

/// A line chart: every series on shared linear axes.
#[derive(Debug, Clone)]
pub struct LineFigure {
    /// Title above the chart.
    pub title: String,
    /// x-axis label.
    pub x_desc: String,
    /// y-axis label.
    pub y_desc: String,
    /// The curves.
    pub series: Vec<Series>,
}

/// Linear-decay colour.
pub const LD_COLOR: RGBColor = RGBColor(31, 119, 180);
/// Refined (ℓ1) colour.
pub const L1_COLOR: RGBColor = RGBColor(214, 39, 40);
/// Refined (ℓ2) colour.
pub const L2_COLOR: RGBColor = RGBColor(44, 160, 44);

const SIZE: (u32, u32) = (900, 520);

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.06).max(1e-6);
    (lo - pad, hi + pad)
}

impl LineFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let (x0, x1) = range(all().map(|p| p.0));
        let (y0, y1) = range(all().map(|p| p.1));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for s in &self.series {
            let color = s.color;
            let pts = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }

    /// Writes `dir/stem.png` and `dir/stem.svg`; returns both paths.
    ///
    /// # Errors
    /// Drawing or writing errors (e.g. no usable font).
    pub fn save(&self, dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        {
            let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
            self.draw(&root)
                .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
            root.present()
                .map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
        }
        {
            let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            self.draw(&root)
                .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
            root.present()
                .map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
        }
        Ok(vec![png, svg])
    }
}

/// Draws `schedules.png/.svg` (the linear-decay, refined ℓ1 and refined ℓ2 multipliers per
/// update) and `curves.png/.svg` (held-out loss against step for both runs) into `dir`.
///
/// # Errors
/// Drawing or writing errors.
pub fn figures(
    dir: &Path,
    summary: &super::RefineRunSummary,
    linear_decay: &[f64],
    l1: &crate::refine_cmd::RefineOutcome,
    l2: &crate::refine_cmd::RefineOutcome,
    ld_run: &crate::train::RunResult,
    refined_run: &crate::train::RunResult,
) -> anyhow::Result<Vec<PathBuf>> {
    let line = |v: &[f64]| v.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect();
    let schedules = LineFigure {
        title: format!(
            "{}: lr multipliers (T = {}), refined warmup ℓ1 {} / ℓ2 {} steps",
            summary.task, summary.steps, summary.l1.warmup_steps, summary.l2.warmup_steps
        ),
        x_desc: "update".into(),
        y_desc: "lr / peak lr".into(),
        series: vec![
            Series {
                label: "linear decay (5 % warmup)".into(),
                color: LD_COLOR,
                points: line(linear_decay),
            },
            Series {
                label: "refined ℓ1 (rerun)".into(),
                color: L1_COLOR,
                points: line(l1.schedule.values()),
            },
            Series {
                label: "refined ℓ2".into(),
                color: L2_COLOR,
                points: line(l2.schedule.values()),
            },
        ],
    };
    let curve = |r: &crate::train::RunResult| {
        r.evals
            .iter()
            .map(|e| (e.step as f64, e.eval_loss))
            .collect()
    };
    let curves = LineFigure {
        title: format!(
            "{}: held-out loss, final LD {:.4} vs refined {:.4} ({:+.2} %)",
            summary.task,
            summary.linear_decay.eval_loss,
            summary.refined.eval_loss,
            summary.loss_change_percent
        ),
        x_desc: "step".into(),
        y_desc: "held-out loss".into(),
        series: vec![
            Series {
                label: "linear decay".into(),
                color: LD_COLOR,
                points: curve(ld_run),
            },
            Series {
                label: "refined ℓ1".into(),
                color: L1_COLOR,
                points: curve(refined_run),
            },
        ],
    };
    let mut files = schedules.save(dir, "schedules")?;
    files.extend(curves.save(dir, "curves")?);
    Ok(files)
}
