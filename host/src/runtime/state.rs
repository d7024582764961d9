//! What one instance of a connector holds while a call runs.

use super::GuestLimits;
use super::limits::{CallClock, MemoryLimiter};
use crate::capabilities::Capabilities;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// How much a connector may print to stdout or stderr in one call before the rest is dropped.
const STDIO_CAPACITY: usize = 64 << 10;

/// The store data of one connector instance.
pub struct HostState {
    pub(crate) capabilities: Capabilities,
    pub(super) limiter: MemoryLimiter,
    pub(super) call_clock: CallClock,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Bytes the connector holds in the host (response bodies, records read from them).
    held_bytes: usize,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// The turn of a request whose answer was a failure, held until the call ends or sends again.
    pub(crate) kept_turn: Option<crate::capabilities::http::Turn>,
}

impl HostState {
    pub(super) fn new(capabilities: Capabilities, limits: &GuestLimits) -> Self {
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
            table: ResourceTable::new(),
            held_bytes: 0,
            stdout,
            stderr,
            kept_turn: None,
        }
    }

    /// Records time spent serving a host call, so that it does not count against the guest's CPU
    /// budget.
    pub(crate) fn add_host_time(&mut self, spent: Duration) {
        self.call_clock.add_host_time(spent);
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

    /// Moves whatever the connector printed into the log; returns the last lines it printed to
    /// stderr (where a panic says where and why), without Rust's hint about backtraces.
    pub(super) fn flush_stdio(&mut self) -> Option<String> {
        let connector = self.capabilities.connector.clone();
        let mut error_lines: Vec<String> = Vec::new();
        for (pipe, stream) in [(&self.stdout, "stdout"), (&self.stderr, "stderr")] {
            let contents = pipe.contents();
            for line in String::from_utf8_lossy(&contents).lines() {
                if !line.trim().is_empty() {
                    tracing::info!(target: "connector", connector = %connector, stream, "{line}");
                    if stream == "stderr" && !line.starts_with("note: ") {
                        error_lines.push(line.trim().to_string());
                    }
                }
            }
        }
        let tail = error_lines.len().saturating_sub(2);
        (!error_lines.is_empty()).then(|| error_lines[tail..].join(" "))
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
