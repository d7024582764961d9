//! Verkada: the organisation's audit log (`GET /core/v1/audit_log`) and camera alerts
//! (`GET /cameras/v1/alerts`), after exchanging the API key for a 30-minute token (`POST /token`).
//!
//! - The token is cached in connector storage (trawl's owner-only state store) with its expiry,
//!   renewed when less than a sixth of its life (at most 5 minutes) is left, and renewed once more
//!   when Verkada answers 401 to a cached one ("Token expired"); a 401 to a token just issued is an
//!   error, never a loop.
//! - The audit log is queried with `use_processed_timestamp=true`: a window holds the rows Verkada
//!   finished processing in it, so a row processed after its window closed is still caught, by a
//!   later window. Its event time stays `timestamp`, which may lie before the window.
//! - Rows have no id: a record's id is a hash of the fields that identify the row.
//! - Both ends of Verkada's windows are taken as inclusive (and the start possibly exclusive): the
//!   connector asks for one second more on each side and keeps what lies in `[start, end)`.
// The vendor logic is compiled for the host too, for its unit tests; only the wasm build exports
// (and so uses) all of it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use trawl_sdk::http::{self, Response};
use trawl_sdk::time::parse_rfc3339_millis;
use trawl_sdk::{
    Connector, ConnectorInfo, FetchError, HostSetting, Page, PageRequest, ParamInfo, ParamKind,
    RateLimit, Record, StatusError, StreamInfo, TimeFormat, Window, secret_placeholder,
};

struct Verkada;

const AUDIT_LOG: &str = "audit-log";
const CAMERA_ALERTS: &str = "camera-alerts";

/// The seed's cron interval, and the window every request covers.
const QUARTER_HOUR_MS: u64 = 15 * 60 * 1000;

/// The environment variable of the seed script that holds the API key.
const API_KEY_ENV: &str = "VERKADA_API_KEY";

/// Verkada's regions and their API hosts; the token must come from the host the data is read from.
const REGIONS: [(&str, &str); 4] = [
    ("us", "https://api.verkada.com"),
    ("eu", "https://api.eu.verkada.com"),
    ("au", "https://api.au.verkada.com"),
    ("gov", "https://api.verkadagov.com"),
];

/// The seed script's host.
const DEFAULT_REGION: &str = "au";

/// The values `notification_type` accepts.
const NOTIFICATION_TYPES: [&str; 9] = [
    "person_of_interest",
    "license_plate_of_interest",
    "tamper",
    "crowd",
    "motion",
    "camera_offline",
    "camera_online",
    "line_crossing",
    "loitering",
];

/// Verkada keeps processing times only for logs from 2025-08-12T00:00:00Z on: windows that start
/// earlier are asked for by event time.
const PROCESSED_TIMESTAMPS_FROM_MS: i64 = 1_754_956_800_000;

/// A cached token is renewed when less than this is left (or a sixth of its lifetime, if less).
const RENEW_MARGIN_MS: i64 = 5 * 60 * 1000;

/// How many times a token is asked for when the request fails on the way.
const TOKEN_ATTEMPTS: u32 = 3;

/// The largest page Verkada serves.
const MAX_PAGE_SIZE: u32 = 200;

