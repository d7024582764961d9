//! trawl pulls security and audit logs out of SaaS APIs through sandboxed WebAssembly connectors.
//!
//! The flow runs one way: the [`engine`] plans windows and drives each connector's page loop
//! through the [`runtime`] (which gives connectors only the [`capabilities`]), orders and
//! deduplicates the records, hands them to a [`sinks`] output, and checkpoints in the [`state`]
//! store once the output is durable. The [`cli`] and [`config`] turn a command line, a RON file and
//! the environment into a run.

pub mod capabilities;
pub mod cli;
pub mod config;
pub mod connector_text;
pub mod engine;
pub mod event_time;
mod files;
mod masks;
pub mod runtime;
pub mod shared_text;
pub mod sinks;
pub mod state;
#[cfg(test)]
mod test_rng;
