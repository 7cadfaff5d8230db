//! Schedule-Free written directly from Road Less Scheduled, Algorithm 1 / Theorem 2, with
//! `x`, `y`, `z` stored in `f64` and each equation applied as its own loop.

/// Base learner of the oracle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OracleLearner {
    /// `z ← z − γ(g + λy)`.
    Sgd,
    /// `v ← β2 v + (1−β2) g²`, `z ← z − γ(g/(sqrt(v/(1−β2^t)) + ε) + λy)`.
    Adam {
        /// `β2`.
        beta2: f64,
        /// `ε`.
        eps: f64,
    },
}

/// Hyperparameters of the oracle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OracleConfig {
    /// Peak lr `γ`.
    pub lr: f64,
    /// Interpolation `β ∈ [0, 1]`.
    pub beta: f64,
    /// Decay at `y`, `λ`.
    pub weight_decay: f64,
    /// Linear warmup `W` (factor `(k+1)/W`).
    pub warmup_steps: u64,
    /// Averaging exponent `r`.
    pub r: f64,
    /// Averaging `lr_max` power.
    pub weight_lr_power: f64,
    /// Base learner.
    pub learner: OracleLearner,
}

/// The oracle's state for one flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFreeOracle {
    /// Configuration.
    pub config: OracleConfig,
    /// Averaged point `x`.
    pub x: Vec<f64>,
    /// Gradient point `y`.
    pub y: Vec<f64>,
    /// Base iterate `z`.
    pub z: Vec<f64>,
    /// Second moment (Adam).
    pub v: Vec<f64>,
    /// Completed steps.
    pub k: u64,
    /// Running max lr.
    pub lr_max: f64,
    /// Sum of weights.
    pub weight_sum: f64,
}

impl ScheduleFreeOracle {
    /// Start at `x = y = z = init`.
    pub fn new(config: OracleConfig, init: &[f64]) -> Self {
        ScheduleFreeOracle {
            config,
            x: init.to_vec(),
            y: init.to_vec(),
            z: init.to_vec(),
            v: vec![0.0; init.len()],
            k: 0,
            lr_max: -1.0,
            weight_sum: 0.0,
        }
    }

    /// One step with gradient `g` evaluated at `self.y`; returns `c`.
    ///
    /// # Panics
    /// If `g.len()` differs from the parameter length (oracle for tests).
    // Index loops on purpose: one loop per equation of the paper, read side by side with it.
    #[allow(clippy::needless_range_loop)]
    pub fn step(&mut self, g: &[f64]) -> f64 {
        assert_eq!(g.len(), self.y.len(), "gradient length");
        let cfg = self.config;
        let w = cfg.warmup_steps;
        let sched = if self.k < w {
            (self.k + 1) as f64 / w as f64
        } else {
            1.0
        };
        let lr = cfg.lr * sched;
        self.lr_max = self.lr_max.max(lr);
        let weight = ((self.k + 1) as f64).powf(cfg.r) * self.lr_max.powf(cfg.weight_lr_power);
        self.weight_sum += weight;
        let c = if self.weight_sum == 0.0 {
            0.0
        } else {
            weight / self.weight_sum
        };
        // Direction of the base learner at y.
        let mut d: Vec<f64> = g.to_vec();
        if let OracleLearner::Adam { beta2, eps } = cfg.learner {
            let bc2 = 1.0 - beta2.powf((self.k + 1) as f64);
            for i in 0..d.len() {
                self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g[i] * g[i];
                d[i] = g[i] / ((self.v[i] / bc2).sqrt() + eps);
            }
        }
        for i in 0..d.len() {
            d[i] += cfg.weight_decay * self.y[i];
        }
        for i in 0..d.len() {
            self.z[i] -= lr * d[i];
        }
        for i in 0..d.len() {
            self.x[i] = (1.0 - c) * self.x[i] + c * self.z[i];
        }
        for i in 0..d.len() {
            self.y[i] = cfg.beta * self.x[i] + (1.0 - cfg.beta) * self.z[i];
        }
        self.k += 1;
        c
    }
}
