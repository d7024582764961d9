//! Text a connector wrote, made safe to print.
//!
//! Whatever a connector says (log messages, what it prints, its error messages, ids, cursors)
//! ends up in trawl's log and error lines, on a terminal or in a log collector. Raw there, a line
//! feed forges a log line of its own, a carriage return or an escape sequence rewrites what is on
//! the screen, and a bidi override shows text in another order than it is. Every such text goes
//! through [`printable`] on its way out.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that could change how the text around it reads escaped: C0 and
/// C1 control characters (line feed, carriage return, tab and escape as `\n`, `\r`, `\t`, `\e`,
/// the rest as `\u{..}`), DEL, the bidi controls (U+061C, U+200E, U+200F, U+202A to U+202E,
/// U+2066 to U+2069) and the line and paragraph separators. A backslash the connector wrote is
/// left as it is: `\n` written out stays on its line, and quoted JSON stays readable. Text with
/// none of them, which is nearly all, is returned as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(needs_escape) else {
        return Cow::Borrowed(text);
    };
    let mut escaped = String::with_capacity(text.len() + 8);
    escaped.push_str(&text[..first]);
    for character in text[first..].chars() {
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\u{1b}' => escaped.push_str("\\e"),
            other if needs_escape(other) => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(other));
            }
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

/// [`printable`], cut to at most `limit` bytes of the connector's text (on a character boundary),
/// with a note of how much was cut: for text that goes into one line of a message.
pub fn printable_excerpt(text: &str, limit: usize) -> Cow<'_, str> {
    if text.len() <= limit {
        return printable(text);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    Cow::Owned(format!("{}... ({cut} more bytes)", printable(&text[..end])))
}

/// Control characters (C0, DEL, C1, which drive terminals), bidirectional marks, overrides and
/// isolates (which reorder what is shown), and line and paragraph separators.
pub fn needs_escape(character: char) -> bool {
    matches!(
        character,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_not_copied() {
        let text = "page 3 of stream `audit`: 100 records, é 日本";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn line_breaks_and_terminal_controls_are_escaped() {
        assert_eq!(
            printable("ok\nERROR forged line\r\x1b[2Kgone\t\x07\0"),
            "ok\\nERROR forged line\\r\\e[2Kgone\\t\\u{7}\\u{0}"
        );
        // DEL, a C1 control (CSI) and the Unicode line and paragraph separators.
        assert_eq!(
            printable("a\u{7f}b\u{9b}c\u{2028}d\u{2029}"),
            "a\\u{7f}b\\u{9b}c\\u{2028}d\\u{2029}"
        );
    }

    #[test]
    fn bidi_controls_are_escaped() {
        for control in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let text = format!("file{control}txt.exe");
            let escaped = printable(&text);
            assert!(!escaped.contains(control), "{control:?}");
            assert_eq!(
                escaped,
                format!("file\\u{{{:x}}}txt.exe", u32::from(control))
            );
        }
    }

    #[test]
    fn excerpts_are_cut_on_a_character_boundary() {
        assert_eq!(printable_excerpt("short", 10), "short");
        assert_eq!(printable_excerpt("ééé", 3), "é... (4 more bytes)");
        assert_eq!(printable_excerpt("a\nbcdef", 3), "a\\nb... (4 more bytes)");
    }
}
