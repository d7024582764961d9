//! Trend Vision One API v3.0: detections and endpoint activities from the search API
//! (`GET /v3.0/search/...`, filtered by the `TMV1-Query` header) and Workbench alerts
//! (`GET /v3.0/workbench/alerts`). Every list pages through `nextLink`, an absolute URL that is
//! followed as it is, with the same headers, until it is absent.
#![cfg(target_arch = "wasm32")]

use serde::Deserialize;
use serde_json::Value;
use trawl_sdk::http::{self, HeldResponse};
use trawl_sdk::time::{days_from_civil, format_rfc3339_seconds};
use trawl_sdk::{
    Connector, ConnectorInfo, DAY_MS, FetchError, HOUR_MS, HostSetting, Page, PageRequest,
    ParamInfo, ParamKind, RateLimit, StreamInfo, TimeFormat, Window, id_text, log,
    secret_placeholder,
};

struct VisionOne;

const DETECTIONS: &str = "detections";
const ACTIVITIES: &str = "endpoint-activities";
const ALERTS: &str = "workbench-alerts";

/// Regions and their API hosts, as Trend's own clients name them.
const REGIONS: &[(&str, &str)] = &[
    ("us", "https://api.xdr.trendmicro.com"),
    ("eu", "https://api.eu.xdr.trendmicro.com"),
    ("jp", "https://api.xdr.trendmicro.co.jp"),
    ("sg", "https://api.sg.xdr.trendmicro.com"),
    ("au", "https://api.au.xdr.trendmicro.com"),
    ("in", "https://api.in.xdr.trendmicro.com"),
    ("mea", "https://api.mea.xdr.trendmicro.com"),
    ("uae", "https://api.uae.xdr.trendmicro.com"),
    ("uk", "https://api.uk.xdr.trendmicro.com"),
    ("ca", "https://api.ca.xdr.trendmicro.com"),
    ("usgov", "https://api.usgov.xdr.trendmicro.com"),
    ("za", "https://api.za.xdr.trendmicro.com"),
    ("id", "https://api.id.xdr.trendmicro.com"),
];
/// A host some clients use for Japan; reachable through `base_url`.
const JP_ALTERNATIVE: &str = "https://api.jp.xdr.trendmicro.com";

/// The values the search API accepts for `top`.
const TOPS: [&str; 5] = ["50", "100", "500", "1000", "5000"];
const MAX_QUERY_LEN: usize = 2048;
const MAX_FILTER_LEN: usize = 5000;
const ALERT_TARGETS: [&str; 3] = [
    "createdDateTime",
    "updatedDateTime",
    "firstInvestigatedDateTime",
];

