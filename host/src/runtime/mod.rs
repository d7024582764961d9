//! Loads connector components and calls them inside wasmtime's sandbox.
//!
//! A connector gets trawl's capabilities (http, responses, clock, storage, log) and, because a
//! std guest needs them to link, a WASI context with nothing in it: no files, no environment, no
//! sockets, stdio captured into the log and the wall clock replaced by trawl's own. Every call runs in a fresh instance with a memory cap, a
//! budget of guest CPU time enforced with epoch interruption, and an outer wall-clock timeout
//! (epochs cannot interrupt a host call).

mod cache;
mod description;
mod discovery;
mod limits;
mod page;
mod state;

pub mod wit;

pub use discovery::{PluginDirs, PluginFile};
pub use limits::{GuestLimits, LimitExceeded};
pub use page::{Page, Record, RecordJson};
pub use state::{DEFAULT_MAX_PAGE_RECORDS, HostState, MAX_RESOURCES};

use crate::capabilities::Capabilities;
use cache::CompileCache;
use limits::EpochTicker;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wit::{ConnectorInfo, FetchError, PageRequest, Version};

/// Why a connector could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read connector {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a WebAssembly component trawl can load: {reason}\n\
         (connectors are built for wasm32-wasip2 against trawl:connector@0.3.0, 0.2.0 or 0.1.0)"
    )]
    Invalid { path: PathBuf, reason: String },
    #[error("connector {path} failed while describing itself: {source}")]
    Describe { path: PathBuf, source: CallError },
}

/// Why a call into a connector did not return.
#[derive(Debug, Error)]
pub enum CallError {
    #[error("{0}")]
    Limit(#[from] LimitExceeded),
    #[error(
        "connector did not return within the {}s wall-clock limit (`limits: (call_timeout_seconds: ...)` in the config)",
        .0.as_secs()
    )]
    WallClock(Duration),
    #[error("connector crashed: {0}")]
    Trap(String),
    #[error("connector broke the contract: {0}")]
    Contract(String),
}

/// The wasmtime engine, with the settings and caches every connector shares.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: CompileCache,
    limits: GuestLimits,
    /// One permit per slot of the instance pool, so that a call waits for a slot rather than
    /// failing when every slot is taken.
    slots: Arc<Semaphore>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// A runtime that caches compiled connectors in `cache_dir` (none: compile every time).
    pub fn new(cache_dir: Option<PathBuf>, limits: GuestLimits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Connectors make plain synchronous calls; the concurrent component model only costs time.
        config.concurrency_support(false);
        config.allocation_strategy(instance_pool(&limits));
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Every version's imports: 0.1.0's world, and what later versions added to it.
        wit::v0_1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| {
            state
        })?;
        wit::v0_2::trawl::connector0_2_0::responses::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )?;
        wit::v0_3::trawl::connector0_3_0::keyed_pages::add_to_linker::<
            HostState,
            HasSelf<HostState>,
        >(&mut linker, |state| state)?;

        Ok(Runtime {
            _ticker: EpochTicker::start(engine.clone()),
            cache: CompileCache::new(cache_dir),
            slots: Arc::new(Semaphore::new(pool_slots(&limits) as usize)),
            engine,
            linker,
            limits,
        })
    }

    /// Loads a connector file and asks it to describe itself.
    pub async fn load(&self, path: &Path) -> Result<Connector, LoadError> {
        self.load_file(&ConnectorFile::read(path)?).await
    }

    /// Compiles the bytes of a connector file read before (and checked, by their digest, against
    /// what the user approved), and asks it to describe itself: what runs is exactly what was
    /// checked.
    pub async fn load_file(&self, file: &ConnectorFile) -> Result<Connector, LoadError> {
        let (path, bytes, sha256) = (&file.path, &file.bytes, file.sha256.clone());
        let invalid = |reason: String| LoadError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        check_header(bytes).map_err(|reason| invalid(reason.to_string()))?;
        let component = self
            .cache
            .component(&self.engine, bytes, &sha256)
            .map_err(|error| invalid(format!("{error:#}")))?;
        let version = contract_version(&self.engine, &component).map_err(invalid)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| invalid(format!("{error:#}")))?;
        let pre = match version {
            Version::V0_1 => wit::v0_1::PluginPre::new(instance_pre).map(Bindings::V0_1),
            Version::V0_2 => wit::v0_2::PluginPre::new(instance_pre).map(Bindings::V0_2),
            Version::V0_3 => wit::v0_3::PluginPre::new(instance_pre).map(Bindings::V0_3),
        }
        .map_err(|error| invalid(format!("{error:#}")))?;
        let sandbox = Sandbox {
            pre,
            engine: self.engine.clone(),
            limits: self.limits.clone(),
            slots: self.slots.clone(),
            max_page_records: AtomicUsize::new(DEFAULT_MAX_PAGE_RECORDS),
        };
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let info = sandbox
            .call(Capabilities::none(&name), async |store| {
                Ok(match &sandbox.pre {
                    Bindings::V0_1(pre) => {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        let connector = plugin.trawl_connector_connector();
                        connector.call_describe(store).await?.into()
                    }
                    Bindings::V0_2(pre) => {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        let connector = plugin.trawl_connector0_2_0_connector();
                        connector.call_describe(store).await?.into()
                    }
                    Bindings::V0_3(pre) => {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        let connector = plugin.trawl_connector0_3_0_connector();
                        connector.call_describe(store).await?
                    }
                })
            })
            .await
            .map_err(|source| LoadError::Describe {
                path: path.to_path_buf(),
                source,
            })?;
        description::check(&info).map_err(invalid)?;
        Ok(Connector {
            path: path.to_path_buf(),
            version,
            sha256,
            sandbox,
            info,
        })
    }
}

