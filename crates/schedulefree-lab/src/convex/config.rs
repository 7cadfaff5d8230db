//! Command-line arguments of `sflab convex` and the resolved protocol they describe.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use schedulefree::schedule::{RefineNorm, Schedule, ScheduleConfig};
use serde::Serialize;

use super::run::TrainSettings;
use crate::data::registry;

/// Datasets of the default protocol (all bundled in `data/libsvm`).
pub const DEFAULT_DATASETS: [&str; 8] = [
    "iris",
    "wine",
    "glass",
    "vehicle",
    "breast_cancer",
    "dna",
    "segment",
    "satimage",
];

/// Datasets of the paper-sized protocol (`--full`): the 12 bundled ones plus `vowel`, `a9a`,
/// `ijcnn1` and `mushrooms` from `--data-dir`.
pub const FULL_DATASETS: [&str; 16] = [
    "iris",
    "wine",
    "glass",
    "vehicle",
    "breast_cancer",
    "dna",
    "segment",
    "satimage",
    "digits",
    "letter",
    "shuttle",
    "spam",
    "vowel",
    "a9a",
    "ijcnn1",
    "mushrooms",
];

/// Default number of epochs.
pub const DEFAULT_EPOCHS: usize = 30;
/// Number of epochs of the `--full` protocol.
pub const FULL_EPOCHS: usize = 100;
/// Default number of seeds.
pub const DEFAULT_SEEDS: u64 = 3;
/// Number of seeds of the `--full` protocol.
pub const FULL_SEEDS: u64 = 10;
/// Minibatch size of the paper's protocol.
pub const DEFAULT_BATCH: usize = 16;
/// Linear warmup length as a fraction of the run's updates, for every method.
pub const DEFAULT_WARMUP_FRACTION: f64 = 0.05;
/// Default lr grid exponents (inclusive) of the SGD base: `2^-8 .. 2^6` (the last-iterate
/// methods, whose momentum 0.9 multiplies the step by 10, peak low in this range, the
/// averaging methods high).
pub const DEFAULT_SGD_EXPONENTS: (i32, i32) = (-8, 6);
/// Default lr grid exponents (inclusive) of the Adam base: `2^-10 .. 2^3`.
pub const DEFAULT_ADAM_EXPONENTS: (i32, i32) = (-10, 3);
/// `--full` lr grid exponents of the SGD base: `2^-9 .. 2^7`.
pub const FULL_SGD_EXPONENTS: (i32, i32) = (-9, 7);
/// `--full` lr grid exponents of the Adam base: `2^-10 .. 2^4`.
pub const FULL_ADAM_EXPONENTS: (i32, i32) = (-10, 4);
/// Default output directory.
pub const DEFAULT_OUT: &str = "sflab-out/convex";
/// Default output directory of `--suite schedules`.
pub const SCHEDULES_OUT: &str = "sflab-out/schedules";

/// A named selection of methods with its own output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Suite {
    /// The schedule comparison of the linear-decay paper (arXiv 2310.07831):
    /// [`Method::SCHEDULES`], output in [`SCHEDULES_OUT`]; the rest of the protocol is the
    /// default one (or `--full`).
    Schedules,
}

