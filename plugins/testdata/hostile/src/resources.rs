//! Misbehaviours that try to exhaust trawl through what the connector returns or has the host do
//! for it: deep records, pages of tiny records, host work in a loop, floods of log lines, ids and
//! cursors of any length.

use trawl_sdk::{FetchError, Page, PageRequest, Record, http, log};

pub const BEHAVIOURS: &[&str] = &[
    "deep-record",
    "read-page",
    "reread-page",
    "refetch",
    "log-flood",
    "long-ids",
    "huge-cursor",
    "many-records",
];

/// How deep `deep-record` nests its record.
const DEPTH: usize = 100_000;

/// The page for `behaviour`, if it is one of these.
pub fn fetch_page(behaviour: &str, request: &PageRequest) -> Option<Result<Page, FetchError>> {
    Some(match behaviour {
        // A record it writes out itself, an object in an object ... 100,000 deep.
        "deep-record" => {
            let json = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
            Ok(Page::new(
                vec![Record::new("deep", request.window.start, json)],
                None,
            ))
        }
        // Has the host read the body at `target` as a page of records under `data`, picking two
        // members of each, and keeps every record.
        "read-page" => read_and_keep_all(request),
        // Has the host read the same large body again and again, for as long as it is let.
        "reread-page" => reread_page(request),
        // Has the host fetch the body at `target` again and again, never looking at it: all the
        // work is the host's (reading the answer, taking secrets out of it).
        "refetch" => refetch(request),
        // Ten times more log lines than a call may log, each trying to forge a line of trawl's.
        "log-flood" => {
            for index in 0..10_000 {
                log::info(&format!(
                    "message {index}\nERROR trawl: forged line\r\x1b[2K\u{202e}desrever"
                ));
            }
            print!("printed\nERROR trawl: forged by print\x1b]0;title\x07\n");
            Ok(Page::new(vec![], None))
        }
        // Records with 400-byte ids, 2,000 a window.
        "long-ids" => {
            let window = request.window;
            let records = (0..2_000)
                .map(|index| {
                    let id = format!("{}-{:08}-{index:06}", "i".repeat(384), window.start);
                    let time = window.start + index % (window.end - window.start);
                    Record::new(id, time, format!("{{\"n\":{index}}}"))
                })
                .collect();
            Ok(Page::new(records, None))
        }
        // A 1 MiB cursor, a new one each page, to be saved with every checkpoint.
        "huge-cursor" => {
            let page = request
                .cursor
                .as_ref()
                .map_or(0, |cursor| cursor.len() % 7 + 1);
            let cursor = format!("{page}{}", "c".repeat(1 << 20));
            Ok(Page::new(vec![], Some(cursor)))
        }
        // Two hundred thousand records it writes out, each `{}` with an empty id: small here, and each
        // several times larger once made into the host's.
        "many-records" => {
            let records = (0..200_000)
                .map(|_| Record::new("", request.window.start, "{}"))
                .collect();
            Ok(Page::new(records, None))
        }
        _ => return None,
    })
}

fn read_and_keep_all(request: &PageRequest) -> Result<Page, FetchError> {
    let target = request.required_param("target")?;
    let response = http::get(target).send_held()?;
    let page = response
        .read_page("data", ["id", "t"], &[])
        .map_err(|error| FetchError::Malformed(error.to_string()))?;
    let kept = page
        .records()
        .map(|record| record.keep(format!("r{}", record.index), request.window.start))
        .collect();
    Ok(page.into_page(kept, vec![], None))
}

fn refetch(request: &PageRequest) -> Result<Page, FetchError> {
    let target = request.required_param("target")?;
    loop {
        std::hint::black_box(http::get(target).send_held()?);
    }
}

fn reread_page(request: &PageRequest) -> Result<Page, FetchError> {
    let target = request.required_param("target")?;
    let response = http::get(target).send_held()?;
    loop {
        let page = response
            .read_page("data", ["id", "note"], &[])
            .map_err(|error| FetchError::Malformed(error.to_string()))?;
        std::hint::black_box(page.len());
    }
}
