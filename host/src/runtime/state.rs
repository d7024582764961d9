//! What one instance of a connector holds while a call runs.

use super::GuestLimits;
use super::limits::{CallClock, MemoryLimiter};
use crate::capabilities::Capabilities;
use crate::capabilities::log::LogBudget;
use crate::connector_text::printable;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// How much a connector may print to stdout or stderr in one call before the rest is dropped.
const STDIO_CAPACITY: usize = 64 << 10;

/// The most handles a connector may hold on host objects at once (response bodies, records read,
/// and WASI's streams and pollables): a few are all a page needs, and each costs the host memory
/// its limits do not otherwise see.
pub const MAX_RESOURCES: usize = 4_096;

/// The most records a page may have when the engine does not say: its own default.
pub const DEFAULT_MAX_PAGE_RECORDS: usize = 100_000;

/// The store data of one connector instance.
pub struct HostState {
    pub(crate) capabilities: Capabilities,
    pub(super) limiter: MemoryLimiter,
    pub(super) call_clock: CallClock,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Bytes the connector holds in the host (response bodies, records read from them).
    held_bytes: usize,
    /// The most records one page may have (`limits: (max_page_records: ...)`).
    max_page_records: usize,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// What the connector has logged in this call, against the log's limits.
    pub(crate) log_budget: LogBudget,
    /// The turn of a request whose answer was a failure, held until the call ends or sends again.
    pub(crate) kept_turn: Option<crate::capabilities::http::Turn>,
    /// The time the call's requests spent waiting on the vendor's patience (backoffs before
    /// retries, pauses, room under a quota): not counted against the call's wall-clock limit,
    /// which is for a connector that does not return, not for a vendor that makes it wait.
    pub(crate) patient_wait: std::sync::Arc<crate::capabilities::http::PatientWait>,
    /// Small answers this call got, shared with identical requests of other workers until the
    /// call ends: the call keeps what it got (a token) before it returns.
    shared_answers: Vec<crate::capabilities::http::SharedAnswer>,
    /// This call, as the requests it makes know it.
    pub(crate) call: crate::capabilities::http::Call,
}

/// The most answers a call keeps shared: a connector calls for a token or two, not hundreds.
const MOST_SHARED_ANSWERS: usize = 8;

impl HostState {
    /// Keeps `answer` shared until the call ends; past a few, the oldest stops being shared.
    pub(crate) fn keep_shared_answer(
        &mut self,
        answer: Option<crate::capabilities::http::SharedAnswer>,
    ) {
        if let Some(answer) = answer {
            if self.shared_answers.len() >= MOST_SHARED_ANSWERS {
                self.shared_answers.remove(0);
            }
            self.shared_answers.push(answer);
        }
    }

