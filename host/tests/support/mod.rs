//! Helpers shared by the integration tests: where the built connectors are.

#![allow(dead_code)]

use std::path::PathBuf;

fn built_dir(variable: &str, folder: &str) -> PathBuf {
    let dir = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the host crate lives in the workspace")
                .join("target")
                .join(folder)
        });
    assert!(
        dir.is_dir(),
        "{} does not exist: build the connectors first with `cargo xtask build-plugins`",
        dir.display()
    );
    dir
}

/// The folder holding the vendor connectors (`workvivo.wasm`, ...).
pub fn plugin_dir() -> PathBuf {
    built_dir("TRAWL_TEST_PLUGIN_DIR", "plugins")
}

/// The folder holding the test-only connectors (`hostile.wasm`).
pub fn test_plugin_dir() -> PathBuf {
    built_dir("TRAWL_TEST_HOSTILE_DIR", "test-plugins")
}