/// The columns the seed script wrote, in its order: they lead a new detections file.
const SEED_COLUMNS: &[&str] = &[
    "aggregatedCount",
    "endpointIp",
    "deviceGUID",
    "app",
    "subRuleId",
    "act",
    "ruleUuid",
    "logReceivedTime",
    "overSsl",
    "rt",
    "spt",
    "productCode",
    "category",
    "policyId",
    "uuid",
    "eventTimeDT",
    "src",
    "cves",
    "eventTime",
    "interestedIp",
    "eventSourceType",
    "pname",
    "rt_utc",
    "searchDL",
    "severity",
    "dvchost",
    "pver",
    "ruleName",
    "eventName",
    "dst",
    "dpt",
    "mpname",
    "logKey",
    "filterRiskLevel",
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// A stream of one-hour windows: incremental runs stay fresh and a resume costs little, and a
/// window pages through `nextLink` however many records it holds. Sensors and models report
/// late: an incremental run re-reads the last hour (duplicates are dropped by id) and leaves the
/// newest ten minutes to the next run.
fn stream(
    name: &str,
    description: &str,
    lookback: u64,
    columns: &[&str],
    file: &str,
) -> StreamInfo {
    StreamInfo::new(name, description)
        .max_window(HOUR_MS)
        .default_lookback(lookback)
        .overlap_and_lag(HOUR_MS, 10 * 60_000)
        .columns(columns)
        .setting("output.path", Some(file), None)
}

impl Connector for VisionOne {
    fn describe() -> ConnectorInfo {
        let detections = stream(
            DETECTIONS,
            "Detections (GET /v3.0/search/detections), filtered by query_filter",
            7 * DAY_MS,
            SEED_COLUMNS,
            // The seed's output_file.
            "detections.csv",
        )
        .time_field("eventTime", TimeFormat::EpochMillis);
        let activities = stream(
            ACTIVITIES,
            "Endpoint activities (GET /v3.0/search/endpointActivities), filtered by query_filter",
            DAY_MS,
            &["eventTime", "eventTimeDT", "uuid", "endpointHostName"],
            "endpoint_activities.csv",
        )
        .time_field("eventTime", TimeFormat::EpochMillis);
        let alerts = stream(
            ALERTS,
            "Workbench alerts (GET /v3.0/workbench/alerts), by date_time_target, filtered by \
             alert_filter",
            7 * DAY_MS,
            &["id", "createdDateTime", "updatedDateTime", "severity"],
            "workbench_alerts.csv",
        )
        .time_field("createdDateTime", TimeFormat::Rfc3339);

        let region_names: Vec<String> = REGIONS.iter().map(|(name, _)| name.to_string()).collect();
        let mut hosts: Vec<String> = REGIONS.iter().map(|(_, host)| host.to_string()).collect();
        hosts.push(JP_ALTERNATIVE.to_string());
        ConnectorInfo {
            name: "vision-one".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "Trend Vision One: search detections, endpoint activities, Workbench alerts".into(),
            streams: vec![detections, activities, alerts],
            params: vec![
                ParamInfo::new(
                    "token",
                    ParamKind::Text,
                    "An API token whose role has Search (detections, endpoint activities) or \
                     Workbench (alerts) permission; the seed's api_token",
                )
                .required()
                .secret()
                .env("V1_API_TOKEN"),
                ParamInfo::new(
                    "region",
                    ParamKind::Choice(region_names),
                    "The region of the Vision One console the token was made in",
                )
                .default_value("us"),
                ParamInfo::new(
                    "base_url",
                    ParamKind::Url,
                    "The API URL, instead of region; the seed's api_endpoint works as it is \
                     (everything from /v3.0 on is ignored)",
                )
                .env("V1_API_ENDPOINT"),
                ParamInfo::new(
                    "query_filter",
                    ParamKind::Text,
                    "The search query sent as TMV1-Query on every page (required by the search \
                     streams), e.g. `productCode:PTP AND act:Block`",
                )
                .env("V1_QUERY_FILTER"),
                ParamInfo::new(
                    "top",
                    ParamKind::Choice(strings(&TOPS)),
                    "Records a page in default mode: 50, 100, 500, 1000 or 5000 (the seed's \
                     results_per_call)",
                )
                .default_value("5000")
                .env("V1_RESULTS_PER_CALL"),
                ParamInfo::new(
                    "mode",
                    ParamKind::Choice(strings(&["default", "performance"])),
                    "The search mode; performance returns up to 500 records a page and may \
                     return empty pages while the search runs",
                )
                .default_value("default"),
                ParamInfo::new(
                    "select",
                    ParamKind::Text,
                    "Search fields to return, comma-separated (uuid and eventTime are always \
                     added); empty for all",
                ),
                ParamInfo::new(
                    "alert_filter",
                    ParamKind::Text,
                    "Workbench alerts: a filter sent as TMV1-Filter, e.g. `severity eq 'high'`",
                )
                .env("V1_ALERT_FILTER"),
                ParamInfo::new(
                    "date_time_target",
                    ParamKind::Choice(strings(&ALERT_TARGETS)),
                    "Workbench alerts: the date the window applies to, and the alert's event time",
                )
                .default_value("createdDateTime"),
            ],
            hosts,
            settings: vec![
                HostSetting::new("output.format", Some("csv"), None),
                HostSetting::new("timezone", Some("UTC"), None),
            ],
            // Vision One counts requests over 60 seconds and answers 429 past its limit; requests
            // sent while over it keep the block going. Users with another quota set --rate-limit.
            rate_limits: vec![RateLimit {
                requests: 100,
                per: 60_000,
            }],
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        let stream = Stream::named(&request.stream)?;
        let base = base_url(&request)?;
        let url = match &request.cursor {
            Some(cursor) => follow(&base, cursor),
            None => first_page_url(stream, &base, &request)?,
        };
        let mut builder = http::get(url)
            .header(
                "Authorization",
                format!("Bearer {}", secret_placeholder("token")),
            )
            .header("Accept", "application/json");
        builder = match stream {
            Stream::Search(_) => builder.header("TMV1-Query", query_filter(&request)?),
            Stream::Alerts => match alert_filter(&request)? {
                Some(filter) => builder.header("TMV1-Filter", filter),
                None => builder,
            },
        };
        let response = match builder.send_held() {
            Err(FetchError::Http(http::Error::TooLarge(bytes))) => {
                return Err(FetchError::InvalidParams(format!(
                    "a page of {} was larger than trawl's response cap ({bytes} bytes); lower \
                     `top` (V1_RESULTS_PER_CALL) or raise limits.max_body_mib",
                    request.stream
                )));
            }
            other => other?,
        };
        check_status(&response, stream, &base, request.cursor.is_some())?;
        let target = match stream {
            Stream::Search(_) => "eventTime",
            Stream::Alerts => alert_target(&request),
        };
        read_page(&response, stream, target, request.window, &request.cursor)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Stream {
    /// A search endpoint, by its path under `/v3.0/search/`.
    Search(&'static str),
    Alerts,
}

impl Stream {
    fn named(name: &str) -> Result<Self, FetchError> {
        match name {
            DETECTIONS => Ok(Stream::Search("detections")),
            ACTIVITIES => Ok(Stream::Search("endpointActivities")),
            ALERTS => Ok(Stream::Alerts),
            _ => Err(FetchError::UnknownStream(name.to_string())),
        }
    }

    fn path(self) -> String {
        match self {
            Stream::Search(endpoint) => format!("/v3.0/search/{endpoint}"),
            Stream::Alerts => "/v3.0/workbench/alerts".to_string(),
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Stream::Search(_) => "Search",
            Stream::Alerts => "Workbench",
        }
    }
}

/// The API's origin (and any proxy path before `/v3.0`), without a trailing slash.
fn base_url(request: &PageRequest) -> Result<String, FetchError> {
    if let Some(url) = request
        .param("base_url")
        .filter(|url| !url.trim().is_empty())
    {
        let url = url.trim();
        // The seed's api_endpoint names the detections endpoint: keep what comes before /v3.0.
        let url = url.find("/v3.0").map_or(url, |at| &url[..at]);
        return Ok(url.trim_end_matches('/').to_string());
    }
    let region = request.param("region").unwrap_or("us");
    REGIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(region))
        .map(|(_, host)| host.to_string())
        .ok_or_else(|| {
            FetchError::InvalidParams(format!(
                "unknown region `{region}`; use one of {} or set base_url (V1_API_ENDPOINT)",
                REGIONS
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The URL of a `nextLink` cursor: the link itself, query untouched. A link that names another
/// origin than the configured one (a proxy's view of the host, `http` behind TLS) is followed on
/// the configured origin with the same path and query, as Trend's own SDK does.
fn follow(base: &str, cursor: &str) -> String {
    // A `#poll=N` fragment is trawl's own (see `next_cursor`); it is never sent.
    let link = cursor.split('#').next().unwrap_or(cursor);
    if link.starts_with('/') {
        return format!("{base}{link}");
    }
    if link.starts_with(&format!("{base}/")) {
        return link.to_string();
    }
    match link.find("/v3.0/") {
        Some(at) => {
            log::debug(&format!(
                "nextLink names another origin than {base}; following its path there"
            ));
            format!("{base}{}", &link[at..])
        }
        None => link.to_string(),
    }
}

fn first_page_url(stream: Stream, base: &str, request: &PageRequest) -> Result<String, FetchError> {
    let window = request.window;
    // The API is inclusive at both ends, at whole seconds: ask for every second the window
    // touches and drop what lies at or after its end (`read_page`), so that an event on an edge,
    // or in the last second of a window, belongs to exactly one window.
    let mut url = format!(
        "{base}{}?startDateTime={}&endDateTime={}",
        stream.path(),
        format_rfc3339_seconds(window.start_seconds()),
        format_rfc3339_seconds(window.end_seconds())
    );
    let push = |url: &mut String, name: &str, value: &str| {
        url.push('&');
        url.push_str(name);
        url.push('=');
        url.push_str(&http::encode_query_component(value));
    };
    match stream {
        Stream::Search(_) => {
            let mode = request.param("mode").unwrap_or("default");
            if mode != "default" && mode != "performance" {
                return Err(FetchError::InvalidParams(format!(
                    "`mode` is `{mode}`; use default or performance"
                )));
            }
            if mode == "default" {
                let top = request.param("top").unwrap_or("5000");
                if !TOPS.contains(&top) {
                    return Err(FetchError::InvalidParams(format!(
                        "`top` (V1_RESULTS_PER_CALL) is `{top}`; Vision One accepts only {}",
                        TOPS.join(", ")
                    )));
                }
                push(&mut url, "top", top);
            }
            push(&mut url, "mode", mode);
            if let Some(select) = select(request)? {
                push(&mut url, "select", &select);
            }
        }
        Stream::Alerts => push(&mut url, "dateTimeTarget", alert_target(request)),
    }
    Ok(url)
}

/// The fields asked for, with the two trawl needs added; `None` for all fields.
fn select(request: &PageRequest) -> Result<Option<String>, FetchError> {
    let Some(text) = request.param("select") else {
        return Ok(None);
    };
    let mut fields: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
        .collect();
    if fields.is_empty() {
        return Ok(None);
    }
    for needed in ["uuid", "eventTime"] {
        if !fields.contains(&needed) {
            fields.push(needed);
        }
    }
    let select = fields.join(",");
    if select.len() > MAX_QUERY_LEN {
        return Err(FetchError::InvalidParams(format!(
            "`select` is {} characters long; Vision One accepts at most {MAX_QUERY_LEN}",
            select.len()
        )));
    }
    Ok(Some(select))
}

fn query_filter(request: &PageRequest) -> Result<String, FetchError> {
    let query = request.param("query_filter").unwrap_or("").trim();
    if query.is_empty() {
        return Err(FetchError::InvalidParams(
            "the search streams need a query: set query_filter (V1_QUERY_FILTER), e.g. \
             `productCode:PTP AND act:Block`; Vision One requires the TMV1-Query header"
                .into(),
        ));
    }
    if query.len() > MAX_QUERY_LEN {
        return Err(FetchError::InvalidParams(format!(
            "query_filter (V1_QUERY_FILTER) is {} characters long; Vision One accepts at most \
             {MAX_QUERY_LEN}",
            query.len()
        )));
    }
    Ok(query.to_string())
}

fn alert_filter(request: &PageRequest) -> Result<Option<String>, FetchError> {
    let filter = request.param("alert_filter").unwrap_or("").trim();
    if filter.len() > MAX_FILTER_LEN {
        return Err(FetchError::InvalidParams(format!(
            "alert_filter (V1_ALERT_FILTER) is {} characters long; Vision One accepts at most \
             {MAX_FILTER_LEN}",
            filter.len()
        )));
    }
    Ok((!filter.is_empty()).then(|| filter.to_string()))
}

fn alert_target(request: &PageRequest) -> &'static str {
    let asked = request.param("date_time_target").unwrap_or("");
    ALERT_TARGETS
        .into_iter()
        .find(|target| *target == asked)
        .unwrap_or(ALERT_TARGETS[0])
}

fn check_status(
    response: &HeldResponse,
    stream: Stream,
    base: &str,
    following: bool,
) -> Result<(), FetchError> {
    let status = response.status;
    if response.is_success() {
        return Ok(());
    }
    let said = vendor_message(response);
    match status {
        401 => Err(FetchError::Unauthorized(format!(
            "Vision One refused the API token (401: {said}); check V1_API_TOKEN (the `token` \
             param): tokens expire a year after they are made and work only in the region \
             whose console made them (requests went to {base})"
        ))),
        403 => Err(FetchError::Unauthorized(format!(
            "Vision One denied access (403: {said}); the role of the token in V1_API_TOKEN \
             needs the {} permission",
            stream.permission()
        ))),
        400 => {
            let hint = match (stream, following) {
                (_, true) => "; the saved nextLink may have expired",
                (Stream::Search(_), false) => "; check query_filter (V1_QUERY_FILTER) and select",
                (Stream::Alerts, false) => "; check alert_filter (V1_ALERT_FILTER)",
            };
            Err(FetchError::Status(trawl_sdk::StatusError {
                status,
                message: format!("{said}{hint}"),
            }))
        }
        404 => Err(FetchError::Status(trawl_sdk::StatusError {
            status,
            message: format!("{said}; check region or base_url (V1_API_ENDPOINT): {base}"),
        })),
        _ => Err(FetchError::Status(trawl_sdk::StatusError {
            status,
            message: said,
        })),
    }
}

/// `Code: message` from Vision One's `{"error": {...}}` body, or the start of any other body.
fn vendor_message(response: &HeldResponse) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        code: Option<String>,
        message: Option<String>,
    }
    let body = response.body();
    let excerpt = || trawl_sdk::excerpt(&String::from_utf8_lossy(&body));
    match serde_json::from_slice::<Body>(&body) {
        Ok(Body { error }) => match (error.code, error.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(text), None) | (None, Some(text)) => text,
            (None, None) => excerpt(),
        },
        Err(_) if body.is_empty() => "no message".to_string(),
        // A gateway's HTML page: its title says it all.
        Err(_) => html_title(&body).unwrap_or_else(excerpt),
    }
}

fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("<title>")? + "<title>".len();
    let end = start + text[start..].find("</title>")?;
    let title = text[start..end].trim();
    (!title.is_empty()).then(|| format!("{title} (an HTML page)"))
}

/// The members trawl reads from a record; the rest passes through untouched.
const KEYS: [&str; 7] = [
    "uuid",
    "id",
    "eventTime",
    "eventTimeDT",
    "createdDateTime",
    "updatedDateTime",
    "firstInvestigatedDateTime",
];

/// The values of [`KEYS`] in a record.
struct Keys {
    uuid: Option<Value>,
    id: Option<Value>,
    event_time: Option<Value>,
    event_time_dt: Option<Value>,
    created: Option<Value>,
    updated: Option<Value>,
    first_investigated: Option<Value>,
}

impl Keys {
    fn read(picked: [Option<&str>; KEYS.len()]) -> Result<Self, serde_json::Error> {
        let value = |raw: Option<&str>| raw.map(serde_json::from_str).transpose();
        let [
            uuid,
            id,
            event_time,
            event_time_dt,
            created,
            updated,
            first_investigated,
        ] = picked;
        Ok(Keys {
            uuid: value(uuid)?,
            id: value(id)?,
            event_time: value(event_time)?,
            event_time_dt: value(event_time_dt)?,
            created: value(created)?,
            updated: value(updated)?,
            first_investigated: value(first_investigated)?,
        })
    }
}

fn read_page(
    response: &HeldResponse,
    stream: Stream,
    target: &str,
    window: Window,
    cursor: &Option<String>,
) -> Result<Page, FetchError> {
    let malformed = |error: &dyn std::fmt::Display| {
        FetchError::Malformed(format!("the response is not the expected JSON: {error}"))
    };
    let page = response
        .read_page("items", KEYS, &["progressRate", "nextLink"])
        .map_err(|error| malformed(&error))?;
    if !page.has_records() {
        return Err(FetchError::Malformed(
            "the response has no `items` list".into(),
        ));
    }
    // What the request covered: every second the window touches, both ends included.
    let asked_from = window.start_seconds() * 1000;
    let asked_to = window.end_seconds() * 1000 + 999;
    let mut kept = Vec::with_capacity(page.len());
    for item in page.records() {
        let keys = Keys::read(item.picked).map_err(|error| {
            FetchError::Malformed(format!(
                "a record has a member that is not JSON ({error}): {}",
                page.excerpt(item.index)
            ))
        })?;
        let (id, time) = match stream {
            Stream::Search(_) => {
                let id = keys.uuid.as_ref().and_then(id_text).ok_or_else(|| {
                    FetchError::Malformed(format!(
                        "a record has no usable uuid: {}",
                        page.excerpt(item.index)
                    ))
                })?;
                let time = search_time(&keys).ok_or_else(|| {
                    FetchError::Malformed(format!(
                        "record {id} has no usable eventTime or eventTimeDT"
                    ))
                })?;
                if time < asked_from || time > asked_to {
                    // The API filters on the event time; a record outside the question means
                    // its time is read differently here, and dropping it would lose it.
                    return Err(FetchError::Malformed(format!(
                        "record {id} has eventTime {time}, outside the requested {}..{}",
                        format_rfc3339_seconds(window.start_seconds()),
                        format_rfc3339_seconds(window.end_seconds())
                    )));
                }
                (id, time)
            }
            Stream::Alerts => {
                let id = keys.id.as_ref().and_then(id_text).ok_or_else(|| {
                    FetchError::Malformed(format!(
                        "an alert has no usable id: {}",
                        page.excerpt(item.index)
                    ))
                })?;
                let value = match target {
                    "updatedDateTime" => &keys.updated,
                    "firstInvestigatedDateTime" => &keys.first_investigated,
                    _ => &keys.created,
                };
                let time = value
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339_millis)
                    .ok_or_else(|| {
                        FetchError::Malformed(format!("alert {id} has no usable {target}"))
                    })?;
                if time < asked_from || time > asked_to {
                    // Changed since the search ran (an update moves updatedDateTime): it is
                    // listed again by the window its new time falls in.
                    log::debug(&format!("alert {id}: {target} moved out of the window"));
                    continue;
                }
                (id, time)
            }
        };
        if window.contains(time) {
            kept.push(item.keep(id, time));
        }
    }
    let progress = match &page
        .parse_member::<Value>("progressRate")
        .map_err(|e| malformed(&e))?
    {
        None | Some(Value::Null) => 100,
        Some(value) => progress_rate(value).ok_or_else(|| {
            FetchError::Malformed(format!("progressRate is not a number: {value}"))
        })?,
    };
    let next_link = page
        .parse_member::<Option<String>>("nextLink")
        .map_err(|error| malformed(&error))?
        .flatten();
    let next_cursor = match next_link.filter(|link| !link.trim().is_empty()) {
        Some(link) => Some(next_cursor(link, progress, cursor)),
        // Performance mode: a search still running must be asked again, but there is no link.
        None if progress < 100 => {
            return Err(FetchError::Malformed(format!(
                "the search reported progressRate {progress} without a nextLink"
            )));
        }
        None => None,
    };
    Ok(page.into_page(kept, Vec::new(), next_cursor))
}

/// The cursor for `link`. A search that is still running may hand out the link it was just
/// asked with; a `#poll=N` fragment (never sent) tells the polls apart, so that the host does
/// not take a running search for a loop.
fn next_cursor(link: String, progress: i64, cursor: &Option<String>) -> String {
    let Some(previous) = cursor else {
        return link;
    };
    let (previous_link, poll) = match previous.split_once("#poll=") {
        Some((link, poll)) => (link, poll.parse::<u64>().unwrap_or(0)),
        None => (previous.as_str(), 0),
    };
    if progress < 100 && previous_link == link {
        format!("{link}#poll={}", poll + 1)
    } else {
        link
    }
}

fn progress_rate(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|rate| rate.floor() as i64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `eventTime` in milliseconds (a number or a numeric string), else `eventTimeDT`.
fn search_time(keys: &Keys) -> Option<i64> {
    let millis = match &keys.event_time {
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|time| time as i64)),
        Some(Value::String(text)) => {
            let text = text.trim();
            text.parse::<i64>()
                .ok()
                .or_else(|| parse_rfc3339_millis(text))
        }
        _ => None,
    };
    millis.or_else(|| {
        keys.event_time_dt
            .as_ref()
            .and_then(Value::as_str)
            .and_then(parse_rfc3339_millis)
    })
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 time: `2024-10-20T01:02:03Z`,
/// `2024-10-20T01:02:03.456Z`, `2024-10-20T01:02:03+00:00`.
fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (h, mi, s) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let fraction = &bytes[at..at + digits];
        for (place, digit) in fraction.iter().take(3).enumerate() {
            millis += i64::from(digit - b'0') * [100, 10, 1][place];
        }
        at += digits;
    }
    let offset_secs = match &bytes[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let rest: Vec<u8> = rest.iter().copied().filter(|b| *b != b':').collect();
            if rest.len() != 4 || !rest.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hours = i64::from(rest[0] - b'0') * 10 + i64::from(rest[1] - b'0');
            let minutes = i64::from(rest[2] - b'0') * 10 + i64::from(rest[3] - b'0');
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(secs * 1000 + millis)
}

trawl_sdk::export_connector!(VisionOne);
