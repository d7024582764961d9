//! Workvivo SIEM events: `GET {base}/v1/siem/{from}/{to}` (epoch seconds in the path), one hour at
//! a time, as Workvivo's own sample does.
#![cfg(target_arch = "wasm32")]

use serde::Deserialize;
use trawl_sdk::http::{self, HeldResponse};
use trawl_sdk::{
    Connector, ConnectorInfo, DAY_MS, FetchError, HOUR_MS, HostSetting, Page, PageRequest,
    ParamInfo, ParamKind, RecordKeys, StreamInfo, TimeFormat, secret_placeholder,
};

struct Workvivo;

const STREAM: &str = "siem";

impl Connector for Workvivo {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "workvivo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Workvivo SIEM events: logins, MFA, passwords, user switching, settings"
                .into(),
            streams: vec![
                StreamInfo::new(STREAM, "Security events of the organisation's users")
                    // The vendor's samples never ask for more than an hour: a hint of a cap.
                    .max_window(HOUR_MS)
                    // Workvivo keeps SIEM events for 365 days.
                    .default_lookback(365 * DAY_MS)
                    .time_field("created_at_timestamp", TimeFormat::EpochSeconds),
            ],
            params: vec![
                ParamInfo::new(
                    "base_url",
                    ParamKind::Url,
                    "The organisation's API URL, shown on Workvivo's admin page",
                )
                .default_value("https://api.workvivo.io"),
                ParamInfo::new(
                    "workvivo_id",
                    ParamKind::Text,
                    "The organisation id, sent as the Workvivo-Id header",
                )
                .required()
                .env("WORKVIVOID"),
                ParamInfo::new(
                    "token",
                    ParamKind::Text,
                    "An API bearer token with SIEM access",
                )
                .required()
                .secret()
                .env("WORKVIVOTOKEN"),
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
            // The seed script's output, so its users get the same file.
            // Workvivo publishes no quota; the host still backs off when told to.
            rate_limits: vec![],
            settings: vec![
                HostSetting::new("timezone", Some("UTC"), Some("TIMEZONE")),
                HostSetting::new("output.format", Some("csv"), None),
                HostSetting::new("output.path", Some("log/siem_data.csv"), None),
                HostSetting::new("output.extra-columns", Some("local_timestamp"), None),
            ],
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        if request.stream != STREAM {
            return Err(FetchError::UnknownStream(request.stream));
        }
        let base_url = request.required_param("base_url")?.trim_end_matches('/');
        let window = request.window;
        // The API may be inclusive at both ends: ask for the whole window and drop what lies at or
        // after its end below, so that an event on an hour edge belongs to exactly one window.
        let url = format!(
            "{base_url}/v1/siem/{}/{}",
            window.start_seconds(),
            window.end_seconds()
        );
        let skip: u64 = match &request.cursor {
            None => 0,
            Some(cursor) => cursor
                .parse()
                .map_err(|_| FetchError::Malformed(format!("unexpected cursor `{cursor}`")))?,
        };
        let mut builder = http::get(url)
            .header(
                "Authorization",
                format!("Bearer {}", secret_placeholder("token")),
            )
            .header("Workvivo-Id", request.required_param("workvivo_id")?)
            .header("Accept", "application/json");
        if skip > 0 {
            builder = builder.query("skip", &skip.to_string());
        }
        let response = builder.send_held()?;
        check_status(&response)?;
        read_page(&response, window, skip)
    }
}

fn check_status(response: &HeldResponse) -> Result<(), FetchError> {
    match response.status {
        200..=299 => Ok(()),
        401 => Err(FetchError::Unauthorized(format!(
            "Workvivo refused the token (401: {}); check the token (WORKVIVOTOKEN)",
            response.body_excerpt()
        ))),
        403 => Err(FetchError::Unauthorized(format!(
            "Workvivo denied access (403: {}); the token needs the SIEM scope and must belong to \
             the organisation in Workvivo-Id (WORKVIVOID)",
            response.body_excerpt()
        ))),
        _ => Err(response.status_error()),
    }
}

#[derive(Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    total_records: Option<u64>,
}

fn read_page(
    response: &HeldResponse,
    window: trawl_sdk::Window,
    skip: u64,
) -> Result<Page, FetchError> {
    let malformed = |error: &dyn std::fmt::Display| {
        FetchError::Malformed(format!("response is not the expected JSON: {error}"))
    };
    // Every event carries its id and time plainly, so the host reads both as it reads the page.
    let keys = RecordKeys::new("id", "created_at_timestamp", TimeFormat::EpochSeconds);
    let page = response
        .read_keyed_page("data", &keys, &["meta"])
        .map_err(|error| malformed(&error))?;
    let received = page.len() as u64;
    // Workvivo's other list endpoints page with skip/take and report the total; if this one ever
    // truncates a window, keep reading until every row has been seen.
    let total = page
        .parse_member::<Meta>("meta")
        .map_err(|error| malformed(&error))?
        .and_then(|meta| meta.pagination)
        .and_then(|pagination| pagination.total_records);
    let next_cursor = total
        .filter(|&total| received > 0 && skip + received < total)
        .map(|_| (skip + received).to_string());
    Ok(page.into_page_within(window, next_cursor))
}

trawl_sdk::export_connector!(Workvivo);
