//! The yandex360 connector (being written).
#![cfg(target_arch = "wasm32")]
