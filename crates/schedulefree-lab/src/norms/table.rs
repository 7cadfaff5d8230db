//! A plain table: rendered as markdown (summary, terminal) and shared number formats.

/// Column headers and rows of cells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows, each as long as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// GitHub-flavoured markdown, one line per row.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.headers);
        out.push_str(&line(&vec!["---".to_string(); self.headers.len()]));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

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
