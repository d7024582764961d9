//! Turning flags, a RON config file and the environment (with `.env`) into a connector's params and
//! the host's settings.
//!
//! For every value, the first that has one wins: a command-line flag, the config file, the
//! environment variable the connector names (so users of the script it replaces keep their `.env`),
//! the connector's default, trawl's default.

mod env;
mod file;

pub use env::Environment;
pub use file::{Bounded, ConfigFile, ConfigValue, Limits, Minutes, Seconds};

use crate::capabilities::http::{RateLimit, Secrets};
use crate::runtime::wit::{ConnectorInfo, HostSetting, Param, ParamInfo, ParamKind, StreamInfo};
use crate::sinks::{CsvOptions, ExtraColumn, OutputSpec, StdoutFormat};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("connector `{connector}` has no param `{name}` ({origin}); its params are: {known}")]
    UnknownParam {
        connector: String,
        name: String,
        origin: ValueSource,
        known: String,
    },
    #[error("connector `{connector}` needs {}", .missing.join("\nand "))]
    MissingParams {
        connector: String,
        /// One line per param: its name, what it is, and the ways to give it.
        missing: Vec<String>,
    },
    #[error("`{name}` {shown}({origin}) is not valid: expected {expected}")]
    InvalidValue {
        name: String,
        /// The value in backticks and a space, or nothing for a secret.
        shown: String,
        origin: ValueSource,
        expected: String,
    },
    #[error("unknown setting `{key}` ({origin}); settings are: {}", SETTING_KEYS.join(", "))]
    UnknownSetting { key: String, origin: ValueSource },
}

/// Where a value came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    Flag(&'static str),
    File(PathBuf),
    Env { variable: String, dotenv: bool },
    SecretFile(PathBuf),
    ConnectorDefault,
    HostDefault,
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Flag(flag) => write!(f, "from {flag}"),
            ValueSource::File(path) => write!(f, "from {}", path.display()),
            ValueSource::Env {
                variable,
                dotenv: true,
            } => write!(f, "from {variable} in .env"),
            ValueSource::Env { variable, .. } => {
                write!(f, "from the environment variable {variable}")
            }
            ValueSource::SecretFile(path) => write!(f, "from the file {}", path.display()),
            ValueSource::ConnectorDefault => write!(f, "the connector's default"),
            ValueSource::HostDefault => write!(f, "trawl's default"),
        }
    }
}

/// The host settings a connector may give defaults for (see `host-setting` in the WIT contract).
pub const SETTING_KEYS: &[&str] = &[
    "timezone",
    "output.format",
    "output.path",
    "output.directory",
    "output.base-name",
    "output.extension",
    "output.extra-columns",
    "quota.cooldown",
    "quota.learn-from",
];

/// Settings that hold for every stream of a run, which a stream cannot give defaults for.
const RUN_WIDE_SETTINGS: &[&str] = &["quota.cooldown", "quota.learn-from"];

/// The longest cool-down a 429 may be given: a server's own pause is capped the same way.
const MOST_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(3600);

/// Values given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--param name=value`.
    pub params: Vec<(String, String)>,
    /// `--set key=value`, `--output`, `--format`, `--timezone`, each with the flag that set it.
    pub settings: Vec<(String, String, &'static str)>,
}

/// A connector's params, ready for `fetch-page`, and the secrets the host keeps back.
pub struct ResolvedParams {
    pub params: Vec<Param>,
    pub secrets: Secrets,
    /// Things worth telling the user that do not stop the run.
    pub warnings: Vec<String>,
}

/// Everything the sources say, consulted in order of precedence.
pub struct Sources<'a> {
    pub overrides: &'a Overrides,
    pub file: Option<(&'a Path, &'a ConfigFile)>,
    pub env: &'a Environment,
}

