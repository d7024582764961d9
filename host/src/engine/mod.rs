//! Planning windows and driving the page loop.
