//! Request handling: body size, authentication, quota, permission, then validation and the
//! paged answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::dataset::{Item, Stream};
use super::query::{Filter, Query};
use super::token::{SkipToken, hash};
use super::{Config, Order, TOPS, WindowMode};
use crate::counters::Attribution;
use crate::ratelimit::{Decision, Gate};

const MAX_BODY: u64 = 1 << 20;
const MAX_QUERY: usize = 2048;
const MAX_FILTER: usize = 5000;
const PERFORMANCE_PAGE: usize = 500;
const ALERT_TARGETS: [&str; 3] = [
    "createdDateTime",
    "updatedDateTime",
    "firstInvestigatedDateTime",
];
const ALERT_ORDER_FIELDS: [&str; 6] = [
    "createdDateTime",
    "updatedDateTime",
    "firstInvestigatedDateTime",
    "severity",
    "score",
    "id",
];

struct Api {
    config: Config,
    gate: Gate,
    /// Performance mode: how often each repeated `skipToken` has been answered "still searching".
    polls: Mutex<HashMap<String, u32>>,
}

#[derive(Clone, Copy)]
enum Route {
    Search(Stream),
    Alerts,
    Health,
}

pub(super) fn router(config: Config) -> Router {
    let gate = Gate::new(
        None,
        &config.quotas,
        config.penalty,
        config.count_refused_requests,
    );
    let api = Arc::new(Api {
        config,
        gate,
        polls: Mutex::default(),
    });
    let route = |route: Route| {
        get(
            move |State(api): State<Arc<Api>>, uri: Uri, headers: HeaderMap| async move {
                api.handle(route, &uri, &headers).await
            },
        )
        .fallback(method_not_allowed)
    };
    Router::new()
        .route(
            "/v3.0/search/detections",
            route(Route::Search(Stream::Detections)),
        )
        .route(
            "/v3.0/search/endpointActivities",
            route(Route::Search(Stream::EndpointActivities)),
        )
        .route("/v3.0/workbench/alerts", route(Route::Alerts))
        .route("/v3.0/healthcheck/connectivity", route(Route::Health))
        .fallback(not_found)
        .with_state(api)
}

impl Api {
    async fn handle(&self, route: Route, uri: &Uri, headers: &HeaderMap) -> Response {
        let response = self.answer(route, uri, headers).await;
        // Counted per token once the token is known (a 429 has said so already).
        match self.known_token(headers) {
            Some(token) if response.extensions().get::<Attribution>().is_none() => {
                Attribution::new(token).to(response)
            }
            _ => response,
        }
    }

    async fn answer(&self, route: Route, uri: &Uri, headers: &HeaderMap) -> Response {
        if let Err(response) = self.admit(route, headers).await {
            return response;
        }
        let answer = match route {
            Route::Search(stream) => self.search(stream, uri, headers),
            Route::Alerts => self.alerts(uri, headers),
            Route::Health => Ok(json!({ "status": "available" })),
        };
        match answer {
            Ok(body) => Json(body).into_response(),
            Err(error) => error.into_response(),
        }
    }

