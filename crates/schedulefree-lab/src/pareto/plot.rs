//! The three figures of `sflab pareto`, each written as PNG and SVG (plotters): the Pareto
//! plot (held-out loss vs step), the lr sweep and the β sweep. Losses are drawn on a log10
//! axis; values above the axis (early steps, divergence) are clamped to its top.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::config::ParetoConfig;
use super::markdown::budget_label;
use super::method::Method;
use super::report::Report;
use crate::output::figure::{DrawResult, clamp_log10, legend, line_key, log10_range, pow10_label};
use crate::output::{Figure, palette, save_png_svg};

/// Line colour of each method (the lab's palette).
fn color(m: Method) -> RGBColor {
    match m {
        Method::Cosine => palette::COSINE,
        Method::LinearDecay => palette::LINEAR_DECAY,
        Method::ScheduleFree => palette::SCHEDULE_FREE,
        Method::Custom => palette::CUSTOM,
        Method::ScheduleFreePlus => palette::SCHEDULE_FREE_PLUS,
    }
}

/// Extend a log range upwards by `frac` of its span (room for the legend).
fn headroom((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    (lo, hi + (hi - lo) * frac)
}

/// Draw every figure into `dir`; returns the files written.
///
/// # Errors
/// Drawing or writing errors (e.g. no usable font).
pub fn plot_all(dir: &Path, cfg: &ParetoConfig, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = save_png_svg(&ParetoFigure { cfg, report }, dir, "pareto")?;
    files.extend(save_png_svg(&LrFigure { cfg, report }, dir, "lr_sweep")?);
    files.extend(save_png_svg(
        &BetaFigure { cfg, report },
        dir,
        "beta_sweep",
    )?);
    Ok(files)
}

/// A log10 loss axis over the finite positive values, padded by 5 %.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    log10_range(values, 0.05, 0.005).unwrap_or((-1.0, 1.0))
}

struct ParetoFigure<'a> {
    cfg: &'a ParetoConfig,
    report: &'a Report,
}

impl Figure for ParetoFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 650)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (cfg, r) = (self.cfg, self.report);
        root.fill(&WHITE)?;
        // Zoom on the part after the smallest budget's first half: end points and the SF curve there.
        let from = cfg.budgets[0] / 2;
        let ends = r.pareto.iter().flat_map(|p| {
            [p.cosine, p.linear_decay, p.schedule_free]
                .into_iter()
                .flatten()
                .map(|c| c.loss.mean)
        });
        // The Schedule-Free curves after `from` (ScheduleFree+'s, untuned, may lie far above).
        let sf_tail = r
            .curves
            .iter()
            .filter(|c| matches!(c.method, Method::ScheduleFree | Method::ScheduleFreePlus))
            .flat_map(|c| c.points.iter().filter(|p| p.0 >= from).map(|p| p.1));
        let range = log_range(ends.chain(sf_tail));
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: held-out loss vs step — schedules of each length (best lr) vs one Schedule-Free run",
                    cfg.task.name()
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(75)
            .build_cartesian_2d(0f64..cfg.steps as f64 * 1.02, range.0..range.1)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("held-out loss (log scale)")
            .y_labels(10)
            .y_label_formatter(&pow10_label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for m in Method::SCHEDULES.into_iter().chain([Method::Custom]) {
            let col = color(m);
            let mut first = true;
            for c in r.curves.iter().filter(|c| c.method == m) {
                let pts: Vec<(f64, f64)> = c
                    .points
                    .iter()
                    .map(|&(s, l)| (s as f64, clamp_log10(l, range)))
                    .collect();
                let s = chart.draw_series(LineSeries::new(pts, col.mix(0.35).stroke_width(2)))?;
                if first {
                    s.label(format!("{} (best lr per length; • = end)", m.label()))
                        .legend(line_key(col, 2));
                    first = false;
                }
                if let Some(&(s, l)) = c.points.iter().find(|p| p.0 == c.steps) {
                    chart.draw_series(std::iter::once(Circle::new(
                        (s as f64, clamp_log10(l, range)),
                        5,
                        col.filled(),
                    )))?;
                }
            }
        }
        let envelope: Vec<(f64, f64)> = r
            .pareto
            .iter()
            .filter_map(|p| {
                p.best_schedule()
                    .map(|(_, c)| (p.budget as f64, c.loss.mean))
            })
            .filter(|p| p.1.is_finite())
            .map(|(s, l)| (s, clamp_log10(l, range)))
            .collect();
        chart
            .draw_series(DashedLineSeries::new(envelope, 8, 5, BLACK.stroke_width(2)))?
            .label("best schedule end point per length")
            .legend(line_key(BLACK, 2));
        // The one-run methods: ScheduleFree+ (untuned), then Schedule-Free on top.
        for (m, width) in [(Method::ScheduleFreePlus, 3), (Method::ScheduleFree, 4)] {
            let Some(c) = r.curves.iter().find(|c| c.method == m) else {
                continue;
            };
            let label = if m == Method::ScheduleFree {
                format!("Schedule-Free, one run (lr {}, β {})", c.lr, c.beta)
            } else {
                "ScheduleFree+, one run (lr multiplier 1, untuned)".to_string()
            };
            let col = color(m);
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .map(|&(s, l)| (s as f64, clamp_log10(l, range)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(width)))?
                .label(label)
                .legend(line_key(col, width));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 15)?;
        Ok(())
    }
}

