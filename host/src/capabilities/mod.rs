//! The capabilities trawl gives a connector, one module each: outbound HTTP, responses whose body
//! stays in the host (and pages read there), a clock, a key-value store and a log. Each module implements its WIT interface for [`HostState`]; a connector can do
//! nothing else.
//!
//! [`HostState`]: crate::runtime::HostState

pub mod clock;
pub mod http;
pub mod log;
pub mod responses;
pub mod storage;

use std::sync::Arc;

/// What one connector may use during a run; cloned into every call.
#[derive(Clone)]
pub struct Capabilities {
    /// The connector's name, for log lines.
    pub connector: Arc<str>,
    pub clock: clock::Clock,
    /// `None` while the connector describes itself: every request is denied.
    pub http: Option<Arc<http::HttpCapability>>,
    /// `None` while the connector describes itself: storage is unavailable.
    pub storage: Option<storage::StorageScope>,
}

impl Capabilities {
    /// Nothing but the log and the clock, for `describe`.
    pub fn none(connector: &str) -> Self {
        Capabilities {
            connector: connector.into(),
            clock: clock::Clock::System,
            http: None,
            storage: None,
        }
    }
}

impl crate::runtime::wit::trawl::connector::types::Host for crate::runtime::HostState {}