impl Connector for Verkada {
    fn describe() -> ConnectorInfo {
        let stream = |name: &str, description: &str| {
            let file = format!("verkada_{}", name.replace('-', "_"));
            StreamInfo {
                settings: vec![
                    HostSetting::new("output.path", Some(&format!("{file}.jsonl")), None),
                    HostSetting::new("output.base-name", Some(&file), None),
                ],
                ..StreamInfo::new(name, description)
            }
            // The seed's cron interval: a run without a range takes the last whole quarter hour.
            .max_window(QUARTER_HOUR_MS)
            .default_lookback(QUARTER_HOUR_MS)
            // Each run reads the previous quarter hour again (repeats are dropped by id), for
            // rows that became visible after their window was read.
            .overlap_and_lag(QUARTER_HOUR_MS, 0)
        };
        ConnectorInfo {
            name: "verkada".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Verkada audit log and camera alerts".into(),
            streams: vec![
                StreamInfo {
                    columns: columns(&[
                        "timestamp",
                        "processed_timestamp",
                        "event_name",
                        "user_email",
                        "user_name",
                        "ip_address",
                        "event_description",
                    ]),
                    ..stream(
                        AUDIT_LOG,
                        "Who did what in Command: video streamed, archives, users, settings",
                    )
                    .time_field("timestamp", TimeFormat::Rfc3339)
                },
                StreamInfo {
                    columns: columns(&["created", "notification_type", "camera_id"]),
                    ..stream(
                        CAMERA_ALERTS,
                        "Camera notifications: motion, tamper, crowd, offline, people and plates \
                         of interest",
                    )
                    .time_field("created", TimeFormat::EpochSeconds)
                },
            ],
            params: vec![
                ParamInfo::new(
                    "api_key",
                    ParamKind::Text,
                    "A Verkada API key with read access to the audit log and camera alerts; \
                     trawl exchanges it for a 30-minute token at /token",
                )
                .required()
                .secret()
                .env(API_KEY_ENV),
                ParamInfo::new(
                    "region",
                    ParamKind::Choice(REGIONS.iter().map(|(name, _)| name.to_string()).collect()),
                    "The region of the organisation: us (api.verkada.com), eu (api.eu.verkada.com), \
                     au (api.au.verkada.com, the seed script's) or gov (api.verkadagov.com); a key \
                     only works in its own region",
                )
                .default_value(DEFAULT_REGION)
                .env("VERKADA_REGION"),
                ParamInfo::new(
                    "base_url",
                    ParamKind::Url,
                    "Another API URL than the region's (a proxy, a test server); the token is \
                     asked for there too",
                ),
                ParamInfo::new(
                    "event_names",
                    ParamKind::Text,
                    "Audit log only: keep only these event names, comma-separated (default: every \
                     event). The seed script kept Archive Action Taken,Video History Streamed,Live \
                     Stream Started",
                ),
                ParamInfo::new(
                    "notification_types",
                    ParamKind::Text,
                    "Camera alerts only: ask only for these types, comma-separated, from \
                     person_of_interest, license_plate_of_interest, tamper, crowd, motion, \
                     camera_offline, camera_online, line_crossing, loitering (default: all)",
                ),
                ParamInfo::new(
                    "include_image_url",
                    ParamKind::Boolean,
                    "Camera alerts only: ask for a signed image URL with each alert",
                )
                .default_value("false"),
                ParamInfo::new(
                    "use_processed_timestamp",
                    ParamKind::Boolean,
                    "Audit log only: select rows by when Verkada finished processing them, so that \
                     rows processed late are not missed (Verkada has this from 2025-08-12 on; \
                     earlier windows are always selected by event time)",
                )
                .default_value("true"),
                ParamInfo::new(
                    "page_size",
                    ParamKind::Integer,
                    "Rows per request, 1 to 200",
                )
                .default_value("200"),
                ParamInfo::new(
                    "token_lifetime_seconds",
                    ParamKind::Integer,
                    "How long a Verkada API token lasts (Verkada: 30 minutes); a cached token is \
                     renewed when less than a sixth of this, at most 5 minutes, is left",
                )
                .default_value("1800"),
            ],
            hosts: REGIONS.iter().map(|(_, host)| host.to_string()).collect(),
            // The seed printed JSON, which its cron users redirected to a file: trawl writes one
            // JSON Lines file a stream itself, exactly once (`output.format=stdout` prints one
            // stream instead).
            // The seed pulled both, as JSON; JSON Lines files are written exactly once.
            settings: vec![
                HostSetting::new("output.format", Some("jsonl"), None),
                HostSetting::new("streams", Some("audit-log,camera-alerts"), None),
                // After a 429, Verkada refuses every request for the rest of a 5-second window:
                // one sent sooner only earns another 429.
                HostSetting::new("quota.cooldown", Some("5s"), None),
            ],
            // 300 a minute per organisation, and 25 in any 5 seconds (then a 5-second cooldown).
            rate_limits: vec![
                RateLimit {
                    requests: 300,
                    per: 60_000,
                },
                RateLimit {
                    requests: 25,
                    per: 5_000,
                },
            ],
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        let stream = match request.stream.as_str() {
            AUDIT_LOG => Stream::AuditLog,
            CAMERA_ALERTS => Stream::CameraAlerts,
            _ => return Err(FetchError::UnknownStream(request.stream)),
        };
        let settings = Settings::read(&request)?;
        let query = match &request.cursor {
            None => first_query(stream, &settings, request.window),
            Some(cursor) if cursor.starts_with("start_time=") => cursor.clone(),
            Some(cursor) => {
                return Err(FetchError::Malformed(format!(
                    "unexpected cursor `{cursor}`"
                )));
            }
        };
        let url = format!("{}{}?{query}", settings.base_url, stream.path());
        let response = send_with_token(&settings, &url)?;
        check_status(&settings, stream, &response)?;
        let by_processing_time = query
            .split('&')
            .any(|pair| pair == "use_processed_timestamp=true");
        let page = read_page(stream, &response.body)?;
        let mut records = Vec::with_capacity(page.rows.len());
        for row in page.rows {
            let record = match stream {
                Stream::AuditLog => audit_record(row.get(), &settings, by_processing_time)?,
                Stream::CameraAlerts => alert_record(row.get())?,
            };
            if let Some((record, selected_at)) = record
                && request.window.contains(selected_at)
            {
                records.push(record);
            }
        }
        let next_cursor = page.next_page_token.map(|token| {
            let base = query
                .rsplit_once("&page_token=")
                .map_or(query.as_str(), |(base, _)| base);
            format!("{base}&page_token={}", http::encode_query_component(&token))
        });
        Ok(Page::new(records, next_cursor))
    }
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[derive(Clone, Copy)]
enum Stream {
    AuditLog,
    CameraAlerts,
}

impl Stream {
    fn path(self) -> &'static str {
        match self {
            Stream::AuditLog => "/core/v1/audit_log",
            Stream::CameraAlerts => "/cameras/v1/alerts",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Stream::AuditLog => "the audit log",
            Stream::CameraAlerts => "camera alerts",
        }
    }
}

/// The params, checked.
struct Settings {
    /// Without a trailing `/`.
    base_url: String,
    /// Where the key was used, for messages: the region or the base URL.
    place: String,
    page_size: u32,
    use_processed_timestamp: bool,
    event_names: Vec<String>,
    /// Comma-separated, checked.
    notification_types: Option<String>,
    include_image_url: bool,
    token_lifetime_ms: i64,
}

impl Settings {
    fn read(request: &PageRequest) -> Result<Self, FetchError> {
        let invalid = |message: String| FetchError::InvalidParams(message);
        let region = request.param("region").unwrap_or(DEFAULT_REGION);
        let (base_url, place) = match request.param("base_url").filter(|url| !url.is_empty()) {
            Some(url) => (url.to_string(), format!("base_url {url}")),
            None => {
                let (_, host) = REGIONS
                    .iter()
                    .find(|(name, _)| *name == region)
                    .ok_or_else(|| {
                        invalid(format!(
                            "`region` is `{region}`; it must be one of us, eu, au, gov"
                        ))
                    })?;
                (host.to_string(), format!("region {region} ({host})"))
            }
        };
        let page_size = match request.param("page_size") {
            None => MAX_PAGE_SIZE,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                .ok_or_else(|| {
                    invalid(format!(
                        "`page_size` is `{text}`; it must be a number from 1 to {MAX_PAGE_SIZE}"
                    ))
                })?,
        };
        let list = |name: &str| -> Vec<String> {
            request
                .param(name)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(String::from)
                .collect()
        };
        let types = list("notification_types");
        if let Some(unknown) = types
            .iter()
            .find(|kind| !NOTIFICATION_TYPES.contains(&kind.as_str()))
        {
            return Err(invalid(format!(
                "`notification_types` has `{unknown}`; Verkada's types are {}",
                NOTIFICATION_TYPES.join(", ")
            )));
        }
        let token_lifetime_seconds = match request.param("token_lifetime_seconds") {
            None => 1800,
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|seconds| (1..=86_400).contains(seconds))
                .ok_or_else(|| {
                    invalid(format!(
                        "`token_lifetime_seconds` is `{text}`; it must be a number of seconds \
                         from 1 to 86400"
                    ))
                })?,
        };
        Ok(Settings {
            base_url: base_url.trim_end_matches('/').to_string(),
            place,
            page_size,
            use_processed_timestamp: flag(request, "use_processed_timestamp", true),
            event_names: list("event_names"),
            notification_types: (!types.is_empty()).then(|| types.join(",")),
            include_image_url: flag(request, "include_image_url", false),
            token_lifetime_ms: token_lifetime_seconds * 1000,
        })
    }
}

