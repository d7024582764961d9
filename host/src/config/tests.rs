use super::*;
use crate::runtime::wit::ParamKind;

fn info() -> ConnectorInfo {
    ConnectorInfo {
        name: "acme".into(),
        version: "1.0.0".into(),
        description: String::new(),
        streams: vec![stream()],
        params: vec![
            ParamInfo {
                name: "base_url".into(),
                help: "API URL".into(),
                kind: ParamKind::Url,
                required: false,
                default: Some("https://api.acme.test".into()),
                env: None,
                secret: false,
                secret_hosts: vec![],
            },
            ParamInfo {
                name: "token".into(),
                help: "API token".into(),
                kind: ParamKind::Text,
                required: true,
                default: None,
                env: Some("ACME_TOKEN".into()),
                secret: true,
                secret_hosts: vec![],
            },
            ParamInfo {
                name: "page_size".into(),
                help: "rows per page".into(),
                kind: ParamKind::Integer,
                required: false,
                default: None,
                env: None,
                secret: false,
                secret_hosts: vec![],
            },
        ],
        hosts: vec![],
        rate_limits: vec![],
        settings: vec![
            HostSetting {
                key: "timezone".into(),
                default: Some("UTC".into()),
                env: Some("TIMEZONE".into()),
            },
            HostSetting {
                key: "output.path".into(),
                default: Some("log/acme.csv".into()),
                env: None,
            },
        ],
    }
}

fn stream() -> StreamInfo {
    StreamInfo {
        name: "events".into(),
        description: String::new(),
        max_window: 0,
        default_lookback: 0,
        overlap: 0,
        lag: 0,
        columns: vec![],
        settings: vec![],
        time_field: None,
    }
}

fn env(pairs: &[(&str, &str)]) -> Environment {
    Environment::from_pairs(
        [],
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    )
}

#[test]
fn secrets_become_placeholders() {
    let overrides = Overrides::default();
    let env = env(&[("ACME_TOKEN", "s3cr3t")]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let resolved = resolve_params(&info(), &sources).unwrap();
    let token = resolved
        .params
        .iter()
        .find(|param| param.name == "token")
        .unwrap();
    assert_eq!(token.value, "{{secret:token}}");
    assert!(!format!("{:?}", resolved.params).contains("s3cr3t"));
    assert!(resolved.warnings.is_empty());
}

#[test]
fn precedence_is_flag_file_env_default() {
    let overrides = Overrides {
        params: vec![("page_size".into(), "10".into())],
        settings: vec![],
    };
    let file = ConfigFile::parse(
        Path::new("acme.ron"),
        r#"(params: {"page_size": 20, "base_url": "http://127.0.0.1:9"}, settings: {"timezone": "Asia/Tokyo"})"#,
    )
    .unwrap();
    let env = env(&[("ACME_TOKEN", "t"), ("TIMEZONE", "Europe/London")]);
    let sources = Sources {
        overrides: &overrides,
        file: Some((Path::new("acme.ron"), &file)),
        env: &env,
    };
    let resolved = resolve_params(&info(), &sources).unwrap();
    let value = |name: &str| {
        resolved
            .params
            .iter()
            .find(|param| param.name == name)
            .map(|param| param.value.clone())
    };
    assert_eq!(value("page_size").as_deref(), Some("10"));
    assert_eq!(value("base_url").as_deref(), Some("http://127.0.0.1:9"));
    let settings = resolve_settings(&info(), &stream(), &sources).unwrap();
    assert_eq!(settings.timezone.iana_name(), Some("Asia/Tokyo"));
    assert_eq!(settings.output.location(), "log/acme.csv");
}

#[test]
fn utc_and_other_spellings_of_it_are_the_same_zone() {
    let empty = env(&[]);
    for zone in ["UTC", "utc", "Etc/UTC"] {
        let overrides = Overrides {
            params: vec![],
            settings: vec![("timezone".into(), zone.into(), "--timezone")],
        };
        let sources = Sources {
            overrides: &overrides,
            file: None,
            env: &empty,
        };
        let settings = resolve_settings(&info(), &stream(), &sources).unwrap();
        let noon = jiff::Timestamp::from_second(1_718_452_800).unwrap();
        assert_eq!(
            noon.to_zoned(settings.timezone)
                .strftime("%H:%M %Z")
                .to_string(),
            "12:00 UTC",
            "{zone}"
        );
    }
}

#[test]
fn missing_and_invalid_values_say_how_to_fix_them() {
    let overrides = Overrides::default();
    let empty = env(&[]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &empty,
    };
    let error = resolve_params(&info(), &sources).err().unwrap().to_string();
    assert!(error.contains("needs `token`"), "{error}");
    assert!(error.contains("ACME_TOKEN"), "{error}");

    let overrides = Overrides {
        params: vec![("page_size".into(), "ten".into())],
        settings: vec![],
    };
    let with_token = env(&[("ACME_TOKEN", "t")]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &with_token,
    };
    let error = resolve_params(&info(), &sources).err().unwrap().to_string();
    assert_eq!(
        error,
        "`page_size` `ten` (from --param) is not valid: expected a whole number"
    );

    let overrides = Overrides {
        params: vec![("colour".into(), "red".into())],
        settings: vec![],
    };
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &with_token,
    };
    let error = resolve_params(&info(), &sources).err().unwrap().to_string();
    assert!(error.contains("has no param `colour`"), "{error}");
    assert!(error.contains("base_url, token, page_size"), "{error}");
}

