//! The RON config file.

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config file, e.g.:
///
/// ```ron
/// (
///     connector: "workvivo",
///     params: { "base_url": "https://api.workvivo.com", "workvivo_id": "12345" },
///     settings: { "timezone": "Asia/Tokyo", "output.path": "log/siem_data.csv" },
///     grants: ["https://api.workvivo.com"],
/// )
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The connector this file is for; `trawl run` refuses a file for another one.
    #[serde(default)]
    pub connector: Option<String>,
    /// Separates checkpoints and connector storage of several accounts of one vendor.
    #[serde(default)]
    pub profile: Option<String>,
    /// Which streams to pull (default: the connector's first).
    #[serde(default)]
    pub streams: Vec<String>,
    /// Connector params by name.
    #[serde(default)]
    pub params: BTreeMap<String, ConfigValue>,
    /// Host settings by key (`timezone`, `output.path`, ...).
    #[serde(default)]
    pub settings: BTreeMap<String, ConfigValue>,
    /// Hosts the connector may reach (`scheme://host[:port]`); default: all it declares.
    #[serde(default)]
    pub grants: Option<Vec<String>>,
    /// Where checkpoints and connector storage live.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Folders searched for connectors before the default ones.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
    /// Requests to the vendor at the same time, each for its own window (default 4).
    #[serde(default)]
    pub workers: Option<usize>,
    /// How much an incremental run re-reads before its watermark, e.g. "2m" (default: the
    /// connector's).
    #[serde(default)]
    pub overlap: Option<String>,
    /// How far behind now an incremental run stops, e.g. "30s" (default: the connector's).
    #[serde(default)]
    pub lag: Option<String>,
    /// Only records whose field has one of the values are written, e.g.
    /// `{"event_name": ["Archive Action Taken", "Live Stream Started"]}`.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<String>>,
    /// At most this many records are written per stream and run.
    #[serde(default)]
    pub max_records: Option<u64>,
    /// The vendor's quotas as `N/DURATION` (e.g. `["5/s", "100/min", "1000/h"]`); they replace
    /// the connector's declared ones.
    #[serde(default)]
    pub rate_limits: Option<Vec<String>>,
}

/// Overrides of trawl's protective limits. Each is checked as the file is read, so that a value
/// out of range is reported at its line rather than failing (or worse, wrapping) later.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory a connector instance may use, in MiB (default 64). Connectors start with 4 MiB.
    pub memory_mib: Option<Bounded<8, 4096>>,
    /// Guest CPU time per call, in seconds (default 10).
    pub cpu_seconds: Option<Seconds>,
    /// Wall-clock time per call, HTTP and its retries included, in seconds (default 900).
    pub call_timeout_seconds: Option<Seconds>,
    /// Time for one HTTP exchange, in seconds (default 60).
    pub http_timeout_seconds: Option<Seconds>,
    /// Largest HTTP response body, in MiB (default 32).
    pub max_body_mib: Option<Bounded<1, 4096>>,
    /// Connector storage quota, in KiB (default 1024; 0 leaves a connector no storage).
    pub storage_kib: Option<Bounded<0, { 1 << 20 }>>,
    /// Pages per window before paging is taken for a runaway (default 10000).
    pub max_pages_per_window: Option<Bounded<1, { u32::MAX as u64 }>>,
    /// Records one page may hold (default 100000).
    pub max_page_records: Option<Bounded<1, { u32::MAX as u64 }>>,
    /// Bytes of records one page may hold, in MiB (default 64).
    pub max_page_mib: Option<Bounded<1, 4096>>,
    /// Attempts per request when the vendor fails or throttles (default: no cap, see
    /// `stall_minutes`; 1 never retries).
    pub retry_attempts: Option<Bounded<1, 1000>>,
    /// Time one request may spend being retried, in seconds (default: no cap, see
    /// `stall_minutes`).
    pub retry_seconds: Option<Seconds>,
    /// Minutes the run may go without any request succeeding before it gives up (default 30).
    pub stall_minutes: Option<Minutes>,
    /// The longest backoff before a retry, and after a 429 that says nothing of how long to
    /// wait, in seconds (default 30 before a retry, 60 after a 429).
    pub retry_max_delay_seconds: Option<Seconds>,
}

/// A time in seconds: positive, and at most a year.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(f64);

impl Seconds {
    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const YEAR: f64 = 365.0 * 86_400.0;
        let seconds = f64::deserialize(deserializer)?;
        if seconds > 0.0 && seconds <= YEAR {
            Ok(Seconds(seconds))
        } else {
            Err(serde::de::Error::custom(format!(
                "expected a number of seconds above 0 and at most a year ({YEAR}), found {seconds}"
            )))
        }
    }
}

/// A time in minutes: positive, and at most a year.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Minutes(f64);

impl Minutes {
    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0 * 60.0)
    }
}

impl<'de> Deserialize<'de> for Minutes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const YEAR: f64 = 365.0 * 1440.0;
        let minutes = f64::deserialize(deserializer)?;
        if minutes > 0.0 && minutes <= YEAR {
            Ok(Minutes(minutes))
        } else {
            Err(serde::de::Error::custom(format!(
                "expected a number of minutes above 0 and at most a year ({YEAR}), found {minutes}"
            )))
        }
    }
}

/// A whole number from `MIN` to `MAX`, in the unit its field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        match u64::try_from(value) {
            Ok(value) if (MIN..=MAX).contains(&value) => Ok(Bounded(value)),
            _ => Err(serde::de::Error::custom(format!(
                "expected a whole number from {MIN} to {MAX}, found {value}"
            ))),
        }
    }
}

/// A param or setting value: RON strings, numbers and booleans all work.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ConfigValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// Where a secret is kept instead of the file itself: `(file: "/run/secrets/token")` (a
    /// mounted secret; surrounding white space is trimmed) or `(env: "VENDOR_TOKEN")`.
    Reference(Reference),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub env: Option<String>,
}

impl ConfigValue {
    /// The plain value, if it is one (not a reference).
    pub fn plain(&self) -> Option<String> {
        match self {
            ConfigValue::Text(text) => Some(text.clone()),
            ConfigValue::Integer(number) => Some(number.to_string()),
            ConfigValue::Float(number) => Some(number.to_string()),
            ConfigValue::Bool(flag) => Some(flag.to_string()),
            ConfigValue::Reference(_) => None,
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Reference(Reference {
                file: Some(path), ..
            }) => write!(f, "(file: {})", path.display()),
            ConfigValue::Reference(Reference {
                env: Some(name), ..
            }) => write!(f, "(env: {name})"),
            ConfigValue::Reference(_) => f.write_str("(an empty reference)"),
            plain => f.write_str(&plain.plain().unwrap_or_default()),
        }
    }
}

impl ConfigFile {
    /// Reads and parses a config file; a syntax error names the line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        // Optional fields take plain values (`connector: "workvivo"`, not `Some("workvivo")`).
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|error: ron::error::SpannedError| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: error.span.start.line,
                column: error.span.start.col,
                // serde names the Rust types; users know the file's own words.
                message: error
                    .code
                    .to_string()
                    .replace(" in `ConfigFile`", "")
                    .replace(" in `Limits`", " in `limits`"),
            })
    }
}
