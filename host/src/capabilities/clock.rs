//! The `clock` capability: the time as trawl sees it, which tests can fix.

use crate::runtime::HostState;
use crate::runtime::wit::trawl::connector::clock;

/// The source of "now" for connectors, window planning and fetch timestamps.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Always this many milliseconds since the epoch.
    Fixed(i64),
}

impl Clock {
    pub fn now_millis(&self) -> i64 {
        match self {
            Clock::System => jiff::Timestamp::now().as_millisecond(),
            Clock::Fixed(millis) => *millis,
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        match self {
            Clock::System => jiff::Timestamp::now(),
            Clock::Fixed(millis) => {
                jiff::Timestamp::from_millisecond(*millis).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            }
        }
    }
}

impl clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<i64> {
        Ok(self.capabilities.clock.now_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_is_fixed() {
        let clock = Clock::Fixed(1_725_148_800_000);
        assert_eq!(clock.now_millis(), 1_725_148_800_000);
        assert_eq!(clock.now().to_string(), "2024-09-01T00:00:00Z");
    }

    #[test]
    fn system_clock_moves() {
        assert!(Clock::System.now_millis() > 1_700_000_000_000);
    }
}
