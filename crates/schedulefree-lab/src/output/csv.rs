//! The lab's one CSV writer: a table built in memory and written atomically (a crash or a full
//! disk leaves the previous file or none, never half a table), with one cell format for
//! floats.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// A float cell in its shortest round-trip form (`{}` of `f64` parses back to the same value;
/// `NaN`, `inf`, `-inf` for non-finite values).
pub fn cell(v: f64) -> String {
    format!("{v}")
}

/// A float cell at `f32` precision (shortest round-trip form of the `f32`), for long curves
/// whose extra digits would only make the file larger.
pub fn short(v: f64) -> String {
    (v as f32).to_string()
}

/// An optional float cell: [`cell`] of the value, or empty.
pub fn opt(v: Option<f64>) -> String {
    v.map(cell).unwrap_or_default()
}

/// Writes the CSV `path`: the `header` row, then every row of `rows` (RFC 4180 quoting).
///
/// # Errors
/// The file cannot be written; the error names `path`.
pub fn write_rows<H, R, C>(path: &Path, header: H, rows: R) -> anyhow::Result<()>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    let fill = || -> csv::Result<()> {
        w.write_record(header)?;
        for row in rows {
            w.write_record(row)?;
        }
        Ok(())
    };
    fill().with_context(|| format!("writing {}", path.display()))?;
    finish(path, w)
}

/// Writes the CSV `path` with one row per item of `rows`, the header from their field names
/// (serde).
///
/// # Errors
/// A row serde cannot flatten into cells, or the file cannot be written; the error names
/// `path`.
pub fn write_serialized<R: Serialize>(path: &Path, rows: &[R]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    finish(path, w)
}

fn finish(path: &Path, w: csv::Writer<Vec<u8>>) -> anyhow::Result<()> {
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {}", path.display(), e.error()))?;
    schedulefree::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        loss: f64,
    }

    #[test]
    fn tables_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("sflab-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.csv");
        write_rows(
            &path,
            ["a", "b"],
            [vec![cell(0.1), short(0.1)], vec!["x,y".into(), opt(None)]],
        )
        .expect("writes");
        let text = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(text, "a,b\n0.1,0.1\n\"x,y\",\n");
        write_serialized(
            &path,
            &[Row {
                name: "sf",
                loss: f64::NAN,
            }],
        )
        .expect("writes");
        assert_eq!(
            std::fs::read_to_string(&path).expect("reads"),
            "name,loss\nsf,NaN\n"
        );
        let missing = dir.join("no/such/dir/t.csv");
        let err = write_rows(&missing, ["a"], [["1"]]).expect_err("no folder");
        assert!(format!("{err:#}").contains("no/such/dir"), "{err:#}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
