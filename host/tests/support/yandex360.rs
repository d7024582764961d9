//! The seed script's `.env` for `yandex360.wasm`, and the order its output holds events in.

use trawl_simulators::yandex360::{Dataset, Event, ORG_ID, Stream};

/// The seed script's `.env`, with a trailing slash on one folder as users write them.
pub fn seed_env(token: &str) -> String {
    format!(
        "OAUTH_TOKEN_ARG={token}\nORGANIZATION_ID_ARG={ORG_ID}\n\
         MAIL_LOG_CATALOG_LOCATION=logs/mail/\nDISK_LOG_CATALOG_LOCATION=logs/disk\n\
         LOG_FILE_EXTENSION=log\nMAIL_LOG_FILE_BASE_NAME=mail_audit\n\
         DISK_LOG_FILE_BASE_NAME=disk_audit\n"
    )
}

/// The events of `stream` with `from <= date < to` (milliseconds), as trawl orders them: by
/// time, then by id.
pub fn truth(dataset: &Dataset, stream: Stream, from: i64, to: i64) -> Vec<&Event> {
    let mut events = dataset.between(stream, from, to);
    events.sort_by_key(|event| (event.date_ms, event.trawl_id()));
    events
}
