//! The threads of a CPU backend: a rayon pool natively, the calling thread in wasm32.
//!
//! Everything parallel in the CPU backend goes through the four functions here (`Pool::install`,
//! `current_threads`, `join`, `for_each_mut`), so the wasm32 build is the same code on one thread.

#[cfg(not(target_arch = "wasm32"))]
mod rayon_pool {
    use std::sync::{Arc, OnceLock};

    /// A handle on a rayon pool (cheap to clone).
    #[derive(Clone)]
    pub struct Pool(Arc<rayon::ThreadPool>);

    static SHARED: OnceLock<Pool> = OnceLock::new();

    impl Pool {
        /// The pool every backend uses unless told otherwise: `RAYON_NUM_THREADS` threads, else one per logical CPU.
        pub fn shared() -> Pool {
            SHARED.get_or_init(|| Pool::build(0)).clone()
        }
        /// A pool of its own with `n` threads (0: as [`Pool::shared`]).
        pub fn build(n: usize) -> Pool {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("sgd-lab-cpu-{i}"))
                .build()
                .expect("the CPU backend could not start its threads");
            Pool(Arc::new(pool))
        }
        pub fn threads(&self) -> usize {
            self.0.current_num_threads()
        }
        /// Runs `f` on a thread of the pool (so that nested `join`s stay inside it).
        pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
            self.0.install(f)
        }
    }

    /// Threads available to a GEMM called from here: those of the pool the caller runs in, 1 outside any pool.
    pub fn current_threads() -> usize {
        if rayon::current_thread_index().is_some() { rayon::current_num_threads() } else { 1 }
    }

    pub fn join<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
        rayon::join(a, b);
    }

    /// `f` on every item, items handed out one by one to the pool's threads.
    pub fn for_each_mut<X: Send>(items: &mut [X], f: impl Fn(&mut X) + Sync + Send) {
        use rayon::prelude::*;
        items.par_iter_mut().with_max_len(1).for_each(f)
    }
}
#[cfg(not(target_arch = "wasm32"))]
pub use rayon_pool::*;

/// The wasm32 stand-in: one thread, no pool.
#[cfg(target_arch = "wasm32")]
mod one_thread {
    #[derive(Clone)]
    pub struct Pool;

    impl Pool {
        pub fn shared() -> Pool {
            Pool
        }
        pub fn threads(&self) -> usize {
            1
        }
        pub fn install<R>(&self, f: impl FnOnce() -> R) -> R {
            f()
        }
    }

    pub fn current_threads() -> usize {
        1
    }

    pub fn join<A: FnOnce(), B: FnOnce()>(a: A, b: B) {
        a();
        b();
    }

    pub fn for_each_mut<X>(items: &mut [X], f: impl Fn(&mut X)) {
        items.iter_mut().for_each(f)
    }
}
#[cfg(target_arch = "wasm32")]
pub use one_thread::*;
