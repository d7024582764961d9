//! Deterministic SIEM events shaped like Workvivo's, seeded with the awkward cases connectors must
//! survive: events exactly on hour edges, bursts sharing one timestamp, CSV-hostile text, and an
//! optional key that only appears after the first hours.

use serde_json::{Map, Value, json};

use crate::rng::SplitMix64;
use crate::timefmt::rfc3339_utc;

const HOUR: i64 = 3600;

/// `real_user` (and so the events that carry it) never appears before this many hours into the
/// dataset, so a writer that takes its columns from the first batch meets a new key later.
pub const NO_REAL_USER_HOURS: i64 = 6;

/// One SIEM event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    pub created_at_timestamp: i64,
    /// The full record object, exactly as served.
    pub json: Value,
}

/// Events sorted by `(created_at_timestamp, id)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    pub events: Vec<Event>,
}

impl Dataset {
    /// Events covering `[start_unix, start_unix + days * 86400)`; the same arguments always give the
    /// same events.
    ///
    /// Every hour gets `events_per_hour` events (at least one), the first exactly on the hour. On top
    /// of those (hours counted from 0): a burst of 3 events sharing one timestamp in hours 3, 10, 17,
    /// ...; 2 more events on the edge `start + 2h` (so 3 events on that instant); a SAML failure with
    /// a two-line note in hour 0; and a switch-user pair in hour 7, the first events to carry
    /// `real_user`. The very first event has a user agent with quotes and a comma.
    pub fn generate(start_unix: i64, days: u32, events_per_hour: u32, seed: u64) -> Dataset {
        Generator::new(start_unix, seed).run(i64::from(days) * 24, events_per_hour.max(1))
    }

    /// Events with `from_inclusive <= created_at_timestamp < to_exclusive`.
    pub fn between(&self, from_inclusive: i64, to_exclusive: i64) -> Vec<&Event> {
        let (lo, hi) = self.bounds(from_inclusive, to_exclusive);
        self.events[lo..hi].iter().collect()
    }

    /// Index range of `between`, found by binary search on the sorted events.
    pub(crate) fn bounds(&self, from_inclusive: i64, to_exclusive: i64) -> (usize, usize) {
        let lo = self
            .events
            .partition_point(|e| e.created_at_timestamp < from_inclusive);
        let hi = self
            .events
            .partition_point(|e| e.created_at_timestamp < to_exclusive);
        (lo, hi.max(lo))
    }

    /// One JSON object a line, in dataset order.
    pub fn to_json_lines(&self) -> String {
        self.events
            .iter()
            .map(|event| format!("{}\n", event.json))
            .collect()
    }
}

const EVENT_WEIGHTS: &[(&str, u32)] = &[
    ("login", 30),
    ("loginMobile", 14),
    ("loginSaml", 16),
    ("loginSamlMobile", 8),
    ("loginSamlFailed", 4),
    ("logout", 12),
    ("logoutMobile", 6),
    ("MFA reset", 2),
    ("User setup MFA successfully", 3),
    ("switch user", 2),
    ("switch user reverted", 2),
];

const ADMIN: &str = "administrator@example.org";
const ADMIN_WORKVIVO_ID: u64 = 1_637_400;
const USERS: u64 = 12;
const FIRST_USER_WORKVIVO_ID: u64 = 1_637_441;

const WEB_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36 Edg/136.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];

/// The first entry has both quotes and a comma, which a CSV writer must escape.
const MOBILE_AGENTS: &[&str] = &[
    "Workvivo/6.11.2 (Android 14; Pixel 8) \"okhttp/4.12.0\", build 6112",
    "Workvivo/6.12.0 (com.workvivo.app; build:6120; iOS 17.5.1) Alamofire/5.9.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "okhttp/4.12.0",
];

/// A slot to fill with an event: its time and, for the guaranteed cases, a fixed event type.
struct Slot {
    ts: i64,
    forced: Option<&'static str>,
    quoted_agent: bool,
}

struct Generator {
    start: i64,
    rng: SplitMix64,
}

impl Generator {
    fn new(start: i64, seed: u64) -> Self {
        Self {
            start,
            rng: SplitMix64::new(seed),
        }
    }

    fn run(mut self, hours: i64, per_hour: u32) -> Dataset {
        let slots = self.slots(hours, per_hour);
        // Real ids are global across tenants, so one tenant sees increasing ids with gaps.
        let mut id = 29_700_000 + self.rng.below(100_000);
        let events = slots
            .into_iter()
            .map(|slot| {
                id += 1 + self.rng.below(7);
                self.event(id, &slot)
            })
            .collect();
        Dataset { events }
    }