/// A boolean param (the host has checked it is `true` or `false`).
fn flag(request: &PageRequest, name: &str, default: bool) -> bool {
    request
        .param(name)
        .map_or(default, |value| value.trim().eq_ignore_ascii_case("true"))
}

/// The query of a window's first page. Booleans go as `true`/`false`, never Python's `False`.
///
/// The window is asked for one second early: whether Verkada's `start_time` is inclusive is not
/// documented, and what lies before the window is dropped anyway, as is what lies at or after its
/// end (`end_time` is inclusive).
fn first_query(stream: Stream, settings: &Settings, window: Window) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        (
            "start_time",
            (window.start_seconds() - 1).max(0).to_string(),
        ),
        ("end_time", window.end_seconds().to_string()),
        ("page_size", settings.page_size.to_string()),
    ];
    match stream {
        Stream::AuditLog => {
            let by_processing_time =
                settings.use_processed_timestamp && window.start >= PROCESSED_TIMESTAMPS_FROM_MS;
            pairs.push(("use_processed_timestamp", by_processing_time.to_string()));
        }
        Stream::CameraAlerts => {
            pairs.push(("include_image_url", settings.include_image_url.to_string()));
            if let Some(types) = &settings.notification_types {
                pairs.push(("notification_type", types.clone()));
            }
        }
    }
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", http::encode_query_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---- The token ----------------------------------------------------------------------------------

