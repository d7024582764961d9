//! A small request builder over the host's `http` import.

use crate::bindings::trawl::connector::http as wit;
use crate::{FetchError, Header, StatusError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use wit::{Error, Method, Response};

/// Characters left as they are in a query component (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query name or value.
pub fn encode_query_component(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

/// A request being built.
pub struct RequestBuilder {
    method: Method,
    url: String,
    has_query: bool,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
}

/// Starts a GET request to `url` (which may already carry a query).
pub fn get(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Get, url.into())
}

/// Starts a POST request to `url`.
pub fn post(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Post, url.into())
}

impl RequestBuilder {
    fn new(method: Method, url: String) -> Self {
        RequestBuilder {
            has_query: url.contains('?'),
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.to_string(),
            value: value.into(),
        });
        self
    }

    /// Appends `name=value` to the query, percent-encoded. Call it again with the same name for a
    /// repeated parameter.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.url.push(if self.has_query { '&' } else { '?' });
        self.has_query = true;
        self.url.push_str(&encode_query_component(name));
        self.url.push('=');
        self.url.push_str(&encode_query_component(value));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends the request; transport failures become [`FetchError::Http`].
    pub fn send(self) -> Result<Response, FetchError> {
        wit::send(&wit::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        })
        .map_err(FetchError::Http)
    }
}

impl Response {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body as text, for error messages.
    pub fn body_excerpt(&self) -> String {
        crate::excerpt(&String::from_utf8_lossy(&self.body))
    }

    /// A [`FetchError::Status`] describing this response.
    pub fn status_error(&self) -> FetchError {
        FetchError::Status(StatusError {
            status: self.status,
            message: self.body_excerpt(),
        })
    }
}
