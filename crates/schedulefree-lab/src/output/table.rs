//! The lab's one table writer: headers and rows of cells, rendered as GitHub-flavoured
//! markdown (summaries, terminal), and the cell formats several experiments share.

use std::fmt;

/// Column headers and rows of cells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Columns from this index on are right-aligned (`---:`); `None`: every column is left.
    pub right_from: Option<usize>,
    /// Rows, each as long as `headers` (shorter rows end early, longer ones are kept whole).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headers, every column left-aligned.
    pub fn new<H: Into<String>>(headers: impl IntoIterator<Item = H>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            right_from: None,
            rows: Vec::new(),
        }
    }

    /// The same table with the columns from `col` on right-aligned (numbers).
    pub fn right_from(self, col: usize) -> Self {
        Self {
            right_from: Some(col),
            ..self
        }
    }

    /// Appends a row.
    pub fn push<C: Into<String>>(&mut self, row: impl IntoIterator<Item = C>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    /// GitHub-flavoured markdown, one line per row, each line ending in `\n`.
    pub fn markdown(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line =
            |f: &mut fmt::Formatter<'_>, cells: &[String]| writeln!(f, "| {} |", cells.join(" | "));
        line(f, &self.headers)?;
        let rule: Vec<String> = (0..self.headers.len())
            .map(|i| match self.right_from {
                Some(r) if i >= r => "---:".to_string(),
                _ => "---".to_string(),
            })
            .collect();
        line(f, &rule)?;
        for r in &self.rows {
            line(f, r)?;
        }
        Ok(())
    }
}

/// `s` in bold if `yes` (a row's or column's best).
pub fn bold_if(s: String, yes: bool) -> String {
    if yes { format!("**{s}**") } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown_with_alignment() {
        let mut t = Table::new(["run", "loss", "acc"]).right_from(1);
        t.push(["a", "0.1", "99 %"]);
        t.push(vec![
            String::from("b"),
            bold_if("0.2".into(), true),
            bold_if("x".into(), false),
        ]);
        assert_eq!(
            t.markdown(),
            "| run | loss | acc |\n| --- | ---: | ---: |\n| a | 0.1 | 99 % |\n| b | **0.2** | x |\n"
        );
        assert_eq!(Table::new(["a"]).to_string(), "| a |\n| --- |\n");
    }
}