impl Sources<'_> {
    fn env_value(&self, variable: Option<&String>) -> Option<(String, ValueSource)> {
        let variable = variable?;
        let (value, dotenv) = self.env.get(variable)?;
        Some((
            value.to_string(),
            ValueSource::Env {
                variable: variable.clone(),
                dotenv,
            },
        ))
    }

    /// A value from the config file, following a `(file: ...)` or `(env: ...)` reference.
    fn file_value<'b>(
        &'b self,
        section: impl Fn(&'b ConfigFile) -> &'b std::collections::BTreeMap<String, ConfigValue>,
        name: &str,
    ) -> Result<Option<(String, ValueSource)>, ConfigError> {
        let Some((path, file)) = self.file else {
            return Ok(None);
        };
        let Some(value) = section(file).get(name) else {
            return Ok(None);
        };
        if let Some(plain) = value.plain() {
            return Ok(Some((plain, ValueSource::File(path.to_path_buf()))));
        }
        let ConfigValue::Reference(reference) = value else {
            return Ok(None);
        };
        match (&reference.file, &reference.env) {
            (Some(secret_file), None) => {
                let text =
                    std::fs::read_to_string(secret_file).map_err(|source| ConfigError::Read {
                        path: secret_file.clone(),
                        source,
                    })?;
                Ok(Some((
                    text.trim().to_string(),
                    ValueSource::SecretFile(secret_file.clone()),
                )))
            }
            (None, Some(variable)) => Ok(self.env_value(Some(variable))),
            _ => Err(ConfigError::InvalidValue {
                name: name.to_string(),
                shown: String::new(),
                origin: ValueSource::File(path.to_path_buf()),
                expected: "a value, `(file: \"PATH\")` or `(env: \"NAME\")`".into(),
            }),
        }
    }
}

/// Resolves and checks every param the connector declares.
pub fn resolve_params(
    info: &ConnectorInfo,
    sources: &Sources<'_>,
) -> Result<ResolvedParams, ConfigError> {
    let known = || {
        info.params
            .iter()
            .map(|param| param.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unknown = |name: &str, source: ValueSource| ConfigError::UnknownParam {
        connector: info.name.clone(),
        name: name.to_string(),
        origin: source,
        known: known(),
    };
    for (name, _) in &sources.overrides.params {
        if !info.params.iter().any(|param| &param.name == name) {
            return Err(unknown(name, ValueSource::Flag("--param")));
        }
    }
    if let Some((path, file)) = sources.file
        && let Some(name) = file
            .params
            .keys()
            .find(|name| !info.params.iter().any(|param| &param.name == *name))
    {
        return Err(unknown(name, ValueSource::File(path.to_path_buf())));
    }

    let mut resolved = ResolvedParams {
        params: Vec::new(),
        secrets: Secrets::default(),
        warnings: Vec::new(),
    };
    // Every missing value is reported at once, so that one edit of .env fixes them all.
    let mut missing = Vec::new();
    for param in &info.params {
        let flag = sources
            .overrides
            .params
            .iter()
            .rev()
            .find(|(name, _)| name == &param.name)
            .map(|(_, value)| (value.clone(), ValueSource::Flag("--param")));
        let from_file = sources.file_value(|file| &file.params, &param.name)?;
        let value = flag
            .or(from_file)
            .or_else(|| sources.env_value(param.env.as_ref()))
            .or_else(|| {
                param
                    .default
                    .clone()
                    .map(|value| (value, ValueSource::ConnectorDefault))
            });
        let Some((value, source)) = value.filter(|(value, _)| !value.is_empty()) else {
            if param.required {
                missing.push(missing_param(param));
            }
            continue;
        };
        check_param(param, &value, &source)?;
        if param.secret {
            if matches!(source, ValueSource::File(_) | ValueSource::Flag(_)) {
                resolved.warnings.push(format!(
                    "the secret `{}` is written in plain text {source}; keep it in the environment{} instead",
                    param.name,
                    param
                        .env
                        .as_ref()
                        .map(|variable| format!(" or .env as {variable}"))
                        .unwrap_or_default()
                ));
            }
            let hosts = param
                .secret_hosts
                .iter()
                .map(|pattern| pattern.parse())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| ConfigError::InvalidValue {
                    name: param.name.clone(),
                    shown: String::new(),
                    origin: ValueSource::ConnectorDefault,
                    expected: format!("hosts the connector can bind a secret to: {error}"),
                })?;
            resolved.secrets.insert_bound(&param.name, value, hosts);
            resolved.params.push(Param {
                name: param.name.clone(),
                value: Secrets::placeholder(&param.name),
            });
        } else {
            resolved.params.push(Param {
                name: param.name.clone(),
                value,
            });
        }
    }
    if !missing.is_empty() {
        return Err(ConfigError::MissingParams {
            connector: info.name.clone(),
            missing,
        });
    }
    Ok(resolved)
}

fn missing_param(param: &ParamInfo) -> String {
    let mut ways = Vec::new();
    if let Some(variable) = &param.env {
        ways.push(format!("set {variable} in the environment or .env"));
    }
    ways.push(format!("pass --param {}=VALUE", param.name));
    ways.push(format!(
        "add \"{}\" to `params` in the config file",
        param.name
    ));
    format!("`{}` ({}): {}", param.name, param.help, ways.join(", or "))
}

fn check_param(param: &ParamInfo, value: &str, source: &ValueSource) -> Result<(), ConfigError> {
    let expected = match &param.kind {
        ParamKind::Text => return Ok(()),
        ParamKind::Integer if value.trim().parse::<i64>().is_ok() => return Ok(()),
        ParamKind::Integer => "a whole number".to_string(),
        ParamKind::Boolean if value == "true" || value == "false" => return Ok(()),
        ParamKind::Boolean => "true or false".to_string(),
        ParamKind::Url
            if url::Url::parse(value)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host()) =>
        {
            return Ok(());
        }
        ParamKind::Url => "an absolute http:// or https:// URL".to_string(),
        ParamKind::Choice(choices) if choices.iter().any(|choice| choice == value) => {
            return Ok(());
        }
        ParamKind::Choice(choices) => format!("one of {}", choices.join(", ")),
    };
    Err(ConfigError::InvalidValue {
        name: param.name.clone(),
        shown: if param.secret {
            String::new()
        } else {
            format!("`{value}` ")
        },
        origin: source.clone(),
        expected,
    })
}

