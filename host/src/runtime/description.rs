//! What a connector may say about itself. Everything in its description ends up in front of a
//! person (the install review, `trawl inspect`, error messages) or decides what trawl reads and
//! writes, so it is checked once, when the connector is loaded: names have a fixed shape, text
//! is printable and of a sensible length, and nothing in it can move a terminal's cursor, change
//! its colours or reorder what it shows.

use super::wit::{ConnectorInfo, HostSetting, ParamKind};
use crate::connector_text::needs_escape;
use std::collections::HashSet;

/// Lengths in bytes, and counts, no honest connector comes near.
const MAX_NAME: usize = 64;
const MAX_LINE: usize = 512;
const MAX_HELP: usize = 2048;
const MAX_VALUE: usize = 1024;
const MAX_ITEMS: usize = 256;

/// Refuses a description the host could not work with or show safely, naming what is wrong:
/// first one too big as a whole, then any part of it.
pub(super) fn check(info: &ConnectorInfo) -> Result<(), String> {
    check_size(info)?;
    check_parts(info)
}

/// Refuses a part of a description that is misshapen, too long or not printable.
fn check_parts(info: &ConnectorInfo) -> Result<(), String> {
    let is_name = |name: &str| {
        !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
    };
    if !is_name(&info.name) {
        return Err(format!(
            "its name `{}` is not 1 to {MAX_NAME} lower-case letters, digits and `-`",
            info.name.escape_debug()
        ));
    }
    text("its version", &info.version, MAX_NAME)?;
    text("its description", &info.description, MAX_LINE)?;
    if info.streams.is_empty() {
        return Err("it declares no stream".into());
    }
    count("streams", info.streams.len())?;
    count("params", info.params.len())?;
    count("hosts", info.hosts.len())?;
    count("settings", info.settings.len())?;
    count("rate limits", info.rate_limits.len())?;
    let mut seen = HashSet::new();
    for stream in &info.streams {
        let what = format!("stream `{}`", stream.name.escape_debug());
        if !is_name(&stream.name) {
            return Err(format!(
                "its {what}'s name is not 1 to {MAX_NAME} lower-case letters, digits and `-`"
            ));
        }
        if !seen.insert(("stream", stream.name.as_str())) {
            return Err(format!("it declares the {what} twice"));
        }
        text(
            &format!("the {what}'s description"),
            &stream.description,
            MAX_LINE,
        )?;
        count(&format!("columns of the {what}"), stream.columns.len())?;
        for column in &stream.columns {
            text(&format!("a column of the {what}"), column, MAX_LINE)?;
        }
        if let Some(field) = &stream.time_field {
            text(&format!("the {what}'s time field"), &field.path, MAX_LINE)?;
        }
        settings(&format!("the {what}'s settings"), &stream.settings)?;
    }
    for param in &info.params {
        let what = format!("param `{}`", param.name.escape_debug());
        let param_name = !param.name.is_empty()
            && param.name.len() <= MAX_NAME
            && param
                .name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !param_name {
            return Err(format!(
                "its {what}'s name is not 1 to {MAX_NAME} lower-case letters, digits and `_`"
            ));
        }
        if !seen.insert(("param", param.name.as_str())) {
            return Err(format!("it declares the {what} twice"));
        }
        text(&format!("the {what}'s help"), &param.help, MAX_HELP)?;
        if let Some(default) = &param.default {
            text(&format!("the {what}'s default"), default, MAX_VALUE)?;
        }
        if let Some(variable) = &param.env {
            env_name(&what, variable)?;
        }
        if let ParamKind::Choice(choices) = &param.kind {
            count(&format!("choices of the {what}"), choices.len())?;
            for choice in choices {
                text(&format!("a choice of the {what}"), choice, MAX_NAME)?;
            }
        }
        count(
            &format!("secret hosts of the {what}"),
            param.secret_hosts.len(),
        )?;
        for host in &param.secret_hosts {
            text(&format!("a secret host of the {what}"), host, MAX_LINE)?;
        }
    }
    for host in &info.hosts {
        text("a host it declares", host, MAX_LINE)?;
    }
    // Hosts are patterns a user approves: one that could not be enforced, or that covers a
    // whole public suffix (`https://*.com`), is refused here rather than at the first request.
    let secret_hosts = info.params.iter().flat_map(|param| &param.secret_hosts);
    for host in info.hosts.iter().chain(secret_hosts) {
        host.parse::<crate::capabilities::http::HostPattern>()
            .map_err(|error| format!("it declares a host it may not: {error}"))?;
    }
    settings("its settings", &info.settings)?;
    Ok(())
}