    fn slots(&mut self, hours: i64, per_hour: u32) -> Vec<Slot> {
        let plain = |ts| Slot {
            ts,
            forced: None,
            quoted_agent: false,
        };
        let mut slots = Vec::new();
        for hour in 0..hours {
            let edge = self.start + hour * HOUR;
            slots.push(plain(edge));
            for _ in 1..per_hour {
                slots.push(plain(edge + 1 + self.rng.below(HOUR as u64 - 1) as i64));
            }
            if hour % 7 == 3 {
                let ts = edge + 1 + self.rng.below(HOUR as u64 - 1) as i64;
                slots.extend((0..3).map(|_| plain(ts)));
            }
        }
        // Whole days only, so there are either no hours or at least 24: every guaranteed case fits.
        if hours > 0 {
            // Three events on one hour edge, shared by two consecutive hourly windows.
            slots.extend((0..2).map(|_| plain(self.start + 2 * HOUR)));
            // The very first event: a quoted, comma-laden user agent in the first batch of any export.
            slots[0].forced = Some("loginMobile");
            slots[0].quoted_agent = true;
            let forced = |ts, kind| Slot {
                ts,
                forced: Some(kind),
                quoted_agent: false,
            };
            slots.push(forced(self.start + 1234, "loginSamlFailed"));
            let hour = self.start + (NO_REAL_USER_HOURS + 1) * HOUR;
            slots.push(forced(hour + 900, "switch user"));
            slots.push(forced(hour + 2700, "switch user reverted"));
        }
        // Stable: slots on one instant keep their creation order, so generation stays deterministic.
        slots.sort_by_key(|slot| slot.ts);
        slots
    }

    fn event(&mut self, id: u64, slot: &Slot) -> Event {
        let allow_switch = slot.ts >= self.start + NO_REAL_USER_HOURS * HOUR;
        let kind = slot.forced.unwrap_or_else(|| self.event_type(allow_switch));
        let user_number = 1 + self.rng.below(USERS);
        let user = format!("user{user_number:02}@example.org");
        let user_id = FIRST_USER_WORKVIVO_ID + user_number - 1;
        let agents = if kind.ends_with("Mobile") {
            MOBILE_AGENTS
        } else {
            WEB_AGENTS
        };
        let agent = if slot.quoted_agent {
            MOBILE_AGENTS[0]
        } else {
            *self.rng.pick(agents)
        };
        let block = if self.rng.below(2) == 0 {
            "203.0.113"
        } else {
            "198.51.100"
        };
        let ip = format!("{block}.{}", 1 + self.rng.below(254));

        // (acting email, acting workvivo id, note, real_user)
        let (email, workvivo_id, note, real_user) = match kind {
            "login" => (
                json!(user),
                json!(user_id),
                format!("{user} logged in"),
                None,
            ),
            "loginMobile" => (
                json!(user),
                json!(user_id),
                format!("{user} logged in on mobile"),
                None,
            ),
            "loginSaml" => (
                json!(user),
                json!(user_id),
                format!("{user} logged in with SAML"),
                None,
            ),
            "loginSamlMobile" => (
                json!(user),
                json!(user_id),
                format!("{user} logged in with SAML on mobile"),
                None,
            ),
            // The login failed, so no user is known: only the note names the address that was tried.
            "loginSamlFailed" => (
                Value::Null,
                Value::Null,
                format!("SAML login failed for {user}\nReason: the assertion has expired"),
                None,
            ),
            "logout" => (
                json!(user),
                json!(user_id),
                format!("{user} logged out"),
                None,
            ),
            "logoutMobile" => (
                json!(user),
                json!(user_id),
                format!("{user} logged out on mobile"),
                None,
            ),
            "MFA reset" => (
                json!(ADMIN),
                json!(ADMIN_WORKVIVO_ID),
                format!("MFA reset for {user} by {ADMIN}"),
                None,
            ),
            "switch user" => (
                json!(ADMIN),
                json!(ADMIN_WORKVIVO_ID),
                format!("switch user from user {ADMIN} to {user}"),
                Some(json!(ADMIN)),
            ),
            "switch user reverted" => (
                json!(user),
                json!(user_id),
                format!("switch user reverted from {user} to user {ADMIN}"),
                Some(Value::Null),
            ),
            _ => (
                json!(user),
                json!(user_id),
                format!("{user} set up MFA"),
                None,
            ),
        };

        // Keys inserted alphabetically, so the order is the same whether or not serde_json keeps
        // insertion order in this build.
        let mut record = Map::new();
        record.insert("created_at".into(), json!(rfc3339_utc(slot.ts)));
        record.insert("created_at_timestamp".into(), json!(slot.ts));
        record.insert("event".into(), json!(kind));
        record.insert("id".into(), json!(id));
        record.insert("ip_address".into(), json!(ip));
        record.insert("note".into(), json!(note));
        if let Some(real_user) = real_user {
            record.insert("real_user".into(), real_user);
        }
        record.insert("user_agent".into(), json!(agent));
        record.insert("user_email".into(), email);
        record.insert("workvivo_id".into(), workvivo_id);
        Event {
            id,
            created_at_timestamp: slot.ts,
            json: Value::Object(record),
        }
    }

    fn event_type(&mut self, allow_switch: bool) -> &'static str {
        let allowed = |name: &str| allow_switch || !name.starts_with("switch user");
        let total: u32 = EVENT_WEIGHTS
            .iter()
            .filter(|(name, _)| allowed(name))
            .map(|(_, w)| w)
            .sum();
        let mut roll = self.rng.below(u64::from(total)) as u32;
        for &(name, weight) in EVENT_WEIGHTS.iter().filter(|(name, _)| allowed(name)) {
            if roll < weight {
                return name;
            }
            roll -= weight;
        }
        unreachable!("roll is below the total weight")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    const START: i64 = 1_725_148_800;

