//! Deterministic mail and disk audit events shaped like Yandex 360's, seeded with the awkward
//! cases connectors must survive: events exactly on hour and quarter-hour edges, one millisecond
//! (mail) or second (disk) before midnight and just after it, bursts sharing one timestamp, and
//! `uniqId`s that come back on a later event of another type.

use serde_json::{Map, Value, json};

use super::time::{rfc3339_millis, rfc3339_seconds};
use crate::rng::SplitMix64;

const HOUR_MS: i64 = 3_600_000;
const QUARTER_MS: i64 = 900_000;
const DAY_MS: i64 = 86_400_000;

/// Which audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Mail,
    Disk,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Mail => "mail",
            Stream::Disk => "disk",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mail" => Some(Stream::Mail),
            "disk" => Some(Stream::Disk),
            _ => None,
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `date` in milliseconds since the epoch (whole seconds for disk).
    pub date_ms: i64,
    pub uniq_id: u64,
    pub event_type: String,
    pub user_uid: String,
    /// The full record, exactly as served.
    pub json: Value,
}

impl Event {
    /// The id trawl's connector gives this event: `uniqId|eventType|date-in-ms`.
    pub fn trawl_id(&self) -> String {
        format!("{}|{}|{}", self.uniq_id, self.event_type, self.date_ms)
    }
}

/// Both logs, each sorted by `(date, uniqId, eventType)` ascending.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    pub mail: Vec<Event>,
    pub disk: Vec<Event>,
}

/// Mail event types and how often they occur.
pub const MAIL_TYPES: &[(&str, u32)] = &[
    ("message_receive", 30),
    ("mailbox_send", 12),
    ("message_seen", 16),
    ("message_unseen", 2),
    ("message_forward", 3),
    ("message_purge", 2),
    ("message_trash", 6),
    ("message_spam", 2),
    ("message_unspam", 1),
    ("message_move", 5),
    ("message_copy", 2),
    ("message_answer", 5),
];

/// Disk event types and how often they occur.
pub const DISK_TYPES: &[(&str, u32)] = &[
    ("fs-copy", 4),
    ("fs-mkdir", 6),
    ("fs-move", 8),
    ("fs-set-public", 2),
    ("fs-store", 20),
    ("fs-trash-append", 6),
    ("fs-trash-drop", 2),
    ("fs-trash-drop-all", 1),
    ("fs-rm", 3),
    ("share-activate-invite", 1),
    ("share-change-rights", 1),
    ("share-change-invite-rights", 1),
    ("share-create-group", 1),
    ("share-invite-user", 2),
];

/// The organisation every generated event belongs to.
pub const ORG_ID: u64 = 1_234_567;

const USERS: &[(&str, &str, &str)] = &[
    ("1130000062000001", "ivanov@example.ru", "Иванов Сергей"),
    ("1130000062000002", "petrova@example.ru", "Петрова Надежда"),
    (
        "1130000062000003",
        "smith@example.ru",
        "John \"Jack\" Smith",
    ),
    ("1130000062000004", "lee@example.ru", "Lee, Anna"),
    ("1130000062000005", "orlov@example.ru", "Орлов Пётр"),
    ("1130000062000006", "robot@example.ru", "Scanner"),
];

