//! A worker's job: one window's pages, each staged and checkpointed before the next is asked for.

use super::WindowError;
use super::plan::{PlannedWindow, SharedDensity};
use super::staging::{StagedRecord, Staging};
use crate::capabilities::Capabilities;
use crate::runtime::wit::{FetchError, PageRequest, Param, Window};
use crate::runtime::{Connector, Page, Record, RecordJson};
use crate::sinks::{Encoder, JsonObject};
use crate::state::{Interval, Scope, StateStore, WindowProgress};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The first wait before asking again for a page whose body could not be read; it doubles each
/// time, up to [`MALFORMED_MOST_BACKOFF`], and is jittered in full.
const MALFORMED_BACKOFF: Duration = Duration::from_millis(250);
const MALFORMED_MOST_BACKOFF: Duration = Duration::from_secs(30);

/// What every worker of a stream's run shares.
pub(super) struct Shared {
    pub connector: Arc<Connector>,
    pub capabilities: Capabilities,
    pub params: Vec<Param>,
    pub state: StateStore,
    pub scope: Scope,
    pub staging_dir: PathBuf,
    pub max_pages: u32,
    pub max_page_records: usize,
    pub max_page_bytes: usize,
    /// How long, and how many times, a page may come back unreadable before its window fails.
    pub unreadable_patience: Duration,
    pub unreadable_attempts: u32,
    /// The sink's encoder: a window's records are made into what the sink writes here, on the
    /// worker, rather than one after another in the committer.
    pub encoder: Option<Arc<dyn Encoder>>,
    /// Set when the run is stopping: workers finish the page in flight and return.
    pub stop: AtomicBool,
    pub pages: AtomicU64,
    /// Windows handed to workers so far.
    pub windows_planned: AtomicUsize,
    /// How densely the stream holds records, from the windows fetched: the planner sizes the
    /// windows it has yet to hand out from it.
    pub density: SharedDensity,
}

/// A window whose every page is in: the pages before the last staged on disk (if any), the last
/// one in memory.
#[derive(Debug)]
pub(super) struct Fetched {
    pub window: Interval,
    /// The staging file, if pages before the last were staged (or an earlier run staged some).
    pub staging: Option<PathBuf>,
    pub staged_len: u64,
    /// The last page's records. They are not staged: until the window is committed, a crash
    /// only costs asking for that one page again, and a window of one page (the common case)
    /// then costs no staging at all.
    pub last_page: Vec<StagedRecord>,
}

/// Fetches what is left of a window, staging and checkpointing page by page.
pub(super) async fn fetch_window(
    shared: Arc<Shared>,
    planned: PlannedWindow,
) -> Result<Fetched, WindowError> {
    let window = planned.window;
    let staging_path = Staging::path(&shared.staging_dir, window);
    let mut staging: Option<Staging> = None;
    let resume = match planned.resume {
        Some(resume) => {
            // Cut the staging file back to what the checkpoint vouches for.
            let dir = shared.staging_dir.clone();
            let durable = resume.staged_len;
            staging = Some(blocking(move || Staging::open(&dir, window, durable)).await??);
            resume
        }
        None => WindowProgress {
            window,
            cursor: None,
            staged_len: 0,
            pages: 0,
            done: false,
        },
    };
    if resume.done {
        return Ok(Fetched {
            window,
            staging: staging.is_some().then_some(staging_path),
            staged_len: resume.staged_len,
            last_page: Vec::new(),
        });
    }
    let mut request = PageRequest {
        stream: shared.scope.stream.clone(),
        window: Window {
            start: window.start,
            end: window.end,
        },
        cursor: resume.cursor,
        params: shared.params.clone(),
    };
    let mut pages = resume.pages;
    // What this window holds, for sizing the windows after it; a resumed window's staged pages
    // are not counted again, so only a window fetched whole is evidence.
    let whole = resume.pages == 0;
    let mut records_seen: u64 = 0;
    let mut full_page: u64 = 0;
    // The oldest and newest record of the pages fetched.
    let mut seen_span: Option<Interval> = None;
    // Each cursor's digest, not the cursor: a window's cursors are held until its last page,
    // and a digest costs the same however long the connector made its cursor.
    let mut seen_cursors: HashSet<[u8; 32]> = request
        .cursor
        .iter()
        .map(|cursor| cursor_digest(cursor))
        .collect();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Err(WindowError::Stopped);
        }
        if pages >= u64::from(shared.max_pages) {
            return Err(WindowError::TooManyPages(shared.max_pages));
        }
        let fetched_at = shared.capabilities.clock.now_millis();
        let page = match fetch_page(&shared, &request).await {
            Err(error) if error.is_split_request() && pages > 0 => {
                // Where the vendor stopped sizes the pieces it is asked for next.
                if let Some(seen) = seen_span {
                    shared
                        .density
                        .observe_refusal(seen, records_seen, full_page, pages);
                }
                return Err(error);
            }
            page => page?,
        };
        pages += 1;
        shared.pages.fetch_add(1, Ordering::Relaxed);
        check_page_size(&shared, &page)?;
        let mut records = check_records(page.records, fetched_at)?;
        records_seen += records.len() as u64;
        seen_span = records.iter().fold(seen_span, |span, record| {
            let at = record.event_time;
            Some(span.map_or(Interval::new(at, at + 1), |span: Interval| {
                Interval::new(span.start.min(at), span.end.max(at + 1))
            }))
        });
        let Some(next) = page.next_cursor else {
            if whole {
                shared.density.observe(window, records_seen, full_page);
            }
            // Staged pages are read back without what was made of them: only the last is made.
            if let Some(encoder) = &shared.encoder {
                encoder.encode(&mut records);
            }
            return Ok(Fetched {
                window,
                staged_len: staging.as_ref().map_or(0, Staging::len),
                staging: staging.is_some().then_some(staging_path),
                last_page: records,
            });
        };
        if next.len() > MAX_CURSOR_BYTES {
            return Err(WindowError::CursorTooLong {
                len: next.len(),
                limit: MAX_CURSOR_BYTES,
            });
        }
        full_page = full_page.max(records.len() as u64);
        if !seen_cursors.insert(cursor_digest(&next)) {
            return Err(WindowError::RepeatedCursor(next));
        }
        let progress = WindowProgress {
            window,
            cursor: Some(next.clone()),
            staged_len: 0,
            pages,
            done: false,
        };
        let (state, scope, dir) = (
            shared.state.clone(),
            shared.scope.clone(),
            shared.staging_dir.clone(),
        );
        // The records are durable before the checkpoint says the next page is where to go on.
        staging = Some(
            blocking(move || -> Result<Staging, WindowError> {
                let mut staging = match staging {
                    Some(staging) => staging,
                    None => Staging::open(&dir, window, 0)?,
                };
                let staged_len = staging.append(&records)?;
                state.save_progress(
                    &scope,
                    &WindowProgress {
                        staged_len,
                        ..progress
                    },
                )?;
                Ok(staging)
            })
            .await??,
        );
        request.cursor = Some(next);
    }
}

