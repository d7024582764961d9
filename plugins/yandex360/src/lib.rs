//! Yandex 360 audit logs: `GET {base}/security/v1/org/{orgId}/audit_log/{mail|disk}` with an
//! `Authorization: OAuth` header, paged newest first with `pageToken` until `nextPageToken` is empty.
//!
//! The pure parts (dates, ids, query values) live in [`vendor`] so that they are tested on the
//! build machine; this file holds what needs the host.

// On the build machine only the tests use it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod vendor;

#[cfg(target_arch = "wasm32")]
mod connector {
    use crate::vendor::{self, Stream};
    use trawl_sdk::http::{self, HeldResponse};
    use trawl_sdk::{
        Connector, ConnectorInfo, DAY_MS, FetchError, HostSetting, Page, PageRequest, ParamInfo,
        ParamKind, StatusError, StreamInfo, TimeFormat, secret_placeholder,
    };

    struct Yandex360;

    const MINUTE_MS: u64 = 60_000;
    /// The seed script re-read the last 2 minutes (`OVERLAPPED_MINITS`) to catch late events.
    const OVERLAP_MS: u64 = 2 * MINUTE_MS;
    /// How far back "everything available" reaches on a first run. Yandex does not publish the
    /// audit log's retention; half a year covers every plan seen so far, and days before the
    /// retention simply come back empty.
    const LOOKBACK_MS: u64 = 180 * DAY_MS;

    const TOKEN: &str = "oauth_token";
    const TOKEN_ENV: &str = "OAUTH_TOKEN_ARG";
    const ORG_ENV: &str = "ORGANIZATION_ID_ARG";

    fn stream_info(stream: Stream) -> StreamInfo {
        let (description, directory_env, base_name_env, base_name) = match stream {
            Stream::Mail => (
                "Mail audit log: messages received, sent, read, moved, deleted, per user",
                "MAIL_LOG_CATALOG_LOCATION",
                "MAIL_LOG_FILE_BASE_NAME",
                "mail_audit",
            ),
            Stream::Disk => (
                "Disk audit log: files and folders created, moved, shared, deleted, per user",
                "DISK_LOG_CATALOG_LOCATION",
                "DISK_LOG_FILE_BASE_NAME",
                "disk_audit",
            ),
        };
        // The seed script's files: `<catalog>/<base>_<YYYY-MM-DD>.<extension>`, one JSON object a line.
        // No longest window: Yandex pages through any range (newest first), so trawl sizes windows
        // by how many events they hold, and a page token it refuses makes trawl ask again in
        // smaller pieces.
        StreamInfo::new(stream.name(), description)
            .default_lookback(LOOKBACK_MS)
            .overlap_and_lag(OVERLAP_MS, 0)
            .time_field("date", TimeFormat::Rfc3339)
            .columns(&["date", "eventType", "userLogin", "uniqId"])
            .setting("output.format", Some("daily-jsonl"), None)
            .setting("output.directory", Some("."), Some(directory_env))
            .setting("output.base-name", Some(base_name), Some(base_name_env))
            .setting("output.extension", Some("log"), Some("LOG_FILE_EXTENSION"))
    }

