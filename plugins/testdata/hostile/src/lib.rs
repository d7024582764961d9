//! A connector that misbehaves in the way its `behaviour` param names. The host's tests run it to
//! check that each misbehaviour is contained with a clear error.
#![cfg(target_arch = "wasm32")]

mod network;
mod resources;

use trawl_sdk::{
    Connector, ConnectorInfo, FetchError, Page, PageRequest, ParamInfo, ParamKind, Record,
    StreamInfo, http, storage,
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
    "hoard",
    "read-storage",
    "leave-trace",
    "look-for-trace",
    "leave-and-look",
    "widen",
    "hold-bodies",
    "keep-missing",
];

impl Connector for Hostile {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Misbehaves on request (for tests)".into(),
            streams: vec![
                StreamInfo::new("events", "One record per window when it behaves"),
                StreamInfo::new("seconds", "The same, a window a second").max_window(1000),
            ],
            params: vec![
                ParamInfo::new(
                    "behaviour",
                    ParamKind::Choice(
                        BEHAVIOURS
                            .iter()
                            .chain(network::BEHAVIOURS)
                            .chain(resources::BEHAVIOURS)
                            .map(|b| b.to_string())
                            .collect(),
                    ),
                    "What to do in fetch-page",
                )
                .default_value("behave"),
                ParamInfo::new("target", ParamKind::Text, "A URL to request")
                    .default_value("https://example.com/"),
                ParamInfo::new(
                    "send_secret",
                    ParamKind::Boolean,
                    "Put the token in the request's Authorization header and query",
                )
                .default_value("false"),
                {
                    let mut token = ParamInfo::new(
                        "token",
                        ParamKind::Text,
                        "A secret bound to api.hostile.test only",
                    )
                    .secret()
                    .env("HOSTILE_TOKEN");
                    token.secret_hosts = vec!["https://api.hostile.test".into()];
                    token
                },
            ],
            hosts: vec![
                "https://api.hostile.test".into(),
                "https://other.hostile.test".into(),
                "https://localhost".into(),
            ],
            settings: vec![],
            rate_limits: vec![],
        }
    }

    fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
        match request.param("behaviour").unwrap_or("behave") {
            name if network::BEHAVIOURS.contains(&name) => network::fetch_page(name, &request),
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
                let mut builder = http::get(target);
                if request.param("send_secret") == Some("true") {
                    let placeholder = trawl_sdk::secret_placeholder("token");
                    builder = builder
                        .header("Authorization", format!("Bearer {placeholder}"))
                        .query("key", &placeholder);
                }
                let response = builder.send()?;
                // Hands back what it was told, so a test can see what reached the sandbox.
                let seen = serde_json::json!({
                    "status": response.status,
                    "body": String::from_utf8_lossy(&response.body),
                    "location": response.header("location"),
                });
                Ok(Page::new(
                    vec![Record::new(
                        "response",
                        request.window.start,
                        seen.to_string(),
                    )],
                    None,
                ))
            }
            // Keeps every body in the host, asking for more, to see the host stop it.
            "hold-bodies" => {
                let target = request.required_param("target")?;
                let mut held = Vec::new();
                loop {
                    held.push(http::get(target).send_held()?);
                    std::hint::black_box(&held);
                }
            }
            // Returns a record the page it read does not have.
            "keep-missing" => {
                let target = request.required_param("target")?;
                let response = http::get(target).send_held()?;
                let page = response
                    .read_page("data", ["id"], &[])
                    .map_err(|error| FetchError::Malformed(error.to_string()))?;
                let past_the_end = page.len() as u32 + 1;
                let kept = trawl_sdk::KeptRecord {
                    index: past_the_end,
                    id: "ghost".into(),
                    event_time: request.window.start,
                };
                Ok(page.into_page(vec![kept], vec![], None))
            }
            "hoard" => {
                for index in 0.. {
                    if let Err(error) = storage::set(&format!("hoard-{index}"), &[7u8; 64 << 10]) {
                        return Err(FetchError::InvalidParams(format!(
                            "storage refused write {index}: {error:?}"
                        )));
                    }
                }
                unreachable!("the loop only ends with an error")
            }
            "read-storage" => {
                let found = storage::get("token").map_err(|error| {
                    FetchError::InvalidParams(format!("storage failed: {error:?}"))
                })?;
                let seen = serde_json::json!({"found": found.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())});
                Ok(Page::new(
                    vec![Record::new(
                        "storage",
                        request.window.start,
                        seen.to_string(),
                    )],
                    None,
                ))
            }
            // Fills fresh heap with a pattern and leaks it, for the next call to look for.
            "leave-trace" => {
                let mut trace = vec![0u8; 1 << 20];
                for (at, byte) in trace.iter_mut().enumerate() {
                    *byte = trace_byte(at);
                }
                std::mem::forget(std::hint::black_box(trace));
                found_trace_page(&request, false)
            }
            "look-for-trace" => found_trace_page(&request, memory_holds_trace()),
            // Both in one call: shows the search finds a trace that is there.
            "leave-and-look" => {
                let trace: Vec<u8> = (0..4096).map(trace_byte).collect();
                let found = memory_holds_trace();
                std::hint::black_box(&trace);
                found_trace_page(&request, found)
            }
            "panic" => panic!("the hostile connector panicked on purpose"),
            "endless-cursor" => {
                let next = request
                    .cursor
                    .as_deref()
                    .map_or(0, |cursor| cursor.parse::<u64>().unwrap_or(0))
                    + 1;
                Ok(Page::new(vec![], Some(next.to_string())))
            }
            // Like an API that returns at most a fixed number of rows per query.
            "cap" if request.window.end - request.window.start > 2500 => Err(
                FetchError::WindowTooLarge("more than 2500 ms in one query".into()),
            ),
            // Each window's record brings a field no earlier one had: a CSV header to widen.
            "widen" => Ok(Page::new(
                vec![Record::new(
                    format!("w{}", request.window.start),
                    request.window.start,
                    format!("{{\"start\":{0},\"field_{0}\":true}}", request.window.start),
                )],
                None,
            )),
            "repeat-cursor" => Ok(Page::new(vec![], Some("same".into()))),
            other if resources::BEHAVIOURS.contains(&other) => {
                resources::fetch_page(other, &request).expect("one of its behaviours")
            }
            _ => Ok(Page::new(
                vec![Record::new(
                    format!("w{}", request.window.start),
                    request.window.start,
                    format!("{{\"start\":{}}}", request.window.start),
                )],
                None,
            )),
        }
    }
}

