//! `summary.md`: the protocol, the Pareto table, the lr and β sweeps and the power-law fit,
//! each with the numbers stated in words.

use std::fmt::Write as _;

use super::config::ParetoConfig;
use super::method::{ADAM_BETA1, ADAM_BETA2, ADAM_EPS, Method, SF_BETA};
use super::power_law::PowerLawFit;
use super::report::{NEAR_OPTIMAL, Report};
use super::select::Cell;
use crate::output::table::{Table, bold_if};

/// A loss with 4 decimals (`∞` when diverged, `—` when absent).
pub fn loss(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if !v.is_finite() {
        "diverged".into()
    } else {
        format!("{v:.4}")
    }
}

fn signed_pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |p| format!("{p:+.2}%"))
}

/// `T/8 (200)` for budget 200 of T = 1600.
pub fn budget_label(cfg: &ParetoConfig, b: u64) -> String {
    if b == cfg.steps {
        format!("T ({b})")
    } else if b > 0 && cfg.steps.is_multiple_of(b) {
        format!("T/{} ({b})", cfg.steps / b)
    } else {
        b.to_string()
    }
}

/// `lr` with a dagger when it lies at an end of the grid (the optimum may lie outside it).
fn lr_label(cfg: &ParetoConfig, lr: f64) -> String {
    let edge = cfg.lrs.len() > 1 && (cfg.lrs.first() == Some(&lr) || cfg.lrs.last() == Some(&lr));
    format!("{lr}{}", if edge { "†" } else { "" })
}

fn cell_with_lr(cfg: &ParetoConfig, c: Option<Cell>) -> String {
    match c {
        Some(c) if c.loss.mean.is_finite() => {
            let se = if c.loss.n > 1 {
                format!(" ± {:.4}", c.loss.se)
            } else {
                String::new()
            };
            format!(
                "{}{se} (lr {}, acc {:.2}%)",
                loss(c.loss.mean),
                lr_label(cfg, c.lr),
                100.0 * c.accuracy
            )
        }
        Some(c) => format!("diverged (lr {})", c.lr),
        None => "—".into(),
    }
}

/// The protocol in one paragraph.
pub fn protocol(cfg: &ParetoConfig) -> String {
    let budgets: Vec<String> = cfg.budgets.iter().map(|&b| budget_label(cfg, b)).collect();
    let lrs: Vec<String> = cfg.lrs.iter().map(|l| l.to_string()).collect();
    let betas: Vec<String> = cfg.betas.iter().map(|b| b.to_string()).collect();
    format!(
        "Task `{task}`, batch {batch}, seeds 0..{seeds} (the seed drives initialisation and batch order, shared \
         by every method and lr). Schedule-Free AdamW (β = {sf}, β2 = {b2}) runs once for T = {t} updates; \
         AdamW (β = ({b1}, {b2})) with cosine and with linear decay to 0 runs once per budget {budgets}. \
         Every method uses the same lr grid {{{lrs}}}, ε = {eps:e}, weight decay {wd}, and a linear warmup \
         over {warm}% of the run's own length (Schedule-Free: of T, since one run serves every budget). \
         Every run is evaluated every {every} updates on the same held-out set ({eb}), Schedule-Free at \
         x. A schedule's best lr at a budget is the one with the lowest held-out loss at its end; \
         Schedule-Free's lr is chosen once, by its loss at T. The β sweep ({{{betas}}}) runs at that lr.",
        task = cfg.task.name(),
        batch = cfg.batch_size,
        seeds = cfg.seeds,
        sf = SF_BETA,
        b1 = ADAM_BETA1,
        b2 = ADAM_BETA2,
        t = cfg.steps,
        budgets = budgets.join(", "),
        lrs = lrs.join(", "),
        eps = ADAM_EPS,
        wd = cfg.weight_decay,
        warm = 100.0 * cfg.warmup_fraction,
        every = cfg.eval_every,
        eb = cfg
            .eval_batches
            .map_or("the whole test split".into(), |n| format!(
                "a fixed subset of {n} batches"
            )),
        betas = betas.join(", "),
    )
}

