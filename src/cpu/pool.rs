//! A small fork-join thread pool tuned for the token loop.
//!
//! Decoding runs a few hundred short parallel regions per token (~20–50 µs each). A general
//! pool that puts idle workers to sleep pays a wake-up per region, which measured as 30 % of
//! decode time with rayon. Here workers spin briefly between regions and park only when the
//! engine goes idle.
//!
//! On wasm, threads are Web Workers sharing the module's memory (the multi-threaded build,
//! compiled with `atomics`): JavaScript sets the size with [`set_wasm_threads`] and starts each
//! worker, which calls [`serve_as_wasm_worker`]. The single-threaded build runs every region
//! inline.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// Spins before a worker parks: long enough to bridge the serial gaps between regions.
const SPINS_BEFORE_PARK: u32 = 200_000;
/// `state` packs `epoch:24 | n:20 | next:20`; a region has fewer than 2^20 tasks.
const FIELD: u64 = (1 << 20) - 1;
const MAX_TASKS: usize = FIELD as usize;

fn pack(epoch: u64, n: u64, next: u64) -> u64 {
    (epoch & 0xff_ffff) << 40 | n << 20 | next
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Threads of the wasm pool, the calling thread included; read when the pool is created.
static WASM_THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the wasm pool's thread count (the engine's own thread included). Only before the pool
/// is first used, and only in the multi-threaded build: elsewhere no worker could join.
pub fn set_wasm_threads(n: usize) -> Result<(), &'static str> {
    if !cfg!(all(target_arch = "wasm32", target_feature = "atomics")) {
        return Err("this build has no threads (it is not the multi-threaded wasm build)");
    }
    if POOL.get().is_some() {
        return Err("the thread pool is already running");
    }
    WASM_THREADS.store(n.clamp(1, 64), Ordering::Relaxed);
    Ok(())
}

/// Runs the calling thread as a pool worker, forever: the body of a wasm Web Worker.
pub fn serve_as_wasm_worker() {
    worker(&Pool::global().shared);
}

struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
}

struct Shared {
    /// Epoch, task count and next task index of the open region (`n = 0` when none is open).
    state: AtomicU64,
    job: AtomicPtr<Job<'static>>,
    done: AtomicUsize,
    /// Set when a task panicked; the region's caller re-raises it after the region closes.
    panicked: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

pub struct Pool {
    shared: Arc<Shared>,
    n_threads: usize,
    /// Serialises regions: one caller at a time drives the workers.
    driver: Mutex<()>,
}

impl Pool {
    /// The process-wide pool; `HEARTH_THREADS` overrides the thread count.
    pub fn global() -> &'static Pool {
        POOL.get_or_init(|| {
            if cfg!(target_arch = "wasm32") {
                return Pool::new(WASM_THREADS.load(Ordering::Relaxed));
            }
            let n = std::env::var("HEARTH_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            Pool::new(n)
        })
    }

    pub fn new(n_threads: usize) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut started = 1;
        if cfg!(target_arch = "wasm32") {
            // Workers attach later (`serve_as_wasm_worker`); until they do, the caller runs
            // every task itself, so a worker that never starts costs speed, not correctness.
            started = n_threads.max(1);
        } else {
            for _ in 1..n_threads.max(1) {
                let s = shared.clone();
                if std::thread::Builder::new().name("hearth-worker".into()).spawn(move || worker(&s)).is_ok() {
                    started += 1;
                }
            }
        }
        Self { shared, n_threads: started, driver: Mutex::new(()) }
    }

    pub fn threads(&self) -> usize {
        self.n_threads
    }

    /// Runs `f(i)` for every `i in 0..n`, the caller taking part, and returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n == 0 {
            return;
        }
        if self.n_threads == 1 || n == 1 {
            (0..n).for_each(f);
            return;
        }
        if n > MAX_TASKS {
            for start in (0..n).step_by(MAX_TASKS) {
                self.run(MAX_TASKS.min(n - start), &|i| f(start + i));
            }
            return;
        }
        let _guard = self.driver.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        let job = Job { f };
        // SAFETY: workers dereference the pointer only after claiming a task of this region,
        // and this function does not return before every claimed task has finished.
        let job_ptr = &job as *const Job<'_> as *mut Job<'static>;
        let epoch = (s.state.load(Ordering::Relaxed) >> 40) + 1;
        s.done.store(0, Ordering::Relaxed);
        s.job.store(job_ptr, Ordering::Release);
        s.state.store(pack(epoch, n as u64, 0), Ordering::Release);
        if s.sleepers.load(Ordering::Acquire) > 0 {
            let _l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        work(s);
        while s.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        s.state.store(pack(epoch, 0, 0), Ordering::Release);
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a parallel task panicked");
        }
    }
}

/// Claims and runs tasks of the open region until none are left.
fn work(s: &Shared) {
    loop {
        let cur = s.state.load(Ordering::Acquire);
        let (n, next) = ((cur >> 20) & FIELD, cur & FIELD);
        if next >= n {
            return;
        }
        if s.state.compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            // SAFETY: a claimed task keeps its region's caller inside `run`, and the caller
            // stored this region's job before opening it; the next job cannot be stored before
            // this task is counted done.
            let job = unsafe { &*s.job.load(Ordering::Acquire) };
            // A panicking task must still be counted, or the region would never close while
            // other threads hold its job pointer.
            if catch_unwind(AssertUnwindSafe(|| (job.f)(next as usize))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
            s.done.fetch_add(1, Ordering::Release);
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = s.state.load(Ordering::Acquire) >> 40;
    let mut idle = 0u32;
    loop {
        let epoch = s.state.load(Ordering::Acquire) >> 40;
        if epoch != seen {
            seen = epoch;
            idle = 0;
            work(s);
            continue;
        }
        idle += 1;
        if idle < SPINS_BEFORE_PARK {
            std::hint::spin_loop();
            continue;
        }
        let guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
        s.sleepers.fetch_add(1, Ordering::AcqRel);
        let guard = s
            .wake
            .wait_while(guard, |_| s.state.load(Ordering::Acquire) >> 40 == seen)
            .unwrap_or_else(|e| e.into_inner());
        s.sleepers.fetch_sub(1, Ordering::AcqRel);
        drop(guard);
        idle = 0;
    }
}
