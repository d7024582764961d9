//! Request handling: the token exchange, then for data routes authentication, the organisation's
//! rate limit, permission, validation, and a window of visible rows served page by page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::dataset::{AuditEvent, NOTIFICATION_TYPES};
use super::{ApiKey, Config, ErrorStyle, Keyring, Order, WindowMode};
use crate::counters::Attribution;
use crate::ratelimit::{Decision, Gate};
use crate::rng::SplitMix64;

struct Api {
    config: Config,
    /// Revocations and replacements of the configured keys.
    keyring: Keyring,
    tokens: Mutex<HashMap<String, Issued>>,
    minted: AtomicU64,
    /// Makes this server's tokens its own: a token of another simulator is unknown here even if
    /// both minted the same number of tokens.
    nonce: u64,
    /// Per organisation: its quotas and the cooldown after a 429.
    gate: Gate,
}

/// A token handed out: for which key, and until when it works.
struct Issued {
    key: String,
    expires: Instant,
}

/// Servers started in this process, to tell their tokens apart.
static SERVERS: AtomicU64 = AtomicU64::new(0);

pub(super) fn router(config: Config) -> Router {
    let gate = Gate::new(
        None,
        &config.quotas,
        config.penalty,
        config.count_refused_requests,
    );
    let keyring = config.keyring.clone();
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let nonce =
        clock ^ u64::from(std::process::id()) << 32 ^ SERVERS.fetch_add(1, Ordering::SeqCst);
    let api = Arc::new(Api {
        config,
        keyring,
        tokens: Mutex::default(),
        minted: AtomicU64::new(0),
        nonce,
        gate,
    });
    Router::new()
        .route("/token", post(token).fallback(method_not_allowed))
        .route(
            "/core/v1/audit_log",
            get(audit_log).fallback(method_not_allowed),
        )
        .route(
            "/cameras/v1/alerts",
            get(alerts).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .with_state(api)
}

/// An error as Verkada sends one: `{"id": ..., "message": ..., "data": null}`.
struct ApiError {
    status: StatusCode,
    id: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            id,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "400", message)
    }

    fn render(self, style: ErrorStyle) -> Response {
        let body = match style {
            ErrorStyle::Json => {
                json!({"id": self.id, "message": self.message, "data": null}).to_string()
            }
            ErrorStyle::Python => format!(
                "{{'id': '{}', 'message': '{}', 'data': None}}",
                self.id,
                self.message.replace('\'', "\\'")
            ),
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl Api {
    fn fail(&self, error: ApiError) -> Response {
        error.render(self.config.error_style)
    }

    /// The organisation's quotas and cooldown (a refused request is one the client caused).
    fn admit(&self, org: &str) -> Result<(), ApiError> {
        match self.gate.check(org) {
            Decision::Allowed { .. } => Ok(()),
            Decision::Limited { retry_after_secs } => {
                let mut error =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "429", "Too Many Requests");
                if self.config.retry_after_on_429 {
                    error.retry_after = Some(retry_after_secs);
                }
                Err(error)
            }
        }
    }

    /// The key behind an `x-verkada-auth` token, if the token is known, unexpired, its key still
    /// in force, and (when the request names a key as well) the key it was made for.
    fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        let invalid = || self.unauthorized("b7e2", "Invalid token");
        let token = header_str(headers, "x-verkada-auth").ok_or_else(invalid)?;
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let issued = tokens.get(token).ok_or_else(invalid)?;
        if Instant::now() >= issued.expires {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "0e2d",
                "Token expired",
            ));
        }
        if self.config.api_key_must_match_token
            && header_str(headers, "x-api-key").is_some_and(|given| given != issued.key)
        {
            return Err(invalid());
        }
        self.key(&issued.key).ok_or_else(invalid)
    }

    /// The key in force with this text.
    fn key(&self, given: &str) -> Option<ApiKey> {
        self.keyring.find(&self.config.keys, given)
    }

    /// A 401 for an unknown key or token, with the guessed text or a bare one.
    fn unauthorized(&self, id: &'static str, message: &str) -> ApiError {
        if self.config.terse_auth_errors {
            ApiError::new(StatusCode::UNAUTHORIZED, "401", "Unauthorized")
        } else {
            ApiError::new(StatusCode::UNAUTHORIZED, id, message)
        }
    }

    fn new_token(&self, key: &str) -> String {
        let n = self.minted.fetch_add(1, Ordering::SeqCst);
        let key_hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let mut rng = SplitMix64::new(self.nonce ^ key_hash ^ n.wrapping_mul(0x9E37_79B9));
        (0..4).map(|_| format!("{:016x}", rng.next_u64())).collect()
    }
}