#[test]
fn bad_time_zone_names_its_source() {
    let overrides = Overrides::default();
    let env = env(&[("ACME_TOKEN", "t"), ("TIMEZONE", "Mars/Olympus")]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let error = resolve_settings(&info(), &stream(), &sources)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("`Mars/Olympus`"), "{error}");
    assert!(error.contains("from TIMEZONE in .env"), "{error}");
}

#[test]
fn plain_text_secret_in_config_is_warned_about() {
    let overrides = Overrides::default();
    let file = ConfigFile::parse(Path::new("acme.ron"), r#"(params: {"token": "abc"})"#).unwrap();
    let empty = env(&[]);
    let sources = Sources {
        overrides: &overrides,
        file: Some((Path::new("acme.ron"), &file)),
        env: &empty,
    };
    let resolved = resolve_params(&info(), &sources).unwrap();
    assert_eq!(resolved.warnings.len(), 1);
    assert!(resolved.warnings[0].contains("ACME_TOKEN"));
    assert!(!resolved.warnings[0].contains("abc"));
}

#[test]
fn ron_errors_name_line_and_column() {
    let error = ConfigFile::parse(
        Path::new("bad.ron"),
        "(\n  params: {\"a\": 1},\n  bogus: 2,\n)",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.starts_with("bad.ron:3:"), "{error}");
    assert!(error.contains("bogus"), "{error}");
}

#[test]
fn limits_out_of_range_are_refused_at_their_line() {
    let parse = |limits: &str| {
        ConfigFile::parse(
            Path::new("trawl.ron"),
            &format!("(\n  limits: (\n{limits}\n  ),\n)"),
        )
        .map(|file| file.limits)
    };
    for (limit, expected) in [
        ("cpu_seconds: -1.0", "expected a number of seconds above 0"),
        (
            "call_timeout_seconds: 0",
            "expected a number of seconds above 0",
        ),
        ("http_timeout_seconds: 1e300", "at most a year"),
        (
            "memory_mib: 2",
            "expected a whole number from 8 to 4096, found 2",
        ),
        ("max_body_mib: 0", "from 1 to 4096, found 0"),
        ("storage_kib: -5", "from 0 to 1048576, found -5"),
        ("max_page_mib: 99999999999", "from 1 to 4096"),
        ("retry_attempts: 0", "from 1 to 1000, found 0"),
    ] {
        let error = parse(&format!("    {limit},")).unwrap_err().to_string();
        assert!(error.starts_with("trawl.ron:3:"), "{limit}: {error}");
        assert!(error.contains(expected), "{limit}: {error}");
    }
    let limits =
        parse("    memory_mib: 8, cpu_seconds: 0.5, storage_kib: 0, retry_attempts: 1,").unwrap();
    assert_eq!(limits.memory_mib.map(|mib| mib.get()), Some(8));
    assert_eq!(
        limits.cpu_seconds.map(|seconds| seconds.duration()),
        Some(std::time::Duration::from_millis(500))
    );
    assert_eq!(limits.storage_kib.map(|kib| kib.get()), Some(0));
}

/// The settings `info()`'s `events` stream resolves to with these flags, config file and
/// environment.
fn settings_with(
    flags: &[(&str, &str)],
    file: Option<&str>,
    pairs: &[(&str, &str)],
) -> Result<StreamSettings, ConfigError> {
    let overrides = Overrides {
        params: vec![],
        settings: flags
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string(), "--set"))
            .collect(),
    };
    let file = file.map(|text| ConfigFile::parse(Path::new("acme.ron"), text).unwrap());
    let env = env(pairs);
    let sources = Sources {
        overrides: &overrides,
        file: file.as_ref().map(|file| (Path::new("acme.ron"), file)),
        env: &env,
    };
    resolve_settings(&info(), &stream(), &sources)
}

