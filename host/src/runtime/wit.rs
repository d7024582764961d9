//! Types generated from each version of the contract in `wit/`, and what turns an older version's
//! into the newest's.
//!
//! The rest of the host speaks only the newest version (re-exported here). A connector built
//! against an older one is called through that version's bindings, and its answers converted, the
//! way Zed keeps loading extensions built against older APIs.

/// `wit/connector@0.1.0`: the first contract. Its `http`, `clock`, `storage` and `log` interfaces
/// are shared by every later version, so the host implements them once, here.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/connector@0.1.0",
        world: "plugin",
        imports: {
            "trawl:connector/http.send": async,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// `wit/connector@0.2.0`: adds `responses`, whose bodies stay in the host and are read there.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/connector@0.2.0",
        world: "plugin",
        imports: {
            "trawl:connector/responses.send": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "trawl:connector/types@0.1.0": super::v0_1::trawl::connector::types,
            "trawl:connector/http@0.1.0": super::v0_1::trawl::connector::http,
            "trawl:connector/clock@0.1.0": super::v0_1::trawl::connector::clock,
            "trawl:connector/storage@0.1.0": super::v0_1::trawl::connector::storage,
            "trawl:connector/log@0.1.0": super::v0_1::trawl::connector::log,
            "trawl:connector/responses.body": crate::capabilities::responses::Body,
            "trawl:connector/responses.records": crate::capabilities::responses::ReadRecords,
        },
    });
}

/// `wit/connector@0.3.0`: adds `keyed-pages`, where the host reads each record's id and time
/// itself, and `kept-records.within`, which keeps the records of a window without listing them.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../wit/connector@0.3.0",
        world: "plugin",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "trawl:connector/types@0.1.0": super::v0_1::trawl::connector::types,
            "trawl:connector/http@0.1.0": super::v0_1::trawl::connector::http,
            "trawl:connector/clock@0.1.0": super::v0_1::trawl::connector::clock,
            "trawl:connector/storage@0.1.0": super::v0_1::trawl::connector::storage,
            "trawl:connector/log@0.1.0": super::v0_1::trawl::connector::log,
            "trawl:connector/responses@0.2.0": super::v0_2::trawl::connector0_2_0::responses,
        },
    });
}

pub use v0_1::trawl;
pub use v0_1::trawl::connector::types::{Header, Window};
pub use v0_3::exports::trawl::connector0_3_0::connector::{
    ConnectorInfo, FetchError, HostSetting, PageRequest, Param, ParamInfo, ParamKind, RateLimit,
    StatusError, StreamInfo, TimeField,
};
pub use v0_3::trawl::connector0_3_0::keyed_pages::{RecordKeys, TimeFormat};

/// The contract versions this host loads, newest first, by the name of the interface a connector
/// exports.
pub const EXPORTS: &[(&str, Version)] = &[
    ("trawl:connector/connector@0.3.0", Version::V0_3),
    ("trawl:connector/connector@0.2.0", Version::V0_2),
    ("trawl:connector/connector@0.1.0", Version::V0_1),
];

/// A version of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V0_1,
    V0_2,
    V0_3,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V0_1 => "0.1.0",
            Version::V0_2 => "0.2.0",
            Version::V0_3 => "0.3.0",
        })
    }
}

/// An older version's answers in the newest version's types, for every type but the page (which
/// `runtime/page.rs` converts): these kept their shape from 0.1.0 on, so the conversions are
/// field-for-field, made the same way for each older version.
macro_rules! from_older {
    ($old:path) => {
        use super::*;
        use $old as old;

        impl From<old::ConnectorInfo> for ConnectorInfo {
            fn from(info: old::ConnectorInfo) -> Self {
                ConnectorInfo {
                    name: info.name,
                    version: info.version,
                    description: info.description,
                    streams: info.streams.into_iter().map(Into::into).collect(),
                    params: info.params.into_iter().map(Into::into).collect(),
                    hosts: info.hosts,
                    settings: info.settings.into_iter().map(Into::into).collect(),
                    rate_limits: info.rate_limits.into_iter().map(Into::into).collect(),
                }
            }
        }

        impl From<old::StreamInfo> for StreamInfo {
            fn from(stream: old::StreamInfo) -> Self {
                StreamInfo {
                    name: stream.name,
                    description: stream.description,
                    max_window: stream.max_window,
                    default_lookback: stream.default_lookback,
                    overlap: stream.overlap,
                    lag: stream.lag,
                    columns: stream.columns,
                    settings: stream.settings.into_iter().map(Into::into).collect(),
                    time_field: stream.time_field.map(|field| TimeField {
                        path: field.path,
                        format: match field.format {
                            old::TimeFormat::Rfc3339 => TimeFormat::Rfc3339,
                            old::TimeFormat::EpochSeconds => TimeFormat::EpochSeconds,
                            old::TimeFormat::EpochMillis => TimeFormat::EpochMillis,
                        },
                    }),
                }
            }
        }

        impl From<old::ParamInfo> for ParamInfo {
            fn from(param: old::ParamInfo) -> Self {
                ParamInfo {
                    name: param.name,
                    help: param.help,
                    kind: match param.kind {
                        old::ParamKind::Text => ParamKind::Text,
                        old::ParamKind::Integer => ParamKind::Integer,
                        old::ParamKind::Boolean => ParamKind::Boolean,
                        old::ParamKind::Url => ParamKind::Url,
                        old::ParamKind::Choice(choices) => ParamKind::Choice(choices),
                    },
                    required: param.required,
                    default: param.default,
                    env: param.env,
                    secret: param.secret,
                    secret_hosts: param.secret_hosts,
                }
            }
        }

        impl From<old::HostSetting> for HostSetting {
            fn from(setting: old::HostSetting) -> Self {
                HostSetting {
                    key: setting.key,
                    default: setting.default,
                    env: setting.env,
                }
            }
        }

        impl From<old::RateLimit> for RateLimit {
            fn from(limit: old::RateLimit) -> Self {
                RateLimit {
                    requests: limit.requests,
                    per: limit.per,
                }
            }
        }

        impl From<old::FetchError> for FetchError {
            fn from(error: old::FetchError) -> Self {
                match error {
                    old::FetchError::Http(error) => FetchError::Http(error),
                    old::FetchError::Status(status) => FetchError::Status(StatusError {
                        status: status.status,
                        message: status.message,
                    }),
                    old::FetchError::Malformed(reason) => FetchError::Malformed(reason),
                    old::FetchError::Unauthorized(reason) => FetchError::Unauthorized(reason),
                    old::FetchError::InvalidParams(reason) => FetchError::InvalidParams(reason),
                    old::FetchError::UnknownStream(stream) => FetchError::UnknownStream(stream),
                    old::FetchError::WindowTooLarge(reason) => FetchError::WindowTooLarge(reason),
                }
            }
        }

        impl From<&PageRequest> for old::PageRequest {
            fn from(request: &PageRequest) -> Self {
                old::PageRequest {
                    stream: request.stream.clone(),
                    window: request.window,
                    cursor: request.cursor.clone(),
                    params: request
                        .params
                        .iter()
                        .map(|param| old::Param {
                            name: param.name.clone(),
                            value: param.value.clone(),
                        })
                        .collect(),
                }
            }
        }
    };
}

mod from_v0_1 {
    from_older!(super::v0_1::exports::trawl::connector::connector);
}

mod from_v0_2 {
    from_older!(super::v0_2::exports::trawl::connector0_2_0::connector);
}
