//! `step` allocates nothing after each parameter's first gradient (DESIGN.md §3).
//! A counting global allocator observes every heap allocation made by this test binary.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use schedulefree::{AdamWScheduleFree, GroupConfig, Param, RAdamScheduleFree, SgdScheduleFree};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn steps_allocate(mut step: impl FnMut(usize)) -> usize {
    step(0); // first step creates state
    let before = ALLOCS.load(Ordering::SeqCst);
    for i in 1..50 {
        step(i);
    }
    ALLOCS.load(Ordering::SeqCst) - before
}

#[test]
fn steady_state_steps_do_not_allocate() {
    let mut a = vec![0.5f32; 1000];
    let mut b = vec![-0.25f32; 77];
    let ga = vec![0.1f32; 1000];
    let gb = vec![-0.2f32; 77];

    let mut sgd = SgdScheduleFree {
        lr: 0.1,
        weight_decay: 0.01,
        warmup_steps: 5,
        ..Default::default()
    }
    .build::<f32>()
    .expect("config");
    let g1 = sgd
        .add_group(GroupConfig {
            lr: 0.2,
            weight_decay: 0.0,
        })
        .expect("group");
    sgd.add_param("a", &[10, 100]).expect("name");
    sgd.add_param_to(g1, "b", &[77]).expect("name");
    let n = steps_allocate(|_| {
        sgd.step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
            .expect("step");
    });
    assert_eq!(n, 0, "SgdScheduleFree::step allocated {n} times");

    let mut adam = AdamWScheduleFree {
        inner_momentum: 0.9,
        weight_decay: 0.1,
        ..Default::default()
    }
    .build::<f32>()
    .expect("config");
    adam.add_param("a", &[1000]).expect("name");
    let n = steps_allocate(|_| {
        adam.step(&mut [Param::new("a", &mut a, &ga)])
            .expect("step");
    });
    assert_eq!(n, 0, "AdamWScheduleFree::step allocated {n} times");

    let mut radam = RAdamScheduleFree::default().build::<f32>().expect("config");
    radam.add_param("b", &[77]).expect("name");
    let n = steps_allocate(|_| {
        radam
            .step(&mut [Param::new("b", &mut b, &gb)])
            .expect("step");
    });
    assert_eq!(n, 0, "RAdamScheduleFree::step allocated {n} times");

    // Control: the counter does see allocations, so the assertions above can fail.
    let before = ALLOCS.load(Ordering::SeqCst);
    let v = std::hint::black_box(vec![1u8; 10]);
    assert!(ALLOCS.load(Ordering::SeqCst) > before && v.len() == 10);
}