struct LrFigure<'a> {
    cfg: &'a ParetoConfig,
    report: &'a Report,
}

impl Figure for LrFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1400, 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (cfg, r) = (self.cfg, self.report);
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!(
                "{}: lr sensitivity — held-out loss at the end of each budget (SF: its T-run read there)",
                cfg.task.name()
            ),
            ("sans-serif", 20),
        )?;
        // One x position per grid point (the default grids are geometric, so this is a log axis).
        let n = cfg.lrs.len();
        let index = |lr: f64| cfg.lrs.iter().position(|&l| l == lr).unwrap_or(0) as f64;
        let lr_tick = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                cfg.lrs[i as usize].to_string()
            } else {
                String::new()
            }
        };
        let panels = root.split_evenly((1, cfg.budgets.len()));
        for (area, &b) in panels.iter().zip(&cfg.budgets) {
            let sweeps: Vec<_> = Method::ALL
                .iter()
                .chain(&[Method::Custom])
                .filter_map(|&m| r.lr_sweep(m, b))
                .collect();
            let finite = sweeps
                .iter()
                .flat_map(|s| s.cells.iter().map(|c| c.loss.mean));
            let (lo, hi) = log_range(finite);
            // Keep the axis near the optimum (at most a factor 3 above the best loss), with room
            // for the legend.
            let range = headroom((lo, hi.min(lo + 3f64.log10())), 0.3);
            let mut chart = ChartBuilder::on(area)
                .caption(budget_label(cfg, b), ("sans-serif", 17))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(65)
                .build_cartesian_2d(-0.3..(n as f64 - 0.7), range.0..range.1)?;
            chart
                .configure_mesh()
                .x_desc("lr (grid points)")
                .y_desc("held-out loss (log scale)")
                .y_label_formatter(&pow10_label)
                .x_label_formatter(&lr_tick)
                .x_labels(n + 1)
                .draw()?;
            for s in sweeps {
                let col = color(s.method);
                let pts: Vec<(f64, f64)> = s
                    .cells
                    .iter()
                    .map(|c| (index(c.lr), clamp_log10(c.loss.mean, range)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?
                    .label(s.method.label())
                    .legend(line_key(col, 2));
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled())))?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
        }
        Ok(())
    }
}

struct BetaFigure<'a> {
    cfg: &'a ParetoConfig,
    report: &'a Report,
}

impl Figure for BetaFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1300, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (cfg, r) = (self.cfg, self.report);
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!(
                "{}: Schedule-Free β sweep at lr {}",
                cfg.task.name(),
                r.beta_lr.map_or("—".into(), |l| l.to_string())
            ),
            ("sans-serif", 20),
        )?;
        let (left, right) = root.split_horizontally(700);
        let from = cfg.budgets[0] / 2;
        let range = headroom(
            log_range(
                r.beta_curves
                    .iter()
                    .flat_map(|c| c.points.iter().filter(|p| p.0 >= from).map(|p| p.1)),
            ),
            0.15,
        );
        let mut chart = ChartBuilder::on(&left)
            .caption("held-out loss vs step, one curve per β", ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(65)
            .build_cartesian_2d(from as f64..cfg.steps as f64 * 1.02, range.0..range.1)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("held-out loss (log scale)")
            .y_label_formatter(&pow10_label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for (i, c) in r.beta_curves.iter().enumerate() {
            let col = palette::cycle(i);
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter(|p| p.0 >= from)
                .map(|&(s, l)| (s as f64, clamp_log10(l, range)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(2)))?
                .label(format!("β = {}", c.beta))
                .legend(line_key(col, 2));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;

        let range = headroom(
            log_range(
                r.betas
                    .iter()
                    .flat_map(|b| b.cells.iter().map(|c| c.loss.mean)),
            ),
            0.3,
        );
        let (b_lo, b_hi) = cfg
            .betas
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &b| {
                (lo.min(b), hi.max(b))
            });
        let pad = ((b_hi - b_lo) * 0.05).max(0.01);
        let mut chart = ChartBuilder::on(&right)
            .caption("held-out loss at each budget vs β", ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(65)
            .build_cartesian_2d(b_lo - pad..b_hi + pad, range.0..range.1)?;
        chart
            .configure_mesh()
            .x_desc("β")
            .y_desc("held-out loss (log scale)")
            .y_label_formatter(&pow10_label)
            .draw()?;
        for (i, row) in r.betas.iter().enumerate() {
            let col = palette::cycle(i + 4);
            let pts: Vec<(f64, f64)> = row
                .cells
                .iter()
                .map(|c| (c.beta, clamp_log10(c.loss.mean, range)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?
                .label(budget_label(cfg, row.budget))
                .legend(line_key(col, 2));
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled())))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
        Ok(())
    }
}
