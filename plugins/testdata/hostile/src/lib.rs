//! A connector that misbehaves in the way its `behaviour` param names. The host's tests run it to
//! check that each misbehaviour is contained with a clear error.
#![cfg(target_arch = "wasm32")]

use trawl_sdk::{
    Connector, ConnectorInfo, FetchError, Page, PageRequest, ParamInfo, ParamKind, Record,
    StreamInfo, http,
};

struct Hostile;

const BEHAVIOURS: &[&str] = &[
    "behave",
    "spin",
    "allocate",
    "request",
    "panic",
    "endless-cursor",
    "repeat-cursor",
    "cap",
];

impl Connector for Hostile {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Misbehaves on request (for tests)".into(),
            streams: vec![StreamInfo::new(
                "events",
                "One record per window when it behaves",
            )],
            params: vec![
                ParamInfo::new(
                    "behaviour",
                    ParamKind::Choice(BEHAVIOURS.iter().map(|b| b.to_string()).collect()),
                    "What to do in fetch-page",
                )
                .default_value("behave"),
                ParamInfo::new("target", ParamKind::Text, "A URL to request")
                    .default_value("https://example.com/"),
            ],
            hosts: vec!["https://api.hostile.test".into()],
            settings: vec![],
            rate_limits: vec![],
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        match request.param("behaviour").unwrap_or("behave") {
            "spin" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "request" => {
                let target = request.required_param("target")?;
                http::get(target).send()?;
                Ok(Page {
                    records: vec![],
                    next_cursor: None,
                })
            }
            "panic" => panic!("the hostile connector panicked on purpose"),
            "endless-cursor" => {
                let next = request
                    .cursor
                    .as_deref()
                    .map_or(0, |cursor| cursor.parse::<u64>().unwrap_or(0))
                    + 1;
                Ok(Page {
                    records: vec![],
                    next_cursor: Some(next.to_string()),
                })
            }
            // Like an API that returns at most a fixed number of rows per query.
            "cap" if request.window.end - request.window.start > 2500 => Err(
                FetchError::WindowTooLarge("more than 2500 ms in one query".into()),
            ),
            "repeat-cursor" => Ok(Page {
                records: vec![],
                next_cursor: Some("same".into()),
            }),
            _ => Ok(Page {
                records: vec![Record::new(
                    format!("w{}", request.window.start),
                    request.window.start,
                    format!("{{\"start\":{}}}", request.window.start),
                )],
                next_cursor: None,
            }),
        }
    }
}

trawl_sdk::export_connector!(Hostile);