/// The host settings of one stream.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    pub timezone: jiff::tz::TimeZone,
    pub output: OutputSpec,
}

/// Resolves the host settings for `stream`: flags, config file, then the stream's and the
/// connector's declared environment variables and defaults, then trawl's defaults.
pub fn resolve_settings(
    info: &ConnectorInfo,
    stream: &StreamInfo,
    sources: &Sources<'_>,
) -> Result<StreamSettings, ConfigError> {
    for (key, _, flag) in &sources.overrides.settings {
        if !SETTING_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownSetting {
                key: key.clone(),
                origin: ValueSource::Flag(flag),
            });
        }
    }
    if let Some((path, file)) = sources.file
        && let Some(key) = file
            .settings
            .keys()
            .find(|key| !SETTING_KEYS.contains(&key.as_str()))
    {
        return Err(ConfigError::UnknownSetting {
            key: key.clone(),
            origin: ValueSource::File(path.to_path_buf()),
        });
    }
    // References are followed once, up front, so that an unreadable one is an error.
    let mut from_file = std::collections::HashMap::new();
    for key in SETTING_KEYS {
        if let Some(value) = sources.file_value(|file| &file.settings, key)? {
            from_file.insert(*key, value);
        }
    }
    let lookup = |key: &str| -> Option<(String, ValueSource)> {
        let declared = |settings: &[HostSetting]| {
            settings
                .iter()
                .find(|setting| setting.key == key)
                .and_then(|setting| {
                    sources.env_value(setting.env.as_ref()).or_else(|| {
                        setting
                            .default
                            .clone()
                            .map(|value| (value, ValueSource::ConnectorDefault))
                    })
                })
        };
        sources
            .overrides
            .settings
            .iter()
            .rev()
            .find(|(name, _, _)| name == key)
            .map(|(_, value, flag)| (value.clone(), ValueSource::Flag(flag)))
            .or_else(|| from_file.get(key).cloned())
            .or_else(|| declared(&stream.settings))
            .or_else(|| declared(&info.settings))
            .filter(|(value, _)| !value.is_empty())
    };
    let invalid =
        |key: &str, value: &str, source: ValueSource, expected: &str| ConfigError::InvalidValue {
            name: key.to_string(),
            shown: format!("`{value}` "),
            origin: source,
            expected: expected.to_string(),
        };

    let (zone_name, zone_source) =
        lookup("timezone").unwrap_or(("UTC".into(), ValueSource::HostDefault));
    // UTC, the default, needs no lookup: the first lookup lists the whole time zone database
    // (a thousand files), which is most of the time a run takes to resolve its settings.
    let timezone = if zone_name == "UTC" {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::get(&zone_name).map_err(|_| {
            invalid(
                "timezone",
                &zone_name,
                zone_source,
                "an IANA time zone name such as UTC or Asia/Tokyo",
            )
        })?
    };

    let (format, format_source) =
        lookup("output.format").unwrap_or(("csv".into(), ValueSource::HostDefault));
    // A connector's default `output.path` names a file of the connector's own format (a CSV file
    // for most): when the user picks another format, it does not apply, and trawl's default for
    // that format does.
    let declared_format = [&stream.settings, &info.settings]
        .into_iter()
        .flatten()
        .filter(|setting| setting.key == "output.format")
        .find_map(|setting| setting.default.clone())
        .unwrap_or_else(|| "csv".into());
    // A place the connector chose (its default, or trawl's default made of its names) is
    // written only where no symbolic link leads elsewhere: the connector cannot know where a
    // link goes, and must not be able to use one that does (a user's own path may).
    let not_through_a_link = |path: String, source: &ValueSource| {
        let chosen_by_connector = matches!(
            source,
            ValueSource::ConnectorDefault | ValueSource::HostDefault
        );
        match crate::files::symlink_in(Path::new(&path)) {
            Some(link) if chosen_by_connector => Err(ConfigError::InvalidValue {
                name: "output".into(),
                shown: format!("`{path}` "),
                origin: source.clone(),
                expected: format!(
                    "a place that is not reached through a symbolic link ({} is one); name the \
                     output yourself (--output, --set, or the config) to write there",
                    link.display()
                ),
            }),
            _ => Ok(path),
        }
    };
    let output_path = |default: String| {
        let (path, source) = lookup("output.path")
            .filter(|(_, source)| {
                *source != ValueSource::ConnectorDefault || format == declared_format
            })
            .unwrap_or((default, ValueSource::HostDefault));
        let path = not_through_a_link(path, &source)?;
        Ok::<_, ConfigError>((path, source))
    };
    let output = match format.as_str() {
        "csv" => {
            let (path, source) = output_path(format!("{}_{}.csv", info.name, stream.name))?;
            let mut extra_columns = Vec::new();
            if let Some((names, source)) = lookup("output.extra-columns") {
                for name in names
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                {
                    extra_columns.push(ExtraColumn::parse(name).ok_or_else(|| {
                        invalid(
                            "output.extra-columns",
                            name,
                            source.clone(),
                            "local_timestamp",
                        )
                    })?);
                }
            }
            OutputSpec::Csv {
                path: PathBuf::from(path),
                options: CsvOptions {
                    extra_columns,
                    leading_columns: stream.columns.clone(),
                    timezone: timezone.clone(),
                    // Only trawl's own default name (`<connector>_<stream>.csv`) was chosen by
                    // nobody: a connector's default was shown when the user approved it.
                    named_by_user: source != ValueSource::HostDefault,
                },
            }
        }
        "jsonl" => OutputSpec::Jsonl {
            path: PathBuf::from(output_path(format!("{}_{}.jsonl", info.name, stream.name))?.0),
        },
        "daily-jsonl" | "stdout"
            if matches!(
                lookup("output.path"),
                Some((_, ValueSource::Flag(_) | ValueSource::File(_)))
            ) =>
        {
            // A path given for a format that has none would be silently ignored.
            let (path, source) = lookup("output.path").expect("matched above");
            return Err(invalid(
                "output.path",
                &path,
                source,
                "no path: per-day files take output.directory, output.base-name and \
                 output.extension, and stdout takes none",
            ));
        }
        "daily-jsonl" => {
            let (directory, source) = lookup("output.directory")
                .map(|(directory, source)| {
                    (trim_trailing_separators(&directory).to_string(), source)
                })
                .unwrap_or_else(|| (".".into(), ValueSource::HostDefault));
            let directory = not_through_a_link(directory, &source)?;
            let base_name = lookup("output.base-name")
                .map(|(base_name, _)| base_name)
                .unwrap_or_else(|| format!("{}_{}", info.name, stream.name));
            let extension = lookup("output.extension")
                .map(|(extension, _)| {
                    extension
                        .strip_prefix('.')
                        .unwrap_or(&extension)
                        .to_string()
                })
                .unwrap_or_else(|| "jsonl".into());
            OutputSpec::DailyJsonl {
                directory: PathBuf::from(directory),
                base_name,
                extension,
            }
        }
        "stdout" => OutputSpec::Stdout {
            format: StdoutFormat::Jsonl,
        },
        other => {
            return Err(invalid(
                "output.format",
                other,
                format_source,
                "one of csv, jsonl, daily-jsonl, stdout",
            ));
        }
    };
    Ok(StreamSettings { timezone, output })
}