    impl Connector for Yandex360 {
        fn describe() -> ConnectorInfo {
            ConnectorInfo {
                name: "yandex360".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "Yandex 360 audit logs: mail and disk events of the organisation"
                    .into(),
                streams: vec![stream_info(Stream::Mail), stream_info(Stream::Disk)],
                params: vec![
                    ParamInfo::new(
                        TOKEN,
                        ParamKind::Text,
                        "An OAuth token issued by an administrator of the organisation, with \
                         ya360_security:audit_log_mail and ya360_security:audit_log_disk",
                    )
                    .required()
                    .secret()
                    .env(TOKEN_ENV),
                    ParamInfo::new(
                        "org_id",
                        ParamKind::Integer,
                        "The organisation id, shown at the bottom left of admin.yandex.ru",
                    )
                    .required()
                    .env(ORG_ENV),
                    ParamInfo::new("base_url", ParamKind::Url, "The Yandex 360 API URL")
                        .default_value("https://api360.yandex.net"),
                    ParamInfo::new(
                        "page_size",
                        ParamKind::Integer,
                        "Events asked for per request, 1 to 100",
                    )
                    .default_value("100"),
                    ParamInfo::new(
                        "include_uids",
                        ParamKind::Text,
                        "Only these users' events: user ids separated by commas",
                    ),
                    ParamInfo::new(
                        "exclude_uids",
                        ParamKind::Text,
                        "Leave out these users' events: user ids separated by commas",
                    ),
                    ParamInfo::new(
                        "mail_types",
                        ParamKind::Text,
                        "Mail stream only: event types separated by commas (message_receive, \
                         mailbox_send, message_seen, ...); for disk use --filter eventType=...",
                    ),
                ],
                hosts: vec!["https://api360.yandex.net".into()],
                // Yandex publishes no quota for these methods; the host still backs off on 429.
                rate_limits: vec![],
                // The seed pulls mail, then disk.
                settings: vec![HostSetting::new("streams", Some("mail,disk"), None)],
            }
        }

        fn fetch_page(request: PageRequest) -> Result<Page, FetchError> {
            let stream = Stream::from_name(&request.stream)
                .ok_or_else(|| FetchError::UnknownStream(request.stream.clone()))?;
            let params = Params::read(&request)?;
            let window = request.window;
            let url = format!(
                "{}/security/v1/org/{}/audit_log/{}",
                params.base_url,
                params.org_id,
                stream.name()
            );
            let (after, before) = vendor::query_bounds(window.start, window.end);
            let mut builder = http::get(url)
                .header(
                    "Authorization",
                    format!("OAuth {}", secret_placeholder(TOKEN)),
                )
                .header("Accept", "application/json")
                .query("pageSize", &params.page_size.to_string())
                .query("afterDate", &after)
                .query("beforeDate", &before);
            for uid in &params.include_uids {
                builder = builder.query("includeUids", uid);
            }
            for uid in &params.exclude_uids {
                builder = builder.query("excludeUids", uid);
            }
            // `types` exists for mail only: the disk endpoint may reject it.
            if stream == Stream::Mail {
                for kind in &params.mail_types {
                    builder = builder.query("types", kind);
                }
            }
            if let Some(cursor) = &request.cursor {
                builder = builder.query("pageToken", cursor);
            }
            let response = builder.send_held()?;
            check_status(&response, stream, &params, request.cursor.is_some())?;
            read_page(&response, window)
        }
    }

    /// The params `fetch_page` uses, checked.
    struct Params {
        base_url: String,
        org_id: u64,
        page_size: u32,
        include_uids: Vec<String>,
        exclude_uids: Vec<String>,
        mail_types: Vec<String>,
        has_filters: bool,
    }