/// Instances come from a pool of slots made once and reset between calls, rather than each call
/// mapping, faulting in and unmapping its own memory and stack (a quarter of the host's system
/// time, measured on a run of 720 pages). A reset slot is zeroed, so a call still sees nothing of the one before.
fn instance_pool(limits: &GuestLimits) -> InstanceAllocationStrategy {
    /// Bytes of a memory kept mapped and zeroed with `memset` on reuse instead of handed back to
    /// the kernel and faulted in again: about what a connector's heap uses for one page.
    const KEEP_RESIDENT: usize = 4 << 20;
    let calls = pool_slots(limits);
    let mut pool = PoolingAllocationConfig::new();
    // A connector component holds a few core instances (its code and the component model's
    // adapters), each with at most one memory and table.
    pool.total_component_instances(calls)
        .total_core_instances(calls * 8)
        .total_memories(calls * 2)
        .total_tables(calls * 8)
        .total_stacks(calls)
        .max_memory_size(limits.memory_bytes.next_multiple_of(WASM_PAGE))
        .linear_memory_keep_resident(KEEP_RESIDENT.min(limits.memory_bytes))
        .table_keep_resident(64 << 10)
        // On Linux 6.7 and later the kernel says which pages a call wrote, and only those are
        // zeroed (7% of a run's CPU time on 720 pages); elsewhere the whole kept part is.
        .pagemap_scan(Enabled::Auto);
    InstanceAllocationStrategy::Pooling(pool)
}

/// Slots of the instance pool. Each reserves address space for a whole memory (4 GiB, so that
/// guest code needs no bounds checks), so their number is capped; more calls than slots wait.
fn pool_slots(limits: &GuestLimits) -> u32 {
    const MAX_SLOTS: u32 = 256;
    limits.concurrent_calls.clamp(1, MAX_SLOTS)
}

/// The unit a linear memory grows by.
const WASM_PAGE: usize = 64 << 10;

/// Tells a file that is not WebAssembly, or a core module, from a component before wasmtime's
/// parser does it in far less friendly words.
fn check_header(bytes: &[u8]) -> Result<(), &'static str> {
    const MAGIC: &[u8] = b"\0asm";
    match bytes {
        [] => Err("the file is empty"),
        _ if bytes.len() < 8 || !bytes.starts_with(MAGIC) => Err("it is not a WebAssembly file"),
        // Bytes 6 and 7 are the layer: 0 for a core module, 1 for a component.
        _ if bytes[6..8] == [0, 0] => Err("it is a core WebAssembly module, not a component"),
        _ => Ok(()),
    }
}

