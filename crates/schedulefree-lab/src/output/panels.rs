//! The lab's chart of curves: a grid of [`Panel`]s (series of points against a step or update
//! index) under one title, as one [`Figure`].

use plotters::coord::Shift;
use plotters::prelude::*;

use super::figure::{DrawResult, Figure, clamp_log10, legend, lin_range, log10_range, pow10_label};

/// One curve of a [`Panel`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Line colour (see [`super::palette`]).
    pub color: RGBColor,
    /// Line width in pixels (2 for most curves; the method a figure is about may be wider).
    pub width: u32,
    /// Points `(x, y)` in drawing order; non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A curve of width 2.
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            width: 2,
            points,
        }
    }
}

/// One chart: series against a shared x axis starting at 0 (or lower, if some x is).
#[derive(Debug, Clone)]
pub struct Panel {
    /// Caption (empty: none).
    pub title: String,
    /// x-axis label.
    pub x_desc: String,
    /// y-axis label.
    pub y_desc: String,
    /// A log y axis (labelled with the values; values `≤ 0` sit on its floor) instead of a
    /// linear one.
    pub log_y: bool,
    /// Legend in the upper left corner instead of the upper right.
    pub legend_left: bool,
    /// The curves.
    pub series: Vec<Series>,
}

impl Panel {
    /// A panel of `series` against `x_desc`, linear axes, legend upper right.
    pub fn new(title: impl Into<String>, x_desc: &str, y_desc: &str, series: Vec<Series>) -> Panel {
        Panel {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            log_y: false,
            legend_left: false,
            series,
        }
    }

    /// The same panel with a log y axis.
    pub fn log_y(self) -> Panel {
        Panel {
            log_y: true,
            ..self
        }
    }

    fn finite(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (x0, x1) = self
            .finite()
            .fold((0.0f64, 1.0f64), |(lo, hi), (x, _)| (lo.min(x), hi.max(x)));
        let ys = self.finite().map(|p| p.1);
        let y_range = if self.log_y {
            log10_range(ys, 0.05, 0.02).unwrap_or((-1.0, 1.0))
        } else {
            lin_range(ys, 0.06, 1e-6).unwrap_or((0.0, 1.0))
        };
        let mut builder = ChartBuilder::on(area);
        if !self.title.is_empty() {
            builder.caption(&self.title, ("sans-serif", 17));
        }
        let mut chart = builder
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y_range.0..y_range.1)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&|v| format!("{v:.0}"));
        if self.log_y {
            mesh.y_labels(10).y_label_formatter(&pow10_label);
        }
        mesh.draw()?;
        for s in &self.series {
            let (color, width) = (s.color, s.width);
            let pts = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| {
                    let y = if self.log_y {
                        clamp_log10(y, y_range)
                    } else {
                        y
                    };
                    (x, y)
                });
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(width)))?
                .label(s.label.as_str())
                .legend(super::figure::line_key(color, width));
        }
        let position = if self.legend_left {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::UpperRight
        };
        legend(&mut chart, position, 13)
    }
}

/// A grid of panels, `cols` wide, filled row by row, under `title`.
#[derive(Debug, Clone)]
pub struct Panels {
    /// Title above the grid.
    pub title: String,
    /// Panels per row (at least 1).
    pub cols: usize,
    /// Pixel size of one panel.
    pub panel_size: (u32, u32),
    /// The panels.
    pub panels: Vec<Panel>,
}

/// Height of the title band.
const TITLE: u32 = 40;

impl Panels {
    fn grid(&self) -> (usize, usize) {
        let cols = self.cols.max(1);
        (self.panels.len().div_ceil(cols).max(1), cols)
    }
}

impl Figure for Panels {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = self.grid();
        (
            self.panel_size.0 * cols as u32,
            self.panel_size.1 * rows as u32 + TITLE,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let body = root.titled(&self.title, ("sans-serif", 20))?;
        for (panel, area) in self
            .panels
            .iter()
            .zip(body.split_evenly(self.grid()).iter())
        {
            panel.draw(area)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::palette;

    #[test]
    fn a_grid_is_sized_by_its_panels_and_draws_odd_values() {
        let series = vec![
            Series::new(
                "a",
                palette::cycle(0),
                vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.0)],
            ),
            Series::new("b", palette::cycle(1), Vec::new()),
        ];
        let fig = Panels {
            title: "t".into(),
            cols: 2,
            panel_size: (300, 200),
            panels: vec![
                Panel::new("lin", "step", "y", series.clone()),
                Panel::new("log", "step", "y", series).log_y(),
                Panel::new("", "step", "y", Vec::new()),
            ],
        };
        assert_eq!(fig.size(), (600, 440));
        let mut svg = String::new();
        fig.draw(&SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area())
            .expect("draws");
        assert!(svg.contains("<svg"), "{svg}");
    }
}
