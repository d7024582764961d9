//! Workvivo's SIEM events read the way connectors did under `trawl:connector@0.2.0`: the body stays
//! in the host, which reads the page and hands over each event's id and time as raw JSON; the
//! connector returns the events of its window by their place in the page. The SDK moves on with
//! the newest contract, so this connector is written against 0.2.0 directly, and the host's tests
//! run it next to today's Workvivo connector to check that a connector built against 0.2.0 still
//! loads and lands the same records.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/connector@0.2.0",
    world: "plugin",
    // Bindings too for the 0.1.0 interfaces this version imports unchanged.
    generate_all,
});

use exports::trawl::connector0_2_0::connector::{
    ConnectorInfo, FetchError, Guest, HostSetting, KeptRecord, Page, PageRequest, ParamInfo,
    ParamKind, ReadRecords, StatusError, StreamInfo, TimeField, TimeFormat,
};
use serde::Deserialize;
use trawl::connector0_1_0::http::{Method, Request};
use trawl::connector0_1_0::types::{Header, Window};
use trawl::connector0_2_0::responses::{self, Body, PageShape};

struct Legacy;

const STREAM: &str = "siem";
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

#[derive(Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    total_records: Option<u64>,
}

fn param(name: &str, kind: ParamKind, help: &str) -> ParamInfo {
    ParamInfo {
        name: name.into(),
        help: help.into(),
        kind,
        required: true,
        default: None,
        env: None,
        secret: false,
        secret_hosts: Vec::new(),
    }
}

fn setting(key: &str, default: &str, env: Option<&str>) -> HostSetting {
    HostSetting {
        key: key.into(),
        default: Some(default.into()),
        env: env.map(String::from),
    }
}

impl Guest for Legacy {
    // Everything as today's Workvivo connector declares it, so that both runs take the same
    // params, settings and grants and their output can be compared byte for byte.
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "legacy-0-2".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Workvivo SIEM events, through the 0.2.0 contract (for tests)".into(),
            streams: vec![StreamInfo {
                name: STREAM.into(),
                description: "Security events of the organisation's users".into(),
                max_window: HOUR_MS,
                default_lookback: 365 * DAY_MS,
                overlap: 0,
                lag: 0,
                columns: Vec::new(),
                settings: Vec::new(),
                time_field: Some(TimeField {
                    path: "created_at_timestamp".into(),
                    format: TimeFormat::EpochSeconds,
                }),
            }],
            params: vec![
                ParamInfo {
                    required: false,
                    default: Some("https://api.workvivo.io".into()),
                    ..param(
                        "base_url",
                        ParamKind::Url,
                        "The organisation's API URL, shown on Workvivo's admin page",
                    )
                },
                ParamInfo {
                    env: Some("WORKVIVOID".into()),
                    ..param(
                        "workvivo_id",
                        ParamKind::Text,
                        "The organisation id, sent as the Workvivo-Id header",
                    )
                },
                ParamInfo {
                    env: Some("WORKVIVOTOKEN".into()),
                    secret: true,
                    ..param(
                        "token",
                        ParamKind::Text,
                        "An API bearer token with SIEM access",
                    )
                },
            ],
            hosts: [
                "https://*.workvivo.com",
                "https://*.workvivo.us",
                "https://*.workvivo.io",
                "https://*.workvivo.me",
                "https://*.workvivo.red",
            ]
            .map(String::from)
            .to_vec(),
            rate_limits: Vec::new(),
            settings: vec![
                setting("timezone", "UTC", Some("TIMEZONE")),
                setting("output.format", "csv", None),
                setting("output.path", "log/siem_data.csv", None),
                setting("output.extra-columns", "local_timestamp", None),
            ],
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        if request.stream != STREAM {
            return Err(FetchError::UnknownStream(request.stream));
        }
        let param = |name: &str| {
            request
                .params
                .iter()
                .find(|param| param.name == name)
                .map(|param| param.value.clone())
                .filter(|value| !value.is_empty())
                .ok_or_else(|| FetchError::InvalidParams(format!("`{name}` has no value")))
        };
        let window = request.window;
        // Both ends in whole seconds, rounded outwards: events at or after the end are dropped
        // below, so that an event on an hour edge belongs to exactly one window.
        let mut url = format!(
            "{}/v1/siem/{}/{}",
            param("base_url")?.trim_end_matches('/'),
            window.start.div_euclid(1000),
            (window.end + 999).div_euclid(1000)
        );
        let skip: u64 = match &request.cursor {
            None => 0,
            Some(cursor) => cursor
                .parse()
                .map_err(|_| FetchError::Malformed(format!("unexpected cursor `{cursor}`")))?,
        };
        let header = |name: &str, value: String| Header {
            name: name.into(),
            value,
        };
        let headers = vec![
            header("Authorization", "Bearer {{secret:token}}".into()),
            header("Workvivo-Id", param("workvivo_id")?),
            header("Accept", "application/json".into()),
        ];
        // The first page without `skip`, as today's connector asks for it: the same requests, so
        // the same answers to compare.
        if skip > 0 {
            url.push_str(&format!("?skip={skip}"));
        }
        let response = responses::send(&Request {
            method: Method::Get,
            url,
            headers,
            body: None,
        })
        .map_err(FetchError::Http)?;
        let body_excerpt = || excerpt(&String::from_utf8_lossy(&response.body.bytes()));
        match response.status {
            200..=299 => read_page(&response.body, window, skip),
            401 => Err(FetchError::Unauthorized(format!(
                "Workvivo refused the token (401: {}); check the token (WORKVIVOTOKEN)",
                body_excerpt()
            ))),
            403 => Err(FetchError::Unauthorized(format!(
                "Workvivo denied access (403: {}); the token needs the SIEM scope and must belong \
                 to the organisation in Workvivo-Id (WORKVIVOID)",
                body_excerpt()
            ))),
            status => Err(FetchError::Status(StatusError {
                status,
                message: body_excerpt(),
            })),
        }
    }
}