/// An online-to-batch method compared by `sflab convex` (arXiv 2405.15682 Figure 7, and the
/// schedules of arXiv 2310.07831).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Method {
    /// Last iterate, constant lr (after warmup), learner with momentum.
    #[value(alias = "const")]
    Constant,
    /// Last iterate, linear decay to 0, learner with momentum.
    #[value(alias = "ld", alias = "linear", alias = "linear-decay")]
    LinearDecay,
    /// Last iterate, cosine decay to 0, learner with momentum.
    Cosine,
    /// Polyak–Ruppert averaging of a momentum-free learner's iterates.
    #[value(alias = "pr", alias = "polyak_average")]
    Polyak,
    /// Primal averaging (gradient at the running mean), momentum-free learner.
    #[value(alias = "primal_average")]
    Primal,
    /// Schedule-Free (`β = 0.9`), momentum-free learner.
    #[value(alias = "sf", alias = "schedulefree", alias = "schedule-free")]
    ScheduleFree,
    /// Last iterate, warmup then `1/√t` (`sqrt(W/(k+1))`), learner with momentum.
    #[value(alias = "inv_sqrt", alias = "rsqrt", alias = "inverse-sqrt")]
    InverseSqrt,
    /// Last iterate, warmup then step decay: ×0.1 after 50 % and ×0.01 after 75 % of the
    /// updates ([`super::methods::STEP_MILESTONES`]), learner with momentum.
    Step,
    /// Last iterate, the schedule refined (ℓ2 norms, `w = ‖g‖⁻²`) from the gradient norms of a
    /// linear-decay run at its best lr (two-phase, see [`super::refined`]).
    #[value(alias = "refined", alias = "refined-l2")]
    RefinedL2,
    /// Last iterate, the schedule refined from ℓ1 gradient norms (`w = ‖g‖₁⁻¹`, the
    /// per-coordinate variant) of the same linear-decay run.
    #[value(alias = "refined-l1")]
    RefinedL1,
    /// Last iterate, the user's `--schedule FILE` (a `ScheduleConfig` JSON, e.g. written by
    /// `sflab refine`), used as is (no warmup added), learner with momentum.
    Custom,
}

impl Method {
    /// The methods of the default run (Schedule-Free vs schedules and averaging), in report
    /// order.
    pub const ALL: [Method; 6] = [
        Method::Constant,
        Method::LinearDecay,
        Method::Cosine,
        Method::Polyak,
        Method::Primal,
        Method::ScheduleFree,
    ];

    /// The methods of `--suite schedules` (arXiv 2310.07831), in report order.
    pub const SCHEDULES: [Method; 7] = [
        Method::Constant,
        Method::InverseSqrt,
        Method::Step,
        Method::Cosine,
        Method::LinearDecay,
        Method::RefinedL2,
        Method::RefinedL1,
    ];

    /// Machine name used in CSV files (`schedule_free`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Method::Constant => "constant",
            Method::LinearDecay => "linear_decay",
            Method::Cosine => "cosine",
            Method::Polyak => "polyak",
            Method::Primal => "primal",
            Method::ScheduleFree => "schedule_free",
            Method::InverseSqrt => "inverse_sqrt",
            Method::Step => "step",
            Method::RefinedL2 => "refined_l2",
            Method::RefinedL1 => "refined_l1",
            Method::Custom => "custom",
        }
    }

    /// Short column label for tables and plots (`SF`, `LD`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Method::Constant => "Const",
            Method::LinearDecay => "LD",
            Method::Cosine => "Cosine",
            Method::Polyak => "PR avg",
            Method::Primal => "Primal avg",
            Method::ScheduleFree => "SF",
            Method::InverseSqrt => "1/√t",
            Method::Step => "Step",
            Method::RefinedL2 => "Refined ℓ2",
            Method::RefinedL1 => "Refined ℓ1",
            Method::Custom => "Custom",
        }
    }

    /// Whether the method runs its learner with momentum (the last-iterate schedules); the
    /// averaging methods use a momentum-free learner because the averaging provides it.
    pub fn uses_momentum(self) -> bool {
        !matches!(self, Method::Polyak | Method::Primal | Method::ScheduleFree)
    }

    /// The norm a refined method refines from (`None` for the other methods).
    pub fn refine_norm(self) -> Option<RefineNorm> {
        match self {
            Method::RefinedL2 => Some(RefineNorm::L2),
            Method::RefinedL1 => Some(RefineNorm::L1),
            _ => None,
        }
    }

    /// Whether the method's schedule comes from outside the method itself (a refined
    /// schedule or the user's file), so that its runs need a schedule override.
    pub fn needs_schedule(self) -> bool {
        matches!(self, Method::RefinedL2 | Method::RefinedL1 | Method::Custom)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The base online learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// SGD (momentum 0.9 for the last-iterate methods, none for the averaging methods).
    Sgd,
    /// Adam (`β = (0.9, 0.95)` for the last-iterate methods, `(0, 0.95)` for the averaging
    /// methods), `ε = 1e-8`.
    Adam,
}

impl Base {
    /// Both bases, in report order (Adam first, as in the paper's table).
    pub const ALL: [Base; 2] = [Base::Adam, Base::Sgd];