async fn token(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let config = &api.config;
    let key = header_str(&headers, "x-api-key")
        .and_then(|given| api.key(given))
        .filter(|key| !config.region_bound_keys || key.region == config.region);
    let Some(key) = key else {
        return api.fail(api.unauthorized("7a1b", "Missing or invalid API key"));
    };
    let attribution = Attribution::new(&key.key).token_request();
    if let Err(error) = api.admit(&key.org) {
        return attribution.self_caused_429().to(api.fail(error));
    }
    let token = api.new_token(&key.key);
    api.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(
        token.clone(),
        Issued {
            key: key.key.clone(),
            expires: Instant::now() + config.token_ttl,
        },
    );
    attribution.to(Json(json!({ "token": token })).into_response())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    AuditLog,
    Alerts,
}

async fn audit_log(State(api): State<Arc<Api>>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&api, Route::AuditLog, &uri, &headers)
}

async fn alerts(State(api): State<Arc<Api>>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&api, Route::Alerts, &uri, &headers)
}

fn serve(api: &Api, route: Route, uri: &Uri, headers: &HeaderMap) -> Response {
    let key = match api.authenticate(headers) {
        Ok(key) => key,
        Err(error) => return api.fail(error),
    };
    let attribution = Attribution::new(&key.key);
    if let Err(error) = api.admit(&key.org) {
        return attribution.self_caused_429().to(api.fail(error));
    }
    let allowed = match route {
        Route::AuditLog => key.audit_log,
        Route::Alerts => key.camera_alerts,
    };
    if !allowed {
        return attribution.to(api.fail(ApiError::new(
            StatusCode::FORBIDDEN,
            "f0b1",
            "Forbidden: the API key does not have permission for this endpoint",
        )));
    }
    attribution.to(match query(api, route, uri) {
        Ok(body) => Json(body).into_response(),
        Err(error) => api.fail(error),
    })
}

/// The query's parameters, checked.
struct Filter {
    start: i64,
    end: i64,
    page_size: usize,
    by_processing_time: bool,
    include_image_url: bool,
    types: Option<Vec<String>>,
}