    /// The bearer token, if it is one the API knows.
    fn known_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let config = &self.config;
        header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| {
                *token == config.token
                    || config.no_search_tokens.iter().any(|t| t == token)
                    || config.no_workbench_tokens.iter().any(|t| t == token)
            })
    }

    /// What happens before a request is looked at: size, token, quota, permission, stalls.
    async fn admit(&self, route: Route, headers: &HeaderMap) -> Result<(), Response> {
        let config = &self.config;
        let length = header_str(headers, header::CONTENT_LENGTH.as_str())
            .and_then(|length| length.parse::<u64>().ok());
        if length.is_some_and(|length| length > MAX_BODY) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request body exceeds 1 MB",
            )
            .into_response());
        }
        let Some(token) = self.known_token(headers) else {
            return Err(self.auth_error(
                StatusCode::UNAUTHORIZED,
                &config.unauthorized_code,
                "Invalid or missing authentication token",
            ));
        };
        if let Decision::Limited {
            retry_after_secs: retry_after,
        } = self.gate.check(token)
        {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many API requests",
            )
            .into_response();
            if config.retry_after_on_429 {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            return Err(Attribution::new(token).self_caused_429().to(response));
        }
        let denied = match route {
            Route::Search(_) => config.no_search_tokens.iter().any(|t| t == token),
            Route::Alerts => config.no_workbench_tokens.iter().any(|t| t == token),
            Route::Health => false,
        };
        if denied {
            return Err(self.auth_error(
                StatusCode::FORBIDDEN,
                &config.forbidden_code,
                "The role of this token does not have access to this API",
            ));
        }
        if let Some(stall) = config.stall
            && !matches!(route, Route::Health)
        {
            if stall >= config.gateway_timeout {
                tokio::time::sleep(config.gateway_timeout).await;
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "GatewayTimeout",
                    "The request took longer than 60 seconds",
                )
                .into_response());
            }
            tokio::time::sleep(stall).await;
        }
        Ok(())
    }

    fn auth_error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        if self.config.bare_auth_errors {
            return status.into_response();
        }
        ApiError::new(status, code, message).into_response()
    }

    fn search(&self, stream: Stream, uri: &Uri, headers: &HeaderMap) -> Result<Value, ApiError> {
        let params = Params::parse(uri.query())?;
        let query_text = header_str(headers, "tmv1-query")
            .map(str::trim)
            .filter(|query| !query.is_empty())
            .ok_or_else(|| bad_request("The TMV1-Query header is required"))?;
        if query_text.len() > MAX_QUERY {
            return Err(bad_request(format!(
                "TMV1-Query must be at most {MAX_QUERY} characters"
            )));
        }
        let query = Query::parse(query_text)
            .map_err(|error| bad_request(format!("Invalid TMV1-Query: {error}")))?;
        let incoming = params.get("skipToken");
        let state = match incoming {
            Some(text) => {
                let token = SkipToken::decode(text).ok_or_else(invalid_token)?;
                if token.r != stream.path() || token.q != hash(query_text) {
                    return Err(invalid_token());
                }
                token
            }
            None => {
                let mode = params.get("mode").unwrap_or("default");
                if !matches!(mode, "default" | "countOnly" | "performance") {
                    return Err(bad_request(format!(
                        "Invalid mode `{mode}`: use default, countOnly or performance"
                    )));
                }
                let top = match params.get("top") {
                    None => 500,
                    Some(text) => text
                        .parse::<usize>()
                        .ok()
                        .filter(|top| TOPS.contains(top))
                        .ok_or_else(|| {
                            bad_request(format!(
                                "Invalid top `{text}`: use 50, 100, 500, 1000 or 5000"
                            ))
                        })?,
                };
                let (start, end) = self.range(&params)?;
                let select = params.get("select").unwrap_or("");
                if select.len() > MAX_QUERY {
                    return Err(bad_request(format!(
                        "select must be at most {MAX_QUERY} characters"
                    )));
                }
                SkipToken {
                    v: 1,
                    r: stream.path().to_owned(),
                    q: hash(query_text),
                    s: start,
                    e: end,
                    sel: if select == "empty" { "" } else { select }.to_owned(),
                    top,
                    m: mode.to_owned(),
                    off: 0,
                    n: 0,
                    k: 0,
                    t: String::new(),
                    o: String::new(),
                }
            }
        };

        let matched = self.matching(stream, &state, |item| query.matches(&item.json));
        if state.m == "countOnly" {
            return Ok(json!({ "totalCount": matched.len(), "progressRate": 100 }));
        }
        let empty_pages = self.config.performance_empty_pages;
        if state.m == "performance" {
            let seen = match incoming {
                Some(text) if self.config.repeat_next_link_while_searching => {
                    let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
                    let seen = polls.entry(text.to_owned()).or_default();
                    let before = *seen;
                    if state.k + before < empty_pages {
                        *seen += 1;
                    }
                    before
                }
                _ => 0,
            };
            let done = state.k + seen;
            if done < empty_pages {
                let next = match incoming {
                    Some(text) if self.config.repeat_next_link_while_searching => text.to_owned(),
                    _ => SkipToken {
                        k: done + 1,
                        ..state.clone()
                    }
                    .encode(),
                };
                return Ok(json!({
                    "items": [],
                    "progressRate": 100 * done / empty_pages,
                    "nextLink": next_link(&self.config, headers, stream.path(), &state, &next),
                }));
            }
        }
        let page_size = if state.m == "performance" {
            PERFORMANCE_PAGE
        } else {
            state.top
        };
        let (range, next) = self.page(matched.len(), &state, page_size);
        let fields: Vec<&str> = state
            .sel
            .split(',')
            .map(str::trim)
            .filter(|field| !field.is_empty())
            .collect();
        let items: Vec<Value> = matched[range]
            .iter()
            .map(|item| project(&item.json, &fields))
            .collect();
        let mut body = json!({ "items": items, "progressRate": 100 });
        if let Some(next) = next {
            body["nextLink"] = json!(next_link(
                &self.config,
                headers,
                stream.path(),
                &next,
                &next.encode()
            ));
        }
        Ok(body)
    }

    fn alerts(&self, uri: &Uri, headers: &HeaderMap) -> Result<Value, ApiError> {
        let path = Stream::WorkbenchAlerts.path();
        let params = Params::parse(uri.query())?;
        let filter_text = header_str(headers, "tmv1-filter").map_or("", str::trim);
        if filter_text.len() > MAX_FILTER {
            return Err(bad_request(format!(
                "TMV1-Filter must be at most {MAX_FILTER} characters"
            )));
        }
        let filter = match filter_text {
            "" => None,
            text => Some(
                Filter::parse(text)
                    .map_err(|error| bad_request(format!("Invalid TMV1-Filter: {error}")))?,
            ),
        };
        let state = match params.get("skipToken") {
            Some(text) => {
                let token = SkipToken::decode(text).ok_or_else(invalid_token)?;
                if token.r != path || token.q != hash(filter_text) {
                    return Err(invalid_token());
                }
                token
            }
            None => {
                let (start, end) = self.range(&params)?;
                let target = params.get("dateTimeTarget").unwrap_or(ALERT_TARGETS[0]);
                if !ALERT_TARGETS.contains(&target) {
                    return Err(bad_request(format!(
                        "Invalid dateTimeTarget `{target}`: use {}",
                        ALERT_TARGETS.join(", ")
                    )));
                }
                let order = params.get("orderBy").unwrap_or("createdDateTime desc");
                parse_order(order)?;
                let top = match params.get("top") {
                    None => self.config.alert_page_size,
                    Some(text) => text
                        .parse::<usize>()
                        .ok()
                        .filter(|top| (1..=1000).contains(top))
                        .ok_or_else(|| bad_request(format!("Invalid top `{text}`")))?,
                };
                SkipToken {
                    v: 1,
                    r: path.to_owned(),
                    q: hash(filter_text),
                    s: start,
                    e: end,
                    sel: String::new(),
                    top,
                    m: String::new(),
                    off: 0,
                    n: 0,
                    k: 0,
                    t: target.to_owned(),
                    o: order.to_owned(),
                }
            }
        };
        let (from, to) = (state.s * 1000, state.e * 1000);
        let mut matched: Vec<&Item> = self
            .config
            .dataset
            .alerts
            .iter()
            .filter(|alert| {
                alert.date_ms(&state.t).is_some_and(|at| {
                    at >= from
                        && match self.config.window {
                            WindowMode::InclusiveBoth => at <= to,
                            WindowMode::HalfOpen => at < to,
                        }
                })
            })
            .filter(|alert| {
                filter
                    .as_ref()
                    .is_none_or(|filter| filter.matches(&alert.json))
            })
            .collect();
        let order = parse_order(&state.o)?;
        matched.sort_by(|a, b| {
            order
                .iter()
                .map(|(field, ascending)| {
                    let ordering = compare_field(a, b, field);
                    if *ascending {
                        ordering
                    } else {
                        ordering.reverse()
                    }
                })
                .find(|ordering| ordering.is_ne())
                .unwrap_or_else(|| a.id.cmp(&b.id))
        });
        let (range, next) = self.page(matched.len(), &state, state.top);
        let items: Vec<&Value> = matched[range].iter().map(|alert| &alert.json).collect();
        let mut body = json!({
            "totalCount": matched.len(),
            "count": items.len(),
            "items": items,
        });
        if let Some(next) = next {
            body["nextLink"] = json!(next_link(
                &self.config,
                headers,
                path,
                &next,
                &next.encode()
            ));
        }
        Ok(body)
    }

    /// `(startDateTime, endDateTime)` in Unix seconds; the last 24 hours when left out.
    fn range(&self, params: &Params) -> Result<(i64, i64), ApiError> {
        let date = |name: &str| -> Result<Option<i64>, ApiError> {
            params
                .get(name)
                .map(|text| {
                    parse_date_time(text).ok_or_else(|| {
                        bad_request(format!(
                            "Invalid {name} `{text}`: use the format yyyy-MM-ddThh:mm:ssZ"
                        ))
                    })
                })
                .transpose()
        };
        let now = self.config.now_unix.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        let end = date("endDateTime")?.unwrap_or(now);
        let start = date("startDateTime")?.unwrap_or(end - 86_400);
        if start > end {
            return Err(bad_request(
                "startDateTime must not be later than endDateTime",
            ));
        }
        Ok((start, end))
    }

    /// Search records in the token's range that pass `keep`, in the configured order.
    fn matching(
        &self,
        stream: Stream,
        state: &SkipToken,
        keep: impl Fn(&Item) -> bool,
    ) -> Vec<&Item> {
        let items = self.config.dataset.items(stream);
        let (from, to) = (state.s * 1000, state.e * 1000);
        let lo = items.partition_point(|item| item.time_ms < from);
        let hi = match self.config.window {
            WindowMode::InclusiveBoth => items.partition_point(|item| item.time_ms <= to),
            WindowMode::HalfOpen => items.partition_point(|item| item.time_ms < to),
        }
        .max(lo);
        let mut matched: Vec<&Item> = items[lo..hi].iter().filter(|item| keep(item)).collect();
        if self.config.order == Order::Descending {
            matched.sort_by(|a, b| b.time_ms.cmp(&a.time_ms).then_with(|| a.id.cmp(&b.id)));
        }
        matched
    }

    /// The slice of `total` records this page serves and the state of the next page, if any.
    fn page(
        &self,
        total: usize,
        state: &SkipToken,
        page_size: usize,
    ) -> (std::ops::Range<usize>, Option<SkipToken>) {
        let wanted = if self.config.short_pages {
            match state.n % 3 {
                1 => (page_size / 2).max(1),
                2 => 0,
                _ => page_size,
            }
        } else {
            page_size
        };
        let from = state.off.min(total);
        let to = (from + wanted).min(total);
        let next = (to < total).then(|| SkipToken {
            off: to,
            n: state.n + 1,
            k: self.config.performance_empty_pages,
            ..state.clone()
        });
        (from..to, next)
    }
}

