//! Request handling: authentication as a Laravel app does it, then rate limit, validation, and the
//! window query.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::{Config, Order, WindowMode};
use crate::counters::Attribution;
use crate::ratelimit::{Decision, Gate};

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

struct Api {
    config: Config,
    gate: Gate,
}

pub(super) fn router(config: Config) -> Router {
    let gate = Gate::new(
        config.rate_limit_per_minute,
        &config.quotas,
        config.penalty,
        config.count_refused_requests,
    );
    let api = Arc::new(Api { config, gate });
    let siem = get(siem).fallback(method_not_allowed);
    Router::new()
        .route("/v1/siem/{from}/{to}", siem.clone())
        .route("/v1/siem/{from}/{to}/", siem)
        .fallback(not_found)
        .with_state(api)
}

async fn siem(
    State(api): State<Arc<Api>>,
    Path((from, to)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let config = &api.config;
    let token = match authenticate(config, &headers) {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };

    let mut limit_headers = HeaderMap::new();
    if let Some(per_minute) = api.gate.per_minute() {
        limit_headers.insert(LIMIT, per_minute.into());
    }
    match api.gate.check(token) {
        Decision::Allowed { remaining } => {
            if api.gate.limits() {
                limit_headers.insert(REMAINING, remaining.into());
            }
        }
        Decision::Limited { retry_after_secs } => {
            let attribution = Attribution::new(token).self_caused_429();
            if config.bare_429 {
                return attribution.to(StatusCode::TOO_MANY_REQUESTS.into_response());
            }
            limit_headers.insert(REMAINING, 0.into());
            if config.retry_after_on_429 {
                limit_headers.insert(header::RETRY_AFTER, retry_after_secs.into());
                limit_headers.insert(RESET, (unix_now() + retry_after_secs).into());
            }
            let body = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
            return attribution.to((limit_headers, body).into_response());
        }
    }

    let response = match query(config, &from, &to, &uri, &headers) {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    };
    Attribution::new(token).to((limit_headers, response).into_response())
}

/// Returns the bearer token on success. Laravel's order: a missing or unknown token is 401 before
/// anything else is looked at.
fn authenticate<'a>(config: &Config, headers: &'a HeaderMap) -> Result<&'a str, ApiError> {
    let unauthenticated = || ApiError::new(StatusCode::UNAUTHORIZED, "Unauthenticated.");
    let token = header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|value| value.strip_prefix("Bearer "))
        .filter(|token| *token == config.token || config.unscoped_tokens.iter().any(|t| t == token))
        .ok_or_else(unauthenticated)?;
    let org = header_str(headers, "workvivo-id").ok_or_else(unauthenticated)?;
    if org != config.org_id || token != config.token {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden"));
    }
    Ok(token)
}

#[derive(Serialize)]
struct Page<'a> {
    data: Vec<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Meta>,
    status: &'static str,
}

#[derive(Serialize)]
struct Meta {
    pagination: Pagination,
}

#[derive(Serialize)]
struct Pagination {
    skip: usize,
    take: usize,
    total_records: usize,
    next_page: Option<String>,
}

fn query<'a>(
    config: &'a Config,
    from: &str,
    to: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Page<'a>, ApiError> {
    let rows = window(config, from, to)?;
    match config.max_rows {
        None => Ok(Page {
            data: rows,
            meta: None,
            status: "success",
        }),
        Some(max_rows) => paginate(rows, max_rows, uri, headers),
    }
}

/// The rows of the `{from}/{to}` window, in the configured order.
fn window<'a>(config: &'a Config, from: &str, to: &str) -> Result<Vec<&'a Value>, ApiError> {
    let from =
        parse_integer(from).ok_or_else(|| bad_request("The from field must be an integer."))?;
    let to = parse_integer(to).ok_or_else(|| bad_request("The to field must be an integer."))?;
    if from > to {
        return Err(bad_request(
            "The to field must be greater than or equal to from.",
        ));
    }
    if let Some(days) = config.max_window_days
        && to - from > i64::from(days) * 86_400
    {
        return Err(bad_request(format!(
            "The window may not be longer than {days} days."
        )));
    }

    let end = match config.window {
        WindowMode::InclusiveBoth => to.saturating_add(1),
        WindowMode::HalfOpen => to,
    };
    let start = match config.retention {
        Some(r) => from.max(r.now_unix - i64::from(r.days) * 86_400),
        None => from,
    };
    let (lo, hi) = config.dataset.bounds(start, end);
    let rows = config.dataset.events[lo..hi].iter().map(|e| &e.json);
    Ok(match config.order {
        Order::Ascending => rows.collect(),
        Order::Descending => rows.rev().collect(),
    })
}

/// One page of `rows` per `?skip=&take=`, in the envelope of Workvivo's paged v1 endpoints.
fn paginate<'a>(
    rows: Vec<&'a Value>,
    max_rows: usize,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Page<'a>, ApiError> {
    let params = QueryParams::parse(uri.query().unwrap_or(""))?;
    let skip = params.skip.unwrap_or(0);
    let take = params.take.unwrap_or(max_rows).min(max_rows);
    if take == 0 {
        return Err(bad_request("The take field must be at least 1."));
    }
    let total_records = rows.len();
    // An absolute URL, built from the Host the client used, as Laravel's paginator does.
    let next_page = (skip + take < total_records).then(|| {
        let host = header_str(headers, header::HOST.as_str()).unwrap_or("127.0.0.1");
        format!(
            "http://{host}{}?skip={}&take={take}",
            uri.path(),
            skip + take
        )
    });
    let data = rows.into_iter().skip(skip).take(take).collect();
    let pagination = Pagination {
        skip,
        take,
        total_records,
        next_page,
    };
    Ok(Page {
        data,
        meta: Some(Meta { pagination }),
        status: "success",
    })
}

#[derive(Default)]
struct QueryParams {
    skip: Option<usize>,
    take: Option<usize>,
}

impl QueryParams {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let mut params = Self::default();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "skip" => &mut params.skip,
                "take" => &mut params.take,
                _ => continue,
            };
            let value = parse_integer(value)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| bad_request(format!("The {name} field must be an integer.")))?;
            *slot = Some(value);
        }
        Ok(params)
    }
}

/// A non-negative decimal integer, digits only (no sign, no spaces).
fn parse_integer(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// An error as Laravel renders one for an API client: a status and `{"message": ...}`.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

async fn method_not_allowed(method: axum::http::Method) -> Response {
    let text = format!(
        "The {method} method is not supported for route v1/siem/{{from}}/{{to}}. Supported methods: GET, HEAD."
    );
    let mut response = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, text).into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "Not Found").into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