    /// Machine name (`sgd`, `adam`).
    pub fn name(self) -> &'static str {
        match self {
            Base::Sgd => "sgd",
            Base::Adam => "adam",
        }
    }

    /// Human-readable name (`SGD`, `Adam`).
    pub fn label(self) -> &'static str {
        match self {
            Base::Sgd => "SGD",
            Base::Adam => "Adam",
        }
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `2^lo..2^hi (N points)` for an inclusive pair of lr grid exponents.
pub fn grid_label((lo, hi): (i32, i32)) -> String {
    format!("2^{lo}..2^{hi} ({} points)", hi - lo + 1)
}

/// Help of `--full`, built from the constants of the protocol.
fn full_help() -> String {
    format!(
        "The paper-sized protocol: {FULL_EPOCHS} epochs, {FULL_SEEDS} seeds, all {} datasets (vowel, a9a, ijcnn1 \
         and mushrooms from --data-dir), lr grids SGD {} and Adam {}. Explicit flags still override",
        FULL_DATASETS.len(),
        grid_label(FULL_SGD_EXPONENTS),
        grid_label(FULL_ADAM_EXPONENTS),
    )
}

/// Help of `--lr-min`, built from the grid constants.
fn lr_min_help() -> String {
    format!(
        "Smallest lr exponent, an integer (e.g. -8): the grid is 2^lr_min .. 2^lr_max for every base (needs \
         --lr-max). Default grids: SGD {}, Adam {} (--full: SGD {}, Adam {})",
        grid_label(DEFAULT_SGD_EXPONENTS),
        grid_label(DEFAULT_ADAM_EXPONENTS),
        grid_label(FULL_SGD_EXPONENTS),
        grid_label(FULL_ADAM_EXPONENTS),
    )
}