/// A token as cached in connector storage.
#[derive(serde::Serialize, Deserialize)]
struct CachedToken {
    token: String,
    /// Milliseconds since the epoch, by the host's clock.
    expires_at: i64,
}

/// Sends a GET with a token: the cached one if it has time left, else a new one. A 401 to a cached
/// token gets one new token and one more try; a 401 to a new token is an error.
fn send_with_token(settings: &Settings, url: &str) -> Result<Response, FetchError> {
    let (token, fresh) = match cached_token(settings) {
        Some(token) => (token, false),
        None => (new_token(settings)?, true),
    };
    let response = get(url, &token)?;
    if response.status != 401 {
        return Ok(response);
    }
    if fresh {
        return Err(refused_new_token(settings, &response));
    }
    trawl_sdk::log::info(&format!(
        "Verkada refused the cached token (401: {}); getting a new one",
        vendor_message(&response)
    ));
    forget_token(settings);
    let token = new_token(settings)?;
    let response = get(url, &token)?;
    if response.status == 401 {
        return Err(refused_new_token(settings, &response));
    }
    Ok(response)
}

fn get(url: &str, token: &str) -> Result<Response, FetchError> {
    http::get(url)
        .header("x-verkada-auth", token)
        .header("accept", "application/json")
        .send()
}