impl Dataset {
    /// Events covering `[start_ms, start_ms + hours h)`; the same arguments always give the same
    /// events. `start_ms` should be on a whole hour.
    ///
    /// Every hour holds (hours counted from 0):
    /// - mail: two events exactly on the hour, one on each quarter-hour edge, eight at random
    ///   milliseconds; a burst of four sharing one millisecond in hours 1, 4, 7, ...; in hours 2,
    ///   7, 12, ... a `message_seen` that reuses the `uniqId` of a `message_receive` earlier in
    ///   the hour;
    /// - disk (whole seconds): one event on the hour, one on each quarter-hour edge in even hours,
    ///   four at random seconds; a burst of three sharing one second in hours 2, 6, 10, ...; in
    ///   hours 3, 8, 13, ... an `fs-move` that reuses the `uniqId` of an `fs-store`.
    ///
    /// Around every UTC midnight inside the range, mail has events at 23:59:59.999 and
    /// 00:00:30.000 and disk at 23:59:59 and 00:00:30, so that a 2-minute overlap after the first
    /// events of a day reaches back into the day before.
    pub fn generate(start_ms: i64, hours: u32, seed: u64) -> Dataset {
        let mut generator = Generator {
            rng: SplitMix64::new(seed),
        };
        let end = start_ms + i64::from(hours) * HOUR_MS;
        let mut mail = Vec::new();
        let mut disk = Vec::new();
        for hour in 0..i64::from(hours) {
            let edge = start_ms + hour * HOUR_MS;
            mail.extend(generator.mail_slots(hour, edge));
            disk.extend(generator.disk_slots(hour, edge));
            if edge.rem_euclid(DAY_MS) == 0 {
                for (slots, before) in [(&mut mail, 1), (&mut disk, 1000)] {
                    if edge - before >= start_ms {
                        slots.push(Slot::plain(edge - before));
                    }
                    slots.push(Slot::plain(edge + 30_000));
                }
            }
        }
        mail.retain(|slot| (start_ms..end).contains(&slot.at));
        disk.retain(|slot| (start_ms..end).contains(&slot.at));
        Dataset {
            mail: generator.events(Stream::Mail, mail),
            disk: generator.events(Stream::Disk, disk),
        }
    }

    pub fn events(&self, stream: Stream) -> &[Event] {
        match stream {
            Stream::Mail => &self.mail,
            Stream::Disk => &self.disk,
        }
    }

    /// Events of `stream` with `from_ms <= date < to_ms`, oldest first.
    pub fn between(&self, stream: Stream, from_ms: i64, to_ms: i64) -> Vec<&Event> {
        self.events(stream)
            .iter()
            .filter(|event| from_ms <= event.date_ms && event.date_ms < to_ms)
            .collect()
    }

    /// One JSON object a line, oldest first.
    pub fn to_json_lines(&self, stream: Stream) -> String {
        self.events(stream)
            .iter()
            .map(|event| format!("{}\n", event.json))
            .collect()
    }
}

/// When an event happens and what is forced about it.
#[derive(Clone)]
struct Slot {
    at: i64,
    kind: Option<&'static str>,
    /// Reuse the `uniqId` of the event made for the slot this many places earlier in the hour.
    reuse: Option<usize>,
}

impl Slot {
    fn plain(at: i64) -> Self {
        Slot {
            at,
            kind: None,
            reuse: None,
        }
    }
}

struct Generator {
    rng: SplitMix64,
}

impl Generator {
    fn random_in_hour(&mut self, edge: i64, step: i64) -> i64 {
        let steps = (HOUR_MS / step - 1) as u64;
        edge + step * (1 + self.rng.below(steps) as i64)
    }

    fn mail_slots(&mut self, hour: i64, edge: i64) -> Vec<Slot> {
        let mut slots = vec![Slot::plain(edge), Slot::plain(edge)];
        slots.extend((1..4).map(|q| Slot::plain(edge + q * QUARTER_MS)));
        slots.extend((0..8).map(|_| Slot::plain(self.random_in_hour(edge, 1))));
        if hour % 3 == 1 {
            let at = self.random_in_hour(edge, 1);
            slots.extend((0..4).map(|_| Slot::plain(at)));
        }
        if hour % 5 == 2 {
            let received = edge + 10 * 60_000 + 123;
            slots.push(Slot {
                at: received,
                kind: Some("message_receive"),
                reuse: None,
            });
            slots.push(Slot {
                at: received + 7 * 60_000,
                kind: Some("message_seen"),
                reuse: Some(1),
            });
        }
        slots
    }

