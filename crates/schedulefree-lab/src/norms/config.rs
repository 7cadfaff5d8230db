//! The protocol of `sflab norms`: model size, run lengths and the (γ, λ) of every run, for
//! the default and the `--quick` protocol.

use std::path::PathBuf;

use serde::Serialize;

use super::grid::{DecayVariant, Experiment, LearnerKind, RunSpec, Shape};

/// The model and minibatches (MNIST-10k, bundled).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelShape {
    /// Width of each hidden layer (`Linear` without bias → LayerNorm → ReLU).
    pub hidden: usize,
    /// Number of hidden layers (each one's weight is tagged `normalized`).
    pub depth: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Largest random translation of a training image, in pixels ([`super::augment`]).
    pub max_shift: usize,
}

/// Every (γ, λ) pair of `lrs × wds` for one learner (decoupled decay, constant lr).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SteadyGrid {
    /// The learner.
    pub learner: LearnerKind,
    /// lrs γ.
    pub lrs: Vec<f64>,
    /// Weight decays λ.
    pub wds: Vec<f64>,
}

/// Experiment 1: constant lr, a (γ, λ) grid per learner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SteadyProtocol {
    /// Steps per run.
    pub steps: u64,
    /// The grids, in table order.
    pub grids: Vec<SteadyGrid>,
}

/// Experiment 2: decaying schedules, standard vs corrected decay vs projection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndProtocol {
    /// Steps per run.
    pub steps: u64,
    /// Warmup steps of every schedule.
    pub warmup: u64,
    /// The schedules.
    pub shapes: Vec<Shape>,
    /// SGD's peak lr and weight decay.
    pub sgd: (f64, f64),
    /// Adam's peak lr and weight decay.
    pub adam: (f64, f64),
}

/// Experiment 3: magnitude-based learners × decay policies, constant multiplier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MagnitudeProtocol {
    /// Steps per run.
    pub steps: u64,
    /// Per learner: the lr multiplier of its own step and the weight decay of the decaying
    /// variants.
    pub learners: Vec<(LearnerKind, f64, f64)>,
}

/// Everything a `sflab norms` invocation runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormsConfig {
    /// Output folder.
    pub out: PathBuf,
    /// The experiments to run, in order.
    pub experiments: Vec<Experiment>,
    /// Whether this is the `--quick` protocol.
    pub quick: bool,
    /// Runs at once (each on one thread).
    pub jobs: usize,
    /// Seed of the weights and the data order (the same for every run: runs are paired).
    pub seed: u64,
    /// Progress bars and printed tables.
    pub verbose: bool,
    /// Reuse finished runs from `out/finished/` (`--resume`).
    pub resume: bool,
    /// The model.
    pub model: ModelShape,
    /// Evaluations per run (evenly spaced, the last at the end).
    pub evals: u64,
    /// Experiment 1.
    pub steady: SteadyProtocol,
    /// Experiment 2.
    pub end: EndProtocol,
    /// Experiment 3.
    pub magnitude: MagnitudeProtocol,
}

/// Largest relaxation time `1/(2γλ)` allowed in the steady-state grid, as a fraction of the
/// run: the norms must have settled well before the averaging window (the last 25 %).
pub const MAX_RELAXATION_FRACTION: f64 = 0.2;

impl NormsConfig {
    /// What a run's numbers depend on besides its spec (for `--resume`): this protocol with
    /// the output folder, the experiment selection, job count, verbosity and `--resume`
    /// itself cleared.
    pub fn run_context(&self) -> NormsConfig {
        NormsConfig {
            out: PathBuf::new(),
            experiments: Vec::new(),
            jobs: 0,
            verbose: false,
            resume: false,
            ..self.clone()
        }
    }