/// Command-line arguments of `sflab convex`. Every field is optional; unset fields take the
/// default protocol's value (or the `--full` protocol's, see [`ConvexConfig::resolve`]), so
/// `ConvexArgs::default()` is the default run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConvexArgs {
    /// Named datasets, comma-separated (from the bundled data/libsvm MANIFEST or --data-dir);
    /// `all` = every listed dataset. Default: the 8 bundled datasets iris, wine, glass,
    /// vehicle, breast_cancer, dna, segment, satimage.
    #[arg(long, value_delimiter = ',')]
    pub datasets: Option<Vec<String>>,
    /// Your own LIBSVM file(s): FILE or FILE,TEST_FILE (plain or gzip). Repeatable. Without
    /// --datasets only these are run.
    #[arg(long)]
    pub data: Vec<String>,
    /// Directory with extra datasets (holding MANIFEST.tsv, or its parent holding libsvm/).
    /// Default: ../shared/data if it exists.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Epochs per run ([`DEFAULT_EPOCHS`]; [`FULL_EPOCHS`] with --full).
    #[arg(
        long,
        allow_negative_numbers = true,
        help = format!("Epochs per run (default {DEFAULT_EPOCHS}; {FULL_EPOCHS} with --full)")
    )]
    pub epochs: Option<usize>,
    /// Number of seeds (0..N) per configuration ([`DEFAULT_SEEDS`]; [`FULL_SEEDS`] with --full).
    #[arg(
        long,
        allow_negative_numbers = true,
        help = format!("Number of seeds (0..N) per configuration (default {DEFAULT_SEEDS}; {FULL_SEEDS} with --full)")
    )]
    pub seeds: Option<u64>,
    /// Minibatch size (default 16).
    #[arg(long, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// Linear warmup length as a fraction of the run's updates, same for every method
    /// (default 0.05).
    #[arg(long, allow_negative_numbers = true)]
    pub warmup: Option<f64>,
    /// Explicit lr grid, comma-separated, used for every base and method.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, conflicts_with_all = ["lr_min", "lr_max"])]
    pub lrs: Option<Vec<f64>>,
    /// Smallest lr exponent, an integer: the grid is `2^lr_min .. 2^lr_max` for every base
    /// (needs --lr-max). Default grids: [`DEFAULT_SGD_EXPONENTS`] and [`DEFAULT_ADAM_EXPONENTS`]
    /// (--full: [`FULL_SGD_EXPONENTS`] and [`FULL_ADAM_EXPONENTS`]).
    #[arg(long, allow_negative_numbers = true, requires = "lr_max", help = lr_min_help())]
    pub lr_min: Option<i32>,
    /// Largest lr exponent, an integer (needs --lr-min).
    #[arg(long, allow_negative_numbers = true, requires = "lr_min")]
    pub lr_max: Option<i32>,
    /// Base learners, comma-separated (default adam,sgd).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub bases: Option<Vec<Base>>,
    /// Methods, comma-separated: constant, linear_decay (ld), cosine, polyak (pr), primal,
    /// schedule_free (sf), inverse_sqrt, step, refined_l2, refined_l1, custom. Default:
    /// constant, linear_decay, cosine, polyak, primal, schedule_free (with --suite schedules:
    /// constant, inverse_sqrt, step, cosine, linear_decay, refined_l2, refined_l1). Refined
    /// methods run linear_decay first (added if missing) and refine from its gradient norms.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub methods: Option<Vec<Method>>,
    /// A method suite: `schedules` = constant, 1/√t, step, cosine, linear decay and refined
    /// (ℓ2, ℓ1) on the same lr grid, output in sflab-out/schedules.
    #[arg(long, value_enum)]
    pub suite: Option<Suite>,
    /// A schedule file (JSON `ScheduleConfig`, e.g. written by `sflab refine`) run as the
    /// method `custom` (added to the methods), used as is: no warmup is added, and a schedule
    /// shorter than a run keeps its last value.
    #[arg(long, value_name = "SCHEDULE.json")]
    pub schedule: Option<PathBuf>,
    /// Output directory (default sflab-out/convex; sflab-out/schedules with --suite
    /// schedules).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at once, one per worker thread (default: all cores). `--threads` is the old
    /// name of this flag and still works; the other commands call it `--jobs` too.
    #[arg(long, alias = "threads", allow_negative_numbers = true)]
    pub jobs: Option<usize>,
    /// The paper-sized protocol: [`FULL_EPOCHS`] epochs, [`FULL_SEEDS`] seeds, the
    /// [`FULL_DATASETS`] (vowel, a9a, ijcnn1 and mushrooms from --data-dir), lr grids
    /// [`FULL_SGD_EXPONENTS`] (SGD) and [`FULL_ADAM_EXPONENTS`] (Adam). Explicit flags still
    /// override.
    #[arg(long, help = full_help())]
    pub full: bool,
    /// Hide the progress bar and do not print the tables.
    #[arg(long)]
    pub quiet: bool,
    /// Skip the PNG plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetSource {
    /// A name from a manifest.
    Named(String),
    /// A user's `FILE[,TEST_FILE]` specification.
    User(String),
}

/// The user's `--schedule` file, parsed and validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomSchedule {
    /// Where it was read from.
    pub path: PathBuf,
    /// The schedule.
    pub config: ScheduleConfig,
    /// Its horizon in updates (`None`: it never stops changing).
    pub horizon: Option<u64>,
}

impl CustomSchedule {
    /// Read, parse and build (to validate) a JSON [`ScheduleConfig`].
    ///
    /// # Errors
    /// An unreadable file, invalid JSON or an invalid schedule, each naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --schedule {}", path.display()))?;
        let config: ScheduleConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "--schedule {}: not a schedule description (JSON with a \"kind\" field, as \
                 written by `sflab refine`)",
                path.display()
            )
        })?;
        let horizon = config
            .build()
            .with_context(|| format!("--schedule {}: invalid schedule", path.display()))?
            .horizon();
        Ok(CustomSchedule {
            path: path.to_path_buf(),
            config,
            horizon,
        })
    }
}

/// The lr grid of each base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrGrid {
    /// Grid of the SGD base.
    pub sgd: Vec<f64>,
    /// Grid of the Adam base.
    pub adam: Vec<f64>,
}

impl LrGrid {
    /// The grid of `base`.
    pub fn of(&self, base: Base) -> &[f64] {
        match base {
            Base::Sgd => &self.sgd,
            Base::Adam => &self.adam,
        }
    }
}

