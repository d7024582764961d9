//! What a user reviews before approving a connector: everything it declares that decides what it
//! can reach, read or write, and what changed since the file approved before.

use crate::runtime::wit::{ConnectorInfo, HostSetting, ParamKind};
use crate::state::approvals::{Approval, Declarations, DeclaredParam, DeclaredSetting};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// What `info` declares, in the form an approval records it.
pub(super) fn declarations_of(info: &ConnectorInfo) -> Declarations {
    let hosts: BTreeSet<String> = info.hosts.iter().cloned().collect();
    let params = info
        .params
        .iter()
        .map(|param| {
            let secret_hosts = match (param.secret, param.secret_hosts.is_empty()) {
                (false, _) => BTreeSet::new(),
                (true, true) => hosts.clone(),
                (true, false) => param.secret_hosts.iter().cloned().collect(),
            };
            let declared = DeclaredParam {
                secret: param.secret,
                env: param.env.clone(),
                secret_hosts,
                kind: kind_name(&param.kind),
                default: param.default.clone(),
            };
            (param.name.clone(), declared)
        })
        .collect();
    Declarations {
        name: info.name.clone(),
        version: info.version.clone(),
        description: info.description.clone(),
        params,
        streams: info
            .streams
            .iter()
            .map(|stream| (stream.name.clone(), settings(&stream.settings)))
            .collect(),
        settings: settings(&info.settings),
        rate_limits: info
            .rate_limits
            .iter()
            .map(|limit| (limit.requests, limit.per))
            .collect(),
        hosts,
    }
}

fn settings(settings: &[HostSetting]) -> Vec<DeclaredSetting> {
    let mut declared: Vec<DeclaredSetting> = settings
        .iter()
        .map(|setting| DeclaredSetting {
            key: setting.key.clone(),
            default: setting.default.clone(),
            env: setting.env.clone(),
        })
        .collect();
    declared.sort();
    declared
}

fn kind_name(kind: &ParamKind) -> String {
    match kind {
        ParamKind::Text => "text".into(),
        ParamKind::Integer => "integer".into(),
        ParamKind::Boolean => "true|false".into(),
        ParamKind::Url => "url".into(),
        ParamKind::Choice(choices) => choices.join("|"),
    }
}

/// Whether an environment variable's name says it holds a credential: a plain param read from
/// one hands the connector that credential in clear, which the review says loudly.
fn looks_like_a_credential(variable: &str) -> bool {
    const WORDS: &[&str] = &[
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "COOKIE",
        "SESSION",
        "PRIVATE",
        "SIGNATURE",
    ];
    variable
        .to_ascii_uppercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| WORDS.iter().any(|credential| word.contains(credential)))
}

/// The first 12 hex digits of a digest, enough to tell two files apart in a message.
pub(super) fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

pub(super) fn when(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .map(|time| time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| format!("{millis} ms"))
}

fn per(millis: u64) -> String {
    match millis {
        1_000 => "second".into(),
        60_000 => "minute".into(),
        3_600_000 => "hour".into(),
        86_400_000 => "day".into(),
        _ if millis.is_multiple_of(1_000) => format!("{} s", millis / 1_000),
        _ => format!("{millis} ms"),
    }
}