fn settings(what: &str, settings: &[HostSetting]) -> Result<(), String> {
    count(what, settings.len())?;
    for setting in settings {
        text(&format!("a key of {what}"), &setting.key, MAX_NAME)?;
        let what = format!("the setting `{}` of {what}", setting.key);
        if let Some(default) = &setting.default {
            text(&what, default, MAX_VALUE)?;
        }
        if let Some(variable) = &setting.env {
            env_name(&what, variable)?;
        }
    }
    Ok(())
}

fn count(what: &str, count: usize) -> Result<(), String> {
    if count > MAX_ITEMS {
        return Err(format!(
            "it declares {count} {what}, more than the {MAX_ITEMS} trawl accepts"
        ));
    }
    Ok(())
}

/// An environment variable's name as POSIX shells write them.
fn env_name(what: &str, variable: &str) -> Result<(), String> {
    let mut bytes = variable.bytes();
    let shaped = bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        && variable.len() <= MAX_NAME * 2;
    if !shaped {
        return Err(format!(
            "{what} is read from the environment variable `{}`, which is not a variable name \
             (letters, digits and `_`, not starting with a digit)",
            variable.escape_debug()
        ));
    }
    Ok(())
}

/// Refuses text that is too long or holds a character that is not for printing.
fn text(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "{what} is {} bytes long, more than the {max} trawl accepts",
            text.len()
        ));
    }
    if let Some(character) = text.chars().find(|&c| needs_escape(c)) {
        return Err(format!(
            "{what} holds the control character U+{:04X}, which could change what a terminal \
             shows: `{}`",
            character as u32,
            text.escape_debug()
        ));
    }
    Ok(())
}

/// The most entries a connector's description may list in all (streams, params, hosts,
/// settings, columns, choices, rate limits): real connectors list tens.
const MAX_DESCRIPTION_ENTRIES: usize = 4_096;
/// The most bytes of text a connector's description may hold in all. It is kept for the whole
/// run and printed by `trawl describe`.
const MAX_DESCRIPTION_BYTES: usize = 256 << 10;
/// The longest one text of a description may be (a stream's description, a param's help).
const MAX_DESCRIPTION_TEXT: usize = 4 << 10;

/// Refuses a description bigger than the limits above, naming what is too big.
fn check_size(info: &ConnectorInfo) -> Result<(), String> {
    let mut size = DescriptionSize::default();
    let settings = |size: &mut DescriptionSize, settings: &[HostSetting]| {
        size.entries(settings.len());
        for setting in settings {
            size.text("a setting's key", &setting.key);
            size.maybe("a setting's default", &setting.default);
            size.maybe("a setting's variable", &setting.env);
        }
    };
    for (what, name) in info
        .streams
        .iter()
        .map(|stream| ("a stream's name", &stream.name))
        .chain(
            info.params
                .iter()
                .map(|param| ("a param's name", &param.name)),
        )
        .chain(info.hosts.iter().map(|host| ("a host", host)))
    {
        size.name(what, name);
    }
    size.text("its name", &info.name);
    size.text("its version", &info.version);
    size.text("its description", &info.description);
    size.entries(info.streams.len());
    for stream in &info.streams {
        size.text("a stream's name", &stream.name);
        size.text("a stream's description", &stream.description);
        size.entries(stream.columns.len());
        for column in &stream.columns {
            size.text("a column", column);
        }
        settings(&mut size, &stream.settings);
        if let Some(field) = &stream.time_field {
            size.text("a time field", &field.path);
        }
    }
    size.entries(info.params.len());
    for param in &info.params {
        size.text("a param's name", &param.name);
        size.text("a param's help", &param.help);
        size.maybe("a param's default", &param.default);
        size.maybe("a param's variable", &param.env);
        size.entries(param.secret_hosts.len());
        for host in &param.secret_hosts {
            size.text("a secret's host", host);
        }
        if let ParamKind::Choice(choices) = &param.kind {
            size.entries(choices.len());
            for choice in choices {
                size.text("a choice", choice);
            }
        }
    }
    size.entries(info.hosts.len());
    for host in &info.hosts {
        size.text("a host", host);
    }
    settings(&mut size, &info.settings);
    size.entries(info.rate_limits.len());
    size.verdict()
}