fn refused_new_token(settings: &Settings, response: &Response) -> FetchError {
    FetchError::Unauthorized(format!(
        "Verkada refused a token it had just issued (401: {}); check that the API key in \
         {API_KEY_ENV} is still valid and belongs to {}",
        vendor_message(response),
        settings.place
    ))
}

/// The storage key of the token for this API URL (tokens only work where they were issued).
fn token_key(settings: &Settings) -> String {
    let digest = Sha256::digest(settings.base_url.as_bytes());
    format!("token:{}", hex(&digest[..8]))
}

fn cached_token(settings: &Settings) -> Option<String> {
    let bytes = match trawl_sdk::storage::get(&token_key(settings)) {
        Ok(bytes) => bytes?,
        Err(error) => {
            trawl_sdk::log::warn(&format!("cannot read the cached token: {error:?}"));
            return None;
        }
    };
    let cached: CachedToken = serde_json::from_slice(&bytes).ok()?;
    let margin = RENEW_MARGIN_MS.min(settings.token_lifetime_ms / 6);
    (trawl_sdk::now() + margin < cached.expires_at && !cached.token.is_empty())
        .then_some(cached.token)
}

fn forget_token(settings: &Settings) {
    if let Err(error) = trawl_sdk::storage::delete(&token_key(settings)) {
        trawl_sdk::log::warn(&format!("cannot drop the cached token: {error:?}"));
    }
}

/// Exchanges the API key for a token (`POST /token`) and caches it.
fn new_token(settings: &Settings) -> Result<String, FetchError> {
    let issued_at = trawl_sdk::now();
    // The host does not send a POST again once it may have reached the server (a reset, a
    // timeout); asking for a token twice is harmless (each call mints one, the others stay
    // valid), so it is asked again here.
    let mut attempts = 0;
    let response = loop {
        attempts += 1;
        let sent = http::post(format!("{}/token", settings.base_url))
            .header("x-api-key", secret_placeholder("api_key"))
            .header("accept", "application/json")
            .body(Vec::new())
            .send();
        match sent {
            Err(FetchError::Http(http::Error::Transport(_) | http::Error::Timeout))
                if attempts < TOKEN_ATTEMPTS =>
            {
                trawl_sdk::log::debug("the token request failed on the way; asking again");
            }
            other => break other?,
        }
    };
    match response.status {
        200..=299 => {}
        401 | 403 => {
            return Err(FetchError::Unauthorized(format!(
                "Verkada refused the API key ({}: {}); check {API_KEY_ENV}, and that the key \
                 belongs to {} (a key works only in its own region: set --param region=us, eu, au \
                 or gov, or VERKADA_REGION)",
                response.status,
                vendor_message(&response),
                settings.place
            )));
        }
        _ => return Err(status_error(&response, "asking for a token")),
    }
    #[derive(Deserialize)]
    struct TokenAnswer {
        token: Option<String>,
    }
    let token = serde_json::from_slice::<TokenAnswer>(&response.body)
        .ok()
        .and_then(|answer| answer.token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            FetchError::Malformed(format!(
                "Verkada's /token answered without a token: {}",
                excerpt(&response)
            ))
        })?;
    let cached = CachedToken {
        token: token.clone(),
        expires_at: issued_at + settings.token_lifetime_ms,
    };
    let stored = serde_json::to_vec(&cached)
        .map_err(|error| error.to_string())
        .and_then(|bytes| {
            trawl_sdk::storage::set(&token_key(settings), &bytes)
                .map_err(|error| format!("{error:?}"))
        });
    match stored {
        Ok(()) => trawl_sdk::log::debug("got a new Verkada API token and cached it"),
        Err(error) => trawl_sdk::log::warn(&format!("cannot cache the token: {error}")),
    }
    Ok(token)
}

// ---- Answers ------------------------------------------------------------------------------------