fn list(items: &BTreeSet<String>) -> String {
    if items.is_empty() {
        "no host".to_string()
    } else {
        items.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn or_none(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("none")
}

/// `setting output.path` or `setting output.path of stream mail`.
fn setting_name(stream: Option<&str>, key: &str) -> String {
    match stream {
        Some(stream) => format!("setting {key} of stream {stream}"),
        None => format!("setting {key}"),
    }
}

fn describe_setting(setting: &DeclaredSetting) -> String {
    let mut text = format!("{} = {}", setting.key, or_none(&setting.default));
    if let Some(variable) = &setting.env {
        let _ = write!(text, " (or env {variable})");
    }
    text
}

fn describe_param(name: &str, param: &DeclaredParam) -> String {
    let mut text = format!("{name} ({}", param.kind);
    if let Some(variable) = &param.env {
        let _ = write!(text, ", env {variable}");
    }
    if let Some(default) = &param.default {
        let _ = write!(text, ", default {default}");
    }
    text.push(')');
    text
}

/// What changed between an approval and what a connector declares now, one line each. Empty
/// when nothing it declares changed (the file may still differ).
pub(super) fn changes(previous: &Declarations, next: &Declarations) -> Vec<String> {
    let mut lines = Vec::new();
    if previous.name != next.name {
        lines.push(format!("name {} -> {}", previous.name, next.name));
    }
    if previous.version != next.version {
        lines.push(format!("version {} -> {}", previous.version, next.version));
    }
    if previous.description != next.description {
        lines.push(format!("~ description: {}", next.description));
    }
    for host in next.hosts.difference(&previous.hosts) {
        lines.push(format!("+ host {host}"));
    }
    for host in previous.hosts.difference(&next.hosts) {
        lines.push(format!("- host {host}"));
    }
    for (name, param) in &next.params {
        let Some(old) = previous.params.get(name) else {
            lines.push(match param.secret {
                true => format!(
                    "+ secret {name}{}, may be sent to {}",
                    param
                        .env
                        .as_ref()
                        .map(|variable| format!(" (env {variable})"))
                        .unwrap_or_default(),
                    list(&param.secret_hosts)
                ),
                false => format!("+ param {}", describe_param(name, param)),
            });
            continue;
        };
        match (old.secret, param.secret) {
            (true, false) => lines.push(format!(
                "~ param {name} is no longer a secret: the connector would see its value"
            )),
            (false, true) => lines.push(format!("~ param {name} is now a secret")),
            _ => {}
        }
        if param.secret && old.secret && old.secret_hosts != param.secret_hosts {
            lines.push(format!(
                "~ secret {name} may now be sent to {} (was {})",
                list(&param.secret_hosts),
                list(&old.secret_hosts)
            ));
        }
        if old.env != param.env {
            lines.push(format!(
                "~ {} {name} is now read from env {} (was {})",
                if param.secret { "secret" } else { "param" },
                or_none(&param.env),
                or_none(&old.env)
            ));
        }
        if old.kind != param.kind || old.default != param.default {
            lines.push(format!(
                "~ param {} (was {})",
                describe_param(name, param),
                describe_param(name, old)
            ));
        }
    }
    for (name, param) in &previous.params {
        if !next.params.contains_key(name) {
            let what = if param.secret { "secret" } else { "param" };
            lines.push(format!("- {what} {name}"));
        }
    }
    let streams: BTreeSet<&String> = previous.streams.keys().chain(next.streams.keys()).collect();
    let no_settings = Vec::new();
    let setting_lists = std::iter::once((None, &previous.settings, &next.settings)).chain(
        streams.into_iter().map(|stream| {
            (
                Some(stream.as_str()),
                previous.streams.get(stream).unwrap_or(&no_settings),
                next.streams.get(stream).unwrap_or(&no_settings),
            )
        }),
    );
    for (stream, old, new) in setting_lists {
        if stream.is_some_and(|stream| !previous.streams.contains_key(stream)) {
            lines.push(format!("+ stream {}", stream.unwrap_or_default()));
        }
        if stream.is_some_and(|stream| !next.streams.contains_key(stream)) {
            lines.push(format!("- stream {}", stream.unwrap_or_default()));
        }
        let by_key = |settings: &[DeclaredSetting]| -> BTreeMap<String, DeclaredSetting> {
            settings
                .iter()
                .map(|setting| (setting.key.clone(), setting.clone()))
                .collect()
        };
        let (old, new) = (by_key(old), by_key(new));
        for (key, setting) in &new {
            match old.get(key) {
                None => lines.push(format!(
                    "+ {}: {}",
                    setting_name(stream, key),
                    describe_setting(setting)
                )),
                Some(was) if was != setting => lines.push(format!(
                    "~ {}: {} (was {})",
                    setting_name(stream, key),
                    describe_setting(setting),
                    describe_setting(was)
                )),
                Some(_) => {}
            }
        }
        for key in old.keys().filter(|key| !new.contains_key(*key)) {
            lines.push(format!("- {}", setting_name(stream, key)));
        }
    }
    for (requests, per_ms) in next.rate_limits.difference(&previous.rate_limits) {
        lines.push(format!(
            "+ rate limit {requests} requests per {}",
            per(*per_ms)
        ));
    }
    for (requests, per_ms) in previous.rate_limits.difference(&next.rate_limits) {
        lines.push(format!(
            "- rate limit {requests} requests per {}",
            per(*per_ms)
        ));
    }
    lines
}

/// What a connector is and asks for, as shown before it is installed or approved. Every string
/// in it comes from a description the runtime checked to be printable.
pub(super) fn overview(declared: &Declarations, source: &Path, sha256: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} - {}",
        declared.name, declared.version, declared.description
    );
    let _ = writeln!(out, "  file    {}", source.display());
    let _ = writeln!(out, "  sha256  {sha256}");
    let _ = writeln!(out, "\nHosts it will send requests to:");
    if declared.hosts.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for host in &declared.hosts {
        let _ = writeln!(out, "  {host}");
    }
    let _ = writeln!(
        out,
        "Secrets it asks for (it sees only placeholders; trawl adds the values on the way out):"
    );
    let secrets: Vec<_> = declared
        .params
        .iter()
        .filter(|(_, param)| param.secret)
        .collect();
    if secrets.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (name, secret) in secrets {
        let env = secret
            .env
            .as_ref()
            .map(|variable| format!(" (env {variable})"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {name}{env}, sent only to:");
        if secret.secret_hosts.is_empty() {
            let _ = writeln!(out, "    no host");
        }
        for host in &secret.secret_hosts {
            let _ = writeln!(out, "    {host}");
        }
    }
    let plain: Vec<_> = declared
        .params
        .iter()
        .filter(|(_, param)| !param.secret)
        .collect();
    if !plain.is_empty() {
        let _ = writeln!(out, "Other params (the connector sees their values):");
        for (name, param) in plain {
            let _ = writeln!(out, "  {}", describe_param(name, param));
        }
    }
    let environment = declared.environment();
    let _ = writeln!(
        out,
        "Environment variables it reads (from the environment or .env; no other is read):"
    );
    if environment.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (variable, uses) in &environment {
        let _ = writeln!(out, "  {variable:<24} {}", uses.join("; "));
        let plain_use = declared
            .params
            .values()
            .any(|param| !param.secret && param.env.as_deref() == Some(variable));
        if plain_use && looks_like_a_credential(variable) {
            let _ = writeln!(
                out,
                "  {:<24} WARNING: its name says it holds a credential, and the connector would \
                 see its value in clear",
                ""
            );
        }
    }
    let _ = writeln!(
        out,
        "Output it writes unless you say otherwise (paths relative to the working folder):"
    );
    let outputs: Vec<String> = std::iter::once((None, &declared.settings))
        .chain(
            declared
                .streams
                .iter()
                .map(|(stream, settings)| (Some(stream.as_str()), settings)),
        )
        .flat_map(|(stream, settings)| {
            settings
                .iter()
                .filter(|setting| setting.key.starts_with("output."))
                .map(move |setting| {
                    let scope = stream
                        .map(|stream| format!("stream {stream}: "))
                        .unwrap_or_default();
                    format!("{scope}{}", describe_setting(setting))
                })
        })
        .collect();
    if outputs.is_empty() {
        let _ = writeln!(out, "  trawl's defaults (<connector>_<stream>.csv)");
    }
    for line in outputs {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "Rate limits it declares:");
    if declared.rate_limits.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (requests, per_ms) in &declared.rate_limits {
        let _ = writeln!(out, "  {requests} requests per {}", per(*per_ms));
    }
    out
}

/// The "what changed" part of the review, against the approval recorded before.
pub(super) fn review_changes(previous: &Approval, next: &Declarations, sha256: &str) -> String {
    let mut out = String::new();
    let lines = changes(&previous.declared, next);
    if previous.sha256 == sha256 {
        let _ = writeln!(
            out,
            "\nThis is the file approved on {} (version {}).",
            when(previous.approved_at_ms),
            previous.declared.version
        );
        if !lines.is_empty() {
            let _ = writeln!(out, "But it now describes itself differently:");
        }
    } else {
        let _ = writeln!(
            out,
            "\nChanges since version {}, approved {} (sha256 {}):",
            previous.declared.version,
            when(previous.approved_at_ms),
            short(&previous.sha256)
        );
        if lines.is_empty() {
            let _ = writeln!(
                out,
                "  none in what it declares: the file is different, but everything it asks for \
                 is the same"
            );
        }
    }
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "https://api.acme.test";
    const AUTH: &str = "https://auth.acme.test";

    fn hosts(hosts: &[&str]) -> BTreeSet<String> {
        hosts.iter().map(|host| host.to_string()).collect()
    }

    fn secret(env: Option<&str>, to: &[&str]) -> DeclaredParam {
        DeclaredParam {
            secret: true,
            env: env.map(String::from),
            secret_hosts: hosts(to),
            kind: "text".into(),
            default: None,
        }
    }

    fn plain(env: Option<&str>) -> DeclaredParam {
        DeclaredParam {
            secret: false,
            env: env.map(String::from),
            secret_hosts: BTreeSet::new(),
            kind: "text".into(),
            default: None,
        }
    }

    fn declared(version: &str, on: &[&str], params: Vec<(&str, DeclaredParam)>) -> Declarations {
        Declarations {
            name: "acme".into(),
            version: version.into(),
            description: "Acme audit log".into(),
            hosts: hosts(on),
            params: params
                .into_iter()
                .map(|(name, param)| (name.to_string(), param))
                .collect(),
            streams: [("audit".to_string(), Vec::new())].into(),
            settings: Vec::new(),
            rate_limits: BTreeSet::new(),
        }
    }

    #[test]
    fn review_shows_nothing_when_nothing_declared_changed() {
        let old = declared("1.0.0", &[API], vec![("token", secret(Some("T"), &[API]))]);
        assert!(changes(&old, &old.clone()).is_empty());
    }

    #[test]
    fn review_shows_version_hosts_secrets_and_params_that_changed() {
        let old = declared(
            "1.0.0",
            &[API],
            vec![
                ("token", secret(Some("ACME_TOKEN"), &[API])),
                ("password", secret(None, &[API])),
                ("region", plain(None)),
            ],
        );
        let new = declared(
            "1.1.0",
            &[API, AUTH],
            vec![
                ("client_secret", secret(Some("ACME_SECRET"), &[AUTH])),
                ("token", secret(Some("ACME_TOKEN"), &[API, AUTH])),
                ("page_size", plain(None)),
            ],
        );
        assert_eq!(
            changes(&old, &new),
            vec![
                "version 1.0.0 -> 1.1.0".to_string(),
                format!("+ host {AUTH}"),
                format!("+ secret client_secret (env ACME_SECRET), may be sent to {AUTH}"),
                "+ param page_size (text)".to_string(),
                format!("~ secret token may now be sent to {API}, {AUTH} (was {API})"),
                "- secret password".to_string(),
                "- param region".to_string(),
            ]
        );
    }

    #[test]
    fn review_says_loudly_when_a_secret_becomes_plain_or_a_param_reads_another_variable() {
        let old = declared(
            "1.0.0",
            &[API],
            vec![
                ("token", secret(Some("ACME_TOKEN"), &[API])),
                ("region", plain(Some("ACME_REGION"))),
            ],
        );
        let mut new = old.clone();
        new.params.insert("token".into(), plain(Some("ACME_TOKEN")));
        new.params
            .insert("region".into(), plain(Some("AWS_SECRET_ACCESS_KEY")));
        assert_eq!(
            changes(&old, &new),
            vec![
                "~ param region is now read from env AWS_SECRET_ACCESS_KEY (was ACME_REGION)"
                    .to_string(),
                "~ param token is no longer a secret: the connector would see its value"
                    .to_string(),
            ]
        );
        let review = overview(&new, Path::new("acme.wasm"), "00");
        assert!(
            review.contains("AWS_SECRET_ACCESS_KEY    param region (the connector sees its value)"),
            "{review}"
        );
        assert!(review.contains("WARNING: its name says it holds a credential"));
    }

    #[test]
    fn review_shows_output_defaults_and_their_changes() {
        let mut old = declared("1.0.0", &[API], vec![]);
        old.streams.insert(
            "audit".into(),
            vec![DeclaredSetting {
                key: "output.path".into(),
                default: Some("acme.csv".into()),
                env: None,
            }],
        );
        let mut new = old.clone();
        new.streams.insert(
            "audit".into(),
            vec![DeclaredSetting {
                key: "output.path".into(),
                default: Some("keys.csv".into()),
                env: Some("ACME_OUT".into()),
            }],
        );
        assert_eq!(
            changes(&old, &new),
            vec![
                "~ setting output.path of stream audit: output.path = keys.csv (or env \
                 ACME_OUT) (was output.path = acme.csv)"
                    .to_string()
            ]
        );
        let review = overview(&new, Path::new("acme.wasm"), "00");
        assert!(
            review.contains("stream audit: output.path = keys.csv (or env ACME_OUT)"),
            "{review}"
        );
        assert!(review.contains("ACME_OUT"), "{review}");
    }

    #[test]
    fn credential_names_are_recognised() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "VERKADA_API_KEY",
        ] {
            assert!(looks_like_a_credential(name), "{name}");
        }
        for name in ["TIMEZONE", "VERKADA_REGION", "LOG_FILE_EXTENSION", "HOME"] {
            assert!(!looks_like_a_credential(name), "{name}");
        }
    }

    #[test]
    fn digests_are_shortened_for_messages() {
        assert_eq!(short(&"e3b0c44298fc".repeat(5)), "e3b0c44298fc");
        assert_eq!(per(60_000), "minute");
        assert_eq!(per(5_000), "5 s");
    }
}