/// The pattern `leave-trace` writes: each byte is the one before plus 37, modulo 251. Computed,
/// never stored whole, so the search finds it only where a call wrote it.
fn trace_byte(at: usize) -> u8 {
    (at.wrapping_mul(37).wrapping_add(11) % 251) as u8
}

/// Whether any of this instance's linear memory holds 64 bytes of the trace pattern in a row.
fn memory_holds_trace() -> bool {
    const RUN: usize = 64;
    let size = core::arch::wasm32::memory_size(0) * 65536;
    // SAFETY: every address below the memory's size can be read in WebAssembly; this test
    // connector reads memory it does not own on purpose. Address 0 is skipped.
    let byte = |at: usize| unsafe { core::ptr::read_volatile(at as *const u8) };
    let mut run = 0;
    let mut previous = byte(1);
    for at in 2..size {
        let current = byte(at);
        if previous < 251 && u16::from(current) == (u16::from(previous) + 37) % 251 {
            run += 1;
            if run >= RUN {
                return true;
            }
        } else {
            run = 0;
        }
        previous = current;
    }
    false
}

fn found_trace_page(request: &PageRequest, found: bool) -> Result<Page, FetchError> {
    Ok(Page::new(
        vec![Record::new(
            "trace",
            request.window.start,
            serde_json::json!({ "found": found }).to_string(),
        )],
        None,
    ))
}

trawl_sdk::export_connector!(Hostile);
