//! Parse a fixture's torch scheduler description (`LinearLR(...)`, `CosineAnnealingLR(...)`,
//! `SequentialLR([...], milestones=[...])`) into our closed-form schedules, to report how
//! far they are from the lrs torch actually used. Informational: the replay itself uses the
//! recorded lrs (see `method::lr_table`).

use schedulefree::schedule::{Schedule, Sequence, TorchCosineAnnealing, TorchLinearLr};

/// A parsed Python call expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    List(Vec<Expr>),
    Call(String, Vec<(Option<String>, Expr)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{}` at offset {}", c as char, self.i))
        }
    }
    fn word(&mut self, ok: impl Fn(u8) -> bool) -> &str {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && ok(self.s[self.i]) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }
    fn expr(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.expr()?);
                        if self.eat(b']') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Ok(Expr::List(items))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                let w = self.word(|c| c.is_ascii_digit() || b"+-.eE".contains(&c));
                w.parse()
                    .map(Expr::Num)
                    .map_err(|_| format!("bad number `{w}`"))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let name = self
                    .word(|c| c.is_ascii_alphanumeric() || c == b'_')
                    .to_string();
                self.expect(b'(')?;
                let mut args = Vec::new();
                if !self.eat(b')') {
                    loop {
                        let save = self.i;
                        let key = self
                            .word(|c| c.is_ascii_alphanumeric() || c == b'_')
                            .to_string();
                        let named = !key.is_empty() && self.eat(b'=');
                        if !named {
                            self.i = save;
                        }
                        args.push((named.then_some(key), self.expr()?));
                        if self.eat(b')') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Ok(Expr::Call(name, args))
            }
            _ => Err(format!("unexpected input at offset {}", self.i)),
        }
    }
}

/// Argument `name` (or positional `pos`) of a call.
fn arg<'e>(args: &'e [(Option<String>, Expr)], name: &str, pos: usize) -> Option<&'e Expr> {
    args.iter()
        .find(|(k, _)| k.as_deref() == Some(name))
        .or_else(|| args.get(pos).filter(|(k, _)| k.is_none()))
        .map(|(_, v)| v)
}

fn num(
    args: &[(Option<String>, Expr)],
    name: &str,
    pos: usize,
    default: Option<f64>,
) -> Result<f64, String> {
    match arg(args, name, pos) {
        Some(Expr::Num(v)) => Ok(*v),
        Some(_) => Err(format!("`{name}` is not a number")),
        None => default.ok_or_else(|| format!("`{name}` missing")),
    }
}

fn count(v: f64, name: &str) -> Result<u64, String> {
    if v >= 0.0 && v.fract() == 0.0 && v < 9.0e15 {
        Ok(v as u64)
    } else {
        Err(format!("`{name}` = {v} is not a count"))
    }
}

fn build(e: &Expr, base_lr: f64) -> Result<Box<dyn Schedule>, String> {
    let Expr::Call(name, args) = e else {
        return Err("expected a scheduler call".into());
    };
    match name.as_str() {
        "LinearLR" => {
            let s = num(args, "start_factor", 0, Some(1.0 / 3.0))?;
            let e = num(args, "end_factor", 1, Some(1.0))?;
            let n = count(num(args, "total_iters", 2, Some(5.0))?, "total_iters")?;
            Ok(Box::new(
                TorchLinearLr::new(s, e, n).map_err(|e| e.to_string())?,
            ))
        }
        "CosineAnnealingLR" => {
            let t_max = count(num(args, "T_max", 0, None)?, "T_max")?;
            let eta_min = num(args, "eta_min", 1, Some(0.0))?;
            Ok(Box::new(
                TorchCosineAnnealing::new(t_max, eta_min / base_lr).map_err(|e| e.to_string())?,
            ))
        }
        "SequentialLR" => {
            let Some(Expr::List(items)) = arg(args, "schedulers", 0) else {
                return Err("SequentialLR without schedulers".into());
            };
            let Some(Expr::List(ms)) = arg(args, "milestones", 1) else {
                return Err("SequentialLR without milestones".into());
            };
            if items.is_empty() || ms.len() + 1 != items.len() {
                return Err("SequentialLR needs one milestone fewer than schedulers".into());
            }
            let mut acc = build(&items[0], base_lr)?;
            for (m, next) in ms.iter().zip(&items[1..]) {
                let Expr::Num(m) = m else {
                    return Err("milestone is not a number".into());
                };
                // Milestones are absolute step counts; `Sequence::at` counts from the start of
                // the nested sequence, which is the same thing when nested to the left.
                acc = Box::new(Sequence::new(
                    acc,
                    count(*m, "milestone")?,
                    build(next, base_lr)?,
                ));
            }
            Ok(acc)
        }
        other => Err(format!("scheduler `{other}` has no closed form here")),
    }
}

/// Parse the leading scheduler expression of `desc` (trailing prose is ignored) into our
/// closed-form schedule, a multiplier of `base_lr` (torch's `initial_lr`).
///
/// # Errors
/// A description that is not a scheduler expression we know, or invalid arguments.
pub fn parse(desc: &str, base_lr: f64) -> Result<Box<dyn Schedule>, String> {
    if base_lr.is_nan() || base_lr <= 0.0 {
        return Err("base lr must be positive".into());
    }
    let e = Parser {
        s: desc.as_bytes(),
        i: 0,
    }
    .expr()?;
    build(&e, base_lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fixture_descriptions() {
        let s = parse("CosineAnnealingLR(T_max=30, eta_min=0.001)", 0.05).expect("parses");
        assert_eq!(s.value(0), 1.0);
        assert!((s.value(30) * 0.05 - 0.001).abs() < 1e-15);
        let s = parse(
            "SequentialLR([LinearLR(0.1, 1.0, total_iters=5), CosineAnnealingLR(T_max=25, eta_min=0)], milestones=[5]).",
            0.05,
        )
        .expect("parses");
        assert!((s.value(0) - 0.1).abs() < 1e-15);
        assert_eq!(s.value(5), 1.0);
        let s = parse(
            "SequentialLR([LinearLR(start_factor=0.1, end_factor=1.0, total_iters=5), LinearLR(start_factor=1.0, \
             end_factor=0.0, total_iters=25)], milestones=[5]); lr for step t ...",
            0.05,
        )
        .expect("parses");
        assert_eq!(s.value(5), 1.0);
        assert!(
            parse(
                "same warmup(5)+linear decay as torch_adamw_warmup5_lineardecay30",
                0.1
            )
            .is_err()
        );
    }
}
