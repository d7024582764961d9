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

/// The most entries a connector's description may list in all (streams, params, hosts,
/// settings, columns, choices, rate limits): real connectors list tens.
pub const MAX_DESCRIPTION_ENTRIES: usize = 4_096;
/// The most bytes of text a connector's description may hold in all. It is kept for the whole
/// run and printed by `trawl describe`.
pub const MAX_DESCRIPTION_BYTES: usize = 256 << 10;
/// The longest one text of a description may be (a stream's description, a param's help).
pub const MAX_DESCRIPTION_TEXT: usize = 4 << 10;

/// Refuses a description bigger than the limits above, naming what is too big.
pub(super) fn check_description_size(info: &super::wit::ConnectorInfo) -> Result<(), String> {
    use super::wit::{HostSetting, ParamKind};
    let mut size = DescriptionSize::default();
    let settings = |size: &mut DescriptionSize, settings: &[HostSetting]| {
        size.entries(settings.len());
        for setting in settings {
            size.text("a setting's key", &setting.key);
            size.maybe("a setting's default", &setting.default);
            size.maybe("a setting's variable", &setting.env);
        }
    };
    for (what, name) in info
        .streams
        .iter()
        .map(|stream| ("a stream's name", &stream.name))
        .chain(
            info.params
                .iter()
                .map(|param| ("a param's name", &param.name)),
        )
        .chain(info.hosts.iter().map(|host| ("a host", host)))
    {
        size.name(what, name);
    }
    size.text("its name", &info.name);
    size.text("its version", &info.version);
    size.text("its description", &info.description);
    size.entries(info.streams.len());
    for stream in &info.streams {
        size.text("a stream's name", &stream.name);
        size.text("a stream's description", &stream.description);
        size.entries(stream.columns.len());
        for column in &stream.columns {
            size.text("a column", column);
        }
        settings(&mut size, &stream.settings);
        if let Some(field) = &stream.time_field {
            size.text("a time field", &field.path);
        }
    }
    size.entries(info.params.len());
    for param in &info.params {
        size.text("a param's name", &param.name);
        size.text("a param's help", &param.help);
        size.maybe("a param's default", &param.default);
        size.maybe("a param's variable", &param.env);
        size.entries(param.secret_hosts.len());
        for host in &param.secret_hosts {
            size.text("a secret's host", host);
        }
        if let ParamKind::Choice(choices) = &param.kind {
            size.entries(choices.len());
            for choice in choices {
                size.text("a choice", choice);
            }
        }
    }
    size.entries(info.hosts.len());
    for host in &info.hosts {
        size.text("a host", host);
    }
    settings(&mut size, &info.settings);
    size.entries(info.rate_limits.len());
    size.verdict()
}

/// What a description holds, and the first text too long.
#[derive(Default)]
struct DescriptionSize {
    entries: usize,
    bytes: usize,
    too_long: Option<(&'static str, usize)>,
    /// The first name with a character that would change how a line it is printed in reads.
    unprintable: Option<(&'static str, String)>,
}

impl DescriptionSize {
    fn entries(&mut self, count: usize) {
        self.entries = self.entries.saturating_add(count);
    }

    fn text(&mut self, what: &'static str, text: &str) {
        self.bytes = self.bytes.saturating_add(text.len());
        if text.len() > MAX_DESCRIPTION_TEXT && self.too_long.is_none() {
            self.too_long = Some((what, text.len()));
        }
    }

    /// A name the host prints in its own lines (log lines, errors, file names): it must be
    /// printable as it is.
    fn name(&mut self, what: &'static str, name: &str) {
        if self.unprintable.is_none()
            && let std::borrow::Cow::Owned(escaped) = crate::connector_text::printable(name)
        {
            self.unprintable = Some((what, escaped));
        }
    }

    fn maybe(&mut self, what: &'static str, text: &Option<String>) {
        if let Some(text) = text {
            self.text(what, text);
        }
    }

    fn verdict(self) -> Result<(), String> {
        if let Some((what, escaped)) = self.unprintable {
            return Err(format!(
                "{what} `{}` has control or bidi characters",
                crate::connector_text::printable_excerpt(&escaped, 256)
            ));
        }
        if let Some((what, len)) = self.too_long {
            return Err(format!(
                "{what} is {len} bytes long; a description's texts are at most \
                 {MAX_DESCRIPTION_TEXT} bytes each"
            ));
        }
        if self.entries > MAX_DESCRIPTION_ENTRIES {
            return Err(format!(
                "it lists {} streams, params, hosts, settings and such; at most \
                 {MAX_DESCRIPTION_ENTRIES} in all",
                self.entries
            ));
        }
        if self.bytes > MAX_DESCRIPTION_BYTES {
            return Err(format!(
                "its description holds {} bytes of text; at most {} KiB",
                self.bytes,
                MAX_DESCRIPTION_BYTES >> 10
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::wit::{ConnectorInfo, ParamInfo, ParamKind, StreamInfo};

    fn info(streams: usize, description: String) -> ConnectorInfo {
        let stream = |index: usize| StreamInfo {
            name: format!("s{index}"),
            description: description.clone(),
            max_window: 0,
            default_lookback: 0,
            overlap: 0,
            lag: 0,
            columns: vec![],
            settings: vec![],
            time_field: None,
        };
        ConnectorInfo {
            name: "big".into(),
            version: "1".into(),
            description: "x".into(),
            streams: (0..streams).map(stream).collect(),
            params: vec![ParamInfo {
                name: "p".into(),
                help: "h".into(),
                kind: ParamKind::Choice(vec!["a".into(); 10]),
                required: false,
                default: None,
                env: None,
                secret: false,
                secret_hosts: vec![],
            }],
            hosts: vec![],
            settings: vec![],
            rate_limits: vec![],
        }
    }

    #[test]
    fn a_description_bigger_than_a_real_connectors_is_refused() {
        assert_eq!(check_description_size(&info(10, "d".into())), Ok(()));
        let error = check_description_size(&info(100_000, "d".into())).unwrap_err();
        assert_eq!(
            error,
            "it lists 100011 streams, params, hosts, settings and such; at most 4096 in all"
        );
        let error = check_description_size(&info(1, "d".repeat(1 << 20))).unwrap_err();
        assert_eq!(
            error,
            "a stream's description is 1048576 bytes long; a description's texts are at most 4096 \
             bytes each"
        );
        let mut forged = info(1, "d".into());
        forged.streams[0].name = "audit\nERROR forged".into();
        assert_eq!(
            check_description_size(&forged).unwrap_err(),
            "a stream's name `audit\\nERROR forged` has control or bidi characters"
        );
        let error = check_description_size(&info(100, "d".repeat(4000))).unwrap_err();
        assert!(error.starts_with("its description holds 400"), "{error}");
    }
}
