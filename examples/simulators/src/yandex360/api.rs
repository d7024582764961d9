//! Request handling: authentication, scope and organisation, rate limit, validation, then one page
//! of the selected events, newest first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::dataset::{Event, MAIL_TYPES, Stream};
use super::time::parse_query_time;
use super::{Config, ErrorBody, LastToken, WindowMode};
use crate::counters::Attribution;
use crate::ratelimit::{Decision, Gate};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_PAGE_SIZE: usize = 100;

/// gRPC status codes, as a gRPC-gateway puts them in error bodies.
const INVALID_ARGUMENT: u32 = 3;
const NOT_FOUND: u32 = 5;
const PERMISSION_DENIED: u32 = 7;
const RESOURCE_EXHAUSTED: u32 = 8;
const UNAUTHENTICATED: u32 = 16;

struct Api {
    config: Config,
    gate: Gate,
    next_request: AtomicU64,
}

pub(super) fn router(config: Config) -> Router {
    let gate = Gate::new(
        config.rate_limit_per_minute,
        &config.quotas,
        config.penalty,
        config.count_refused_requests,
    );
    let api = Arc::new(Api {
        config,
        gate,
        next_request: AtomicU64::new(1),
    });
    Router::new()
        .route(
            "/security/v1/org/{org}/audit_log/{stream}",
            get(audit_log).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .with_state(api)
}

/// An error response: its status, gRPC code and message.
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, INVALID_ARGUMENT, message)
    }

    fn render(self, body: ErrorBody) -> Response {
        match body {
            ErrorBody::Empty => self.status.into_response(),
            ErrorBody::Json => (
                self.status,
                Json(json!({"code": self.code, "message": self.message, "details": []})),
            )
                .into_response(),
        }
    }
}

async fn audit_log(
    State(api): State<Arc<Api>>,
    Path((org, stream)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request_id = api.next_request.fetch_add(1, Ordering::Relaxed);
    let mut response = match handle(&api, &org, &stream, &uri, &headers) {
        Ok(response) => response,
        Err(error) => error.render(api.config.error_body),
    };
    if let Ok(value) = HeaderValue::from_str(&format!("sim-{request_id:08}")) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    // Counted per token once the token is known (a 429 has said so already).
    match authenticate(&api.config, &headers) {
        Ok(token) if response.extensions().get::<Attribution>().is_none() => {
            Attribution::new(token).to(response)
        }
        _ => response,
    }
}

fn handle(
    api: &Api,
    org: &str,
    stream: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let config = &api.config;
    let token = authenticate(config, headers)?;
    let stream = Stream::from_name(stream)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND, "Not Found"))?;
    if org.is_empty() || !org.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("invalid value for orgId"));
    }
    let bound = org.parse::<u64>().is_ok_and(|org| org == config.org_id);
    let listed = |tokens: &[String]| tokens.iter().any(|t| t == token);
    let unscoped = listed(&config.unscoped_tokens)
        || (stream == Stream::Disk && listed(&config.mail_only_tokens));
    if !bound || unscoped {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            PERMISSION_DENIED,
            "Permission denied",
        ));
    }
    if let Some(limited) = rate_limit(api, token) {
        return Ok(limited);
    }
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::invalid("malformed query string"))?
        .0;
    let query = PageQuery::parse(config, stream, &pairs)?;
    let page = query.page(config, stream)?;
    Ok(Json(page).into_response())
}

/// The token on success. A missing header, another scheme or an unknown token is 401.
fn authenticate<'a>(config: &Config, headers: &'a HeaderMap) -> Result<&'a str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let token = value.strip_prefix("OAuth ").or_else(|| {
        value
            .strip_prefix("Bearer ")
            .filter(|_| config.accept_bearer)
    });
    token
        .filter(|token| {
            *token == config.token
                || [&config.unscoped_tokens, &config.mail_only_tokens]
                    .iter()
                    .any(|tokens| tokens.iter().any(|t| t == token))
        })
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, UNAUTHENTICATED, "Unauthenticated"))
}