/// The fully resolved protocol of one `sflab convex` invocation (written to `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvexConfig {
    /// Datasets, in report order.
    pub datasets: Vec<DatasetSource>,
    /// Extra data directory searched after the bundled one.
    pub data_dir: Option<PathBuf>,
    /// Epochs per run.
    pub epochs: usize,
    /// Seeds `0..seeds`.
    pub seeds: u64,
    /// Minibatch size.
    pub batch: usize,
    /// Warmup as a fraction of the run's updates.
    pub warmup_fraction: f64,
    /// lr grid per base.
    pub lrs: LrGrid,
    /// Bases, in report order.
    pub bases: Vec<Base>,
    /// Methods, in report order.
    pub methods: Vec<Method>,
    /// The selected suite, if any.
    pub suite: Option<Suite>,
    /// The `--schedule` file run as [`Method::Custom`].
    pub schedule: Option<CustomSchedule>,
    /// Output directory.
    pub out: PathBuf,
    /// Worker threads (`None`: rayon's default).
    pub threads: Option<usize>,
    /// Show the progress bar and print the tables.
    pub verbose: bool,
    /// Draw the PNG plots.
    pub plots: bool,
    /// Whether `--full` was given.
    pub full: bool,
}

/// Powers of two `2^lo ..= 2^hi`.
pub fn power_grid(lo: i32, hi: i32) -> Vec<f64> {
    (lo..=hi).map(|e| 2f64.powi(e)).collect()
}

fn dedup_in_order<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for &x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// `../shared/data` (relative to the current directory) if it holds a LIBSVM manifest.
pub fn default_data_dir() -> Option<PathBuf> {
    let dir = Path::new(registry::DEFAULT_DATA_DIR);
    registry::manifest_dir(dir).map(|_| dir.to_path_buf())
}

