//! The `log` capability: connector messages into trawl's tracing, tagged with the connector.

use crate::runtime::HostState;
use crate::runtime::wit::trawl::connector::log::{self, Level};

impl log::Host for HostState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let connector = &*self.capabilities.connector;
        match level {
            Level::Trace => tracing::trace!(target: "connector", connector, "{message}"),
            Level::Debug => tracing::debug!(target: "connector", connector, "{message}"),
            Level::Info => tracing::info!(target: "connector", connector, "{message}"),
            Level::Warn => tracing::warn!(target: "connector", connector, "{message}"),
            Level::Error => tracing::error!(target: "connector", connector, "{message}"),
        }
        Ok(())
    }
}