/// A 429 when the token is over a quota or blocked after an earlier 429.
fn rate_limit(api: &Api, token: &str) -> Option<Response> {
    let Decision::Limited { retry_after_secs } = api.gate.check(token) else {
        return None;
    };
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        RESOURCE_EXHAUSTED,
        "Too many requests",
    )
    .render(api.config.error_body);
    if api.config.retry_after_on_429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after_secs.into());
    }
    Some(Attribution::new(token).self_caused_429().to(response))
}

/// A page token: the query's fingerprint, the last event served and how many pages were.
#[derive(Serialize, Deserialize)]
struct Cursor {
    f: String,
    d: i64,
    u: u64,
    t: String,
    n: u32,
}

/// The request's parameters, checked.
struct PageQuery {
    page_size: usize,
    page_token: Option<String>,
    after: Option<i64>,
    before: Option<i64>,
    include: Vec<String>,
    exclude: Vec<String>,
    types: Vec<String>,
    /// Every parameter except `pageToken`, in order: a token is valid only with the same ones.
    fingerprint: String,
}

impl PageQuery {
    fn parse(
        config: &Config,
        stream: Stream,
        pairs: &[(String, String)],
    ) -> Result<Self, ApiError> {
        let mut query = PageQuery {
            page_size: MAX_PAGE_SIZE,
            page_token: None,
            after: None,
            before: None,
            include: Vec::new(),
            exclude: Vec::new(),
            types: Vec::new(),
            fingerprint: format!("{}|", stream.name()),
        };
        let uid = |name: &str, value: &str| -> Result<String, ApiError> {
            // string<uint64>: a list must come as repeated keys, never `1,2` or `['1']`.
            if value.is_empty()
                || !value.bytes().all(|b| b.is_ascii_digit())
                || value.parse::<u64>().is_err()
            {
                return Err(ApiError::invalid(format!(
                    "invalid value for {name}: {value}"
                )));
            }
            Ok(value.to_owned())
        };
        let time = |name: &str, value: &str| -> Result<i64, ApiError> {
            parse_query_time(value).ok_or_else(|| {
                ApiError::invalid(format!(
                    "invalid value for {name}: {value}: expected ISO 8601"
                ))
            })
        };
        for (name, value) in pairs {
            match name.as_str() {
                "pageToken" => {
                    query.page_token = Some(value.clone()).filter(|token| !token.is_empty());
                    continue;
                }
                "pageSize" => {
                    let size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|size| *size >= 1)
                        .ok_or_else(|| {
                            ApiError::invalid(format!("invalid value for pageSize: {value}"))
                        })?;
                    if size > MAX_PAGE_SIZE && !config.clamp_page_size {
                        return Err(ApiError::invalid(format!(
                            "pageSize must be at most {MAX_PAGE_SIZE}"
                        )));
                    }
                    query.page_size = size.min(MAX_PAGE_SIZE);
                }
                "afterDate" => query.after = Some(time(name, value)?),
                "beforeDate" => query.before = Some(time(name, value)?),
                "includeUids" => query.include.push(uid(name, value)?),
                "excludeUids" => query.exclude.push(uid(name, value)?),
                "types" => match stream {
                    Stream::Disk if config.ignore_disk_types => continue,
                    Stream::Disk => {
                        return Err(ApiError::invalid("types is not supported for disk events"));
                    }
                    Stream::Mail => {
                        if !MAIL_TYPES.iter().any(|(known, _)| known == value) {
                            return Err(ApiError::invalid(format!(
                                "invalid value for types: {value}"
                            )));
                        }
                        query.types.push(value.clone());
                    }
                },
                _ => continue,
            }
            query.fingerprint.push_str(&format!("{name}={value}&"));
        }
        Ok(query)
    }

    fn fingerprint_hash(&self) -> String {
        let hash = self
            .fingerprint
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("{hash:016x}")
    }

    fn selects(&self, config: &Config, event: &Event) -> bool {
        let after = self.after.unwrap_or(i64::MIN);
        let before = self.before.unwrap_or_else(super::now_ms);
        let date = event.date_ms;
        let in_window = match config.window {
            WindowMode::HalfOpen => after <= date && date < before,
            WindowMode::InclusiveBoth => after <= date && date <= before,
            WindowMode::ExclusiveBoth => after < date && date < before,
        };
        let retained = config.retention.is_none_or(|retention| {
            date >= retention.now_ms - i64::from(retention.days) * 86_400_000
        });
        in_window
            && retained
            && (self.include.is_empty() || self.include.contains(&event.user_uid))
            && !self.exclude.contains(&event.user_uid)
            && (self.types.is_empty() || self.types.contains(&event.event_type))
    }

    fn page<'a>(&self, config: &'a Config, stream: Stream) -> Result<Map<String, Value>, ApiError> {
        let fingerprint = self.fingerprint_hash();
        let cursor = match &self.page_token {
            None => None,
            Some(token) => {
                let cursor = decode_token(token)
                    .filter(|cursor| cursor.f == fingerprint)
                    .ok_or_else(|| ApiError::invalid("invalid page token"))?;
                if config.max_page_depth.is_some_and(|depth| cursor.n >= depth) {
                    return Err(ApiError::invalid("page token expired"));
                }
                Some(cursor)
            }
        };
        let key = |event: &'a Event| (event.date_ms, event.uniq_id, event.event_type.as_str());
        let mut rows: Vec<&'a Event> = config
            .dataset
            .events(stream)
            .iter()
            .filter(|event| self.selects(config, event))
            .filter(|event| {
                cursor
                    .as_ref()
                    .is_none_or(|c| key(event) < (c.d, c.u, c.t.as_str()))
            })
            .collect();
        // Newest first.
        rows.sort_by(|a, b| key(b).cmp(&key(a)));
        let size = config
            .page_cap
            .map_or(self.page_size, |cap| cap.min(self.page_size))
            .max(1);
        let more = rows.len() > size;
        rows.truncate(size);

        let mut page = Map::new();
        page.insert(
            "events".into(),
            if rows.is_empty() && !config.empty_events_as_array {
                Value::Null
            } else {
                Value::Array(rows.iter().map(|event| event.json.clone()).collect())
            },
        );
        let next = match rows.last() {
            Some(last) if more => Some(encode_token(&Cursor {
                f: fingerprint,
                d: last.date_ms,
                u: last.uniq_id,
                t: last.event_type.clone(),
                n: cursor.map_or(1, |c| c.n + 1),
            })),
            _ => None,
        };
        match (next, config.last_token) {
            (Some(token), _) => {
                page.insert("nextPageToken".into(), json!(token));
            }
            (None, LastToken::Empty) => {
                page.insert("nextPageToken".into(), json!(""));
            }
            (None, LastToken::Null) => {
                page.insert("nextPageToken".into(), Value::Null);
            }
            (None, LastToken::Absent) => {}
        }
        Ok(page)
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode_token(cursor: &Cursor) -> String {
    let bytes = serde_json::to_vec(cursor).expect("a cursor serializes");
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(BASE64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn decode_token(token: &str) -> Option<Cursor> {
    let mut bytes = Vec::with_capacity(token.len() * 3 / 4);
    let mut bits = 0u32;
    let mut count = 0;
    for c in token.bytes() {
        let value = BASE64URL.iter().position(|&b| b == c)? as u32;
        bits = bits << 6 | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    serde_json::from_slice(&bytes).ok()
}

async fn method_not_allowed() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": NOT_FOUND, "message": "Not Found", "details": []})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for t in ["", "message_receive", "fs-trash-drop-all"] {
            let cursor = Cursor {
                f: "00ff".into(),
                d: 1_748_736_000_123,
                u: 5_379_628_844_452_860_001,
                t: t.into(),
                n: 7,
            };
            let token = encode_token(&cursor);
            assert!(token.bytes().all(|b| BASE64URL.contains(&b)), "{token}");
            let back = decode_token(&token).unwrap();
            assert_eq!(
                (back.f, back.d, back.u, back.t, back.n),
                (cursor.f, cursor.d, cursor.u, cursor.t, cursor.n)
            );
        }
        assert!(decode_token("not a token!").is_none());
        assert!(decode_token("e30").is_none());
    }
}