impl ConvexConfig {
    /// Apply defaults (the default or `--full` protocol) and validate.
    ///
    /// # Errors
    /// Empty or invalid grids, zero epochs / seeds / batch, a warmup fraction outside
    /// `[0, 1]`, an explicit `--data-dir` that does not exist or holds no manifest (neither
    /// itself nor its `libsvm/`), an unreadable manifest for `--datasets all`.
    pub fn resolve(args: &ConvexArgs) -> anyhow::Result<Self> {
        let full = args.full;
        let data_dir = match &args.data_dir {
            Some(dir) => {
                if !dir.is_dir() {
                    bail!("--data-dir {}: no such directory", dir.display());
                }
                if registry::manifest_dir(dir).is_none() {
                    bail!(
                        "--data-dir {}: no {} in it or in its libsvm/ subdirectory",
                        dir.display(),
                        registry::MANIFEST_FILE
                    );
                }
                Some(dir.clone())
            }
            None => default_data_dir(),
        };
        let mut datasets: Vec<DatasetSource> = Vec::new();
        let names: Option<Vec<String>> = match &args.datasets {
            Some(list) => Some(
                list.iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            None if !args.data.is_empty() => None,
            None if full => Some(FULL_DATASETS.iter().map(|s| s.to_string()).collect()),
            None => Some(DEFAULT_DATASETS.iter().map(|s| s.to_string()).collect()),
        };
        for name in names.unwrap_or_default() {
            if name == "all" {
                let listed = registry::list_datasets(data_dir.as_deref())
                    .context("listing datasets for `all`")?;
                for (n, _) in listed {
                    datasets.push(DatasetSource::Named(n));
                }
            } else {
                datasets.push(DatasetSource::Named(name));
            }
        }
        datasets.extend(args.data.iter().map(|s| DatasetSource::User(s.clone())));
        let datasets = {
            let mut out: Vec<DatasetSource> = Vec::new();
            for d in datasets {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
            out
        };
        if datasets.is_empty() {
            bail!("no datasets selected (use --datasets NAME,... or --data FILE)");
        }

        let epochs = args
            .epochs
            .unwrap_or(if full { FULL_EPOCHS } else { DEFAULT_EPOCHS });
        let seeds = args
            .seeds
            .unwrap_or(if full { FULL_SEEDS } else { DEFAULT_SEEDS });
        let batch = args.batch.unwrap_or(DEFAULT_BATCH);
        let warmup_fraction = args.warmup.unwrap_or(DEFAULT_WARMUP_FRACTION);
        if epochs == 0 || seeds == 0 || batch == 0 {
            bail!("--epochs, --seeds and --batch must be positive");
        }
        if !(0.0..=1.0).contains(&warmup_fraction) {
            bail!("--warmup must be a fraction in [0, 1], got {warmup_fraction}");
        }

        let lrs = if let Some(list) = &args.lrs {
            LrGrid {
                sgd: list.clone(),
                adam: list.clone(),
            }
        } else if let (Some(lo), Some(hi)) = (args.lr_min, args.lr_max) {
            if lo > hi {
                bail!("--lr-min ({lo}) must not exceed --lr-max ({hi})");
            }
            LrGrid {
                sgd: power_grid(lo, hi),
                adam: power_grid(lo, hi),
            }
        } else if full {
            LrGrid {
                sgd: power_grid(FULL_SGD_EXPONENTS.0, FULL_SGD_EXPONENTS.1),
                adam: power_grid(FULL_ADAM_EXPONENTS.0, FULL_ADAM_EXPONENTS.1),
            }
        } else {
            LrGrid {
                sgd: power_grid(DEFAULT_SGD_EXPONENTS.0, DEFAULT_SGD_EXPONENTS.1),
                adam: power_grid(DEFAULT_ADAM_EXPONENTS.0, DEFAULT_ADAM_EXPONENTS.1),
            }
        };
        for &lr in lrs.sgd.iter().chain(&lrs.adam) {
            if !(lr > 0.0 && lr.is_finite()) {
                bail!("learning rates must be positive and finite, got {lr}");
            }
        }
        if lrs.sgd.is_empty() || lrs.adam.is_empty() {
            bail!("empty lr grid");
        }
        let lrs = LrGrid {
            sgd: dedup_in_order(&lrs.sgd),
            adam: dedup_in_order(&lrs.adam),
        };

        let bases = dedup_in_order(args.bases.as_deref().unwrap_or(&Base::ALL));
        let default_methods: &[Method] = match args.suite {
            Some(Suite::Schedules) => &Method::SCHEDULES,
            None => &Method::ALL,
        };
        let mut methods = dedup_in_order(args.methods.as_deref().unwrap_or(default_methods));
        if bases.is_empty() || methods.is_empty() {
            bail!("--bases and --methods must not be empty");
        }
        let schedule = match &args.schedule {
            Some(path) => {
                if !methods.contains(&Method::Custom) {
                    methods.push(Method::Custom);
                }
                Some(CustomSchedule::load(path)?)
            }
            None if methods.contains(&Method::Custom) => {
                bail!("method custom needs --schedule FILE")
            }
            None => None,
        };
        // Refined schedules come from a linear-decay run at its best lr.
        if let Some(first) = methods.iter().position(|m| m.refine_norm().is_some())
            && !methods.contains(&Method::LinearDecay)
        {
            methods.insert(first, Method::LinearDecay);
        }
        if args.jobs == Some(0) {
            bail!("--jobs must be positive");
        }
        Ok(ConvexConfig {
            datasets,
            data_dir,
            epochs,
            seeds,
            batch,
            warmup_fraction,
            lrs,
            bases,
            methods,
            suite: args.suite,
            schedule,
            out: args.out.clone().unwrap_or_else(|| {
                PathBuf::from(match args.suite {
                    Some(Suite::Schedules) => SCHEDULES_OUT,
                    None => DEFAULT_OUT,
                })
            }),
            threads: args.jobs,
            verbose: !args.quiet,
            plots: !args.no_plots,
            full,
        })
    }

    /// Run length, batch and warmup shared by every run.
    pub fn settings(&self) -> TrainSettings {
        TrainSettings {
            epochs: self.epochs,
            batch: self.batch,
            warmup_fraction: self.warmup_fraction,
        }
    }
}

/// An lr formatted as `2^k` when it is a power of two, else in short scientific form.
pub fn fmt_lr(lr: f64) -> String {
    let e = lr.log2().round();
    if lr > 0.0 && (2f64.powi(e as i32) - lr).abs() <= 1e-12 * lr {
        format!("2^{}", e as i32)
    } else {
        format!("{lr:.3e}")
    }
}
