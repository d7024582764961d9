//! Messages into the host's log. Never pass a secret: connectors only hold placeholders anyway.

use crate::bindings::trawl::connector0_1_0::log::{Level, write};

pub fn debug(message: &str) {
    write(Level::Debug, message);
}

pub fn info(message: &str) {
    write(Level::Info, message);
}

pub fn warn(message: &str) {
    write(Level::Warn, message);
}

pub fn error(message: &str) {
    write(Level::Error, message);
}
