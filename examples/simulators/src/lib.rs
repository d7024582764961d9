//! Local simulators of the vendor APIs trawl pulls from, so that no test or demo reaches a real
//! vendor.
//!
//! Each vendor module builds an axum [`Router`](axum::Router); [`server`] serves it on loopback and
//! adds what all simulators share: request numbering, the [`faults`] script, the request log and the
//! `/__mock/` control routes (`/__mock/counters` among them: see [`counters`]).

pub mod counters;
pub mod faults;
pub mod flags;
pub mod ratelimit;
pub mod request_log;
mod rng;
pub mod server;
pub mod timefmt;
pub mod verkada;
pub mod vision_one;
pub mod workvivo;
pub mod yandex360;

pub use counters::{Counters, KeyCounters};
pub use request_log::RequestLogEntry;
pub use server::RunningServer;