impl Filter {
    /// A fingerprint of everything that selects rows; a page token only works with the same.
    fn fingerprint(&self, route: Route) -> u64 {
        let text = format!(
            "{}|{}|{}|{}|{}|{}|{:?}",
            route == Route::AuditLog,
            self.start,
            self.end,
            self.page_size,
            self.by_processing_time,
            self.include_image_url,
            self.types
        );
        // FNV-1a.
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

fn query(api: &Api, route: Route, uri: &Uri) -> Result<Value, ApiError> {
    let config = &api.config;
    let params = parse_query(uri.query().unwrap_or(""));
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let now = config.clock.now();
    let integer = |name: &str, default: i64| -> Result<i64, ApiError> {
        match param(name) {
            None => Ok(default),
            Some(text) => parse_integer(text)
                .ok_or_else(|| ApiError::bad_request(format!("{name} must be an integer"))),
        }
    };
    let boolean = |name: &str| -> Result<bool, ApiError> {
        let Some(text) = param(name) else {
            return Ok(false);
        };
        let accepted = |word: &str| {
            if config.strict_booleans {
                text == word
            } else {
                text.eq_ignore_ascii_case(word)
            }
        };
        if accepted("true") {
            Ok(true)
        } else if accepted("false") {
            Ok(false)
        } else {
            Err(ApiError::bad_request(format!(
                "{name} must be true or false, not {text}"
            )))
        }
    };
    let start = integer("start_time", now - 3600)?;
    let end = integer("end_time", now)?;
    if start > end && config.reject_inverted_windows {
        return Err(ApiError::bad_request(
            "start_time must not be after end_time",
        ));
    }
    let page_size = match integer("page_size", 100)? {
        0 if config.zero_page_size_is_default => 100,
        size @ 1..=200 => size as usize,
        _ => {
            return Err(ApiError::bad_request("page_size must be between 1 and 200"));
        }
    };
    let types = match (route, param("notification_type")) {
        (Route::Alerts, Some(list)) => {
            let types: Vec<String> = list.split(',').map(|t| t.trim().to_owned()).collect();
            if let Some(unknown) = types
                .iter()
                .find(|kind| !NOTIFICATION_TYPES.contains(&kind.as_str()))
            {
                return Err(ApiError::bad_request(format!(
                    "invalid notification_type: {unknown}"
                )));
            }
            Some(types)
        }
        _ => None,
    };
    let filter = Filter {
        start,
        end,
        page_size,
        by_processing_time: route == Route::AuditLog && boolean("use_processed_timestamp")?,
        include_image_url: route == Route::Alerts && boolean("include_image_url")?,
        types,
    };
    let fingerprint = filter.fingerprint(route);
    let (offset, as_of) = match param("page_token") {
        None | Some("") => (0, now),
        Some(token) => {
            let (seen, offset, as_of) = decode_page_token(token)
                .ok_or_else(|| ApiError::bad_request("invalid page_token"))?;
            if seen != fingerprint {
                return Err(ApiError::bad_request(
                    "page_token does not belong to this query",
                ));
            }
            (offset, as_of)
        }
    };
    let in_window = |t: i64| match config.window {
        WindowMode::InclusiveBoth => filter.start <= t && t <= filter.end,
        WindowMode::HalfOpen => filter.start <= t && t < filter.end,
        WindowMode::ExclusiveStart => filter.start < t && t <= filter.end,
    };
    let visible = |from: i64| from + config.visibility_delay <= as_of;

    match route {
        Route::AuditLog => {
            let mut rows: Vec<&AuditEvent> = config
                .dataset
                .audit
                .iter()
                .filter(|event| visible(event.visible_from()))
                .filter(|event| match filter.by_processing_time {
                    true => event.processed.is_some_and(in_window),
                    false => in_window(event.timestamp),
                })
                .collect();
            match config.order {
                Order::Ascending => {}
                Order::Descending => rows.reverse(),
                Order::Processed => rows.sort_by_key(|event| event.visible_from()),
            }
            let page = rows
                .iter()
                .skip(offset)
                .take(page_size)
                .map(|event| event.json.clone())
                .collect();
            let next = (offset + page_size < rows.len())
                .then(|| encode_page_token(fingerprint, offset + page_size, as_of));
            Ok(envelope(config, "audit_logs", page, next))
        }
        Route::Alerts => {
            let mut alerts: Vec<_> = config
                .dataset
                .alerts
                .iter()
                .filter(|alert| visible(alert.created) && in_window(alert.created))
                .filter(|alert| {
                    filter
                        .types
                        .as_ref()
                        .is_none_or(|types| types.iter().any(|t| t == alert.notification_type))
                })
                .collect();
            if config.order == Order::Descending {
                alerts.reverse();
            }
            let total = alerts.len();
            let rows = alerts
                .into_iter()
                .skip(offset)
                .take(page_size)
                .map(|alert| {
                    let mut json = alert.json.clone();
                    if filter.include_image_url {
                        // Signed URLs differ at every read.
                        json["image_url"] = json!(format!(
                            "https://verkada-alert-images.s3.amazonaws.com/{}/{}.jpg\
                             ?X-Amz-Expires=3600&X-Amz-Signature={:016x}",
                            alert.json["camera_id"].as_str().unwrap_or(""),
                            alert.created,
                            SplitMix64::new(alert.created as u64 ^ now as u64).next_u64()
                        ));
                    }
                    json
                })
                .collect();
            let next = (offset + page_size < total)
                .then(|| encode_page_token(fingerprint, offset + page_size, as_of));
            Ok(envelope(config, "notifications", rows, next))
        }
    }
}

fn envelope(config: &Config, list: &str, rows: Vec<Value>, next: Option<String>) -> Value {
    let rows = if rows.is_empty() && config.null_when_empty {
        Value::Null
    } else {
        Value::Array(rows)
    };
    json!({ list: rows, "next_page_token": next })
}

/// `name=value` pairs, percent-decoded the way web frameworks do (`+` is a space).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16).map(|digit| digit as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                if let (Some(high), Some(low)) = (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    out.push(high << 4 | low);
                    index += 3;
                    continue;
                }
                out.push(b'%');
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A decimal integer, optionally negative; nothing else.
fn parse_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Opaque to clients: standard base64 of a marker, the query's fingerprint, the offset of the
/// next page, and the moment the first page was read (later pages see the rows the first one saw).
/// The marker makes every token start with `+`, which a client must escape in a URL (unescaped,
/// it arrives as a space).
fn encode_page_token(fingerprint: u64, offset: usize, as_of: i64) -> String {
    let mut payload = PAGE_TOKEN_MARKER.to_vec();
    payload.extend_from_slice(format!("{fingerprint:016x}~{offset}~{as_of}").as_bytes());
    base64_encode(&payload)
}

const PAGE_TOKEN_MARKER: &[u8] = &[0xfa, 0xde, 0xd0];

fn decode_page_token(token: &str) -> Option<(u64, usize, i64)> {
    let payload = base64_decode(token)?;
    let text = String::from_utf8(payload.strip_prefix(PAGE_TOKEN_MARKER)?.to_vec()).ok()?;
    let mut parts = text.split('~');
    let fingerprint = u64::from_str_radix(parts.next()?, 16).ok()?;
    let offset = parts.next()?.parse().ok()?;
    let as_of = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((fingerprint, offset, as_of))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::new();
    let mut n = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = BASE64.iter().position(|&c| c == byte)? as u32;
        n = n << 6 | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((n >> bits & 0xff) as u8);
        }
    }
    Some(out)
}