/// How a run spends a vendor's quota, beyond the quotas themselves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaSettings {
    /// The pause every request to a vendor takes after a 429 (`quota.cooldown`, e.g. `5s`);
    /// none by default.
    pub cooldown: std::time::Duration,
    /// The rate a quota nobody declared is first tried at (`quota.learn-from`, e.g. `60/min`);
    /// trawl's default when `None`.
    pub learn_from: Option<RateLimit>,
}

/// Resolves the `quota.*` settings, which hold for every stream of the run: a flag, the config,
/// the connector's environment variable or default.
pub fn resolve_quota_settings(
    info: &ConnectorInfo,
    sources: &Sources<'_>,
) -> Result<QuotaSettings, ConfigError> {
    let lookup = |key: &str| -> Result<Option<(String, ValueSource)>, ConfigError> {
        let flag = sources
            .overrides
            .settings
            .iter()
            .rev()
            .find(|(name, _, _)| name == key)
            .map(|(_, value, flag)| (value.clone(), ValueSource::Flag(flag)));
        let value = match flag {
            Some(value) => Some(value),
            None => sources.file_value(|file| &file.settings, key)?,
        }
        .or_else(|| {
            let declared = info.settings.iter().find(|setting| setting.key == key)?;
            sources.env_value(declared.env.as_ref()).or_else(|| {
                declared
                    .default
                    .clone()
                    .map(|value| (value, ValueSource::ConnectorDefault))
            })
        });
        Ok(value.filter(|(value, _)| !value.is_empty()))
    };
    let invalid = |key: &str, text: &str, source, expected: &str| ConfigError::InvalidValue {
        name: key.into(),
        shown: format!("`{text}` "),
        origin: source,
        expected: expected.into(),
    };
    let mut settings = QuotaSettings::default();
    if let Some((text, source)) = lookup("quota.cooldown")? {
        settings.cooldown = parse_cooldown(&text).ok_or_else(|| {
            invalid(
                "quota.cooldown",
                &text,
                source,
                "a duration from 0s to 1h, such as 5s or 500ms",
            )
        })?;
    }
    if let Some((text, source)) = lookup("quota.learn-from")? {
        settings.learn_from = Some(
            text.parse::<RateLimit>()
                .map_err(|error| invalid("quota.learn-from", &text, source, &error.to_string()))?,
        );
    }
    Ok(settings)
}

