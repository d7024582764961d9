//! The `log` capability: connector messages into trawl's tracing, tagged with the connector.
//!
//! A connector's messages are its own text in trawl's log: each is made [`printable`] (a line
//! feed in one cannot forge a line of trawl's), the connector's name is a field trawl sets, never
//! one the message can set, and one call may log only so much before the rest is dropped.
//!
//! [`printable`]: crate::connector_text::printable

use crate::connector_text::printable_excerpt;
use crate::runtime::HostState;
use crate::runtime::wit::trawl::connector::log::{self, Level};

/// The most messages a connector may log in one call: a page's worth of notes, not one per record.
pub const MAX_MESSAGES_PER_CALL: u32 = 1_000;
/// The most bytes of messages a connector may log in one call.
pub const MAX_BYTES_PER_CALL: usize = 256 << 10;
/// The longest one message may be before the rest of it is cut.
pub const MAX_MESSAGE_BYTES: usize = 8 << 10;

/// What a connector has logged in the current call, against the limits above.
#[derive(Debug, Default)]
pub struct LogBudget {
    messages: u32,
    bytes: usize,
    dropped_messages: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    /// Whether a message of `len` bytes may still be logged in this call; counts it either way.
    fn admit(&mut self, len: usize) -> bool {
        let len = len.min(MAX_MESSAGE_BYTES);
        if self.messages >= MAX_MESSAGES_PER_CALL || self.bytes + len > MAX_BYTES_PER_CALL {
            self.dropped_messages += 1;
            self.dropped_bytes += len as u64;
            return false;
        }
        self.messages += 1;
        self.bytes += len;
        true
    }

    /// One line saying what was dropped, if anything was, at the end of the call.
    pub fn report_dropped(&self, connector: &str) {
        if self.dropped_messages > 0 {
            tracing::warn!(
                target: "connector",
                connector,
                "dropped {} more log messages ({} bytes) from this call: a connector may log at \
                 most {MAX_MESSAGES_PER_CALL} messages and {} KiB per call",
                self.dropped_messages,
                self.dropped_bytes,
                MAX_BYTES_PER_CALL >> 10
            );
        }
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if !self.log_budget.admit(message.len()) {
            return Ok(());
        }
        let connector = &*self.capabilities.connector;
        let message = printable_excerpt(&message, MAX_MESSAGE_BYTES);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_logs_so_many_messages_and_bytes_and_counts_the_rest() {
        let mut budget = LogBudget::default();
        for _ in 0..MAX_MESSAGES_PER_CALL {
            assert!(budget.admit(10));
        }
        assert!(!budget.admit(10));
        assert!(!budget.admit(5));
        assert_eq!((budget.dropped_messages, budget.dropped_bytes), (2, 15));

        let mut budget = LogBudget::default();
        let long = MAX_MESSAGE_BYTES * 10;
        // A long message counts as what is logged of it: the cut excerpt.
        let fit = MAX_BYTES_PER_CALL / MAX_MESSAGE_BYTES;
        for _ in 0..fit {
            assert!(budget.admit(long));
        }
        assert!(!budget.admit(1));
        assert_eq!(budget.dropped_messages, 1);
    }
}