    fn disk_slots(&mut self, hour: i64, edge: i64) -> Vec<Slot> {
        let mut slots = vec![Slot::plain(edge)];
        if hour % 2 == 0 {
            slots.extend((1..4).map(|q| Slot::plain(edge + q * QUARTER_MS)));
        }
        slots.extend((0..4).map(|_| Slot::plain(self.random_in_hour(edge, 1000))));
        if hour % 4 == 2 {
            let at = self.random_in_hour(edge, 1000);
            slots.extend((0..3).map(|_| Slot::plain(at)));
        }
        if hour % 5 == 3 {
            let stored = edge + 20 * 60_000;
            slots.push(Slot {
                at: stored,
                kind: Some("fs-store"),
                reuse: None,
            });
            slots.push(Slot {
                at: stored + 60_000,
                kind: Some("fs-move"),
                reuse: Some(1),
            });
        }
        slots
    }

    /// Turns slots into events with increasing `uniqId`s (as a tenant of a global id space sees
    /// them: gaps, never a repeat except where a slot asks for one), sorted.
    fn events(&mut self, stream: Stream, slots: Vec<Slot>) -> Vec<Event> {
        let mut uniq = match stream {
            Stream::Mail => 16_657_237_516_700_000 + self.rng.below(1_000_000),
            Stream::Disk => 5_379_628_844_452_860_000 + self.rng.below(1_000_000),
        };
        let mut made: Vec<u64> = Vec::with_capacity(slots.len());
        let mut events = Vec::with_capacity(slots.len());
        for slot in &slots {
            let id = match slot.reuse {
                Some(back) => made[made.len() - back],
                None => {
                    uniq += 1 + self.rng.below(50);
                    uniq
                }
            };
            made.push(id);
            events.push(match stream {
                Stream::Mail => self.mail_event(slot, id),
                Stream::Disk => self.disk_event(slot, id),
            });
        }
        events.sort_by(|a, b| {
            (a.date_ms, a.uniq_id, &a.event_type).cmp(&(b.date_ms, b.uniq_id, &b.event_type))
        });
        events
    }

