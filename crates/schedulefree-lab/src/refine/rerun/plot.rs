//! The two figures of `sflab refine-run` (plotters, PNG and SVG): the lr multipliers of the
//! schedules, and the held-out loss curves of the two runs.

use std::path::{Path, PathBuf};

use crate::output::{Panel, Panels, Series, palette, save_png_svg};

/// One chart of `series` under `title`.
fn line_figure(title: String, x_desc: &str, y_desc: &str, series: Vec<Series>) -> Panels {
    Panels {
        title,
        cols: 1,
        panel_size: (900, 480),
        panels: vec![Panel::new("", x_desc, y_desc, series)],
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
    l1: &crate::refine::RefineOutcome,
    l2: &crate::refine::RefineOutcome,
    ld_run: &crate::train::RunResult,
    refined_run: &crate::train::RunResult,
) -> anyhow::Result<Vec<PathBuf>> {
    let line = |v: &[f64]| v.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect();
    let schedules = line_figure(
        format!(
            "{}: lr multipliers (T = {}), refined warmup ℓ1 {} / ℓ2 {} steps",
            summary.task, summary.steps, summary.l1.warmup_steps, summary.l2.warmup_steps
        ),
        "update",
        "lr / peak lr",
        vec![
            Series::new(
                "linear decay (5 % warmup)",
                palette::LINEAR_DECAY,
                line(linear_decay),
            ),
            Series::new(
                "refined ℓ1 (rerun)",
                palette::REFINED_L1,
                line(l1.schedule.values()),
            ),
            Series::new(
                "refined ℓ2",
                palette::REFINED_L2,
                line(l2.schedule.values()),
            ),
        ],
    );
    let curve = |r: &crate::train::RunResult| {
        r.evals
            .iter()
            .map(|e| (e.step as f64, e.eval_loss))
            .collect()
    };
    let curves = line_figure(
        format!(
            "{}: held-out loss, final LD {:.4} vs refined {:.4} ({:+.2} %)",
            summary.task,
            summary.linear_decay.eval_loss,
            summary.refined.eval_loss,
            summary.loss_change_percent
        ),
        "step",
        "held-out loss",
        vec![
            Series::new("linear decay", palette::LINEAR_DECAY, curve(ld_run)),
            Series::new("refined ℓ1", palette::REFINED_L1, curve(refined_run)),
        ],
    );
    let mut files = save_png_svg(&schedules, dir, "schedules")?;
    files.extend(save_png_svg(&curves, dir, "curves")?);
    Ok(files)
}