/// Which version of the contract a component was built against, from the interface it exports.
fn contract_version(
    engine: &Engine,
    component: &wasmtime::component::Component,
) -> Result<Version, String> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    wit::EXPORTS
        .iter()
        .find(|(interface, _)| exports.iter().any(|name| name == interface))
        .map(|&(_, version)| version)
        .ok_or_else(|| {
            let exported = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            format!("it exports {exported}, not a trawl connector interface")
        })
}

/// The largest connector file trawl reads: real ones are a few hundred KiB.
const MAX_CONNECTOR_BYTES: u64 = 64 << 20;

/// A connector file's bytes and their sha256, read once, so that the digest checked against an
/// approval is the digest of exactly what is compiled.
pub struct ConnectorFile {
    path: PathBuf,
    bytes: Vec<u8>,
    sha256: String,
}

impl ConnectorFile {
    /// Reads `path`, which must be a regular file (or a link to one) of at most 64 MiB: a FIFO or
    /// a device left in a plugin folder is refused without blocking on it or reading it.
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        let bytes =
            crate::files::read_regular_file(path, MAX_CONNECTOR_BYTES).map_err(|source| {
                LoadError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        Ok(ConnectorFile {
            path: path.to_path_buf(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sha256 of the bytes read, in lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A loaded connector, ready to be instantiated once per call.
pub struct Connector {
    path: PathBuf,
    version: Version,
    /// The digest of the bytes that were compiled (hex).
    sha256: String,
    sandbox: Sandbox,
    info: ConnectorInfo,
}

impl Connector {
    /// What the connector said about itself when it was loaded.
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// The version of the contract it was built against.
    pub fn contract_version(&self) -> Version {
        self.version
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sha256 (hex) of exactly the bytes that were compiled and run.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Limits the pages the host reads for this connector to `records` records each
    /// (`limits: (max_page_records: ...)`; [`DEFAULT_MAX_PAGE_RECORDS`] until set).
    pub fn limit_page_records(&self, records: usize) {
        self.sandbox
            .max_page_records
            .store(records, Ordering::Relaxed);
    }

    /// Fetches one page. The outer `Result` is the sandbox's verdict (a limit hit, a crash, a
    /// broken contract); the inner one is the connector's own answer.
    pub async fn fetch_page(
        &self,
        capabilities: Capabilities,
        request: &PageRequest,
    ) -> Result<Result<Page, FetchError>, CallError> {
        self.sandbox
            .call(capabilities, async |store| {
                // The outer `Result` says whether the answer keeps to the contract.
                Ok(match &self.sandbox.pre {
                    Bindings::V0_1(pre) => {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        let connector = plugin.trawl_connector_connector();
                        let answer = connector
                            .call_fetch_page(&mut *store, &request.into())
                            .await?;
                        if let Ok(page) = &answer {
                            page::check_count(store.data(), page.records.len())?;
                        }
                        Ok(answer.map(Page::from).map_err(FetchError::from))
                    }
                    Bindings::V0_2(pre) => {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        let connector = plugin.trawl_connector0_2_0_connector();
                        match connector
                            .call_fetch_page(&mut *store, &request.into())
                            .await?
                        {
                            Ok(page) => {
                                let kept = page.read.as_ref().map_or(0, |read| read.kept.len());
                                page::check_count(store.data(), page.records.len() + kept)?;
                                page::take_v0_2(store.data_mut(), page).map(Ok)
                            }
                            Err(error) => Ok(Err(error.into())),
                        }
                    }
                    Bindings::V0_3(pre) => {
                        let plugin = pre.instantiate_async(&mut *store).await?;
                        let connector = plugin.trawl_connector0_3_0_connector();
                        match connector.call_fetch_page(&mut *store, request).await? {
                            Ok(page) => {
                                page::check_count(store.data(), page::listed(&page))?;
                                page::take(store.data_mut(), page).map(Ok)
                            }
                            Err(error) => Ok(Err(error)),
                        }
                    }
                })
            })
            .await?
            .map_err(CallError::Contract)
    }
}

/// The generated bindings of the contract version a connector was built against.
enum Bindings {
    V0_1(wit::v0_1::PluginPre<HostState>),
    V0_2(wit::v0_2::PluginPre<HostState>),
    V0_3(wit::v0_3::PluginPre<HostState>),
}

/// A compiled connector and the limits every call into it runs under.
struct Sandbox {
    pre: Bindings,
    engine: Engine,
    limits: GuestLimits,
    slots: Arc<Semaphore>,
    /// The most records a page read in the host may have: the engine's page limit, checked as
    /// the page is read rather than once it is all in memory.
    max_page_records: AtomicUsize,
}

impl Sandbox {
    /// Runs `body` in a fresh store, where it instantiates the connector: a trap leaves nothing
    /// behind for the next call.
    async fn call<R>(
        &self,
        capabilities: Capabilities,
        body: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the instance pool's semaphore is never closed");
        let mut state = HostState::new(capabilities, &self.limits);
        state.set_max_page_records(self.max_page_records.load(Ordering::Relaxed));
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        limits::arm_cpu_budget(&mut store);
        let patient_wait = store.data().patient_wait.clone();
        let work = body(&mut store);
        let outcome = within_wall_clock(self.limits.call_timeout, &patient_wait, work).await;
        let last_error_line = store.data_mut().flush_stdio();
        match outcome {
            Err(_) => Err(CallError::WallClock(self.limits.call_timeout)),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(match error.downcast_ref::<LimitExceeded>() {
                Some(limit) => CallError::Limit(limit.clone()),
                None => CallError::Trap(trap_message(&error, last_error_line)),
            }),
        }
    }
}

/// Runs `work` for at most `limit`, not counting the time its requests spent waiting on the
/// vendor's patience (`patient`, which counts the wait going on too): a call that waits out a
/// long streak of 503s, or a quota's pause, is not a connector that hangs.
async fn within_wall_clock<R>(
    limit: Duration,
    patient: &crate::capabilities::http::PatientWait,
    work: impl Future<Output = R>,
) -> Result<R, tokio::time::error::Elapsed> {
    let started = tokio::time::Instant::now();
    let mut work = std::pin::pin!(work);
    loop {
        let excused = patient.waited();
        let deadline = started + limit.saturating_add(excused);
        match tokio::time::timeout_at(deadline, &mut work).await {
            Ok(value) => return Ok(value),
            Err(elapsed) if patient.waited() == excused => return Err(elapsed),
            Err(_) => {}
        }
    }
}

/// The first line of a trap, and the last thing the guest printed to stderr (its panic message,
/// when it panicked).
fn trap_message(error: &wasmtime::Error, last_error_line: Option<String>) -> String {
    let trap = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    // A guest's own error text can reach here (a panic's message, a component-model error
    // carrying its strings): made printable like all else it says.
    let trap = crate::connector_text::printable_excerpt(&trap, 4 << 10);
    match last_error_line {
        Some(line) => format!("{trap} (it printed: {line})"),
        None => trap.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_header;

    #[tokio::test(start_paused = true)]
    async fn waiting_on_the_vendor_does_not_count_against_the_wall_clock() {
        use super::within_wall_clock;
        use crate::capabilities::http::{PATIENT_WAIT, PatientWait};
        use std::sync::Arc;
        use std::time::Duration;
        let limit = Duration::from_secs(10);
        // 35 s in all: a 30-second pause (longer than the limit by itself), then 5 s of the
        // call's own.
        let patient = Arc::new(PatientWait::default());
        let call = PATIENT_WAIT.scope(patient.clone(), async {
            PatientWait::during(tokio::time::sleep(Duration::from_secs(30))).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            "done"
        });
        assert_eq!(within_wall_clock(limit, &patient, call).await, Ok("done"));
        assert_eq!(patient.waited(), Duration::from_secs(30));
        // A call that hangs on its own is stopped at the limit.
        let started = tokio::time::Instant::now();
        let idle = PatientWait::default();
        let hung = tokio::time::sleep(Duration::from_secs(3600));
        assert!(within_wall_clock(limit, &idle, hung).await.is_err());
        assert_eq!(started.elapsed(), limit);
    }

    #[test]
    fn headers_are_told_apart() {
        assert_eq!(check_header(b""), Err("the file is empty"));
        assert_eq!(
            check_header(b"PK\x03\x04zipfile"),
            Err("it is not a WebAssembly file")
        );
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core")
        );
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
    }
}
