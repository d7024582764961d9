//! A small request builder over the host's `http` and `responses` imports.

use crate::bindings::trawl::connector0_1_0::http as wit;
use crate::bindings::trawl::connector0_2_0::responses;
use crate::json::{PageError, ReadPage};
use crate::{FetchError, Header, RecordKeys, StatusError};
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

    /// Adds a header. A secret's placeholder may be (part of) the value, never the name: the host
    /// refuses a request with one in a header's name.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.to_string(),
            value: value.into(),
        });
        self
    }

    /// Appends `name=value` to the query, percent-encoded. Call it again with the same name for a
    /// repeated parameter. A secret's placeholder may be the value (or part of it): the host finds
    /// it encoded and puts in the secret, percent-encoded in turn, so the vendor reads the secret
    /// itself. Placeholders go in a URL's path or query only; the host refuses one that could
    /// change where the request goes (user name, password, host).
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

    fn request(self) -> wit::Request {
        wit::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        }
    }

    /// Sends the request and copies the whole body into the connector: for small answers (a
    /// token) and bodies read with serde. Transport failures become [`FetchError::Http`].
    pub fn send(self) -> Result<Response, FetchError> {
        wit::send(&self.request()).map_err(FetchError::Http)
    }

    /// Sends the request, leaving the body in the host: for a page of records, read there with
    /// [`HeldResponse::read_page`]. Transport failures become [`FetchError::Http`].
    pub fn send_held(self) -> Result<HeldResponse, FetchError> {
        let response = responses::send(&self.request()).map_err(FetchError::Http)?;
        Ok(HeldResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

/// A response whose body the host holds.
pub struct HeldResponse {
    pub status: u16,
    /// Response headers, in the order received; names are lower case.
    pub headers: Vec<Header>,
    body: responses::Body,
}

impl HeldResponse {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body, copied from the host: for an error answer, or a body that is not a page.
    pub fn body(&self) -> Vec<u8> {
        self.body.bytes()
    }

    /// The start of the body as text, for error messages.
    pub fn body_excerpt(&self) -> String {
        crate::excerpt(&String::from_utf8_lossy(&self.body()))
    }

    /// A [`FetchError::Status`] describing this response.
    pub fn status_error(&self) -> FetchError {
        FetchError::Status(StatusError {
            status: self.status,
            message: self.body_excerpt(),
        })
    }

    /// Has the host read the body as a page: a JSON object whose member `records_key` is the
    /// array of records (empty: the body is the array). Of each record the host picks the
    /// top-level members named in `picked`; of the page, those named in `members`. The host checks
    /// the whole body as it reads it.
    pub fn read_page<const N: usize>(
        &self,
        records_key: &str,
        picked: [&str; N],
        members: &[&str],
    ) -> Result<ReadPage<N>, PageError> {
        ReadPage::read(&self.body, records_key, picked, members, None)
    }

    /// Reads the body as [`read_page`](Self::read_page) does, the host also reading each record's
    /// id and event time from the members `keys` names, for records that carry them plainly. The
    /// connector returns the page with [`ReadPage::into_page_within`], never going over its
    /// records; a record without a usable id or time makes the whole page an error.
    pub fn read_keyed_page(
        &self,
        records_key: &str,
        keys: &RecordKeys,
        members: &[&str],
    ) -> Result<ReadPage<0>, PageError> {
        ReadPage::read(&self.body, records_key, [], members, Some(keys))
    }
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case(name))
        .map(|header| header.value.as_str())
}

impl Response {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
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
