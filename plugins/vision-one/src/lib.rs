//! The vision-one connector (being written).
#![cfg(target_arch = "wasm32")]