/// The absolute `nextLink`, on the scheme, host and port the client used (or the configured
/// ones).
fn next_link(
    config: &Config,
    headers: &HeaderMap,
    path: &str,
    state: &SkipToken,
    token: &str,
) -> String {
    let mut link = match &config.next_link_base {
        Some(base) => format!("{}{path}?", base.trim_end_matches('/')),
        None => {
            let host = header_str(headers, header::HOST.as_str()).unwrap_or("127.0.0.1");
            format!("http://{host}{path}?")
        }
    };
    if state.m == "default" {
        link.push_str(&format!("top={}&", state.top));
    }
    if !state.m.is_empty() && state.m != "default" {
        link.push_str(&format!("mode={}&", state.m));
    }
    if !state.sel.is_empty() {
        link.push_str(&format!("select={}&", percent_encode(&state.sel)));
    }
    link.push_str("skipToken=");
    link.push_str(token);
    link
}

/// Only the `fields` of `record` (all of it when `fields` is empty).
fn project(record: &Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return record.clone();
    }
    let mut projected = Map::new();
    for field in fields {
        if let Some(value) = record.get(*field) {
            projected.insert((*field).to_owned(), value.clone());
        }
    }
    Value::Object(projected)
}

fn parse_order(text: &str) -> Result<Vec<(String, bool)>, ApiError> {
    text.split(',')
        .map(|part| {
            let mut words = part.split_whitespace();
            let field = words.next().unwrap_or("");
            let ascending = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("desc") => false,
                Some("asc") => true,
                Some(other) => {
                    return Err(bad_request(format!("Invalid orderBy direction `{other}`")));
                }
            };
            if !ALERT_ORDER_FIELDS.contains(&field) || words.next().is_some() {
                return Err(bad_request(format!("Invalid orderBy `{}`", part.trim())));
            }
            Ok((field.to_owned(), ascending))
        })
        .collect()
}

