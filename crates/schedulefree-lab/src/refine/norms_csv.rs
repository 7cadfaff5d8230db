//! Gradient-norm logs as CSV: one header row, one row per update. The training commands
//! write the columns [`STEP_COLUMN`], [`L2_COLUMN`] and [`L1_COLUMN`]; `sflab refine` reads
//! any one numeric column of any CSV with a header.

use std::path::{Path, PathBuf};

/// Column naming the kind of a row in `sflab train` metrics (`step` or `eval`).
pub const EVENT_COLUMN: &str = "event";
/// Column of the 0-based update index in logs written by the lab.
pub const STEP_COLUMN: &str = "step";
/// Column of the global `‖g‖₂` of each update (the input of ℓ2 refinement).
pub const L2_COLUMN: &str = "grad_l2";
/// Column of the global `‖g‖₁` of each update (the input of ℓ1 refinement).
pub const L1_COLUMN: &str = "grad_l1";

/// Why a norm column could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NormCsvError {
    /// The file could not be opened or is not well-formed CSV (e.g. rows of unequal length).
    #[error("{}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        source: csv::Error,
    },
    /// The header has no such column.
    #[error("{}: no column {column:?} in the header (columns: {available})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The header's columns, comma-separated.
        available: String,
    },
    /// The file is empty or has a header but no data rows.
    #[error("{}: no data rows (the file is empty or holds only a header)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A cell of the column is empty.
    #[error("{}: line {line}: empty value in column {column:?}", path.display())]
    EmptyValue {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The column.
        column: String,
    },
    /// A cell of the column is not a number (`nan`, `inf` and `-inf` are numbers).
    #[error("{}: line {line}: column {column:?}: {value:?} is not a number", path.display())]
    Unparsable {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The column.
        column: String,
        /// The cell's text.
        value: String,
    },
}

/// Read column `column` of the CSV file `path` (header row required, cells trimmed) as
/// `f64`, one value per data row, in file order. If the header has an [`EVENT_COLUMN`]
/// (the metrics CSV of `sflab train`), only rows whose event is `step` count: evaluation
/// rows are skipped. Non-finite values (`nan`, `inf`) are
/// returned as such: [`schedulefree::schedule::refine`] fills them in.
///
/// # Errors
/// See [`NormCsvError`]: unreadable or malformed file, missing column, no data rows, an empty
/// or non-numeric cell in the column.
pub fn read_column(path: &Path, column: &str) -> Result<Vec<f64>, NormCsvError> {
    let csv_err = |source| NormCsvError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(csv_err)?;
    let headers = reader.headers().map_err(csv_err)?.clone();
    if headers.is_empty() {
        return Err(NormCsvError::Empty {
            path: path.to_path_buf(),
        });
    }
    let Some(index) = headers.iter().position(|h| h == column) else {
        return Err(NormCsvError::MissingColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            available: headers.iter().collect::<Vec<_>>().join(", "),
        });
    };
    let event = headers.iter().position(|h| h == EVENT_COLUMN);
    let mut values = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        if event.is_some_and(|e| record.get(e).is_some_and(|v| v != "step")) {
            continue;
        }
        let line = record.position().map_or(0, csv::Position::line);
        let cell = record.get(index).unwrap_or_default();
        if cell.is_empty() {
            return Err(NormCsvError::EmptyValue {
                path: path.to_path_buf(),
                line,
                column: column.to_string(),
            });
        }
        let value = cell.parse::<f64>().map_err(|_| NormCsvError::Unparsable {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
            value: cell.to_string(),
        })?;
        values.push(value);
    }
    if values.is_empty() {
        return Err(NormCsvError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(values)
}

/// Write a norm log with the columns `step, grad_l2, grad_l1` (values in shortest
/// round-trip form; non-finite values as `NaN` / `inf`), readable by [`read_column`].
///
/// # Errors
/// The file cannot be created or written.
pub fn write_norms(
    path: &Path,
    rows: impl IntoIterator<Item = (u64, f64, f64)>,
) -> Result<(), NormCsvError> {
    let csv_err = |source| NormCsvError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    w.write_record([STEP_COLUMN, L2_COLUMN, L1_COLUMN])
        .map_err(csv_err)?;
    for (step, l2, l1) in rows {
        w.write_record([step.to_string(), l2.to_string(), l1.to_string()])
            .map_err(csv_err)?;
    }
    w.flush().map_err(|e| csv_err(e.into()))?;
    Ok(())
}
