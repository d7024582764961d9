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

/// Refuses a description the host could not work with or show safely, naming what is wrong.
pub(super) fn check(info: &ConnectorInfo) -> Result<(), String> {
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
        assert_eq!(check(&info()), Ok(()));
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
                let error = check(&info).expect_err(place);
                assert!(error.contains("control character"), "{place}: {error}");
            }
        }
    }

    #[test]
    fn a_declared_wildcard_over_a_public_suffix_is_refused() {
        for host in ["https://*.com", "https://*.co.uk", "https://*.github.io"] {
            let mut declared = info();
            declared.hosts.push(host.into());
            let error = check(&declared).expect_err(host);
            assert!(
                error.contains("declares a host it may not"),
                "{host}: {error}"
            );
            let mut bound = info();
            bound.params[0].secret_hosts.push(host.into());
            assert!(check(&bound).is_err(), "{host} as a secret's host");
        }
        let mut vendor = info();
        vendor.hosts.push("https://*.workvivo.com".into());
        assert_eq!(check(&vendor), Ok(()));
    }

    #[test]
    fn names_lengths_and_variables_are_checked() {
        let mut long = info();
        long.description = "x".repeat(MAX_LINE + 1);
        assert!(check(&long).unwrap_err().contains("more than the 512"));
        let mut many = info();
        many.hosts = vec!["https://a.test".into(); MAX_ITEMS + 1];
        assert!(check(&many).unwrap_err().contains("257 hosts"));
        let mut variable = info();
        variable.params[0].env = Some("A=B".into());
        assert!(
            check(&variable)
                .unwrap_err()
                .contains("not a variable name")
        );
        let mut param = info();
        param.params[0].name = "Token".into();
        assert!(check(&param).unwrap_err().contains("param `Token`"));
        let mut stream = info();
        stream.streams[0].name = "../x".into();
        assert!(check(&stream).unwrap_err().contains("stream"));
    }
}