/// The longest cursor a connector may hand back: it is written to the state file with every
/// page's checkpoint. Vendors' page tokens are tens to hundreds of bytes; a cursor that carries
/// a query along may take a few KiB.
pub(super) const MAX_CURSOR_BYTES: usize = 64 << 10;

fn cursor_digest(cursor: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(cursor.as_bytes()).into()
}

/// One page, asked for again when its body could not be read (cut short or garbled on the way:
/// the HTTP layer cannot see that, the connector can), with capped exponential backoff and full
/// jitter, for a time ([`Shared::unreadable_patience`]) rather than a number of times, unless
/// the user capped attempts. Not for as long as the run's stall limit: a page that is
/// unreadable every time (a record the host cannot read) would hold its window that long.
async fn fetch_page(shared: &Shared, request: &PageRequest) -> Result<Page, WindowError> {
    let mut attempt = 0;
    let first_unreadable = tokio::time::Instant::now();
    loop {
        let outcome = shared
            .connector
            .fetch_page(shared.capabilities.clone(), request)
            .await?;
        match outcome {
            Err(FetchError::Malformed(reason))
                if first_unreadable.elapsed() < shared.unreadable_patience
                    && attempt + 1 < shared.unreadable_attempts =>
            {
                let ceiling = MALFORMED_BACKOFF
                    .saturating_mul(1 << attempt.min(16))
                    .min(MALFORMED_MOST_BACKOFF);
                let wait = full_jitter(ceiling, attempt);
                let reason = crate::connector_text::printable_excerpt(&reason, 4 << 10);
                tracing::debug!(%reason, attempt, ?wait, "unreadable page; asking again");
                attempt += 1;
                tokio::time::sleep(wait).await;
            }
            other => return other.map_err(WindowError::Connector),
        }
    }
}

/// A wait uniform in `[0, ceiling]`, so that workers that failed together do not ask together.
fn full_jitter(ceiling: Duration, attempt: u32) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(attempt);
    ceiling.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
}

/// A page bigger than the limits is refused rather than held in memory and staged.
fn check_page_size(shared: &Shared, page: &Page) -> Result<(), WindowError> {
    if page.records.len() > shared.max_page_records {
        return Err(WindowError::PageTooLarge {
            found: page.records.len(),
            what: "records",
            limit: shared.max_page_records,
            setting: "max_page_records",
        });
    }
    let bytes: usize = page.records.iter().map(|record| record.json.len()).sum();
    if bytes > shared.max_page_bytes {
        return Err(WindowError::PageTooLarge {
            found: bytes,
            what: "bytes",
            limit: shared.max_page_bytes,
            setting: "max_page_mib",
        });
    }
    Ok(())
}

fn check_records(records: Vec<Record>, fetched_at: i64) -> Result<Vec<StagedRecord>, WindowError> {
    // Sized up front: collecting into a `Result` knows no size, and grew the list (moving every
    // record made so far) as it went.
    let mut checked = Vec::with_capacity(records.len());
    for record in records {
        if jiff::Timestamp::from_millisecond(record.event_time).is_err() {
            return Err(WindowError::BadEventTime {
                id: record.id,
                event_time: record.event_time,
            });
        }
        let json = match record.json {
            RecordJson::FromConnector(text) => JsonObject::parse(text),
            RecordJson::Checked { body, range } => JsonObject::from_checked_piece(body, range)
                .ok_or_else(|| "it is not a piece of its page's body".to_string()),
        };
        let json = match json {
            Ok(json) => json,
            Err(reason) => {
                return Err(WindowError::NotAnObject {
                    id: record.id,
                    reason,
                });
            }
        };
        checked.push(StagedRecord {
            event_time: record.event_time,
            fetched_at,
            id: super::ids::kept_id(record.id),
            json,
            rendered: None,
        });
    }
    Ok(checked)
}

/// Runs file and database work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WindowError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| WindowError::Internal(error.to_string()))
}
