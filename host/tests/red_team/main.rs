//! Attacks on trawl by a connector (`hostile.wasm`), each contained with a clear error: trawl
//! survives, the next call works, and what the attack cost stays bounded.

#[path = "../support/mod.rs"]
mod support;

mod identity;
mod network;
mod outputs;
mod resources;