#[test]
fn csv_is_the_default_format() {
    let settings = settings_with(&[], None, &[]).unwrap();
    match settings.output {
        OutputSpec::Csv { path, options } => {
            assert_eq!(path, Path::new("log/acme.csv"));
            assert!(options.extra_columns.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let settings = settings_with(
        &[
            ("output.format", "csv"),
            ("output.path", "x.csv"),
            ("output.extra-columns", "local_timestamp"),
        ],
        None,
        &[],
    )
    .unwrap();
    match settings.output {
        OutputSpec::Csv { path, options } => {
            assert_eq!(path, Path::new("x.csv"));
            assert_eq!(options.extra_columns, [ExtraColumn::LocalTimestamp]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn jsonl_defaults_and_overrides() {
    // The connector's default output.path is its CSV file: a JSON Lines output does not use it.
    let settings = settings_with(&[("output.format", "jsonl")], None, &[]).unwrap();
    match &settings.output {
        OutputSpec::Jsonl { path } => assert_eq!(path, Path::new("acme_events.jsonl")),
        other => panic!("{other:?}"),
    }
    assert_eq!(settings.output.location(), "acme_events.jsonl");

    // extra-columns is for CSV only and is ignored here.
    let settings = settings_with(
        &[("output.path", "out/a.jsonl")],
        Some(
            r#"(settings: {"output.format": "jsonl", "output.extra-columns": "local_timestamp"})"#,
        ),
        &[],
    )
    .unwrap();
    match &settings.output {
        OutputSpec::Jsonl { path } => assert_eq!(path, Path::new("out/a.jsonl")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_connector_default_path_applies_to_its_own_format() {
    let mut info = info();
    info.settings.push(HostSetting {
        key: "output.format".into(),
        default: Some("jsonl".into()),
        env: None,
    });
    info.settings[1].default = Some("log/acme.jsonl".into());
    let overrides = Overrides::default();
    let env = env(&[]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let settings = resolve_settings(&info, &stream(), &sources).unwrap();
    assert_eq!(settings.output.location(), "log/acme.jsonl");
    assert!(matches!(settings.output, OutputSpec::Jsonl { .. }));

    let overrides = Overrides {
        params: vec![],
        settings: vec![("output.format".into(), "csv".into(), "--set")],
    };
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let settings = resolve_settings(&info, &stream(), &sources).unwrap();
    assert_eq!(settings.output.location(), "acme_events.csv");
}

#[test]
fn daily_jsonl_defaults() {
    let settings = settings_with(&[("output.format", "daily-jsonl")], None, &[]).unwrap();
    match &settings.output {
        OutputSpec::DailyJsonl {
            directory,
            base_name,
            extension,
        } => {
            assert_eq!(directory, Path::new("."));
            assert_eq!(base_name, "acme_events");
            assert_eq!(extension, "jsonl");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(settings.output.location(), "acme_events_YYYY-MM-DD.jsonl");
}

#[test]
fn daily_jsonl_overrides_like_the_seed() {
    // The seed's variables, declared by the stream as its connector would.
    let mut stream = stream();
    for (key, variable) in [
        ("output.directory", "MAIL_LOG_CATALOG_LOCATION"),
        ("output.base-name", "MAIL_LOG_FILE_BASE_NAME"),
        ("output.extension", "LOG_FILE_EXTENSION"),
    ] {
        stream.settings.push(HostSetting {
            key: key.into(),
            default: None,
            env: Some(variable.into()),
        });
    }
    stream.settings.push(HostSetting {
        key: "output.format".into(),
        default: Some("daily-jsonl".into()),
        env: None,
    });
    let overrides = Overrides::default();
    let env = env(&[
        ("MAIL_LOG_CATALOG_LOCATION", "/var/log/mail//"),
        ("MAIL_LOG_FILE_BASE_NAME", "mail_audit"),
        ("LOG_FILE_EXTENSION", "log"),
    ]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let settings = resolve_settings(&info(), &stream, &sources).unwrap();
    match &settings.output {
        OutputSpec::DailyJsonl {
            directory,
            base_name,
            extension,
        } => {
            assert_eq!(directory.to_str(), Some("/var/log/mail"));
            assert_eq!(base_name, "mail_audit");
            assert_eq!(extension, "log");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        settings.output.location(),
        "/var/log/mail/mail_audit_YYYY-MM-DD.log"
    );

    // Flags beat the config file, which beats the environment; a leading dot is dropped.
    let overrides = Overrides {
        params: vec![],
        settings: vec![
            ("output.extension".into(), ".json".into(), "--set"),
            ("output.directory".into(), "logs\\mail\\".into(), "--set"),
        ],
    };
    let file = ConfigFile::parse(
        Path::new("acme.ron"),
        r#"(settings: {"output.base-name": "m", "output.directory": "ignored"})"#,
    )
    .unwrap();
    let sources = Sources {
        overrides: &overrides,
        file: Some((Path::new("acme.ron"), &file)),
        env: &env,
    };
    match resolve_settings(&info(), &stream, &sources).unwrap().output {
        OutputSpec::DailyJsonl {
            directory,
            base_name,
            extension,
        } => {
            assert_eq!(directory.to_str(), Some("logs\\mail"));
            assert_eq!(base_name, "m");
            assert_eq!(extension, "json");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_root_directory_keeps_its_separator() {
    assert_eq!(trim_trailing_separators("/"), "/");
    assert_eq!(trim_trailing_separators("//"), "/");
    assert_eq!(trim_trailing_separators("C:\\"), "C:\\");
    assert_eq!(trim_trailing_separators("logs/"), "logs");
    assert_eq!(trim_trailing_separators("logs"), "logs");
}

#[test]
fn stdout_format() {
    let settings = settings_with(&[("output.format", "stdout")], None, &[]).unwrap();
    assert!(matches!(
        settings.output,
        OutputSpec::Stdout {
            format: StdoutFormat::Jsonl
        }
    ));
    assert_eq!(settings.output.key(), "-");
}

#[test]
fn an_unknown_format_lists_the_known_ones() {
    let error = settings_with(
        &[],
        Some(r#"(settings: {"output.format": "parquet"})"#),
        &[],
    )
    .err()
    .unwrap()
    .to_string();
    assert_eq!(
        error,
        "`output.format` `parquet` (from acme.ron) is not valid: expected one of csv, jsonl, daily-jsonl, stdout"
    );
}

#[test]
fn a_secret_can_live_in_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, "from-a-mounted-file\n").unwrap();
    let text = format!(
        r#"(params: {{"token": (file: "{}")}})"#,
        secret_file.display()
    );
    let file = ConfigFile::parse(Path::new("acme.ron"), &text).unwrap();
    let overrides = Overrides::default();
    let empty = env(&[]);
    let sources = Sources {
        overrides: &overrides,
        file: Some((Path::new("acme.ron"), &file)),
        env: &empty,
    };
    let resolved = resolve_params(&info(), &sources).unwrap();
    // Not a plain-text secret: no warning, and the connector still sees only the placeholder.
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    assert!(!format!("{:?}", resolved.params).contains("from-a-mounted-file"));

    let missing = ConfigFile::parse(
        Path::new("acme.ron"),
        r#"(params: {"token": (file: "/nonexistent/token")})"#,
    )
    .unwrap();
    let sources = Sources {
        overrides: &overrides,
        file: Some((Path::new("acme.ron"), &missing)),
        env: &empty,
    };
    let error = resolve_params(&info(), &sources).err().unwrap().to_string();
    assert!(error.contains("/nonexistent/token"), "{error}");
}

#[test]
fn a_path_for_a_format_without_one_is_refused() {
    let overrides = Overrides {
        params: vec![],
        settings: vec![
            ("output.format".into(), "daily-jsonl".into(), "--set"),
            ("output.path".into(), "out.jsonl".into(), "--output"),
        ],
    };
    let env = env(&[("ACME_TOKEN", "t")]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let error = resolve_settings(&info(), &stream(), &sources)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("`out.jsonl` (from --output)"), "{error}");
    assert!(error.contains("output.directory"), "{error}");
}

#[test]
fn connector_defaults_stay_inside_the_working_folder_and_show_their_format() {
    assert_eq!(check_connector_defaults(&info()), Ok(()));
    let with_default = |key: &str, value: &str| {
        let mut info = info();
        info.streams[0].settings.push(HostSetting {
            key: key.into(),
            default: Some(value.into()),
            env: None,
        });
        check_connector_defaults(&info)
    };
    for (key, value, expected) in [
        ("output.path", "/home/user/.bashrc", "absolute"),
        ("output.path", "../../etc/x.csv", "`..`"),
        ("output.path", "log/../../x.csv", "`..`"),
        ("output.path", ".ssh/authorized_keys.csv", "hidden"),
        ("output.path", "~/x.csv", "relative path"),
        ("output.path", "authorized_keys", "must end in .csv"),
        ("output.path", "notes.txt", "must end in .csv"),
        ("output.path", "C:\\x.csv", "relative path"),
        ("output.directory", "/var/log", "absolute"),
        ("output.directory", "..", "`..`"),
        ("output.directory", ".config", "hidden"),
        ("output.base-name", "../x", "plain file name part"),
        ("output.base-name", ".profile", "plain file name part"),
        ("output.extension", "log/x", "plain file name part"),
        ("output.format", "exec", "expected csv"),
        ("shell", "rm -rf", "does not have"),
    ] {
        let error = with_default(key, value).expect_err(value);
        assert!(error.contains(expected), "{key}={value}: {error}");
        assert!(error.contains("stream `events`"), "{error}");
    }
    for (key, value) in [
        ("output.path", "log/siem_data.csv"),
        ("output.path", "./x.csv"),
        ("output.directory", "."),
        ("output.directory", "audit/mail"),
        ("output.base-name", "mail_audit"),
        ("output.extension", "log"),
    ] {
        assert_eq!(with_default(key, value), Ok(()), "{key}={value}");
    }
    // A JSON Lines stream names a JSON Lines file.
    let mut jsonl = info();
    jsonl.settings.push(HostSetting {
        key: "output.format".into(),
        default: Some("jsonl".into()),
        env: None,
    });
    jsonl.settings[1].default = Some("acme.jsonl".into());
    assert_eq!(check_connector_defaults(&jsonl), Ok(()));
    jsonl.settings[1].default = Some("acme.csv".into());
    assert!(check_connector_defaults(&jsonl).is_err());
}

#[cfg(unix)]
#[test]
fn a_connector_default_output_is_never_reached_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let previous = std::env::current_dir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("log")).unwrap();
    // Paths are relative to the working folder; the test resolves them against `dir` instead.
    let relative = |path: &str| dir.path().join(path).to_string_lossy().into_owned();
    let mut info = info();
    info.settings[1].default = Some(relative("log/acme.csv"));
    let env = env(&[]);
    let overrides = Overrides::default();
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &env,
    };
    let error = resolve_settings(&info, &stream(), &sources).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("symbolic link"), "{message}");
    assert!(message.contains("the connector's default"), "{message}");
    // The user may name a place reached through a link.
    let overrides = Overrides {
        params: vec![],
        settings: vec![("output.path".into(), relative("log/acme.csv"), "--output")],
    };
    let sources = Sources {
        overrides: &overrides,
        ..sources
    };
    assert!(resolve_settings(&info, &stream(), &sources).is_ok());
    assert_eq!(std::env::current_dir().unwrap(), previous);
}

/// The `quota.*` settings of `connector` with these `--set` flags.
fn quota_with(
    connector: &ConnectorInfo,
    flags: &[(&str, &str)],
) -> Result<QuotaSettings, ConfigError> {
    let overrides = Overrides {
        params: vec![],
        settings: flags
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string(), "--set"))
            .collect(),
    };
    let environment = env(&[]);
    let sources = Sources {
        overrides: &overrides,
        file: None,
        env: &environment,
    };
    resolve_quota_settings(connector, &sources)
}

#[test]
fn quota_settings_come_from_the_connector_and_the_user_and_are_checked() {
    let mut connector = info();
    connector.settings.push(HostSetting {
        key: "quota.cooldown".into(),
        default: Some("5s".into()),
        env: None,
    });
    let declared = quota_with(&connector, &[]).unwrap();
    assert_eq!(declared.cooldown, std::time::Duration::from_secs(5));
    assert_eq!(declared.learn_from, None);
    assert_eq!(quota_with(&info(), &[]).unwrap(), QuotaSettings::default());

    let set = quota_with(
        &connector,
        &[("quota.cooldown", "500ms"), ("quota.learn-from", "100/min")],
    )
    .unwrap();
    assert_eq!(set.cooldown, std::time::Duration::from_millis(500));
    assert_eq!(set.learn_from, Some(RateLimit::per_minute(100)));

    for (key, value, expected) in [
        ("quota.cooldown", "soon", "a duration from 0s to 1h"),
        ("quota.cooldown", "2h", "a duration from 0s to 1h"),
        ("quota.learn-from", "100", "is not a rate limit"),
    ] {
        let error = quota_with(&connector, &[(key, value)])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("`{key}` `{value}` (from --set)")) && error.contains(expected),
            "{error}"
        );
    }
}

#[test]
fn quota_defaults_are_connector_wide_and_valid() {
    let with = |scope_stream: bool, key: &str, value: &str| {
        let mut connector = info();
        let setting = HostSetting {
            key: key.into(),
            default: Some(value.into()),
            env: None,
        };
        if scope_stream {
            connector.streams[0].settings.push(setting);
        } else {
            connector.settings.push(setting);
        }
        check_connector_defaults(&connector)
    };
    assert_eq!(with(false, "quota.cooldown", "5s"), Ok(()));
    assert_eq!(with(false, "quota.learn-from", "60/min"), Ok(()));
    let error = with(true, "quota.cooldown", "5s").unwrap_err();
    assert!(
        error.contains("holds for every stream") && error.contains("stream `events`"),
        "{error}"
    );
    let error = with(false, "quota.cooldown", "forever").unwrap_err();
    assert!(error.contains("expected a duration"), "{error}");
    let error = with(false, "quota.learn-from", "lots").unwrap_err();
    assert!(error.contains("is not a rate limit"), "{error}");
}

#[test]
fn patience_limits_parse() {
    let limits = ConfigFile::parse(
        Path::new("trawl.ron"),
        "(limits: (stall_minutes: 0.5, retry_max_delay_seconds: 2))",
    )
    .unwrap()
    .limits;
    assert_eq!(
        limits.stall_minutes.map(Minutes::duration),
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(
        limits.retry_max_delay_seconds.map(Seconds::duration),
        Some(std::time::Duration::from_secs(2))
    );
    assert!(ConfigFile::parse(Path::new("trawl.ron"), "(limits: (stall_minutes: 0))").is_err());
}
