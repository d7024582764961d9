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
