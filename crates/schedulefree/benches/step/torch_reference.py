"""Time the official PyTorch code on the sizes of `benches/step.rs`, for the README's ratio.

Not part of the tests or CI. Needs torch (a CPU build works) and the `schedulefree` package
in a scratch virtual environment:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch schedulefree
    /tmp/torchenv/bin/python crates/schedulefree/benches/step/torch_reference.py

Prints milliseconds per step (median of timed steps after warm-up) and GB/s at the same byte
counts as the Rust bench (28 B/element for SF-AdamW and fused AdamW), on one thread and on
every core, for the flat tensor (64 Mi f32, or SF_BENCH_ELEMS) and the model layout
(100 × 704×704 + 100 × 4400).
"""

import importlib.metadata
import os
import statistics
import time

import schedulefree
import torch


def flat_shapes():
    return [(int(os.environ.get("SF_BENCH_ELEMS", 64 << 20)),)]


def model_shapes():
    return [(704, 704)] * 100 + [(4400,)] * 100


def make(shapes):
    params = [torch.nn.Parameter(torch.rand(s) - 0.5) for s in shapes]
    for p in params:
        p.grad = torch.rand_like(p) - 0.5
    return params


def time_steps(opt, steps=10, warmup=3):
    for _ in range(warmup):
        opt.step()
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.step()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def optimizers():
    return {
        "sf_adamw (schedulefree.AdamWScheduleFree)": lambda ps: schedulefree.AdamWScheduleFree(
            ps, lr=1e-3, weight_decay=0.01, warmup_steps=100
        ),
        "adamw fused (torch.optim.AdamW, fused=True)": lambda ps: torch.optim.AdamW(
            ps, lr=1e-3, weight_decay=0.01, fused=True
        ),
        "adamw foreach (torch.optim.AdamW)": lambda ps: torch.optim.AdamW(
            ps, lr=1e-3, weight_decay=0.01, foreach=True
        ),
    }


def main():
    print(f"torch {torch.__version__}, schedulefree {importlib.metadata.version('schedulefree')}")
    for threads in (1, os.cpu_count()):
        torch.set_num_threads(threads)
        for layout, shapes in (("flat", flat_shapes()), ("model", model_shapes())):
            n = sum(torch.Size(s).numel() for s in shapes)
            for name, build in optimizers().items():
                params = make(shapes)
                opt = build(params)
                if hasattr(opt, "train"):
                    opt.train()
                sec = time_steps(opt)
                print(
                    f"{layout}_{threads}t  {name:45s} {sec * 1e3:8.1f} ms  "
                    f"{28 * n / sec / 1e9:6.1f} GB/s (28 B/element)"
                )
                del opt, params


if __name__ == "__main__":
    main()
