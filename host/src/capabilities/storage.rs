//! The `storage` capability: a connector's own key-value space in the state store.

use crate::runtime::HostState;
use crate::runtime::wit::trawl::connector::storage::{self, Error};
use crate::state::StateStore;

/// The longest key a connector may use, in bytes.
pub const MAX_KEY_LEN: usize = 256;

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

    /// The space of one credential within the connector's and profile's: what a connector keeps
    /// (a vendor token it got for an API key) follows the key it was got with. A new key starts
    /// with nothing kept, so a token of the old key is never sent with the new one, and two
    /// organisations' keys in one profile never share a token. `credential` is a keyed
    /// fingerprint (`Secrets::fingerprint`), nothing a secret could be read from.
    pub fn for_credential(mut self, credential: Option<&str>) -> Self {
        if let Some(credential) = credential {
            self.namespace = format!("{}/{credential}", self.namespace);
        }
        self
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

impl HostState {
    /// Runs `work` on the connector's storage, as time spent waiting on I/O: it does not count
    /// against the connector's CPU budget (the call's wall-clock limit bounds it).
    fn storage_io<T>(&mut self, work: impl FnOnce(&Self) -> T) -> T {
        let started = std::time::Instant::now();
        let outcome = work(self);
        self.add_host_time(started.elapsed());
        outcome
    }
}

impl storage::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self.storage_io(|state| {
            check_key(&key)?;
            let scope = state.storage_scope()?;
            scope
                .store
                .kv_get(&scope.namespace, &key)
                .map_err(unavailable)
        }))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.storage_io(|state| {
            check_key(&key)?;
            let scope = state.storage_scope()?;
            scope
                .store
                .kv_set(&scope.namespace, &key, &value, scope.quota)
                .map_err(unavailable)?
                .map_err(|_| Error::QuotaExceeded(scope.quota))
        }))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.storage_io(|state| {
            check_key(&key)?;
            let scope = state.storage_scope()?;
            scope
                .store
                .kv_delete(&scope.namespace, &key)
                .map_err(unavailable)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_256_bytes() {
        assert!(check_key("a").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        for key in [
            String::new(),
            "k".repeat(MAX_KEY_LEN + 1),
            "k".repeat(1 << 20),
        ] {
            let Err(Error::InvalidKey(message)) = check_key(&key) else {
                panic!("a key of {} bytes was accepted", key.len());
            };
            assert!(message.contains("1 to 256 bytes"), "{message}");
        }
    }
}
