//! The number formats of the `sflab norms` tables (drawn by [`crate::output::table::Table`]).

/// Four significant digits, scientific outside `[1e-3, 1e4)`; `—` for NaN.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&v.abs()) {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.3e}")
    }
}

/// A signed percentage with one decimal (`+3.2 %`); `—` for NaN.
pub fn pct(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{:+.1} %", 100.0 * v)
    }
}
