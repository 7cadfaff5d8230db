//! Whole-file text outputs (summaries, configurations), written atomically: a crash or a full
//! disk leaves the previous file or none, never half of one.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Writes `text` to `path`.
///
/// # Errors
/// The file cannot be written; the error names `path`.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    schedulefree::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `value` to `path` as pretty-printed JSON ending in a newline.
///
/// # Errors
/// A value serde_json cannot write (e.g. a map with non-string keys), or the file cannot be
/// written; the error names `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .with_context(|| format!("serialising {}", path.display()))?;
    write_text(path, &(text + "\n"))
}
