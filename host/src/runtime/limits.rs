//! The limits that stop a connector from hurting the host: memory, guest CPU time, wall time.

use super::HostState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};

/// How often the engine's epoch advances; the resolution of the CPU budget.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every call into a connector.
#[derive(Clone, Debug)]
pub struct GuestLimits {
    /// The most linear memory (and tables) one instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// The most time one call may spend running guest code and host work done on its behalf
    /// (reading a page); time waiting on the host's HTTP and storage does not count.
    pub cpu_time: Duration,
    /// The most wall-clock time one call may take, host calls included.
    pub call_timeout: Duration,
    /// Calls that may run at once: each holds one slot of the instance pool for as long as it
    /// runs (HTTP waits included); further calls wait for a slot.
    pub concurrent_calls: u32,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(10),
            call_timeout: Duration::from_secs(900),
            concurrent_calls: 32,
        }
    }
}

/// A limit a connector ran into; the call is aborted.
#[derive(Clone, Debug, Error)]
pub enum LimitExceeded {
    #[error("connector tried to use more than {} MiB of memory (the memory limit, `limits: (memory_mib: ...)` in the config)", .limit >> 20)]
    Memory { limit: usize },
    #[error("connector ran for more than {}s of CPU time in one call (the CPU limit, `limits: (cpu_seconds: ...)` in the config)", .limit.as_secs_f64())]
    CpuTime { limit: Duration },
    #[error(
        "connector read a page of more than {limit} records (the page limit, `limits: (max_page_records: ...)` in the config)"
    )]
    PageRecords { limit: usize },
    #[error(
        "connector held more than {limit} handles on host objects at once (responses, records read, streams); a connector holds a few at a time, whatever its config"
    )]
    Resources { limit: usize },
}

/// Caps memory and table growth of one store.
pub(super) struct MemoryLimiter {
    pub limit: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                limit: self.limit,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table entry is a pointer or two; count it against the same cap.
        if desired.saturating_mul(16) > self.limit {
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                limit: self.limit,
            }));
        }
        Ok(true)
    }
}

/// Time spent by the current call, split between guest code and host calls.
pub(super) struct CallClock {
    started: Instant,
    in_host: Duration,
    budget: Duration,
}

impl CallClock {
    pub fn new(budget: Duration) -> Self {
        CallClock {
            started: Instant::now(),
            in_host: Duration::ZERO,
            budget,
        }
    }

    /// Records time spent inside a host call, which is not the guest's to pay for.
    pub fn add_host_time(&mut self, spent: Duration) {
        self.in_host += spent;
    }

    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.in_host)
    }

    /// The CPU-time limit's error if the call has spent its budget.
    pub fn check(&self) -> wasmtime::Result<()> {
        if self.guest_time() > self.budget {
            return Err(wasmtime::Error::new(LimitExceeded::CpuTime {
                limit: self.budget,
            }));
        }
        Ok(())
    }
}

/// Checks the guest's CPU budget at every epoch tick, yielding to the async runtime in between so
/// that a busy connector never starves the other workers.
pub(super) fn arm_cpu_budget(store: &mut Store<HostState>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|context| {
        context.data().call_clock.check()?;
        Ok(UpdateDeadline::Yield(1))
    });
}

/// Advances the engine's epoch on a background thread until dropped.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("trawl-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
