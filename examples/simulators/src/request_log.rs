//! What a simulator was asked and what it answered, for tests to assert on (how many calls, which
//! windows, whether a client waited as told).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// One request, recorded once its response is decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestLogEntry {
    /// The request's number, counted from 1 (the number the fault script saw).
    pub seq: u64,
    pub method: String,
    /// Path and query string, as sent.
    pub path: String,
    /// The status sent back; 0 when the connection was dropped without a response.
    pub status: u16,
    /// Request headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// When the request arrived, measured from the server's start.
    #[serde(rename = "received_at_ms", serialize_with = "as_millis")]
    pub received_at: Duration,
}

impl RequestLogEntry {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn as_millis<S: serde::Serializer>(at: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(at.as_secs_f64() * 1000.0)
}

/// A shared, append-only list of entries; clones share it.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<RequestLogEntry>>>,
}

impl RequestLog {
    pub fn record(&self, entry: RequestLogEntry) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// Entries sorted by `seq` (concurrent requests can finish out of order).
    pub fn entries(&self) -> Vec<RequestLogEntry> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        entries.sort_by_key(|entry| entry.seq);
        entries
    }
}
