//! The `storage` capability: a connector's own key-value space in the state store.

use crate::runtime::HostState;
use crate::runtime::wit::trawl::connector::storage::{self, Error};
use crate::state::StateStore;

/// The longest key a connector may use, in bytes.
const MAX_KEY_LEN: usize = 256;

/// One connector's (and profile's) space, with its quota.
#[derive(Clone)]
pub struct StorageScope {
    store: StateStore,
    namespace: String,
    quota: u64,
}

impl StorageScope {
    pub fn new(store: StateStore, connector: &str, profile: &str, quota: u64) -> Self {
        StorageScope {
            store,
            namespace: format!("{connector}/{profile}"),
            quota,
        }
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidKey(format!(
            "keys must be 1 to {MAX_KEY_LEN} bytes long, this one is {}",
            key.len()
        )));
    }
    Ok(())
}

impl HostState {
    fn storage_scope(&self) -> Result<&StorageScope, Error> {
        self.capabilities
            .storage
            .as_ref()
            .ok_or_else(|| Error::Unavailable("storage is not available while describing".into()))
    }
}

fn unavailable(error: crate::state::StateError) -> Error {
    tracing::error!("connector storage failed: {error}");
    Error::Unavailable(error.to_string())
}

impl storage::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok((|| {
            check_key(&key)?;
            let scope = self.storage_scope()?;
            scope
                .store
                .kv_get(&scope.namespace, &key)
                .map_err(unavailable)
        })())
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        Ok((|| {
            check_key(&key)?;
            let scope = self.storage_scope()?;
            scope
                .store
                .kv_set(&scope.namespace, &key, &value, scope.quota)
                .map_err(unavailable)?
                .map_err(|_| Error::QuotaExceeded(scope.quota))
        })())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), Error>> {
        Ok((|| {
            check_key(&key)?;
            let scope = self.storage_scope()?;
            scope
                .store
                .kv_delete(&scope.namespace, &key)
                .map_err(unavailable)
        })())
    }
}
