//! The guest side of trawl's connector contract (`wit/connector@0.3.0`).
//!
//! A connector is one type implementing [`Connector`], exported with [`export_connector!`]:
//!
//! ```ignore
//! struct Acme;
//! impl trawl_sdk::Connector for Acme {
//!     fn describe() -> trawl_sdk::ConnectorInfo { /* streams, params, hosts */ }
//!     fn fetch_page(request: trawl_sdk::PageRequest) -> Result<trawl_sdk::Page, trawl_sdk::FetchError> {
//!         /* one request, one page */
//!     }
//! }
//! trawl_sdk::export_connector!(Acme);
//! ```
//!
//! The host drives the page loop, retries, rate limits, dedup, ordering and output; a connector only
//! turns (stream, window, cursor, params) into (records, next cursor).

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/connector@0.3.0",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "trawl_sdk::bindings",
        // The 0.1.0 and 0.2.0 interfaces this version imports unchanged.
        generate_all,
    });
}

pub mod http;
pub mod json;
pub mod log;
pub mod time;

pub use bindings::exports::trawl::connector0_3_0::connector::{
    ConnectorInfo, FetchError, HostSetting, KeptRecord, Page, PageRequest, Param, ParamInfo,
    ParamKind, RateLimit, Record, StatusError, StreamInfo, TimeField,
};
pub use bindings::trawl::connector0_1_0::types::{Header, Timestamp, Window};
pub use bindings::trawl::connector0_3_0::keyed_pages::{RecordKeys, TimeFormat};

/// Milliseconds in an hour, for `max-window` and friends.
pub const HOUR_MS: u64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// What a vendor connector implements.
pub trait Connector {
    /// Describes the connector; must not call any host import.
    fn describe() -> ConnectorInfo;
    /// Fetches one page of one stream within one window.
    fn fetch_page(request: PageRequest) -> Result<Page, FetchError>;
}

/// Exports a [`Connector`] implementation as the component's `connector` interface.
#[macro_export]
macro_rules! export_connector {
    ($connector:ident) => {
        impl $crate::bindings::exports::trawl::connector0_3_0::connector::Guest for $connector {
            fn describe() -> $crate::ConnectorInfo {
                <$connector as $crate::Connector>::describe()
            }
            fn fetch_page(
                request: $crate::PageRequest,
            ) -> ::core::result::Result<$crate::Page, $crate::FetchError> {
                <$connector as $crate::Connector>::fetch_page(request)
            }
        }
        $crate::bindings::export!($connector with_types_in $crate::bindings);
    };
}

/// The current time from the host's clock, in milliseconds since the epoch.
pub fn now() -> Timestamp {
    bindings::trawl::connector0_1_0::clock::now()
}

/// The connector's persistent key-value space (scoped to this connector and profile by the host).
pub mod storage {
    pub use crate::bindings::trawl::connector0_1_0::storage::{Error, delete, get, set};
}

impl PageRequest {
    /// The value of a param, if it has one.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|param| param.name == name)
            .map(|param| param.value.as_str())
    }

    /// The value of a param that must have one.
    pub fn required_param(&self, name: &str) -> Result<&str, FetchError> {
        self.param(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| FetchError::InvalidParams(format!("`{name}` has no value")))
    }
}

impl Window {
    /// Whether `time` falls inside this half-open window.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.start <= time && time < self.end
    }

    /// The window's start in whole seconds, rounded down.
    pub fn start_seconds(&self) -> i64 {
        self.start.div_euclid(1000)
    }

    /// The window's end in whole seconds, rounded up, so that `[start_seconds, end_seconds]` covers
    /// the whole window (records at or after `end` must then be dropped with [`Window::contains`]).
    pub fn end_seconds(&self) -> i64 {
        (self.end + 999).div_euclid(1000)
    }
}

impl Page {
    /// A page of records the connector wrote out itself (see [`json::ReadPage::into_page`] for
    /// records the host read).
    pub fn new(records: Vec<Record>, next_cursor: Option<String>) -> Self {
        Page {
            records,
            read: None,
            next_cursor,
        }
    }
}

impl Record {
    /// A record whose id and event time have been read from its JSON text.
    pub fn new(id: impl Into<String>, event_time: Timestamp, json: impl Into<String>) -> Self {
        Record {
            id: id.into(),
            event_time,
            json: json.into(),
        }
    }
}

impl ParamInfo {
    /// A param with no default, no environment variable, not required, not secret.
    pub fn new(name: &str, kind: ParamKind, help: &str) -> Self {
        ParamInfo {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            required: false,
            default: None,
            env: None,
            secret: false,
            secret_hosts: Vec::new(),
        }
    }

    /// Makes the param required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks the param as a credential: the connector only ever sees its placeholder.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Sets the value used when the user gives none.
    pub fn default_value(mut self, value: &str) -> Self {
        self.default = Some(value.to_string());
        self
    }

    /// Names the environment variable that supplies the value.
    pub fn env(mut self, variable: &str) -> Self {
        self.env = Some(variable.to_string());
        self
    }
}

impl StreamInfo {
    /// A stream with no window limit, lookback, overlap, lag, leading columns or settings.
    pub fn new(name: &str, description: &str) -> Self {
        StreamInfo {
            name: name.to_string(),
            description: description.to_string(),
            max_window: 0,
            default_lookback: 0,
            overlap: 0,
            lag: 0,
            columns: Vec::new(),
            settings: Vec::new(),
            time_field: None,
        }
    }

    /// The longest window one page sequence may cover, in milliseconds.
    pub fn max_window(mut self, millis: u64) -> Self {
        self.max_window = millis;
        self
    }

    /// How far back a first incremental run starts, in milliseconds.
    pub fn default_lookback(mut self, millis: u64) -> Self {
        self.default_lookback = millis;
        self
    }

    /// Record fields that lead a CSV file, in this order.
    pub fn columns(mut self, columns: &[&str]) -> Self {
        self.columns = columns.iter().map(|column| column.to_string()).collect();
        self
    }

    /// A host setting for this stream only (e.g. its output file), with the environment variable
    /// the script it replaces read it from.
    pub fn setting(mut self, key: &str, default: Option<&str>, env: Option<&str>) -> Self {
        self.settings.push(HostSetting::new(key, default, env));
        self
    }

    /// Where the event time is in a record, so the host can read records it wrote before.
    pub fn time_field(mut self, path: &str, format: TimeFormat) -> Self {
        self.time_field = Some(TimeField {
            path: path.to_string(),
            format,
        });
        self
    }

    /// How much an incremental run re-reads before its watermark, and how far behind now it
    /// stops, in milliseconds.
    pub fn overlap_and_lag(mut self, overlap: u64, lag: u64) -> Self {
        self.overlap = overlap;
        self.lag = lag;
        self
    }
}

impl HostSetting {
    /// A host setting with a default value and, optionally, an environment variable that overrides it.
    pub fn new(key: &str, default: Option<&str>, env: Option<&str>) -> Self {
        HostSetting {
            key: key.to_string(),
            default: default.map(str::to_string),
            env: env.map(str::to_string),
        }
    }
}

/// The placeholder the host substitutes with the value of the secret param `name`.
pub fn secret_placeholder(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// The start of a text (a body, a record), trimmed and cut at 300 characters, for error messages.
pub fn excerpt(text: &str) -> String {
    const LIMIT: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The id of a JSON value that identifies a record: strings as they are, numbers as written.
pub fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}
