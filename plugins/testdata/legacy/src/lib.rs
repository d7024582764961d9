//! Workvivo's SIEM events read the way connectors did under the first contract,
//! `trawl:connector@0.1.0`: the body comes into the connector, which parses it and writes each
//! record out again. The host's tests run it next to today's Workvivo connector to check that a
//! connector built against an older contract still loads and lands the same records.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/connector@0.1.0",
    world: "plugin",
});

use exports::trawl::connector::connector::{
    ConnectorInfo, FetchError, Guest, Page, PageRequest, ParamInfo, ParamKind, Record, StatusError,
    StreamInfo,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use trawl::connector::http::{self, Method};
use trawl::connector::types::Header;

struct Legacy;

const HOUR_MS: u64 = 3_600_000;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    data: Option<Vec<&'a RawValue>>,
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    total_records: Option<u64>,
}

#[derive(Deserialize)]
struct Event {
    id: serde_json::Value,
    created_at_timestamp: serde_json::Value,
}

/// A required param, read from `env` when set (the Workvivo connector's variables).
fn param(name: &str, kind: ParamKind, env: Option<&str>, secret: bool) -> ParamInfo {
    ParamInfo {
        name: name.into(),
        help: String::new(),
        kind,
        required: true,
        default: None,
        env: env.map(String::from),
        secret,
        secret_hosts: Vec::new(),
    }
}

impl Guest for Legacy {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "legacy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Workvivo SIEM events, through the 0.1.0 contract (for tests)".into(),
            streams: vec![StreamInfo {
                name: "siem".into(),
                description: "Security events".into(),
                max_window: HOUR_MS,
                default_lookback: 0,
                overlap: 0,
                lag: 0,
                columns: Vec::new(),
                settings: Vec::new(),
                time_field: None,
            }],
            params: vec![
                param("base_url", ParamKind::Url, None, false),
                param("workvivo_id", ParamKind::Text, Some("WORKVIVOID"), false),
                param("token", ParamKind::Text, Some("WORKVIVOTOKEN"), true),
            ],
            hosts: vec!["https://*.workvivo.io".into()],
            settings: Vec::new(),
            rate_limits: Vec::new(),
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        let param = |name: &str| {
            request
                .params
                .iter()
                .find(|param| param.name == name)
                .map(|param| param.value.clone())
                .ok_or_else(|| FetchError::InvalidParams(format!("`{name}` has no value")))
        };
        let window = request.window;
        let skip: u64 = request
            .cursor
            .as_deref()
            .unwrap_or("0")
            .parse()
            .map_err(|_| {
                FetchError::Malformed(format!("unexpected cursor {:?}", request.cursor))
            })?;
        let url = format!(
            "{}/v1/siem/{}/{}?skip={skip}",
            param("base_url")?.trim_end_matches('/'),
            window.start.div_euclid(1000),
            (window.end + 999).div_euclid(1000)
        );
        let header = |name: &str, value: String| Header {
            name: name.into(),
            value,
        };
        let response = http::send(&http::Request {
            method: Method::Get,
            url,
            headers: vec![
                header("Authorization", "Bearer {{secret:token}}".into()),
                header("Workvivo-Id", param("workvivo_id")?),
            ],
            body: None,
        })
        .map_err(FetchError::Http)?;
        if response.status != 200 {
            return Err(FetchError::Status(StatusError {
                status: response.status,
                message: String::from_utf8_lossy(&response.body).into_owned(),
            }));
        }
        let malformed = |error: serde_json::Error| FetchError::Malformed(error.to_string());
        let body: Body = serde_json::from_slice(&response.body).map_err(malformed)?;
        let events = body.data.unwrap_or_default();
        let mut records = Vec::with_capacity(events.len());
        for raw in &events {
            let event: Event = serde_json::from_str(raw.get()).map_err(malformed)?;
            let id = match event.id {
                serde_json::Value::String(id) => id,
                other => other.to_string(),
            };
            let seconds = match event.created_at_timestamp {
                serde_json::Value::Number(number) => number.as_i64(),
                serde_json::Value::String(text) => text.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| FetchError::Malformed(format!("event {id} has no usable time")))?;
            let event_time = seconds * 1000;
            if window.start <= event_time && event_time < window.end {
                records.push(Record {
                    id,
                    event_time,
                    json: raw.get().to_string(),
                });
            }
        }
        let received = events.len() as u64;
        let total = body
            .meta
            .and_then(|meta| meta.pagination)
            .and_then(|pagination| pagination.total_records);
        let next_cursor = total
            .filter(|&total| received > 0 && skip + received < total)
            .map(|_| (skip + received).to_string());
        Ok(Page {
            records,
            next_cursor,
        })
    }
}

export!(Legacy);