    fn pick_weighted(&mut self, table: &[(&'static str, u32)]) -> &'static str {
        let total: u32 = table.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.rng.below(u64::from(total)) as u32;
        for &(name, weight) in table {
            if roll < weight {
                return name;
            }
            roll -= weight;
        }
        unreachable!("roll is below the total weight")
    }

    fn mail_event(&mut self, slot: &Slot, uniq_id: u64) -> Event {
        let kind = slot.kind.unwrap_or_else(|| self.pick_weighted(MAIL_TYPES));
        let (uid, login, name) = *self.rng.pick(USERS);
        let (other_uid, other_login, _) = *self.rng.pick(USERS);
        let outgoing = matches!(kind, "mailbox_send" | "message_forward" | "message_answer");
        let (folder_name, folder_type) = match kind {
            "mailbox_send" | "message_forward" | "message_answer" => ("Sent", "sent"),
            "message_trash" | "message_purge" => ("Trash", "trash"),
            "message_spam" => ("Spam", "spam"),
            "message_move" | "message_copy" => ("Projects/2025", "user"),
            _ => ("Inbox", "inbox"),
        };
        let subjects = [
            "Meeting today 09:00-10:00",
            "Сегодня, 23-го апреля, просрочено 2 дела",
            "Re: \"Q3 budget\", final",
            "Invoice #4411\nsecond line",
            "",
        ];
        let subject = *self.rng.pick(&subjects);
        let labels: Vec<&str> = match self.rng.below(6) {
            0 => vec!["important"],
            1 => vec!["important", "finance"],
            _ => vec![],
        };
        let external = "info@calendar.example.ru";
        let (from, to) = if outgoing {
            (login.to_string(), format!("{other_login}, {external}"))
        } else if self.rng.below(3) == 0 {
            (other_login.to_string(), login.to_string())
        } else {
            (external.to_string(), login.to_string())
        };
        let mid = 189_432_659_326_270_000 + self.rng.below(1_000_000);
        let ip = if self.rng.below(2) == 0 {
            format!("2a02:6b8:c37:bb43::{:x}", 1 + self.rng.below(0xfff))
        } else {
            format!("198.51.100.{}", 1 + self.rng.below(254))
        };

        // Keys inserted alphabetically, so the order is the same whether or not serde_json keeps
        // insertion order in this build.
        let mut record = Map::new();
        if kind == "message_move" || kind == "message_copy" {
            record.insert("actorUid".into(), json!(other_uid));
        }
        record.insert("bcc".into(), json!(""));
        record.insert(
            "cc".into(),
            json!(if self.rng.below(4) == 0 {
                other_login
            } else {
                ""
            }),
        );
        record.insert("clientIp".into(), json!(ip));
        record.insert("date".into(), json!(rfc3339_millis(slot.at)));
        if kind == "message_copy" {
            record.insert("destMid".into(), json!((mid + 1).to_string()));
        }
        record.insert("eventType".into(), json!(kind));
        record.insert("folderName".into(), json!(folder_name));
        record.insert("folderType".into(), json!(folder_type));
        record.insert("from".into(), json!(from));
        record.insert("labels".into(), json!(labels));
        record.insert("mid".into(), json!(mid.to_string()));
        record.insert(
            "msgId".into(),
            json!(format!("<{:x}@calendar.example.ru>", self.rng.next_u64())),
        );
        record.insert("orgId".into(), json!(ORG_ID));
        record.insert("requestId".into(), json!(""));
        record.insert(
            "source".into(),
            json!(if outgoing { "web" } else { "server" }),
        );
        record.insert("subject".into(), json!(subject));
        record.insert("to".into(), json!(to));
        record.insert("uniqId".into(), json!(uniq_id.to_string()));
        record.insert("userLogin".into(), json!(login));
        record.insert("userName".into(), json!(name));
        record.insert("userUid".into(), json!(uid));
        Event {
            date_ms: slot.at,
            uniq_id,
            event_type: kind.to_string(),
            user_uid: uid.to_string(),
            json: Value::Object(record),
        }
    }

    fn disk_event(&mut self, slot: &Slot, uniq_id: u64) -> Event {
        let kind = slot.kind.unwrap_or_else(|| self.pick_weighted(DISK_TYPES));
        let (uid, login, name) = *self.rng.pick(USERS);
        let (owner_uid, owner_login, owner_name) = if self.rng.below(3) == 0 {
            *self.rng.pick(USERS)
        } else {
            (uid, login, name)
        };
        let paths = [
            "/disk/Shared folder",
            "/disk/Отчёты/2025/Q2.xlsx",
            "/disk/Projects/plan, v2 \"final\".docx",
            "/disk/Photos/IMG_0042.jpg",
        ];
        let path = *self.rng.pick(&paths);
        let size = if kind == "fs-mkdir" {
            0
        } else {
            self.rng.below(50_000_000)
        };
        let modified = slot.at - 1000 * self.rng.below(86_400) as i64;
        let rights = match kind {
            "share-change-rights" | "share-invite-user" | "share-change-invite-rights" => "rw",
            _ => "",
        };
        let seconds = slot.at.div_euclid(1000);
        let mut record = Map::new();
        record.insert(
            "clientIp".into(),
            json!(format!("198.51.100.{}", 1 + self.rng.below(254))),
        );
        record.insert("date".into(), json!(rfc3339_seconds(seconds)));
        record.insert("eventType".into(), json!(kind));
        record.insert(
            "lastModificationDate".into(),
            json!(rfc3339_seconds(modified.div_euclid(1000))),
        );
        record.insert("orgId".into(), json!(ORG_ID));
        record.insert("ownerLogin".into(), json!(owner_login));
        record.insert("ownerName".into(), json!(owner_name));
        record.insert("ownerUid".into(), json!(owner_uid));
        record.insert("path".into(), json!(path));
        record.insert(
            "requestId".into(),
            json!(format!(
                "web-{}-{}-disk-web-client-stable-client-18",
                slot.at,
                self.rng.below(1_000_000_000)
            )),
        );
        record.insert(
            "resourceFileId".into(),
            json!(format!(
                "{:016x}{:016x}{:016x}{:016x}",
                self.rng.next_u64(),
                self.rng.next_u64(),
                self.rng.next_u64(),
                self.rng.next_u64()
            )),
        );
        record.insert("rights".into(), json!(rights));
        record.insert("size".into(), json!(size.to_string()));
        record.insert("uniqId".into(), json!(uniq_id.to_string()));
        record.insert("userLogin".into(), json!(login));
        record.insert("userName".into(), json!(name));
        record.insert("userUid".into(), json!(uid));
        Event {
            date_ms: seconds * 1000,
            uniq_id,
            event_type: kind.to_string(),
            user_uid: uid.to_string(),
            json: Value::Object(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    /// 2025-06-01T00:00:00Z
    const START: i64 = 1_748_736_000_000;

    fn dataset() -> Dataset {
        Dataset::generate(START, 48, 7)
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(dataset(), dataset());
        assert_ne!(dataset(), Dataset::generate(START, 48, 8));
    }

    #[test]
    fn sorted_in_range_and_ids_distinct() {
        let data = dataset();
        for stream in [Stream::Mail, Stream::Disk] {
            let events = data.events(stream);
            assert!(events.len() > 48 * 5, "{stream:?}");
            assert!(
                events
                    .windows(2)
                    .all(|pair| pair[0].date_ms <= pair[1].date_ms)
            );
            assert!(
                events
                    .iter()
                    .all(|e| (START..START + 48 * HOUR_MS).contains(&e.date_ms))
            );
            let ids: HashSet<String> = events.iter().map(Event::trawl_id).collect();
            assert_eq!(ids.len(), events.len(), "{stream:?}");
            // Some uniqIds come back on a later event of another type.
            let uniq: HashSet<u64> = events.iter().map(|e| e.uniq_id).collect();
            assert!(uniq.len() < events.len(), "{stream:?}");
        }
        assert!(data.disk.iter().all(|e| e.date_ms % 1000 == 0));
        assert!(data.mail.iter().any(|e| e.date_ms % 1000 != 0));
    }

    #[test]
    fn edges_bursts_and_midnights() {
        let data = dataset();
        for stream in [Stream::Mail, Stream::Disk] {
            let mut counts = BTreeMap::<i64, usize>::new();
            for event in data.events(stream) {
                *counts.entry(event.date_ms).or_default() += 1;
            }
            for hour in 0..48 {
                assert!(counts.contains_key(&(START + hour * HOUR_MS)), "{hour}");
            }
            assert!(counts.keys().any(|at| at % HOUR_MS == QUARTER_MS));
            assert!(counts.values().filter(|&&n| n >= 3).count() >= 5);
            let midnight = START + DAY_MS;
            let before = if stream == Stream::Mail { 1 } else { 1000 };
            assert!(counts.contains_key(&(midnight - before)));
            assert!(counts.contains_key(&(midnight + 30_000)));
        }
        // Two mail events on every hour edge.
        let on_edge = data
            .mail
            .iter()
            .filter(|e| e.date_ms == START + HOUR_MS)
            .count();
        assert_eq!(on_edge, 2);
    }

    #[test]
    fn records_look_like_the_vendors() {
        let data = dataset();
        for event in &data.mail {
            let record = event.json.as_object().unwrap();
            assert_eq!(record["date"], json!(rfc3339_millis(event.date_ms)));
            assert_eq!(record["uniqId"], json!(event.uniq_id.to_string()));
            assert_eq!(record["eventType"], json!(event.event_type));
            assert_eq!(record["orgId"], json!(ORG_ID));
            assert!(record["labels"].is_array());
            assert!(MAIL_TYPES.iter().any(|(t, _)| *t == event.event_type));
        }
        for event in &data.disk {
            let record = event.json.as_object().unwrap();
            assert_eq!(record["date"], json!(rfc3339_seconds(event.date_ms / 1000)));
            assert!(record["size"].is_string());
            assert!(DISK_TYPES.iter().any(|(t, _)| *t == event.event_type));
        }
        assert_eq!(
            data.mail[0].json["date"].as_str().unwrap().len(),
            "2025-04-23T04:59:35.118Z".len()
        );
    }
}