async fn method_not_allowed(State(api): State<Arc<Api>>) -> Response {
    api.fail(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "405",
        "Method Not Allowed",
    ))
}

async fn not_found(State(api): State<Arc<Api>>) -> Response {
    api.fail(ApiError::new(StatusCode::NOT_FOUND, "404", "Not Found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_need_escaping() {
        let tokens: Vec<String> = (0..20)
            .map(|offset| encode_page_token(0xfeed_beef_0000_0001, offset * 7, 1_757_980_800))
            .collect();
        for (offset, token) in tokens.iter().enumerate() {
            assert_eq!(
                decode_page_token(token),
                Some((0xfeed_beef_0000_0001, offset * 7, 1_757_980_800))
            );
        }
        assert!(tokens.iter().any(|token| token.contains(['+', '/', '='])));
        assert_eq!(decode_page_token("not base64!"), None);
        assert_eq!(decode_page_token(&base64_encode(b"1~2")), None);
    }

    #[test]
    fn queries_decode_like_a_web_framework() {
        assert_eq!(
            parse_query("a=1&b=x%2By+z&notification_type=motion%2Ctamper&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x+y z".into()),
                ("notification_type".into(), "motion,tamper".into()),
                ("c".into(), String::new()),
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(parse_integer("-5"), Some(-5));
        for bad in ["", "1.5", "1e3", " 1", "abc", "-"] {
            assert_eq!(parse_integer(bad), None, "{bad}");
        }
    }
}
