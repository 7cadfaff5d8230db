//! Run-time choice of the instruction set the fused kernel is compiled for. The default
//! x86-64 target only guarantees SSE2; the kernel is compiled a second and third time with
//! AVX2 and AVX-512F enabled and picks the widest the CPU reports. IEEE-754 addition,
//! multiplication, division and square root round the same in every lane width and Rust
//! never contracts `a·b + c` into a fused multiply-add, so every variant gives the same bits.

/// An instruction set the kernel has a compiled variant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Whatever the build target enables (SSE2 on default x86-64).
    Generic,
    /// AVX2 (256-bit vectors).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F (512-bit vectors).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest variant this CPU runs (`SCHEDULEFREE_ISA=generic` forces the portable one,
    /// for comparing against it). Cheap: the standard library caches the CPU query.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if forced_generic() {
                return Isa::Generic;
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Generic
    }

    /// Every variant this CPU runs, portable first (for tests comparing them bit for bit).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Generic];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Isa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }
}

/// Whether `SCHEDULEFREE_ISA=generic` is set (read once).
#[cfg(target_arch = "x86_64")]
fn forced_generic() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("SCHEDULEFREE_ISA").is_ok_and(|v| v == "generic"))
}
