//! Roofline kernels: the least work a step of each byte count can do, written for speed
//! (lane groups the compiler vectorises, compiled for the widest instruction set present,
//! split over rayon's threads in the optimizer's block size), and the final table.
#![allow(unsafe_code)] // calling the `#[target_feature]` variants after detecting the CPU

use rayon::prelude::*;

/// Elements per thread task (the optimizer's block size).
const BLOCK: usize = 1 << 14;
const LANES: usize = 16;

/// Plain copy, 8 B per element.
pub fn copy(out: &mut [f32], src: &[f32]) {
    out.par_chunks_mut(BLOCK)
        .zip(src.par_chunks(BLOCK))
        .for_each(|(o, s)| o.copy_from_slice(s));
}

/// Fused AdamW (torch's update, decoupled decay, fixed step 10): 28 B per element.
#[inline(always)]
fn adamw_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (lr, wd, b1, b2, eps) = (1e-3f32, 0.01f32, 0.9f32, 0.999f32, 1e-8f32);
    let (bc1, bc2) = (1.0 - b1.powi(10), 1.0 - b2.powi(10));
    let (step, decay) = (lr / bc1, 1.0 - lr * wd);
    let (pv, _) = p.as_chunks_mut::<LANES>();
    let (gv, _) = g.as_chunks::<LANES>();
    let (mv, _) = m.as_chunks_mut::<LANES>();
    let (vv, _) = v.as_chunks_mut::<LANES>();
    for (((p, g), m), v) in pv.iter_mut().zip(gv).zip(mv).zip(vv) {
        for k in 0..LANES {
            m[k] = b1 * m[k] + (1.0 - b1) * g[k];
            v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
            p[k] = decay * p[k] - step * m[k] / ((v[k] / bc2).sqrt() + eps);
        }
    }
}

/// Schedule-Free SGD's update without decay: 20 B per element.
#[inline(always)]
fn sgd_sf_block(p: &mut [f32], g: &[f32], z: &mut [f32]) {
    let (lr, c, ycoef) = (0.1f32, 0.01f32, -0.091f32);
    let (pv, _) = p.as_chunks_mut::<LANES>();
    let (gv, _) = g.as_chunks::<LANES>();
    let (zv, _) = z.as_chunks_mut::<LANES>();
    for ((p, g), z) in pv.iter_mut().zip(gv).zip(zv) {
        for k in 0..LANES {
            p[k] = p[k] + c * (z[k] - p[k]) + ycoef * g[k];
            z[k] -= lr * g[k];
        }
    }
}

macro_rules! multiversion {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        pub fn $name($($arg: $ty),*) {
            #[target_feature(enable = "avx512f")]
            fn wide($($arg: $ty),*) { $body($($arg),*) }
            #[target_feature(enable = "avx2")]
            fn mid($($arg: $ty),*) { $body($($arg),*) }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                unsafe { wide($($arg),*) }
            } else if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                unsafe { mid($($arg),*) }
            } else {
                $body($($arg),*)
            }
        }
    };
}

multiversion!(adamw_serial, adamw_block, (p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]));
multiversion!(sgd_sf_serial, sgd_sf_block, (p: &mut [f32], g: &[f32], z: &mut [f32]));

/// [`adamw_block`] over a tensor, one task per block.
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    p.par_chunks_mut(BLOCK)
        .zip(g.par_chunks(BLOCK))
        .zip(m.par_chunks_mut(BLOCK))
        .zip(v.par_chunks_mut(BLOCK))
        .for_each(|(((p, g), m), v)| adamw_serial(p, g, m, v));
}

/// [`sgd_sf_block`] over a tensor, one task per block.
pub fn sgd_sf(p: &mut [f32], g: &[f32], z: &mut [f32]) {
    p.par_chunks_mut(BLOCK)
        .zip(g.par_chunks(BLOCK))
        .zip(z.par_chunks_mut(BLOCK))
        .for_each(|((p, g), z)| sgd_sf_serial(p, g, z));
}

/// Mean time (ns) of one benchmark from criterion's saved estimates.
fn mean_ns(group: &str, name: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_string());
    let path = format!("{dir}/criterion/{group}/{name}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Print each optimizer's time per byte as a fraction of its roofline's, per group.
pub fn print_table(groups: &[&str]) {
    let rows: [(&str, u64, &str); 8] = [
        ("sf_adamw", 28, "adamw_roofline"),
        ("sf_adamw_one_pass", 28, "adamw_roofline"),
        ("sf_sgd", 20, "roofline_20b"),
        ("adamc", 28, "adamw_roofline"),
        ("sf_adam_projection", 28, "adamw_roofline"),
        ("sf_adagrad_norm", 20, "roofline_20b"),
        ("sf_prodigy", 52, "adamw_roofline"),
        ("sf_plus", 48, "adamw_roofline"),
    ];
    println!("\nFraction of the roofline (time per byte of the roofline / of the optimizer):");
    print!("{:<20}", "optimizer");
    for g in groups {
        print!("{g:>12}");
    }
    println!();
    for (name, bytes, roof) in rows {
        print!("{name:<20}");
        for g in groups {
            let roof_bytes = if roof == "adamw_roofline" { 28.0 } else { 20.0 };
            match (mean_ns(g, name), mean_ns(g, roof)) {
                (Some(t), Some(r)) => {
                    print!("{:>12.2}", (r / roof_bytes) / (t / bytes as f64))
                }
                _ => print!("{:>12}", "-"),
            }
        }
        println!();
    }
    for g in groups {
        if let (Some(sf), Some(r)) = (mean_ns(g, "sf_adamw"), mean_ns(g, "adamw_roofline")) {
            println!(
                "{g}: sf_adamw {:.1} ms, adamw_roofline {:.1} ms",
                sf / 1e6,
                r / 1e6
            );
            if let Some(plus) = mean_ns(g, "sf_plus") {
                println!(
                    "{g}: sf_plus {:.1} ms = {:.2} × sf_adamw (48 B against 28 B per element)",
                    plus / 1e6,
                    plus / sf
                );
            }
        }
    }
}