    /// The default protocol (43 runs, 6 minutes on 2 shared cores: 373 s measured) or the
    /// `--quick` one (25 runs, about 8 s).
    pub fn protocol(quick: bool) -> Self {
        let model = ModelShape {
            hidden: if quick { 64 } else { 128 },
            depth: 2,
            batch: 64,
            max_shift: 2,
        };
        let grid = |learner, lrs: &[f64], wds: &[f64]| SteadyGrid {
            learner,
            lrs: lrs.to_vec(),
            wds: wds.to_vec(),
        };
        let steady = if quick {
            SteadyProtocol {
                steps: 600,
                grids: vec![
                    grid(LearnerKind::Sgd, &[0.2], &[0.05]),
                    grid(LearnerKind::AdamNoMomentum, &[5e-3], &[2.0]),
                    grid(LearnerKind::Adam, &[5e-3], &[2.0]),
                ],
            }
        } else {
            SteadyProtocol {
                steps: 3000,
                grids: vec![
                    grid(LearnerKind::Sgd, &[0.05, 0.2], &[0.02, 0.05, 0.1]),
                    grid(LearnerKind::AdamNoMomentum, &[2e-3, 5e-3], &[0.5, 1.0, 2.0]),
                    grid(LearnerKind::Adam, &[5e-3], &[0.5, 1.0, 2.0]),
                ],
            }
        };
        // Relaxation 1/(2γλ) ≈ 104 steps at the peak lr, T/58 of the default run: short enough
        // that the norms follow the schedule into its last quarter (AdamC, arXiv 2506.02285v2).
        let end = if quick {
            EndProtocol {
                steps: 600,
                warmup: 12,
                shapes: vec![Shape::Linear],
                sgd: (0.2, 0.025),
                adam: (3e-3, 1.6),
            }
        } else {
            EndProtocol {
                steps: 6000,
                warmup: 120,
                shapes: vec![Shape::Linear, Shape::Cosine],
                sgd: (0.2, 0.025),
                adam: (3e-3, 1.6),
            }
        };
        let magnitude = MagnitudeProtocol {
            steps: if quick { 200 } else { 3000 },
            learners: vec![
                // λ·γ ≈ 5e-3 (relaxation ≈ 100 steps) at the effective step γ each learner
                // takes without decay (Polyak ≈ 0.1, AdaGrad-Norm ≈ 0.03, COCOB 1, Prodigy
                // ≈ 2e-3; the summary reports the measured ones).
                (LearnerKind::Polyak, 1.0, 0.05),
                (LearnerKind::AdaGradNorm, 1.0, 0.15),
                (LearnerKind::Cocob, 1.0, 0.005),
                (LearnerKind::Prodigy, 1.0, 2.5),
            ],
        };
        Self {
            out: PathBuf::from(super::DEFAULT_OUT),
            experiments: Experiment::ALL.to_vec(),
            quick,
            jobs: 2,
            seed: 0,
            verbose: true,
            resume: false,
            model,
            evals: if quick { 2 } else { 10 },
            steady,
            end,
            magnitude,
        }
    }

    /// Every run of `experiment`, in table order.
    pub fn specs_of(&self, experiment: Experiment) -> Vec<RunSpec> {
        let spec = |learner, decay, shape, lr, weight_decay, steps, warmup| RunSpec {
            experiment,
            learner,
            decay,
            shape,
            lr,
            weight_decay,
            steps,
            warmup,
        };
        let mut out = Vec::new();
        match experiment {
            Experiment::Steady => {
                let s = &self.steady;
                for g in &s.grids {
                    for &lr in &g.lrs {
                        for &wd in &g.wds {
                            out.push(spec(
                                g.learner,
                                DecayVariant::Standard,
                                Shape::Constant,
                                lr,
                                wd,
                                s.steps,
                                0,
                            ));
                        }
                    }
                }
            }
            Experiment::End => {
                let e = &self.end;
                for &shape in &e.shapes {
                    for (learner, (lr, wd)) in
                        [(LearnerKind::Adam, e.adam), (LearnerKind::Sgd, e.sgd)]
                    {
                        for decay in [
                            DecayVariant::Standard,
                            DecayVariant::Corrected,
                            DecayVariant::Projected,
                        ] {
                            out.push(spec(learner, decay, shape, lr, wd, e.steps, e.warmup));
                        }
                    }
                }
            }
            Experiment::Magnitude => {
                let m = &self.magnitude;
                for &(learner, lr, wd) in &m.learners {
                    for decay in DecayVariant::ALL {
                        let wd = if decay == DecayVariant::None { 0.0 } else { wd };
                        out.push(spec(learner, decay, Shape::Constant, lr, wd, m.steps, 0));
                    }
                }
            }
        }
        out
    }

    /// Every run of the selected experiments, in order.
    pub fn specs(&self) -> Vec<RunSpec> {
        self.experiments
            .iter()
            .flat_map(|&e| self.specs_of(e))
            .collect()
    }

    /// Steady-state runs whose relaxation time exceeds [`MAX_RELAXATION_FRACTION`] of the run.
    pub fn slow_steady_runs(&self) -> Vec<RunSpec> {
        self.specs_of(Experiment::Steady)
            .into_iter()
            .filter(|s| s.relaxation_steps() > MAX_RELAXATION_FRACTION * s.steps as f64)
            .collect()
    }
}