    pub(crate) fn new(capabilities: Capabilities, limits: &GuestLimits) -> Self {
        let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
        // Nothing is granted: no preopened folders, no environment, no arguments, no sockets or
        // name lookups. Only stdio (captured) and a wall clock that is trawl's own.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(GuestWallClock(capabilities.clock.clone()))
            .build();
        HostState {
            capabilities,
            limiter: MemoryLimiter {
                limit: limits.memory_bytes,
            },
            call_clock: CallClock::new(limits.cpu_time),
            wasi,
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_RESOURCES);
                table
            },
            held_bytes: 0,
            max_page_records: DEFAULT_MAX_PAGE_RECORDS,
            stdout,
            stderr,
            log_budget: LogBudget::default(),
            kept_turn: None,
            patient_wait: Default::default(),
            shared_answers: Vec::new(),
            call: crate::capabilities::http::Call::begin(),
        }
    }

    /// Records time spent *waiting* in a host call (an HTTP round trip, a rate limit's wait,
    /// storage I/O), so that it does not count against the guest's CPU budget. Work the host does
    /// on the connector's behalf (reading a page, redacting) is not waiting: it counts.
    pub(crate) fn add_host_time(&mut self, spent: Duration) {
        self.call_clock.add_host_time(spent);
    }

    /// Fails the call with the CPU-time limit if it has spent its budget, for host calls whose
    /// work counts against it: the epoch check runs only while guest code does.
    pub(crate) fn check_cpu_budget(&self) -> wasmtime::Result<()> {
        self.call_clock.check()
    }

    /// The most records one page may have.
    pub(crate) fn max_page_records(&self) -> usize {
        self.max_page_records
    }

    pub(super) fn set_max_page_records(&mut self, records: usize) {
        self.max_page_records = records;
    }

    /// The connector's memory limit, which bounds what it holds in the host too.
    pub(crate) fn memory_limit(&self) -> usize {
        self.limiter.limit
    }

    /// How many more bytes the connector may hold in the host.
    pub(crate) fn room_to_hold(&self) -> usize {
        self.limiter.limit.saturating_sub(self.held_bytes)
    }

    /// Counts `bytes` held for as long as the returned [`Holding`] is not released: memory the
    /// host needs only while it serves one call.
    pub(crate) fn holding(&mut self, bytes: usize) -> wasmtime::Result<Holding> {
        let mut holding = Holding(0);
        holding.add(self, bytes)?;
        Ok(holding)
    }

    /// Puts `object` in the table of handles the connector holds, unless it holds as many as it
    /// may.
    pub(crate) fn push_resource<T: Send + 'static>(
        &mut self,
        object: T,
    ) -> wasmtime::Result<wasmtime::component::Resource<T>> {
        self.table.push(object).map_err(|error| match error {
            wasmtime::component::ResourceTableError::Full => {
                wasmtime::Error::new(super::LimitExceeded::Resources {
                    limit: MAX_RESOURCES,
                })
            }
            other => wasmtime::Error::new(other),
        })
    }

    /// The handles the connector holds on host objects (response bodies, records the host read).
    pub(crate) fn resources(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Counts `bytes` more held in the host for the connector, unless that would take it past its
    /// memory limit (the error is the limit): it may hold no more there than it could itself.
    pub(crate) fn hold(&mut self, bytes: usize) -> Result<(), usize> {
        let total = self.held_bytes.saturating_add(bytes);
        if total > self.limiter.limit {
            return Err(self.limiter.limit);
        }
        self.held_bytes = total;
        Ok(())
    }

    /// Counts `bytes` the connector no longer holds in the host.
    pub(crate) fn release(&mut self, bytes: usize) {
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
    }

    /// Moves whatever the connector printed into the log, each line made printable (a carriage
    /// return or an escape sequence in it cannot rewrite the lines around it); returns the last
    /// lines it printed to stderr (where a panic says where and why), without Rust's hint about
    /// backtraces.
    pub(super) fn flush_stdio(&mut self) -> Option<String> {
        let connector = self.capabilities.connector.clone();
        self.log_budget.report_dropped(&connector);
        let mut error_lines: Vec<String> = Vec::new();
        for (pipe, stream) in [(&self.stdout, "stdout"), (&self.stderr, "stderr")] {
            let contents = pipe.contents();
            // Lines end at a line feed only: `str::lines` would also end one at a carriage
            // return's line feed, and leave a lone carriage return in the line, escaped below.
            for line in String::from_utf8_lossy(&contents).split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if !line.trim().is_empty() {
                    let line = printable(line);
                    tracing::info!(target: "connector", connector = %connector, stream, "{line}");
                    if stream == "stderr" && !line.starts_with("note: ") {
                        error_lines.push(line.trim().to_string());
                    }
                }
            }
        }
        let tail = error_lines.len().saturating_sub(2);
        (!error_lines.is_empty()).then(|| {
            let last = error_lines[tail..].join(" ");
            crate::connector_text::printable_excerpt(&last, 4 << 10).into_owned()
        })
    }
}

/// Bytes counted as held in the host while one host call needs them; released by
/// [`Holding::release`] when it is done with them.
#[must_use]
pub(crate) struct Holding(usize);

impl Holding {
    /// Counts `bytes` more, or fails the call with the memory limit.
    pub(crate) fn add(&mut self, state: &mut HostState, bytes: usize) -> wasmtime::Result<()> {
        state
            .hold(bytes)
            .map_err(|limit| wasmtime::Error::new(super::LimitExceeded::Memory { limit }))?;
        self.0 += bytes;
        Ok(())
    }

    pub(crate) fn release(self, state: &mut HostState) {
        state.release(self.0);
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// WASI's wall clock, answered from trawl's clock so that a fixed clock fixes both.
struct GuestWallClock(crate::capabilities::clock::Clock);

impl HostWallClock for GuestWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_millis().max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::LimitExceeded;

    #[test]
    fn a_connector_holds_only_so_many_handles() {
        let mut state = HostState::new(Capabilities::none("test"), &GuestLimits::default());
        for _ in 0..MAX_RESOURCES {
            state.push_resource(0u8).unwrap();
        }
        let error = state.push_resource(0u8).unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<LimitExceeded>(),
                Some(LimitExceeded::Resources {
                    limit: MAX_RESOURCES
                })
            ),
            "{error}"
        );
    }

    #[test]
    fn what_a_call_holds_while_it_serves_is_let_go_of() {
        let limits = GuestLimits {
            memory_bytes: 1000,
            ..GuestLimits::default()
        };
        let mut state = HostState::new(Capabilities::none("test"), &limits);
        state.hold(400).unwrap();
        let mut holding = state.holding(500).unwrap();
        assert_eq!(state.room_to_hold(), 100);
        let error = holding.add(&mut state, 101).unwrap_err();
        assert!(error.to_string().contains("memory limit"), "{error}");
        holding.release(&mut state);
        assert_eq!(state.room_to_hold(), 600);
    }
}
