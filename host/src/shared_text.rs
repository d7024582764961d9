//! Text that the pieces cut from it share: a page's body, which its records are pieces of.

use bytes::Bytes;
use std::ops::Deref;

/// UTF-8 text in a shared buffer: a clone copies nothing. A body is kept in the buffer its
/// response came in, and its records point into it until they are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedText(Bytes);

impl SharedText {
    /// `bytes` as text, if all of it is UTF-8; otherwise the bytes back, with where they stop
    /// being UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, (Bytes, std::str::Utf8Error)> {
        // Every page's body is checked: `simdutf8` does it several times faster than the
        // standard library, which then only says where a body that is not UTF-8 goes wrong.
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            return Ok(SharedText(bytes));
        }
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(SharedText(bytes)),
            Err(error) => Err((bytes, error)),
        }
    }

    /// Whether `self` and `other` are the very same text, not two copies of it.
    pub fn same(&self, other: &SharedText) -> bool {
        self.0.as_ptr() == other.0.as_ptr() && self.0.len() == other.0.len()
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        SharedText(Bytes::from(text))
    }
}

impl From<&str> for SharedText {
    fn from(text: &str) -> Self {
        SharedText(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl Deref for SharedText {
    type Target = str;

    fn deref(&self) -> &str {
        // SAFETY: a `SharedText` is only made of bytes found to be UTF-8 (`from_utf8`) or of a
        // `str`, and `Bytes` never changes its contents.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utf8_is_text_and_the_rest_says_where_it_goes_wrong() {
        let text = "{\"a\":\"é\"}".repeat(20);
        let shared = SharedText::from_utf8(Bytes::from(text.clone())).unwrap();
        assert_eq!(&*shared, text);
        // Long enough for the vector check, and wrong only near its end.
        let mut bytes = text.into_bytes();
        let at = bytes.len() - 2;
        bytes[at] = 0xff;
        let (back, error) = SharedText::from_utf8(Bytes::from(bytes.clone())).unwrap_err();
        assert_eq!(error.valid_up_to(), at);
        assert_eq!(back, bytes);
    }

    #[test]
    fn clones_are_the_same_text_and_copies_are_not() {
        let text = SharedText::from("[{}]");
        assert!(text.same(&text.clone()));
        assert!(!text.same(&SharedText::from("[{}]")));
    }
}