    impl Params {
        fn read(request: &PageRequest) -> Result<Self, FetchError> {
            let org_text = request.required_param("org_id")?;
            let org_id = org_text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    FetchError::InvalidParams(format!(
                        "`org_id` ({ORG_ENV}) must be the organisation's number, not `{org_text}`"
                    ))
                })?;
            let size_text = request.param("page_size").unwrap_or("100");
            let page_size = size_text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|size| (1..=100).contains(size))
                .ok_or_else(|| {
                    FetchError::InvalidParams(format!(
                        "`page_size` must be between 1 and 100 (the API's maximum), not `{size_text}`"
                    ))
                })?;
            let uids = |name: &str| {
                vendor::split_uids(request.param(name).unwrap_or("")).map_err(|bad| {
                    FetchError::InvalidParams(format!(
                        "`{name}` holds `{bad}`, which is not a user id (a whole number)"
                    ))
                })
            };
            let include_uids = uids("include_uids")?;
            let exclude_uids = uids("exclude_uids")?;
            let mail_types = vendor::split_list(request.param("mail_types").unwrap_or(""));
            Ok(Params {
                base_url: request
                    .required_param("base_url")?
                    .trim_end_matches('/')
                    .to_string(),
                org_id,
                page_size,
                has_filters: !include_uids.is_empty()
                    || !exclude_uids.is_empty()
                    || !mail_types.is_empty(),
                include_uids,
                exclude_uids,
                mail_types,
            })
        }
    }

    fn check_status(
        response: &HeldResponse,
        stream: Stream,
        params: &Params,
        with_token: bool,
    ) -> Result<(), FetchError> {
        if response.is_success() {
            return Ok(());
        }
        let said = vendor::error_message(&response.body(), response.header("x-request-id"));
        let org = params.org_id;
        let name = stream.name();
        Err(match response.status {
            401 => FetchError::Unauthorized(format!(
                "Yandex 360 refused the OAuth token (HTTP 401: {said}); check {TOKEN_ENV}: it must \
                 be a valid, unexpired token (sent as `Authorization: OAuth <token>`)"
            )),
            403 => FetchError::Unauthorized(format!(
                "Yandex 360 denied access to the {name} audit log of organisation {org} (HTTP 403: \
                 {said}); the token in {TOKEN_ENV} needs the ya360_security:audit_log_{name} \
                 permission and must be issued by an administrator of the organisation in \
                 {ORG_ENV}, whose plan must include audit logs"
            )),
            // A page token the API no longer takes (expired, too deep, or from a run with other
            // filters): the host asks again for each half of the window, from their first page.
            400 if with_token => FetchError::WindowTooLarge(format!(
                "Yandex 360 refused the page token of this window (HTTP 400: {said})"
            )),
            400 if params.has_filters => status(
                400,
                format!(
                    "{said}; check include_uids, exclude_uids and mail_types, which Yandex 360 may \
                     not accept"
                ),
            ),
            404 => status(
                404,
                format!(
                    "{said}; check the organisation id in {ORG_ENV} ({org}) and base_url ({})",
                    params.base_url
                ),
            ),
            429 => status(
                429,
                format!(
                    "{said}; Yandex 360 kept asking to slow down: use fewer --workers or set \
                     --rate-limit"
                ),
            ),
            other => status(other, said),
        })
    }

    fn status(status: u16, message: String) -> FetchError {
        FetchError::Status(StatusError { status, message })
    }

    fn read_page(response: &HeldResponse, window: trawl_sdk::Window) -> Result<Page, FetchError> {
        let malformed = |error: &dyn std::fmt::Display| {
            FetchError::Malformed(format!(
                "the answer is not the expected JSON ({error}): {}",
                response.body_excerpt()
            ))
        };
        // `events` is null or missing on an empty page: an empty page, not an error.
        let page = response
            .read_page("events", vendor::EVENT_KEYS, &["nextPageToken"])
            .map_err(|error| malformed(&error))?;
        let mut kept = Vec::with_capacity(page.len());
        for raw in page.records() {
            let text = || page.text(raw.index).unwrap_or_default();
            let event = vendor::read_event(raw.picked, text).map_err(FetchError::Malformed)?;
            if event.hashed_id {
                trawl_sdk::log::warn(&format!(
                    "an event without uniqId at {} ms; its id is a hash of its text",
                    event.time
                ));
            }
            // The query is a little wider than the window (whole seconds, either inclusivity):
            // an event belongs to the one window that contains it.
            if window.contains(event.time) {
                kept.push(raw.keep(event.id, event.time));
            }
        }
        let next_cursor = page
            .parse_member::<Option<String>>("nextPageToken")
            .map_err(|error| malformed(&error))?
            .flatten()
            .filter(|token| !token.trim().is_empty());
        Ok(page.into_page(kept, Vec::new(), next_cursor))
    }

    trawl_sdk::export_connector!(Yandex360);
}