fn compare_field(a: &Item, b: &Item, field: &str) -> std::cmp::Ordering {
    if field.ends_with("DateTime") {
        return a.date_ms(field).cmp(&b.date_ms(field));
    }
    let key = |item: &Item| match &item.json[field] {
        Value::Number(number) => (number.as_f64().unwrap_or(0.0), String::new()),
        other => (0.0, other.as_str().unwrap_or("").to_owned()),
    };
    let (a, b) = (key(a), key(b));
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1))
}

/// `yyyy-MM-ddThh:mm:ssZ` exactly (20 characters), in Unix seconds.
fn parse_date_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 20 || bytes[10] != b'T' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if bytes[19] != b'Z' {
        return None;
    }
    let day = crate::timefmt::parse_date(&text[..10])?;
    let field = |range: std::ops::Range<usize>, max: i64| {
        let part = &text[range];
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse::<i64>().ok())
            .flatten()
            .filter(|value| *value <= max)
    };
    Some(day + field(11..13, 23)? * 3600 + field(14..16, 59)? * 60 + field(17..19, 59)?)
}

/// The query string's parameters, percent-decoded; the first of a repeated name wins.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Result<Params, ApiError> {
        let mut pairs = Vec::new();
        for pair in query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_decode(text)
                    .ok_or_else(|| bad_request(format!("Invalid query parameter `{pair}`")))
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                at += 3;
            }
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Vision One's error body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn invalid_token() -> ApiError {
    bad_request("Invalid skipToken")
}

async fn method_not_allowed() -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "Only GET is supported",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "Resource not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_exactly_twenty_characters() {
        assert_eq!(parse_date_time("2024-10-20T00:00:00Z"), Some(1_729_382_400));
        assert_eq!(parse_date_time("2024-10-20T23:59:59Z"), Some(1_729_468_799));
        for bad in [
            "2024-10-20T00:00:00.000Z",
            "2024-10-20T00:00:00+00:00",
            "2024-10-20T24:00:00Z",
            "2024-10-20 00:00:00Z",
            "2024-10-20",
            "2024-02-30T00:00:00Z",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_coding() {
        assert_eq!(percent_decode("a%20b+c%2Bd").as_deref(), Some("a b c+d"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_encode("uuid,eventTime a"), "uuid%2CeventTime%20a");
    }

    #[test]
    fn order_by() {
        assert_eq!(
            parse_order("createdDateTime desc, severity asc").unwrap(),
            vec![
                ("createdDateTime".to_owned(), false),
                ("severity".to_owned(), true)
            ]
        );
        assert!(parse_order("createdDateTime sideways").is_err());
        assert!(parse_order("nope asc").is_err());
    }
}