fn check_status(
    settings: &Settings,
    stream: Stream,
    response: &Response,
) -> Result<(), FetchError> {
    match response.status {
        200..=299 => Ok(()),
        403 => Err(FetchError::Unauthorized(format!(
            "Verkada denied access to {} (403: {}); the API key in {API_KEY_ENV} needs read \
             permission for it",
            stream.what(),
            vendor_message(response)
        ))),
        404 => Err(FetchError::Status(StatusError {
            status: 404,
            message: format!(
                "{} (is {} the organisation's region?)",
                vendor_message(response),
                settings.place
            ),
        })),
        _ => Err(status_error(response, "")),
    }
}

fn status_error(response: &Response, doing: &str) -> FetchError {
    let message = vendor_message(response);
    FetchError::Status(StatusError {
        status: response.status,
        message: if doing.is_empty() {
            message
        } else {
            format!("{doing}: {message}")
        },
    })
}

/// Verkada's error text: `message` of `{"id": ..., "message": ..., "data": null}` (also when
/// written Python-style, as Verkada's docs print it), or the start of the body.
fn vendor_message(response: &Response) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        message: Option<String>,
    }
    if let Ok(ApiError {
        message: Some(message),
    }) = serde_json::from_slice::<ApiError>(&response.body)
    {
        return message;
    }
    let text = String::from_utf8_lossy(&response.body);
    for quote in ['\'', '"'] {
        let key = format!("{quote}message{quote}");
        if let Some(after) = text.split_once(&key).map(|(_, rest)| rest.trim_start())
            && let Some(value) = after.strip_prefix(':').map(str::trim_start)
            && let Some(value) = value.strip_prefix(quote)
            && let Some((message, _)) = value.split_once(quote)
        {
            return message.to_string();
        }
    }
    excerpt(response)
}

fn excerpt(response: &Response) -> String {
    let text = response.body_excerpt();
    if text.is_empty() {
        "no body".into()
    } else {
        text
    }
}

/// One page: its rows, untouched, and the next page's token.
struct RawPage<'a> {
    rows: Vec<&'a RawValue>,
    next_page_token: Option<String>,
}

fn read_page(stream: Stream, body: &[u8]) -> Result<RawPage<'_>, FetchError> {
    let malformed =
        |what: String| FetchError::Malformed(format!("{} answer {what}", stream.what()));
    let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(body)
        .map_err(|error| malformed(format!("is not the expected JSON object: {error}")))?;
    let list = match stream {
        Stream::AuditLog => "audit_logs",
        Stream::CameraAlerts => "notifications",
    };
    let rows = match fields.get(list) {
        None => return Err(malformed(format!("has no `{list}`"))),
        Some(raw) => serde_json::from_str::<Option<Vec<&RawValue>>>(raw.get())
            .map_err(|error| malformed(format!("has a `{list}` that is not a list: {error}")))?
            .unwrap_or_default(),
    };
    // A missing `next_page_token` ends the window like `null` does (the seed died on it).
    let next_page_token = match fields
        .get("next_page_token")
        .map(|raw| serde_json::from_str::<Value>(raw.get()))
    {
        None => None,
        Some(Ok(Value::Null)) => None,
        Some(Ok(Value::String(token))) => Some(token).filter(|token| !token.is_empty()),
        Some(Ok(Value::Number(number))) => Some(number.to_string()),
        Some(_) => return Err(malformed("has an unusable `next_page_token`".into())),
    };
    Ok(RawPage {
        rows,
        next_page_token,
    })
}

// ---- Records ------------------------------------------------------------------------------------

