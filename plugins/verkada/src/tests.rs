//! The connector's pure parts, on the build machine: times, ids, pages, queries, messages.
//! (What needs the host's imports is tested end to end in host/tests/verkada.rs.)

use super::*;
use trawl_sdk::Param;

fn request(stream: &str, params: &[(&str, &str)]) -> PageRequest {
    PageRequest {
        stream: stream.into(),
        window: Window {
            start: 1_758_000_600_000,
            end: 1_758_001_500_000,
        },
        cursor: None,
        params: params
            .iter()
            .map(|(name, value)| Param {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
    }
}

fn settings(params: &[(&str, &str)]) -> Settings {
    Settings::read(&request(AUDIT_LOG, params)).unwrap_or_else(|_| panic!("valid params"))
}

fn response(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn reads_times_as_text_or_seconds() {
    assert_eq!(
        time_millis(&serde_json::json!("2025-09-16T12:12:45+09:00")),
        Some(1_757_992_365_000)
    );
    assert_eq!(
        time_millis(&serde_json::json!(1_597_685_580)),
        Some(1_597_685_580_000)
    );
    assert_eq!(
        time_millis(&serde_json::json!("1597685580")),
        Some(1_597_685_580_000)
    );
    assert_eq!(time_millis(&Value::Null), None);
}

const ROW: &str = r#"{"timestamp":"2025-09-16T03:12:45Z","processed_timestamp":"2025-09-16T03:13:02Z",
  "event_name":"Video History Streamed","event_description":"Alice streamed Lobby Cam",
  "user_id":"3f9a2c1e-7b6d-4e58-9a0b-1c2d3e4f5a6b","user_email":"alice@example.com",
  "user_name":"Alice Example","organization_id":"1455f0ae","ip_address":"203.0.113.10",
  "details":{"video_start_time":1758001800,"video_end_time":1758002100},
  "devices":[{"device_id":"b-cam","device_name":"Lobby Cam"},{"device_id":"a-cam","device_name":"Door"}],
  "verkada_support_id":null}"#;

fn audit_id(json: &str) -> String {
    let (record, _) = audit_record(json, &settings(&[]), true).unwrap().unwrap();
    record.id
}

#[test]
fn audit_ids_are_stable_and_tell_events_apart() {
    let id = audit_id(ROW);
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    // Key order, device order, time notation, names and descriptions do not change the id.
    let same = ROW
        .replace(
            r#"[{"device_id":"b-cam","device_name":"Lobby Cam"},{"device_id":"a-cam","device_name":"Door"}]"#,
            r#"[{"device_name":"Front door","device_id":"a-cam"},{"device_id":"b-cam","device_name":"Lobby"}]"#,
        )
        .replace(
            r#"{"video_start_time":1758001800,"video_end_time":1758002100}"#,
            r#"{"video_end_time":1758002100,"video_start_time":1758001800}"#,
        )
        .replace("2025-09-16T03:12:45Z", "2025-09-16T03:12:45.000+00:00")
        .replace("Alice Example", "Alice B. Example")
        .replace("Alice streamed Lobby Cam", "Alice streamed Lobby");
    assert_eq!(audit_id(&same), id);
    // What identifies an event does.
    for (from, to) in [
        ("03:12:45Z", "03:12:46Z"),
        ("Video History Streamed", "Live Stream Started"),
        ("3f9a2c1e", "00000000"),
        ("a-cam", "c-cam"),
        ("203.0.113.10", "203.0.113.11"),
        ("1758002100", "1758002160"),
    ] {
        assert_ne!(audit_id(&ROW.replace(from, to)), id, "{from} -> {to}");
    }
    // The record is the row exactly as received, timed by its event, selected by processing.
    let (record, selected) = audit_record(ROW, &settings(&[]), true).unwrap().unwrap();
    assert_eq!(record.json, ROW);
    assert_eq!(record.event_time, 1_757_992_365_000);
    assert_eq!(selected, 1_757_992_382_000);
    let (_, selected) = audit_record(ROW, &settings(&[]), false).unwrap().unwrap();
    assert_eq!(selected, 1_757_992_365_000);
}

#[test]
fn audit_rows_without_processing_time_or_timestamp() {
    let old = ROW.replace(r#""2025-09-16T03:13:02Z""#, "null");
    let (_, selected) = audit_record(&old, &settings(&[]), true).unwrap().unwrap();
    assert_eq!(selected, 1_757_992_365_000);
    let no_time = ROW.replace(r#""timestamp":"2025-09-16T03:12:45Z","#, "");
    assert!(matches!(
        audit_record(&no_time, &settings(&[]), true),
        Err(FetchError::Malformed(_))
    ));
    let bad_time = ROW.replace("2025-09-16T03:12:45Z", "soon");
    assert!(matches!(
        audit_record(&bad_time, &settings(&[]), true),
        Err(FetchError::Malformed(message)) if message.contains("soon")
    ));
}

#[test]
fn event_names_keep_only_those() {
    let seed = settings(&[(
        "event_names",
        "Archive Action Taken, Video History Streamed ,Live Stream Started",
    )]);
    assert!(audit_record(ROW, &seed, true).unwrap().is_some());
    let other = ROW.replace("Video History Streamed", "Public API Request");
    assert!(audit_record(&other, &seed, true).unwrap().is_none());
    assert!(
        audit_record(&other, &settings(&[]), true)
            .unwrap()
            .is_some()
    );
}

#[test]
fn alert_ids() {
    let alert = r#"{"camera_id":"89376792","created":1597685580,"crowd_threshold":null,
        "image_url":null,"notification_type":"motion","objects":[],"person_label":null,
        "video_url":"https://command.verkada.com/x"}"#;
    let (record, selected) = alert_record(alert).unwrap().unwrap();
    assert_eq!(record.event_time, 1_597_685_580_000);
    assert_eq!(selected, record.event_time);
    // A signed image URL differs at every read: it is not part of the id.
    let with_image = alert.replace(r#""image_url":null"#, r#""image_url":"https://s/x?sig=1""#);
    assert_eq!(alert_record(&with_image).unwrap().unwrap().0.id, record.id);
    for (from, to) in [
        ("89376792", "89376793"),
        ("1597685580", "1597685581"),
        ("motion", "tamper"),
        (r#""person_label":null"#, r#""person_label":"Bob""#),
    ] {
        assert_ne!(
            alert_record(&alert.replace(from, to))
                .unwrap()
                .unwrap()
                .0
                .id,
            record.id
        );
    }
    let with_id = alert.replace(r#""camera_id""#, r#""id":"n-1","camera_id""#);
    assert_eq!(alert_record(&with_id).unwrap().unwrap().0.id, "n-1");
    assert!(matches!(
        alert_record(r#"{"camera_id":"x"}"#),
        Err(FetchError::Malformed(_))
    ));
}

#[test]
fn pages() {
    let page = read_page(
        Stream::AuditLog,
        br#"{"audit_logs":[{"a":1},{"b":2}],"next_page_token":"abc+/="}"#,
    )
    .unwrap();
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.next_page_token.as_deref(), Some("abc+/="));
    for body in [
        r#"{"audit_logs":null,"next_page_token":null}"#,
        r#"{"audit_logs":[]}"#,
        r#"{"audit_logs":[],"next_page_token":""}"#,
    ] {
        let page = read_page(Stream::AuditLog, body.as_bytes()).unwrap();
        assert!(
            page.rows.is_empty() && page.next_page_token.is_none(),
            "{body}"
        );
    }
    let page = read_page(
        Stream::CameraAlerts,
        br#"{"notifications":[{"x":1}],"next_page_token":2}"#,
    )
    .unwrap();
    assert_eq!(page.next_page_token.as_deref(), Some("2"));
    for body in [
        "",
        "<html>502</html>",
        r#"{"audit_logs":[{"a":1}"#,
        r#"{"notifications":[]}"#,
        r#"{"audit_logs":{}}"#,
        r#"{"audit_logs":[],"next_page_token":{}}"#,
    ] {
        assert!(
            matches!(
                read_page(Stream::AuditLog, body.as_bytes()),
                Err(FetchError::Malformed(_))
            ),
            "{body}"
        );
    }
}

#[test]
fn queries() {
    let window = Window {
        start: 1_758_000_600_000,
        end: 1_758_001_500_000,
    };
    assert_eq!(
        first_query(Stream::AuditLog, &settings(&[]), window),
        "start_time=1758000599&end_time=1758001500&page_size=200&use_processed_timestamp=true"
    );
    let plain = settings(&[("use_processed_timestamp", "false"), ("page_size", "100")]);
    assert_eq!(
        first_query(Stream::AuditLog, &plain, window),
        "start_time=1758000599&end_time=1758001500&page_size=100&use_processed_timestamp=false"
    );
    // Before Verkada had processing times, windows go by event time.
    let early = Window {
        start: PROCESSED_TIMESTAMPS_FROM_MS - 900_000,
        end: PROCESSED_TIMESTAMPS_FROM_MS,
    };
    assert!(
        first_query(Stream::AuditLog, &settings(&[]), early)
            .ends_with("use_processed_timestamp=false")
    );
    let alerts = settings(&[
        ("notification_types", "motion, tamper"),
        ("include_image_url", "true"),
    ]);
    assert_eq!(
        first_query(Stream::CameraAlerts, &alerts, window),
        "start_time=1758000599&end_time=1758001500&page_size=200&include_image_url=true\
         &notification_type=motion%2Ctamper"
    );
    assert!(
        first_query(Stream::CameraAlerts, &settings(&[]), window)
            .ends_with("&include_image_url=false")
    );
}

#[test]
fn params_are_checked() {
    assert_eq!(settings(&[]).base_url, "https://api.au.verkada.com");
    assert_eq!(
        settings(&[("region", "eu")]).base_url,
        "https://api.eu.verkada.com"
    );
    assert_eq!(
        settings(&[("region", "eu"), ("base_url", "http://127.0.0.1:9/")]).base_url,
        "http://127.0.0.1:9"
    );
    for params in [
        &[("page_size", "0")][..],
        &[("page_size", "201")],
        &[("page_size", "many")],
        &[("region", "mars")],
        &[("notification_types", "motion,earthquake")],
        &[("token_lifetime_seconds", "0")],
    ] {
        assert!(
            matches!(
                Settings::read(&request(AUDIT_LOG, params)),
                Err(FetchError::InvalidParams(_))
            ),
            "{params:?}"
        );
    }
}

#[test]
fn vendor_messages() {
    assert_eq!(
        vendor_message(&response(
            401,
            r#"{"id":"0e2d","message":"Token expired","data":null}"#
        )),
        "Token expired"
    );
    assert_eq!(
        vendor_message(&response(
            401,
            "{'id': '0e2d', 'message': 'Token expired', 'data': None}"
        )),
        "Token expired"
    );
    assert_eq!(
        vendor_message(&response(502, "<html>Bad Gateway</html>")),
        "<html>Bad Gateway</html>"
    );
    assert_eq!(vendor_message(&response(500, "")), "no body");
}

#[test]
fn description() {
    let info = Verkada::describe();
    assert_eq!(
        info.streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        [AUDIT_LOG, CAMERA_ALERTS]
    );
    for stream in &info.streams {
        assert_eq!(stream.max_window, QUARTER_HOUR_MS);
        assert_eq!(stream.default_lookback, QUARTER_HOUR_MS);
        assert!(stream.time_field.is_some());
    }
    let settings = |stream: &StreamInfo| -> Vec<(String, Option<String>)> {
        stream
            .settings
            .iter()
            .map(|setting| (setting.key.clone(), setting.default.clone()))
            .collect()
    };
    assert_eq!(
        settings(&info.streams[0]),
        [
            ("output.path".into(), Some("verkada_audit_log.jsonl".into())),
            ("output.base-name".into(), Some("verkada_audit_log".into())),
        ]
    );
    assert_eq!(
        settings(&info.streams[1])[0].1.as_deref(),
        Some("verkada_camera_alerts.jsonl")
    );
    assert!(info.hosts.iter().all(|host| host.starts_with("https://")));
    let key = info.params.iter().find(|p| p.name == "api_key").unwrap();
    assert!(key.secret && key.required);
    assert_eq!(key.env.as_deref(), Some("VERKADA_API_KEY"));
    assert_eq!(
        info.rate_limits
            .iter()
            .map(|limit| (limit.requests, limit.per))
            .collect::<Vec<_>>(),
        [(300, 60_000), (25, 5_000)]
    );
}