/// A cool-down: `5s`, `500ms`, `1m`, from nothing to [`MOST_COOLDOWN`].
fn parse_cooldown(text: &str) -> Option<std::time::Duration> {
    let parsed: jiff::SignedDuration = text.trim().parse().ok()?;
    let duration = std::time::Duration::try_from(parsed).ok()?;
    (duration <= MOST_COOLDOWN).then_some(duration)
}

/// Refuses defaults a connector declares for host settings that would let it choose where trawl
/// writes: an output file or folder outside the working folder (absolute, `..`, `~`), a hidden
/// file or folder (`.bashrc`, `.ssh/`), a file whose extension is not its format's (a CSV output
/// named `authorized_keys`), or a per-day file name with a folder in it. A user can still write
/// anywhere by naming the place (a flag, the config, or an environment variable they set).
pub fn check_connector_defaults(info: &ConnectorInfo) -> Result<(), String> {
    let scopes = std::iter::once((None, &info.settings)).chain(
        info.streams
            .iter()
            .map(|stream| (Some(stream), &stream.settings)),
    );
    for (stream, settings) in scopes {
        let scope = stream
            .map(|stream| format!(" of stream `{}`", stream.name))
            .unwrap_or_default();
        // The format this scope's `output.path` names a file of (see `resolve_settings`).
        let format = stream
            .into_iter()
            .flat_map(|stream| &stream.settings)
            .chain(&info.settings)
            .filter(|setting| setting.key == "output.format")
            .find_map(|setting| setting.default.as_deref())
            .unwrap_or("csv");
        for setting in settings {
            let key = setting.key.as_str();
            if key != "streams" && !SETTING_KEYS.contains(&key) {
                return Err(format!(
                    "it declares a default for the setting `{key}`{scope}, which trawl does not \
                     have; settings are: streams, {}",
                    SETTING_KEYS.join(", ")
                ));
            }
            if stream.is_some() && RUN_WIDE_SETTINGS.contains(&key) {
                return Err(format!(
                    "it declares the setting `{key}`{scope}, which holds for every stream of a \
                     run: declare it among the connector's own settings"
                ));
            }
            let Some(value) = setting.default.as_deref() else {
                continue;
            };
            let refused = |expected: &str| {
                Err(format!(
                    "its default `{key}`{scope} is `{value}`: {expected}; a connector's defaults \
                     stay inside the working folder (a user names any other place with a flag or \
                     the config)"
                ))
            };
            match key {
                "output.path" | "output.directory" => {
                    if let Some(problem) = outside_working_folder(value) {
                        return refused(problem);
                    }
                    let extensions: &[&str] = match format {
                        "csv" => &["csv"],
                        _ => &["jsonl", "json", "ndjson", "log", "txt"],
                    };
                    let extension = Path::new(value)
                        .extension()
                        .and_then(|extension| extension.to_str())
                        .unwrap_or_default();
                    if key == "output.path" && !extensions.contains(&extension) {
                        return refused(&format!(
                            "a {format} file must end in .{}",
                            extensions.join(", .")
                        ));
                    }
                }
                "output.base-name" | "output.extension" => {
                    let plain = !value.starts_with('.')
                        && value.bytes().all(|byte| {
                            byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
                        });
                    if !plain {
                        return refused(
                            "expected a plain file name part (letters, digits, `_`, `-`, `.`), \
                             not starting with `.`",
                        );
                    }
                }
                "output.format" if !matches!(value, "csv" | "jsonl" | "daily-jsonl" | "stdout") => {
                    return refused("expected csv, jsonl, daily-jsonl or stdout");
                }
                "quota.cooldown" if parse_cooldown(value).is_none() => {
                    return Err(format!(
                        "its default `{key}` is `{value}`: expected a duration from 0s to 1h, \
                         such as 5s"
                    ));
                }
                "quota.learn-from" => {
                    if let Err(error) = value.parse::<RateLimit>() {
                        return Err(format!("its default `{key}` is not valid: {error}"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Why `value` is not a path inside the working folder that shows itself for what it is: `None`
/// when it is one.
fn outside_working_folder(value: &str) -> Option<&'static str> {
    use std::path::Component;
    if value.is_empty() {
        return Some("it is empty");
    }
    if value.contains('\\') || value.starts_with('~') || value.contains(':') {
        return Some("it must be a relative path with `/` between its parts");
    }
    for component in Path::new(value).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) if !part.to_string_lossy().starts_with('.') => {}
            Component::Normal(_) => return Some("it names a hidden file or folder"),
            Component::ParentDir => return Some("it leads out of the working folder with `..`"),
            Component::RootDir | Component::Prefix(_) => return Some("it is an absolute path"),
        }
    }
    None
}

/// A folder setting without its trailing `/` or `\` (the seed scripts strip them); a root keeps
/// its own.
fn trim_trailing_separators(directory: &str) -> &str {
    let trimmed = directory.trim_end_matches(['/', '\\']);
    if trimmed.is_empty() || trimmed.ends_with(':') {
        // `/`, or a Windows drive's root such as `C:\`.
        &directory[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests;