    fn default_dataset() -> Dataset {
        Dataset::generate(START, 3, 12, 7)
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(default_dataset(), default_dataset());
        assert_ne!(default_dataset(), Dataset::generate(START, 3, 12, 8));
    }

    #[test]
    fn sorted_unique_ids_increasing_with_time_and_in_range() {
        let data = default_dataset();
        assert!(data.events.len() >= 3 * 24 * 12);
        for pair in data.events.windows(2) {
            assert!(pair[0].id < pair[1].id);
            assert!(pair[0].created_at_timestamp <= pair[1].created_at_timestamp);
        }
        let ids: HashSet<_> = data.events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), data.events.len());
        assert_eq!(data.events.first().unwrap().created_at_timestamp, START);
        assert!(data.events.last().unwrap().created_at_timestamp < START + 3 * 86_400);
    }

    #[test]
    fn every_hour_has_an_edge_event_and_spread() {
        let data = default_dataset();
        for hour in 0..72 {
            let edge = START + hour * HOUR;
            let in_hour = data.between(edge, edge + HOUR);
            assert_eq!(in_hour[0].created_at_timestamp, edge, "hour {hour}");
            assert!(in_hour.len() >= 12);
            let distinct: HashSet<_> = in_hour.iter().map(|e| e.created_at_timestamp).collect();
            assert!(distinct.len() >= 8, "hour {hour} is not spread out");
        }
    }

    #[test]
    fn groups_of_equal_timestamps_including_one_on_an_edge() {
        let data = default_dataset();
        let mut counts = BTreeMap::<i64, usize>::new();
        for event in &data.events {
            *counts.entry(event.created_at_timestamp).or_default() += 1;
        }
        let groups: Vec<i64> = counts
            .iter()
            .filter(|&(_, &n)| n >= 3)
            .map(|(&ts, _)| ts)
            .collect();
        assert!(groups.len() >= 5, "{groups:?}");
        assert!(groups.iter().any(|ts| ts % HOUR == 0 && *ts > START));
    }

    #[test]
    fn records_look_like_workvivo_events() {
        let data = default_dataset();
        let types: HashSet<&str> = EVENT_WEIGHTS.iter().map(|(name, _)| *name).collect();
        for event in &data.events {
            let record = event.json.as_object().unwrap();
            assert_eq!(record["id"], json!(event.id));
            assert_eq!(
                record["created_at_timestamp"],
                json!(event.created_at_timestamp)
            );
            assert_eq!(
                record["created_at"],
                json!(rfc3339_utc(event.created_at_timestamp))
            );
            assert!(types.contains(record["event"].as_str().unwrap()));
            let ip = record["ip_address"].as_str().unwrap();
            assert!(
                ip.starts_with("203.0.113.") || ip.starts_with("198.51.100."),
                "{ip}"
            );
            let keys: Vec<&String> = record.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted);
        }
        let text = |key: &'static str| data.events.iter().filter_map(move |e| e.json[key].as_str());
        assert!(text("note").any(|note| note.contains('\n')));
        assert!(text("user_agent").any(|agent| agent.contains('"') && agent.contains(',')));
        assert!(
            data.events[0].json["user_agent"]
                .as_str()
                .unwrap()
                .contains('"')
        );
    }

    #[test]
    fn real_user_only_on_switch_events_and_never_early() {
        let data = default_dataset();
        let mut values = Vec::new();
        for event in &data.events {
            let Some(real_user) = event.json.get("real_user") else {
                continue;
            };
            assert!(
                event.json["event"]
                    .as_str()
                    .unwrap()
                    .starts_with("switch user")
            );
            assert!(event.created_at_timestamp >= START + NO_REAL_USER_HOURS * HOUR);
            values.push(real_user.clone());
        }
        assert!(values.iter().any(Value::is_null));
        assert!(values.iter().any(Value::is_string));
        for event in &data.events {
            let is_switch = event.json["event"]
                .as_str()
                .unwrap()
                .starts_with("switch user");
            assert_eq!(is_switch, event.json.get("real_user").is_some());
        }
    }

    #[test]
    fn between_is_half_open() {
        let data = default_dataset();
        let hour = data.between(START + HOUR, START + 2 * HOUR);
        assert!(
            hour.iter()
                .all(|e| (START + HOUR..START + 2 * HOUR).contains(&e.created_at_timestamp))
        );
        assert_eq!(hour[0].created_at_timestamp, START + HOUR);
        assert!(data.between(START + 10, START).is_empty());
    }

    #[test]
    fn tiny_datasets_still_hold_the_edge_rule() {
        let data = Dataset::generate(START, 1, 0, 1);
        for hour in 0..24 {
            assert!(
                data.events
                    .iter()
                    .any(|e| e.created_at_timestamp == START + hour * HOUR)
            );
        }
        assert!(Dataset::generate(START, 0, 12, 1).events.is_empty());
    }
}