fn pareto_section(out: &mut String, cfg: &ParetoConfig, r: &Report) {
    let sf_lr = r.sf_lr.map_or("—".into(), |l| l.to_string());
    let _ = writeln!(
        out,
        "## Pareto table: Schedule-Free vs the best schedule at each budget\n"
    );
    let _ = writeln!(
        out,
        "Held-out loss (lower is better), with the lr and held-out accuracy. \"SF\" is the single \
         Schedule-Free run at lr {sf_lr} read at that step; \"SF vs best\" is `100·(SF − best schedule)/best \
         schedule` (negative: Schedule-Free is better). The next two columns give Schedule-Free's best lr \
         at that step instead (from the same T-runs); the last two ScheduleFree+'s single run at lr \
         multiplier 1, untuned (its Polyak step sets the step size).\n"
    );
    let mut t = Table::new([
        "budget",
        "best cosine",
        "best linear decay",
        "SF (one run)",
        "SF vs best",
        "SF, best lr here",
        "vs best",
        "SF+ (untuned)",
        "SF+ vs best",
    ]);
    for row in &r.pareto {
        let best = row.best_schedule().map(|b| b.0);
        t.push([
            budget_label(cfg, row.budget),
            bold_if(cell_with_lr(cfg, row.cosine), best == Some(Method::Cosine)),
            bold_if(
                cell_with_lr(cfg, row.linear_decay),
                best == Some(Method::LinearDecay),
            ),
            cell_with_lr(cfg, row.schedule_free),
            signed_pct(row.relative_pct()),
            cell_with_lr(cfg, row.schedule_free_best),
            signed_pct(row.relative_best_pct()),
            cell_with_lr(cfg, row.schedule_free_plus),
            signed_pct(row.relative_plus_pct()),
        ]);
    }
    out.push_str(&t.markdown());
    let rel: Vec<f64> = r.pareto.iter().filter_map(|p| p.relative_pct()).collect();
    if !rel.is_empty() {
        let wins = rel.iter().filter(|p| **p <= 0.0).count();
        let worst = rel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let best = rel.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            out,
            "\nThe one Schedule-Free run matches or beats the best schedule that ended there at {wins} of {} \
             budgets; relative to it, Schedule-Free ranges from {best:+.2}% to {worst:+.2}%. Bold: the better \
             schedule at each budget; † marks a best lr at an end of the grid.\n",
            rel.len()
        );
    } else {
        out.push('\n');
    }
}

fn lr_section(out: &mut String, cfg: &ParetoConfig, r: &Report) {
    let _ = writeln!(out, "## lr sweep (sensitivity)\n");
    let cols: Vec<u64> = {
        let mut c = vec![cfg.budgets[0]];
        if cfg.steps != cfg.budgets[0] {
            c.push(cfg.steps);
        }
        c
    };
    let _ = writeln!(
        out,
        "Held-out loss at the end of each budget for every lr of the grid (the schedules: the run of that \
         length; SF: its T-run read there). Bold: each column's best. Every budget is in `runs.csv` and \
         `lr_sweep.png`.\n"
    );
    let mut headers = vec!["lr".to_string()];
    for &b in &cols {
        headers.extend(
            Method::ALL
                .iter()
                .map(|m| format!("{} @ {}", m.label(), budget_label(cfg, b))),
        );
    }
    let mut t = Table::new(headers);
    for &lr in &cfg.lrs {
        let mut row = vec![lr.to_string()];
        for &b in &cols {
            for m in Method::ALL {
                let sweep = r.lr_sweep(m, b);
                let c = sweep.and_then(|s| s.cells.iter().find(|c| c.lr == lr));
                let is_best = sweep.and_then(|s| s.best()).map(|c| c.lr) == Some(lr);
                row.push(c.map_or("—".into(), |c| bold_if(loss(c.loss.mean), is_best)));
            }
        }
        t.push(row);
    }
    out.push_str(&t.markdown());
    let _ = writeln!(
        out,
        "\nNear-optimal lrs (loss within {:.0}% of the method's best at that budget), the width of each \
         sensitivity curve on the grid:\n",
        100.0 * NEAR_OPTIMAL
    );
    let mut t = Table::new(["budget", "Cosine", "LD", "SF"]);
    for &b in &cfg.budgets {
        let mut row = vec![budget_label(cfg, b)];
        for m in Method::ALL {
            let near = r
                .lr_sweep(m, b)
                .map(|s| s.near_optimal())
                .unwrap_or_default();
            let s: Vec<String> = near.iter().map(|l| l.to_string()).collect();
            row.push(format!(
                "{} of {}: {}",
                near.len(),
                cfg.lrs.len(),
                s.join(", ")
            ));
        }
        t.push(row);
    }
    out.push_str(&t.markdown());
    out.push('\n');
}

fn beta_section(out: &mut String, cfg: &ParetoConfig, r: &Report) {
    let Some(lr) = r.beta_lr else {
        return;
    };
    let _ = writeln!(out, "## β sweep (Schedule-Free at lr {lr})\n");
    let _ = writeln!(
        out,
        "Held-out loss of Schedule-Free's T-run with each β, read at each budget. Bold: the best β at \
         that budget.\n"
    );
    let mut headers = vec!["budget".to_string()];
    headers.extend(cfg.betas.iter().map(|b| format!("β = {b}")));
    headers.push("best β".into());
    let mut t = Table::new(headers);
    for row in &r.betas {
        let best = row.best_beta();
        let mut cells = vec![budget_label(cfg, row.budget)];
        for &beta in &cfg.betas {
            let c = row.cells.iter().find(|c| c.beta == beta);
            cells.push(c.map_or("—".into(), |c| {
                bold_if(loss(c.loss.mean), best == Some(beta))
            }));
        }
        cells.push(best.map_or("—".into(), |b| b.to_string()));
        t.push(cells);
    }
    out.push_str(&t.markdown());
    let verdict = match r.beta_consistent() {
        Some(true) => format!(
            "The best β is the same at every budget (β = {}).",
            r.betas
                .first()
                .and_then(|b| b.best_beta())
                .unwrap_or(f64::NAN)
        ),
        Some(false) => "The best β differs between budgets.".to_string(),
        None => "No β could be ranked (every run diverged).".to_string(),
    };
    let _ = writeln!(out, "\n{verdict}\n");
}

