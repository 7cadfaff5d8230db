//! The figure layer (plotters): a [`Figure`] draws on any backend and is saved as PNG, SVG or
//! both; axis ranges, log-axis ticks and the legend box look the same in every figure.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

/// What drawing on a backend `DB` returns.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can be drawn on any plotters backend.
pub trait Figure {
    /// Pixel size (width, height).
    fn size(&self) -> (u32, u32);

    /// Draws the whole figure (background included) on `root`.
    ///
    /// # Errors
    /// The backend's drawing errors (e.g. no usable font for the labels).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Draws `fig` on `root` and flushes it; errors name `path`.
fn render<F: Figure, DB: DrawingBackend>(
    fig: &F,
    root: &DrawingArea<DB, Shift>,
    path: &Path,
) -> anyhow::Result<()> {
    fig.draw(root)
        .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// Writes `fig` as the PNG `path`; returns `path`.
///
/// # Errors
/// Drawing or writing errors (e.g. no usable font, an unwritable folder).
pub fn save_png<F: Figure>(fig: &F, path: &Path) -> anyhow::Result<PathBuf> {
    render(
        fig,
        &BitMapBackend::new(path, fig.size()).into_drawing_area(),
        path,
    )?;
    Ok(path.to_path_buf())
}

/// Writes `fig` as `dir/stem.png` and `dir/stem.svg`; returns both paths.
///
/// # Errors
/// As [`save_png`].
pub fn save_png_svg<F: Figure>(fig: &F, dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    let png = save_png(fig, &dir.join(format!("{stem}.png")))?;
    let svg = dir.join(format!("{stem}.svg"));
    render(
        fig,
        &SVGBackend::new(&svg, fig.size()).into_drawing_area(),
        &svg,
    )?;
    Ok(vec![png, svg])
}

/// Smallest and largest of the values that pass `keep`; `None` if none does.
fn bounds(values: impl Iterator<Item = f64>, keep: impl Fn(f64) -> bool) -> Option<(f64, f64)> {
    values.filter(|&v| keep(v)).fold(None, |b, v| match b {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A linear axis over the finite values, widened by `frac` of their span on each side (at
/// least `min_pad`); `None` if no value is finite.
pub fn lin_range(values: impl Iterator<Item = f64>, frac: f64, min_pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) = bounds(values, f64::is_finite)?;
    let pad = ((hi - lo) * frac).max(min_pad);
    Some((lo - pad, hi + pad))
}

/// A log10 axis, in log10 units, over the positive finite values, widened by `frac` of its
/// span in decades on each side (at least `min_pad` decades); `None` if no value is positive
/// and finite. Draw `log10(v)` on it (see [`clamp_log10`]) with [`pow10_label`] ticks: within
/// a decade plotters' own log scale has too few labels to read.
pub fn log10_range(
    values: impl Iterator<Item = f64>,
    frac: f64,
    min_pad: f64,
) -> Option<(f64, f64)> {
    let (lo, hi) = bounds(values, |v| v.is_finite() && v > 0.0)?;
    lin_range([lo.log10(), hi.log10()].into_iter(), frac, min_pad)
}

/// `log10(v)` clamped into `range` (non-finite values, divergence, go to the top; zero or
/// negative ones to the bottom).
pub fn clamp_log10(v: f64, (lo, hi): (f64, f64)) -> f64 {
    if !v.is_finite() {
        hi
    } else if v > 0.0 {
        v.log10().clamp(lo, hi)
    } else {
        lo
    }
}

/// The tick label of a log10 axis at `v`: the value `10^v`, fixed-point in `[0.01, 10⁴)`,
/// else scientific.
pub fn pow10_label(v: &f64) -> String {
    let y = 10f64.powf(*v);
    if (0.01..1e4).contains(&y) {
        format!("{y:.3}")
    } else {
        format!("{y:.1e}")
    }
}

/// A legend key: a line segment of `color` and `width`.
pub fn line_key(color: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
}

/// Draws the legend box of `chart` (the labels of its series) at `position` with labels of
/// `font_size` pixels: white, translucent, black border, in every figure.
///
/// # Errors
/// The backend's drawing errors.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", font_size))
        .draw()
}

/// `name` with every character other than ASCII letters, digits, `-` and `_` replaced by `_`,
/// for file names built from dataset or method names.
pub fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_skip_what_their_axis_cannot_show() {
        let v = [f64::NAN, 1.0, f64::INFINITY, 3.0, -1.0];
        assert_eq!(lin_range(v.into_iter(), 0.0, 0.0), Some((-1.0, 3.0)));
        assert_eq!(lin_range(v.into_iter(), 0.25, 0.0), Some((-2.0, 4.0)));
        assert_eq!(
            log10_range([0.1, 0.0, 100.0].into_iter(), 0.0, 0.5),
            Some((-1.5, 2.5))
        );
        assert_eq!(
            log10_range([0.0, -1.0, f64::NAN].into_iter(), 0.1, 0.1),
            None
        );
        assert_eq!(lin_range(std::iter::empty(), 0.1, 0.1), None);
    }

    #[test]
    fn log_values_are_clamped_into_the_axis() {
        let r = (-1.0, 1.0);
        assert_eq!(clamp_log10(1.0, r), 0.0);
        assert_eq!(clamp_log10(1e6, r), 1.0);
        assert_eq!(clamp_log10(f64::NAN, r), 1.0);
        assert_eq!(clamp_log10(0.0, r), -1.0);
        assert_eq!(pow10_label(&0.0), "1.000");
        assert_eq!(pow10_label(&-3.0), "1.0e-3");
        assert_eq!(safe_file_name("a9a (test)/x"), "a9a__test__x");
    }
}
