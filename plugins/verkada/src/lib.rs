//! The verkada connector (being written).
#![cfg(target_arch = "wasm32")]