fn fit_row(name: &str, f: &Result<PowerLawFit, String>) -> Vec<String> {
    match f {
        Ok(f) => vec![
            name.to_string(),
            format!("{:.4}", f.exponent),
            format!(
                "{:.4}{}",
                f.l_inf,
                if f.at_bound { " (at bound)" } else { "" }
            ),
            format!("{:.4}", f.amplitude),
            format!("{:.4}", f.r2),
            f.points.to_string(),
        ],
        Err(e) => {
            let mut row = vec![name.to_string()];
            row.extend(["—"; 4].map(String::from));
            row.push(e.clone());
            row
        }
    }
}

fn fit_section(out: &mut String, cfg: &ParetoConfig, r: &Report) {
    let f = &r.fit;
    let _ = writeln!(
        out,
        "## 1/√T check: power-law fit of Schedule-Free's curve\n"
    );
    let _ = writeln!(
        out,
        "Fit of `L(t) = L∞ + A·t^(−a)` to the Schedule-Free held-out loss curve (lr {}, β = {SF_BETA}) on \
         the evaluations with {} ≤ t ≤ {}: least squares of `ln(L − L∞)` on `ln t`, with `L∞` chosen in \
         `[0, min L)` to minimise that residual (first row) or fixed at 0 (second row). R² is that of the \
         log-log regression. Convex Lipschitz theory predicts a = 0.5 for the suboptimality.\n",
        r.sf_lr.map_or("—".into(), |l| l.to_string()),
        budget_label(cfg, f.from),
        budget_label(cfg, f.to),
    );
    let mut t = Table::new(["fit", "a", "L∞", "A", "R²", "points"]);
    t.push(fit_row("L∞ fitted", &f.free));
    t.push(fit_row("L∞ = 0", &f.zero_floor));
    out.push_str(&t.markdown());
    if let Ok(fit) = &f.free {
        let _ = writeln!(
            out,
            "\nFitted exponent a = {:.3} (vs 0.5 for 1/√T), L∞ = {:.4}, R² = {:.4}, over {} points.",
            fit.exponent, fit.l_inf, fit.r2, fit.points
        );
    }
    out.push('\n');
}

/// The `--schedule` method at `T` against linear decay at `T` (nothing without the flag).
fn custom_section(out: &mut String, cfg: &ParetoConfig, r: &Report) {
    let Some(s) = &cfg.schedule else { return };
    let t = cfg.steps;
    let best = |m| {
        r.lr_sweep(m, t)
            .and_then(|s| s.best())
            .map(|c| (c.lr, c.loss.mean))
    };
    let _ = write!(
        out,
        "Custom schedule `{}` (AdamW, run at T = {t} over the lr grid): ",
        s.path.display()
    );
    match (best(Method::Custom), best(Method::LinearDecay)) {
        (Some((lr, l)), Some((ld_lr, ld))) => {
            let _ = writeln!(
                out,
                "best held-out loss {} at lr {lr}; linear decay {} at lr {ld_lr} ({:+.2} %).\n",
                loss(l),
                loss(ld),
                100.0 * (l - ld) / ld
            );
        }
        (Some((lr, l)), None) => {
            let _ = writeln!(out, "best held-out loss {} at lr {lr}.\n", loss(l));
        }
        _ => {
            let _ = writeln!(out, "no finished run.\n");
        }
    }
}

/// The whole `summary.md`; `seconds` is the protocol's wall time.
pub fn markdown(cfg: &ParetoConfig, r: &Report, seconds: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# sflab pareto `{}`: Schedule-Free vs cosine and linear decay (arXiv 2405.15682, Figures 1, 5, 6, 8)\n",
        cfg.task.name()
    );
    out.push_str(&protocol(cfg));
    out.push_str("\n\n");
    pareto_section(&mut out, cfg, r);
    custom_section(&mut out, cfg, r);
    lr_section(&mut out, cfg, r);
    beta_section(&mut out, cfg, r);
    fit_section(&mut out, cfg, r);
    let _ = writeln!(
        out,
        "{} runs ({} diverged) in {:.0} s on {} parallel jobs{}. Files: runs.csv (every run), curves.csv \
         (every evaluation), pareto.png/.svg (held-out loss vs step: each schedule's best-lr run faint with \
         its end point, the envelope of end points, the Schedule-Free curve bold), lr_sweep.png/.svg, \
         beta_sweep.png/.svg, config.json.",
        r.runs,
        r.diverged,
        seconds,
        cfg.jobs,
        if cfg.full { " (--full)" } else { "" }
    );
    out
}