fn read_page(body: &Body, window: Window, skip: u64) -> Result<Page, FetchError> {
    let malformed = |error: &dyn std::fmt::Display| {
        FetchError::Malformed(format!("response is not the expected JSON: {error}"))
    };
    let page = body
        .read_page(&PageShape {
            records: "data".into(),
            picked: vec!["id".into(), "created_at_timestamp".into()],
            members: vec!["meta".into()],
        })
        .map_err(|error| malformed(&error.message))?;
    let picked = |index: usize| {
        let span = page.picked.get(index)?.as_ref()?;
        let start = span.start as usize;
        page.picked_text.get(start..start + span.length as usize)
    };
    let mut kept = Vec::with_capacity(page.count as usize);
    for index in 0..page.count {
        let (id, time) = (picked(2 * index as usize), picked(2 * index as usize + 1));
        let id = id.and_then(id_text).ok_or_else(|| {
            let text = page
                .records
                .as_ref()
                .and_then(|records| records.text(index));
            FetchError::Malformed(format!(
                "event with no usable id: {}",
                text.map(|text| excerpt(&text)).unwrap_or_default()
            ))
        })?;
        let seconds = time.and_then(epoch_seconds).ok_or_else(|| {
            FetchError::Malformed(format!(
                "event {id} has no usable created_at_timestamp ({})",
                time.unwrap_or("missing")
            ))
        })?;
        let event_time = seconds * 1000;
        if window.start <= event_time && event_time < window.end {
            kept.push(KeptRecord {
                index,
                id,
                event_time,
            });
        }
    }
    let received = u64::from(page.count);
    // Workvivo's list endpoints page with skip/take and report the total.
    let total = page
        .members
        .first()
        .and_then(Option::as_deref)
        .map(serde_json::from_str::<Meta>)
        .transpose()
        .map_err(|error| malformed(&error))?
        .and_then(|meta| meta.pagination)
        .and_then(|pagination| pagination.total_records);
    let next_cursor = total
        .filter(|&total| received > 0 && skip + received < total)
        .map(|_| (skip + received).to_string());
    Ok(Page {
        records: Vec::new(),
        read: page.records.map(|records| ReadRecords { records, kept }),
        next_cursor,
    })
}

/// A record's id from its raw JSON: a string's text, a number as written (a plain integer of any
/// length kept as it is, which parsing would round past 64 bits).
fn id_text(raw: &str) -> Option<String> {
    let plain_integer = !raw.is_empty()
        && raw.bytes().all(|byte| byte.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    if plain_integer {
        return Some(raw.to_owned());
    }
    match serde_json::from_str(raw).ok()? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Epoch seconds written as a number or a numeric string, from their raw JSON.
fn epoch_seconds(raw: &str) -> Option<i64> {
    if let Ok(seconds) = raw.parse() {
        return Some(seconds);
    }
    match serde_json::from_str(raw).ok()? {
        serde_json::Value::Number(number) => number.as_i64(),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The start of a text, trimmed and cut at 300 characters, for error messages.
fn excerpt(text: &str) -> String {
    const LIMIT: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

export!(Legacy);
