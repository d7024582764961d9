//! Compiled connectors on disk, so that only the first start after an install or upgrade pays for
//! compilation (about 100 ms in a release host, several times that in a debug one).
//!
//! wasmtime has a cache of its own (the `cache` feature); this one is used instead because its key
//! is explicit (the connector's sha256 plus the engine's compatibility hash), it writes only into a
//! folder trawl created for itself with owner-only permissions, which matters because loading a
//! compiled artifact is `unsafe` and must only ever see files trawl wrote, and it needs no extra C
//! dependency.

use crate::files::create_private_dir;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(super) struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        CompileCache { dir }
    }

    /// The compiled component for `bytes` (whose sha256, in hex, is `digest`), from the cache
    /// when it holds a usable copy.
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, bytes);
        };
        let path = dir.join(format!("{}.cwasm", cache_key(engine, digest)));
        if path.is_file() {
            // SAFETY: the file is in trawl's own cache folder (created 0700 below), named after the
            // digest of the source and the engine's settings, and written whole by `store` below
            // from `Component::serialize`; wasmtime still checks its header and version.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    tracing::debug!(path = %path.display(), "compiled connector loaded from cache");
                    return Ok(component);
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable compiled connector: {error:#}");
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = store(dir, &path, &component.serialize()?) {
            tracing::warn!(dir = %dir.display(), "cannot cache the compiled connector: {error}");
        }
        Ok(component)
    }
}

fn cache_key(engine: &Engine, digest: &str) -> String {
    let mut engine_hasher = std::hash::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hasher);
    format!("{digest}-{:016x}", engine_hasher.finish())
}

/// Writes the artifact next to its final name and renames it, so a reader never sees half a file.
fn store(dir: &Path, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(artifact)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_content() {
        let engine = Engine::default();
        assert_ne!(cache_key(&engine, "aa"), cache_key(&engine, "bb"));
        assert_eq!(cache_key(&engine, "aa"), cache_key(&engine, "aa"));
    }
}