/// An audit row as a record, with the time its window was selected by (the processing time when
/// asked by it); `None` when `event_names` leaves it out.
fn audit_record(
    json: &str,
    settings: &Settings,
    by_processing_time: bool,
) -> Result<Option<(Record, i64)>, FetchError> {
    let row: Value = serde_json::from_str(json)
        .map_err(|error| FetchError::Malformed(format!("an audit row is not JSON: {error}")))?;
    let event_name = row.get("event_name").and_then(Value::as_str).unwrap_or("");
    if !settings.event_names.is_empty() && !settings.event_names.iter().any(|n| n == event_name) {
        return Ok(None);
    }
    let time = |name: &str| -> Result<Option<i64>, FetchError> {
        match row.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => time_millis(value).map(Some).ok_or_else(|| {
                FetchError::Malformed(format!(
                    "an audit row ({event_name}) has an unreadable `{name}`: {value}"
                ))
            }),
        }
    };
    let timestamp = time("timestamp")?.ok_or_else(|| {
        FetchError::Malformed(format!("an audit row ({event_name}) has no `timestamp`"))
    })?;
    let selected_at = match by_processing_time {
        true => time("processed_timestamp")?.unwrap_or(timestamp),
        false => timestamp,
    };
    let mut devices: Vec<String> = row
        .get("devices")
        .and_then(Value::as_array)
        .map(|devices| {
            devices
                .iter()
                .map(|device| canonical(device.get("device_id").unwrap_or(&Value::Null)))
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    let mut id = IdHash::new("verkada audit-log 1");
    id.field(&timestamp.to_string());
    id.field(event_name);
    id.value(row.get("user_id"));
    id.field(&devices.join(","));
    id.value(row.get("ip_address"));
    id.value(row.get("details"));
    Ok(Some((
        Record::new(id.finish(), timestamp, json),
        selected_at,
    )))
}

/// A camera alert as a record, with its creation time.
fn alert_record(json: &str) -> Result<Option<(Record, i64)>, FetchError> {
    let row: Value = serde_json::from_str(json)
        .map_err(|error| FetchError::Malformed(format!("an alert is not JSON: {error}")))?;
    let created = row.get("created").and_then(time_millis).ok_or_else(|| {
        FetchError::Malformed(format!(
            "an alert has no readable `created`: {}",
            row.get("created").unwrap_or(&Value::Null)
        ))
    })?;
    let id = match row.get("id").and_then(trawl_sdk::id_text) {
        Some(id) => id,
        None => {
            let mut id = IdHash::new("verkada camera-alerts 1");
            id.value(row.get("camera_id"));
            id.field(&created.to_string());
            id.value(row.get("notification_type"));
            id.value(row.get("person_label"));
            id.finish()
        }
    };
    Ok(Some((Record::new(id, created, json), created)))
}

/// A stable id from a row's identifying fields: the first 128 bits of a SHA-256, in hex.
struct IdHash(Sha256);

impl IdHash {
    fn new(domain: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(domain.as_bytes());
        IdHash(hash)
    }

    /// A present text field; length-prefixed, so that no two field lists hash alike.
    fn field(&mut self, text: &str) {
        self.0.update([1]);
        self.0.update((text.len() as u64).to_le_bytes());
        self.0.update(text.as_bytes());
    }

    /// A JSON field: absent and null alike, strings as themselves, the rest as canonical JSON.
    fn value(&mut self, value: Option<&Value>) {
        match value {
            None | Some(Value::Null) => self.0.update([0]),
            Some(Value::String(text)) => self.field(text),
            Some(other) => self.field(&canonical(other)),
        }
    }

    fn finish(self) -> String {
        hex(&self.0.finalize()[..16])
    }
}

/// JSON with object keys sorted, whatever order they came in (and whatever serde_json's map
/// keeps), so that a row's id never depends on key order.
fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (index, key) in keys.into_iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A time written as an RFC 3339 string or as epoch seconds (a number or a numeric string), in
/// milliseconds.
fn time_millis(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => seconds_to_millis(number.as_f64()?),
        Value::String(text) => {
            let text = text.trim();
            match text.parse::<f64>() {
                Ok(seconds) => seconds_to_millis(seconds),
                Err(_) => parse_rfc3339_millis(text),
            }
        }
        _ => None,
    }
}

fn seconds_to_millis(seconds: f64) -> Option<i64> {
    let millis = (seconds * 1000.0).round();
    (millis.is_finite() && millis.abs() < 1e16).then_some(millis as i64)
}

#[cfg(target_arch = "wasm32")]
trawl_sdk::export_connector!(Verkada);

#[cfg(test)]
mod tests;
