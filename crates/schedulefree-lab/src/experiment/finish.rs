//! How a finished sweep ends on the terminal, the same for every experiment.

use std::path::Path;
use std::time::Duration;

/// What a finished sweep reports.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The subcommand (`convex`, `pareto`, …).
    pub command: &'a str,
    /// The summary (also in `summary.md`), printed to stdout when `verbose`.
    pub markdown: &'a str,
    /// Not `--quiet`.
    pub verbose: bool,
    /// Warnings not yet shown, printed to stderr.
    pub warnings: &'a [String],
    /// Why the figures could not be drawn, if they could not.
    pub plot_error: Option<&'a str>,
    /// What ran, e.g. `43 runs` or `4176 runs on 8 datasets`.
    pub what: &'a str,
    /// Wall time of the sweep.
    pub elapsed: Duration,
    /// The output folder.
    pub out: &'a Path,
}

impl Finished<'_> {
    /// Prints the summary (stdout, unless quiet), then the warnings, a plotting failure and
    /// one closing line (stderr).
    pub fn print(&self) {
        if self.verbose {
            println!("{}", self.markdown);
        }
        for w in self.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(e) = self.plot_error {
            eprintln!("warning: plots not drawn: {e}");
        }
        eprintln!(
            "sflab {}: {} in {:.1} s; results in {}",
            self.command,
            self.what,
            self.elapsed.as_secs_f64(),
            self.out.display()
        );
    }
}