/// What a description holds, and the first text too long.
#[derive(Default)]
struct DescriptionSize {
    entries: usize,
    bytes: usize,
    too_long: Option<(&'static str, usize)>,
    /// The first name with a character that would change how a line it is printed in reads.
    unprintable: Option<(&'static str, String)>,
}

impl DescriptionSize {
    fn entries(&mut self, count: usize) {
        self.entries = self.entries.saturating_add(count);
    }

    fn text(&mut self, what: &'static str, text: &str) {
        self.bytes = self.bytes.saturating_add(text.len());
        if text.len() > MAX_DESCRIPTION_TEXT && self.too_long.is_none() {
            self.too_long = Some((what, text.len()));
        }
    }

    /// A name the host prints in its own lines (log lines, errors, file names): it must be
    /// printable as it is.
    fn name(&mut self, what: &'static str, name: &str) {
        if self.unprintable.is_none()
            && let std::borrow::Cow::Owned(escaped) = crate::connector_text::printable(name)
        {
            self.unprintable = Some((what, escaped));
        }
    }

    fn maybe(&mut self, what: &'static str, text: &Option<String>) {
        if let Some(text) = text {
            self.text(what, text);
        }
    }

    fn verdict(self) -> Result<(), String> {
        if let Some((what, escaped)) = self.unprintable {
            return Err(format!(
                "{what} `{}` has control or bidi characters",
                crate::connector_text::printable_excerpt(&escaped, 256)
            ));
        }
        if let Some((what, len)) = self.too_long {
            return Err(format!(
                "{what} is {len} bytes long; a description's texts are at most \
                 {MAX_DESCRIPTION_TEXT} bytes each"
            ));
        }
        if self.entries > MAX_DESCRIPTION_ENTRIES {
            return Err(format!(
                "it lists {} streams, params, hosts, settings and such; at most \
                 {MAX_DESCRIPTION_ENTRIES} in all",
                self.entries
            ));
        }
        if self.bytes > MAX_DESCRIPTION_BYTES {
            return Err(format!(
                "its description holds {} bytes of text; at most {} KiB",
                self.bytes,
                MAX_DESCRIPTION_BYTES >> 10
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::wit::{ParamInfo, StreamInfo};

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: "acme".into(),
            version: "1.0.0".into(),
            description: "Acme audit log".into(),
            streams: vec![StreamInfo {
                name: "audit".into(),
                description: "Audit events".into(),
                max_window: 0,
                default_lookback: 0,
                overlap: 0,
                lag: 0,
                columns: vec![],
                settings: vec![],
                time_field: None,
            }],
            params: vec![ParamInfo {
                name: "token".into(),
                help: "The API token".into(),
                kind: ParamKind::Text,
                required: true,
                default: None,
                env: Some("ACME_TOKEN".into()),
                secret: true,
                secret_hosts: vec![],
            }],
            hosts: vec!["https://api.acme.test".into()],
            settings: vec![],
            rate_limits: vec![],
        }
    }

    #[test]
    fn an_honest_description_passes() {
        assert_eq!(check_parts(&info()), Ok(()));
    }

    #[test]
    fn terminal_escapes_and_bidi_overrides_are_refused_wherever_they_are() {
        let escapes = [
            "\u{1b}[2J",
            "a\rb",
            "\u{9b}31m",
            "a\u{202e}b",
            "a\nb",
            "\u{7f}",
        ];
        type Edit = fn(&mut ConnectorInfo, String);
        let places: [(&str, Edit); 5] = [
            ("description", |info, text| info.description = text),
            ("version", |info, text| info.version = text),
            ("help", |info, text| info.params[0].help = text),
            ("host", |info, text| info.hosts.push(text)),
            ("stream description", |info, text| {
                info.streams[0].description = text
            }),
        ];
        for escape in escapes {
            for (place, edit) in places {
                let mut info = info();
                edit(&mut info, format!("x{escape}"));
                let error = check_parts(&info).expect_err(place);
                assert!(error.contains("control character"), "{place}: {error}");
            }
        }
    }

    #[test]
    fn a_declared_wildcard_over_a_public_suffix_is_refused() {
        for host in ["https://*.com", "https://*.co.uk", "https://*.github.io"] {
            let mut declared = info();
            declared.hosts.push(host.into());
            let error = check_parts(&declared).expect_err(host);
            assert!(
                error.contains("declares a host it may not"),
                "{host}: {error}"
            );
            let mut bound = info();
            bound.params[0].secret_hosts.push(host.into());
            assert!(check_parts(&bound).is_err(), "{host} as a secret's host");
        }
        let mut vendor = info();
        vendor.hosts.push("https://*.workvivo.com".into());
        assert_eq!(check_parts(&vendor), Ok(()));
    }

    #[test]
    fn names_lengths_and_variables_are_checked() {
        let mut long = info();
        long.description = "x".repeat(MAX_LINE + 1);
        assert!(
            check_parts(&long)
                .unwrap_err()
                .contains("more than the 512")
        );
        let mut many = info();
        many.hosts = vec!["https://a.test".into(); MAX_ITEMS + 1];
        assert!(check_parts(&many).unwrap_err().contains("257 hosts"));
        let mut variable = info();
        variable.params[0].env = Some("A=B".into());
        assert!(
            check_parts(&variable)
                .unwrap_err()
                .contains("not a variable name")
        );
        let mut param = info();
        param.params[0].name = "Token".into();
        assert!(check_parts(&param).unwrap_err().contains("param `Token`"));
        let mut stream = info();
        stream.streams[0].name = "../x".into();
        assert!(check_parts(&stream).unwrap_err().contains("stream"));
    }

    fn sized(streams: usize, description: String) -> ConnectorInfo {
        let stream = |index: usize| StreamInfo {
            name: format!("s{index}"),
            description: description.clone(),
            max_window: 0,
            default_lookback: 0,
            overlap: 0,
            lag: 0,
            columns: vec![],
            settings: vec![],
            time_field: None,
        };
        ConnectorInfo {
            name: "big".into(),
            version: "1".into(),
            description: "x".into(),
            streams: (0..streams).map(stream).collect(),
            params: vec![ParamInfo {
                name: "p".into(),
                help: "h".into(),
                kind: ParamKind::Choice(vec!["a".into(); 10]),
                required: false,
                default: None,
                env: None,
                secret: false,
                secret_hosts: vec![],
            }],
            hosts: vec![],
            settings: vec![],
            rate_limits: vec![],
        }
    }

    #[test]
    fn a_description_bigger_than_a_real_connectors_is_refused() {
        assert_eq!(check_size(&sized(10, "d".into())), Ok(()));
        let error = check_size(&sized(100_000, "d".into())).unwrap_err();
        assert_eq!(
            error,
            "it lists 100011 streams, params, hosts, settings and such; at most 4096 in all"
        );
        let error = check_size(&sized(1, "d".repeat(1 << 20))).unwrap_err();
        assert_eq!(
            error,
            "a stream's description is 1048576 bytes long; a description's texts are at most 4096 \
             bytes each"
        );
        let mut forged = sized(1, "d".into());
        forged.streams[0].name = "audit\nERROR forged".into();
        assert_eq!(
            check_size(&forged).unwrap_err(),
            "a stream's name `audit\\nERROR forged` has control or bidi characters"
        );
        let error = check_size(&sized(100, "d".repeat(4000))).unwrap_err();
        assert!(error.starts_with("its description holds 400"), "{error}");
    }
}
