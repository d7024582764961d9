//! Deterministic audit log rows and camera alerts shaped like Verkada's, seeded with the cases a
//! connector must survive: rows exactly on quarter-hour edges (by event time and by processing
//! time), groups sharing one timestamp, rows processed long after their event, two events the
//! seed's id fields alone cannot tell apart, system actions, and text a CSV writer must escape.

use serde_json::{Map, Value, json};

use crate::rng::SplitMix64;
use crate::timefmt::rfc3339_utc;

/// The simulator's window: a quarter of an hour, the seed's cron interval.
pub const QUARTER: i64 = 900;

/// Verkada has processing times only for logs from 2025-08-12T00:00:00Z on; older rows carry
/// `processed_timestamp: null` and never match `use_processed_timestamp=true`.
pub const PROCESSED_TIMESTAMPS_FROM: i64 = 1_754_956_800;

/// System actions carry the all-zero user id and the user name `-`.
pub const SYSTEM_USER_ID: &str = "00000000-0000-0000-0000-000000000000";

pub const ORGANIZATION_ID: &str = "1455f0ae-9c5b-4125-a1a7-954ea4e911fe";

/// Event names the seed script printed (its INTERESTED_EVENTS).
pub const INTERESTED_EVENTS: [&str; 3] = [
    "Archive Action Taken",
    "Video History Streamed",
    "Live Stream Started",
];

/// The values of `notification_type`.
pub const NOTIFICATION_TYPES: [&str; 9] = [
    "person_of_interest",
    "license_plate_of_interest",
    "tamper",
    "crowd",
    "motion",
    "camera_offline",
    "camera_online",
    "line_crossing",
    "loitering",
];

/// One audit log row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// The event's time, Unix seconds.
    pub timestamp: i64,
    /// When Verkada finished processing it (and it became visible), Unix seconds; `None` before
    /// [`PROCESSED_TIMESTAMPS_FROM`].
    pub processed: Option<i64>,
    /// The row exactly as served.
    pub json: Value,
}

impl AuditEvent {
    /// From when the row can be seen: its processing time (its event time for old rows).
    pub fn visible_from(&self) -> i64 {
        self.processed.unwrap_or(self.timestamp)
    }
}

/// One camera alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unix seconds.
    pub created: i64,
    pub notification_type: &'static str,
    /// The alert as served without `include_image_url` (`image_url` null).
    pub json: Value,
}

/// Audit rows sorted by `(timestamp, generation order)`, alerts by `(created, generation order)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    pub audit: Vec<AuditEvent>,
    pub alerts: Vec<Alert>,
}

impl Dataset {
    /// Rows and alerts with event times in `[start, start + quarters * 900)`; the same arguments
    /// always give the same data. `start` should be on a quarter hour.
    ///
    /// Each quarter gets `per_quarter` audit rows (at least one, the first exactly on its start)
    /// and as many alerts (likewise); each row is processed `U(0, max_processing_lag)` seconds
    /// after its event. On top of those, with quarters counted from 0: three rows sharing one
    /// timestamp in quarters 1, 4, 7, ...; three alerts sharing one `created` in quarters 2, 5,
    /// 8, ...; and, when there are at least four quarters, a row processed exactly on the edge of
    /// quarter 2 (so it is in both inclusive windows), two rows processed on the edge of quarter 3
    /// at the same instant, a row of quarter 0 processed 20 minutes late (two windows later), and
    /// two "Video History Streamed" rows of one user, camera and second that differ only in the
    /// video they streamed.
    pub fn generate(
        start: i64,
        quarters: u32,
        per_quarter: u32,
        max_processing_lag: i64,
        seed: u64,
    ) -> Dataset {
        let mut generator = Generator {
            rng: SplitMix64::new(seed),
            max_lag: max_processing_lag.max(0),
        };
        let quarters = i64::from(quarters);
        let per_quarter = per_quarter.max(1);
        let mut audit = Vec::new();
        let mut alerts = Vec::new();
        for quarter in 0..quarters {
            let edge = start + quarter * QUARTER;
            audit.push(generator.audit(edge, None));
            alerts.push(generator.alert(edge, None, None));
            for _ in 1..per_quarter {
                let at = edge + 1 + generator.below(QUARTER - 1);
                audit.push(generator.audit(at, None));
                let at = edge + 1 + generator.below(QUARTER - 1);
                alerts.push(generator.alert(at, None, None));
            }
            if quarter % 3 == 1 {
                let at = edge + 1 + generator.below(QUARTER - 1);
                for kind in INTERESTED_EVENTS {
                    audit.push(generator.audit(at, Some(kind)));
                }
            }
            if quarter % 3 == 2 {
                let at = edge + 1 + generator.below(QUARTER - 1);
                // The same camera twice (two types), and another camera.
                alerts.push(generator.alert(at, Some("motion"), Some(0)));
                alerts.push(generator.alert(at, Some("tamper"), Some(0)));
                alerts.push(generator.alert(at, Some("motion"), Some(1)));
            }
        }
        if quarters >= 4 {
            let edge2 = start + 2 * QUARTER;
            let edge3 = start + 3 * QUARTER;
            audit.push(generator.processed_at(edge2 - 17, edge2, "Live Stream Started"));
            audit.push(generator.processed_at(edge3 - 40, edge3, "Archive Action Taken"));
            audit.push(generator.processed_at(edge3 - 3, edge3, "User Logged In"));
            audit.push(generator.processed_at(start + 800, start + 800 + 1200, "User Created"));
            audit.extend(generator.twins(start + QUARTER + 450));
        }
        // Stable sorts: rows on one instant keep their generation order.
        audit.sort_by_key(|event| event.timestamp);
        alerts.sort_by_key(|alert| alert.created);
        Dataset { audit, alerts }
    }

    /// Audit rows with `from <= timestamp < to`, in order.
    pub fn audit_between(&self, from: i64, to: i64) -> Vec<&AuditEvent> {
        self.audit
            .iter()
            .filter(|event| (from..to).contains(&event.timestamp))
            .collect()
    }

    /// Audit rows processed in `[from, to)`, in event-time order.
    pub fn audit_processed_between(&self, from: i64, to: i64) -> Vec<&AuditEvent> {
        self.audit
            .iter()
            .filter(|event| event.processed.is_some_and(|at| (from..to).contains(&at)))
            .collect()
    }

    /// Alerts with `from <= created < to`, in order.
    pub fn alerts_between(&self, from: i64, to: i64) -> Vec<&Alert> {
        self.alerts
            .iter()
            .filter(|alert| (from..to).contains(&alert.created))
            .collect()
    }

    /// The audit rows, one JSON object a line.
    pub fn audit_json_lines(&self) -> String {
        self.audit
            .iter()
            .map(|event| format!("{}\n", event.json))
            .collect()
    }

    /// The alerts, one JSON object a line.
    pub fn alerts_json_lines(&self) -> String {
        self.alerts
            .iter()
            .map(|alert| format!("{}\n", alert.json))
            .collect()
    }
}

struct User {
    id: &'static str,
    email: &'static str,
    name: &'static str,
}

const USERS: [User; 5] = [
    User {
        id: "3f9a2c1e-7b6d-4e58-9a0b-1c2d3e4f5a6b",
        email: "alice@example.com",
        name: "Alice Example",
    },
    User {
        id: "5b0e7d42-1c3a-4f6e-8d9b-2a4c6e8f0a1b",
        email: "bob@example.com",
        name: "Bob \"Bobby\" Tables",
    },
    User {
        id: "9c8d7e6f-5a4b-4c3d-9e2f-1a0b9c8d7e6f",
        email: "chloe@example.com",
        name: "Chloé Durand",
    },
    User {
        id: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        email: "dmitri@example.com",
        name: "Dmitri, Security",
    },
    User {
        id: SYSTEM_USER_ID,
        email: "",
        name: "-",
    },
];

struct Device {
    id: &'static str,
    name: &'static str,
    site: &'static str,
    kind: &'static str,
}

const CAMERAS: [Device; 4] = [
    Device {
        id: "89376792-eade-4506-8ee5-a67788231d91",
        name: "Lobby Cam",
        site: "HQ",
        kind: "Camera",
    },
    Device {
        id: "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        name: "Loading Dock",
        site: "HQ",
        kind: "Camera",
    },
    Device {
        id: "f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f",
        name: "Server Room, Rack 2",
        site: "Data Centre",
        kind: "Camera",
    },
    Device {
        id: "7a6b5c4d-3e2f-4109-8a7b-6c5d4e3f2a1b",
        name: "Front Door",
        site: "Branch",
        kind: "Camera",
    },
];

/// Event names beyond the seed's three, with whether they name devices.
const OTHER_EVENTS: [(&str, bool); 6] = [
    ("Public API Request", false),
    ("User Logged In", false),
    ("User Created", false),
    ("Camera Settings Updated", true),
    ("Door Unlocked", true),
    ("Alert Rule Changed", true),
];

struct Generator {
    rng: SplitMix64,
    max_lag: i64,
}

impl Generator {
    fn below(&mut self, bound: i64) -> i64 {
        self.rng.below(bound.max(1) as u64) as i64
    }

    fn lag(&mut self) -> i64 {
        self.below(self.max_lag + 1)
    }

    fn audit(&mut self, timestamp: i64, kind: Option<&'static str>) -> AuditEvent {
        let lag = self.lag();
        self.audit_row(timestamp, timestamp + lag, kind, None, None)
    }

    fn processed_at(&mut self, timestamp: i64, processed: i64, kind: &'static str) -> AuditEvent {
        self.audit_row(timestamp, processed, Some(kind), None, None)
    }

    /// Two rows the seed's id fields (timestamp, event name, user, devices) cannot tell apart:
    /// one user streamed two stretches of one camera's history in the same second.
    fn twins(&mut self, timestamp: i64) -> [AuditEvent; 2] {
        let video = |from: i64| json!({"video_end_time": from + 300, "video_start_time": from});
        [
            self.audit_row(
                timestamp,
                timestamp + 12,
                Some("Video History Streamed"),
                Some(0),
                Some(video(timestamp - 7200)),
            ),
            self.audit_row(
                timestamp,
                timestamp + 31,
                Some("Video History Streamed"),
                Some(0),
                Some(video(timestamp - 3600)),
            ),
        ]
    }

    fn audit_row(
        &mut self,
        timestamp: i64,
        processed: i64,
        kind: Option<&'static str>,
        user: Option<usize>,
        details: Option<Value>,
    ) -> AuditEvent {
        let (name, with_devices) = match kind {
            Some(name) => (
                name,
                INTERESTED_EVENTS.contains(&name)
                    || OTHER_EVENTS
                        .iter()
                        .any(|(n, devices)| *n == name && *devices),
            ),
            None => {
                // Half of the rows are the seed's interesting ones.
                if self.below(2) == 0 {
                    (INTERESTED_EVENTS[self.below(3) as usize], true)
                } else {
                    OTHER_EVENTS[self.below(OTHER_EVENTS.len() as i64) as usize]
                }
            }
        };
        let user = &USERS[match user {
            Some(index) => index,
            // System actions only for the events a system performs.
            None if name == "Archive Action Taken" || name == "Camera Settings Updated" => {
                self.below(USERS.len() as i64) as usize
            }
            None => self.below(USERS.len() as i64 - 1) as usize,
        }];
        let devices: Vec<Value> = if with_devices {
            // One or two cameras; two are listed in no particular order.
            let first = match (user_index(user), kind) {
                (Some(0), Some("Video History Streamed")) => 0,
                _ => self.below(CAMERAS.len() as i64) as usize,
            };
            let mut picked = vec![first];
            if self.below(4) == 0 && details.is_none() {
                picked.push((first + 1 + self.below(3) as usize) % CAMERAS.len());
            }
            picked
                .iter()
                .map(|&index| device(&CAMERAS[index]))
                .collect()
        } else {
            Vec::new()
        };
        let camera_name = devices
            .first()
            .and_then(|device| device["device_name"].as_str())
            .unwrap_or("");
        let description = match name {
            "Video History Streamed" => {
                format!("{} streamed historical video from {camera_name}", user.name)
            }
            "Live Stream Started" => {
                format!("{} started a live stream of {camera_name}", user.name)
            }
            "Archive Action Taken" => {
                format!(
                    "{} archived footage from {camera_name}\n(kept 30 days)",
                    user.name
                )
            }
            "Public API Request" => "GET /cameras/v1/devices".to_string(),
            "User Logged In" => format!("{} logged in", user.name),
            "User Created" => format!("{} created user \"eve@example.com\"", user.name),
            other => format!("{} on {camera_name}", other),
        };
        let details = details.unwrap_or_else(|| match name {
            "Video History Streamed" => {
                let from = timestamp - 600 - self.below(86_400);
                json!({"video_end_time": from + 300, "video_start_time": from})
            }
            "Public API Request" => json!({"api_key_name": "SIEM export", "status": 200}),
            "Archive Action Taken" => json!({"action": "create", "retention_days": 30}),
            _ => Value::Null,
        });
        let ip = format!(
            "{}.{}",
            if self.below(2) == 0 {
                "203.0.113"
            } else {
                "198.51.100"
            },
            1 + self.below(254)
        );
        let processed = (timestamp >= PROCESSED_TIMESTAMPS_FROM).then_some(processed);
        let support = (self.below(10) == 0).then(|| format!("VS-{}", 10_000 + self.below(90_000)));

        // Keys inserted alphabetically, so the order is the same whether or not serde_json keeps
        // insertion order in this build.
        let mut row = Map::new();
        row.insert("details".into(), details);
        row.insert("devices".into(), Value::Array(devices));
        row.insert("event_description".into(), json!(description));
        row.insert("event_name".into(), json!(name));
        row.insert("ip_address".into(), json!(ip));
        row.insert("organization_id".into(), json!(ORGANIZATION_ID));
        row.insert(
            "processed_timestamp".into(),
            processed.map_or(Value::Null, |at| json!(rfc3339_utc(at))),
        );
        row.insert("timestamp".into(), json!(rfc3339_utc(timestamp)));
        row.insert(
            "user_email".into(),
            if user.email.is_empty() {
                Value::Null
            } else {
                json!(user.email)
            },
        );
        row.insert("user_id".into(), json!(user.id));
        row.insert("user_name".into(), json!(user.name));
        row.insert(
            "verkada_support_id".into(),
            support.map_or(Value::Null, Value::String),
        );
        AuditEvent {
            timestamp,
            processed,
            json: Value::Object(row),
        }
    }

    fn alert(&mut self, created: i64, kind: Option<&'static str>, camera: Option<usize>) -> Alert {
        let kind = kind.unwrap_or_else(|| {
            NOTIFICATION_TYPES[self.below(NOTIFICATION_TYPES.len() as i64) as usize]
        });
        let camera = &CAMERAS[camera.unwrap_or_else(|| self.below(CAMERAS.len() as i64) as usize)];
        let objects: Vec<&str> = match kind {
            "motion" | "line_crossing" | "loitering" => {
                if self.below(2) == 0 {
                    vec!["person"]
                } else {
                    vec!["person", "vehicle"]
                }
            }
            "crowd" | "person_of_interest" => vec!["person"],
            "license_plate_of_interest" => vec!["vehicle"],
            _ => Vec::new(),
        };
        let person_label = match kind {
            "person_of_interest" => {
                json!(["Contractor, badge 42", "Former employee"][self.below(2) as usize])
            }
            "license_plate_of_interest" => json!(format!("Plate 7ABC{:03}", self.below(1000))),
            _ => Value::Null,
        };
        let crowd_threshold = if kind == "crowd" {
            json!(5 + self.below(10))
        } else {
            Value::Null
        };
        let mut alert = Map::new();
        alert.insert("camera_id".into(), json!(camera.id));
        alert.insert("created".into(), json!(created));
        alert.insert("crowd_threshold".into(), crowd_threshold);
        alert.insert("image_url".into(), Value::Null);
        alert.insert("notification_type".into(), json!(kind));
        alert.insert("objects".into(), json!(objects));
        alert.insert("person_label".into(), person_label);
        alert.insert(
            "video_url".into(),
            json!(format!(
                "https://command.verkada.com/cameras/{}/history/86400/{created}/?duration=86400&initialVideoTime={created}000",
                camera.id
            )),
        );
        Alert {
            created,
            notification_type: kind,
            json: Value::Object(alert),
        }
    }
}

fn user_index(user: &User) -> Option<usize> {
    USERS.iter().position(|candidate| candidate.id == user.id)
}

fn device(device: &Device) -> Value {
    let mut map = Map::new();
    map.insert("details".into(), Value::Null);
    map.insert("device_id".into(), json!(device.id));
    map.insert("device_name".into(), json!(device.name));
    map.insert("device_site_name".into(), json!(device.site));
    map.insert("device_type".into(), json!(device.kind));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    const START: i64 = 1_757_980_800; // 2025-09-16T00:00:00Z

    fn data() -> Dataset {
        Dataset::generate(START, 8, 6, 600, 7)
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(data(), data());
        assert_ne!(data(), Dataset::generate(START, 8, 6, 600, 8));
    }

    #[test]
    fn every_quarter_has_edge_rows_and_alerts() {
        let data = data();
        for quarter in 0..8 {
            let edge = START + quarter * QUARTER;
            assert_eq!(data.audit_between(edge, edge + QUARTER)[0].timestamp, edge);
            assert_eq!(data.alerts_between(edge, edge + QUARTER)[0].created, edge);
        }
        assert!(
            data.audit
                .windows(2)
                .all(|w| w[0].timestamp <= w[1].timestamp)
        );
        assert!(data.alerts.windows(2).all(|w| w[0].created <= w[1].created));
    }

    #[test]
    fn equal_times_edges_and_late_rows() {
        let data = data();
        let mut by_time = BTreeMap::<i64, usize>::new();
        for event in &data.audit {
            *by_time.entry(event.timestamp).or_default() += 1;
        }
        assert!(by_time.values().filter(|&&n| n >= 3).count() >= 3);
        let mut by_created = BTreeMap::<i64, usize>::new();
        for alert in &data.alerts {
            *by_created.entry(alert.created).or_default() += 1;
        }
        assert!(by_created.values().filter(|&&n| n >= 3).count() >= 2);
        // Processed exactly on edges, and once twice on one edge.
        let on_edge = |edge: i64| {
            data.audit
                .iter()
                .filter(|e| e.processed == Some(edge) && e.timestamp < edge)
                .count()
        };
        assert!(on_edge(START + 2 * QUARTER) >= 1);
        assert!(on_edge(START + 3 * QUARTER) >= 2);
        // Rows processed one or more windows after their event's window.
        let late = data
            .audit
            .iter()
            .filter(|e| e.processed.unwrap() / QUARTER > e.timestamp / QUARTER)
            .count();
        assert!(late >= 5, "{late}");
        assert!(
            data.audit
                .iter()
                .any(|e| e.processed.unwrap() / QUARTER >= e.timestamp / QUARTER + 2)
        );
    }

    #[test]
    fn twins_differ_only_in_details() {
        let data = data();
        let key = |e: &AuditEvent| {
            let devices: Vec<&Value> = e.json["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| &d["device_id"])
                .collect();
            format!(
                "{}|{}|{}|{:?}",
                e.json["timestamp"], e.json["event_name"], e.json["user_id"], devices
            )
        };
        let mut seen = HashSet::new();
        let twins: Vec<&AuditEvent> = data.audit.iter().filter(|e| !seen.insert(key(e))).collect();
        assert_eq!(
            twins.len(),
            1,
            "exactly one pair shares the seed's id fields"
        );
        let twin = twins[0];
        let pair: Vec<&AuditEvent> = data.audit.iter().filter(|e| key(e) == key(twin)).collect();
        assert_ne!(pair[0].json["details"], pair[1].json["details"]);
    }

    #[test]
    fn rows_look_like_verkada_rows() {
        let data = data();
        for event in &data.audit {
            let row = event.json.as_object().unwrap();
            assert_eq!(row.len(), 12);
            assert_eq!(row["timestamp"], json!(rfc3339_utc(event.timestamp)));
            assert!(row["devices"].is_array());
        }
        assert!(
            data.audit
                .iter()
                .any(|e| e.json["user_id"] == SYSTEM_USER_ID && e.json["user_name"] == "-")
        );
        assert!(
            data.audit
                .iter()
                .any(|e| e.json["event_description"].as_str().unwrap().contains('\n'))
        );
        let names: HashSet<&str> = data
            .audit
            .iter()
            .map(|e| e.json["event_name"].as_str().unwrap())
            .collect();
        for name in INTERESTED_EVENTS {
            assert!(names.contains(name));
        }
        assert!(names.len() > 3);
        for alert in &data.alerts {
            assert_eq!(alert.json["created"], json!(alert.created));
            assert!(NOTIFICATION_TYPES.contains(&alert.notification_type));
            assert!(alert.json["image_url"].is_null());
        }
    }

    #[test]
    fn old_rows_have_no_processing_time() {
        let data = Dataset::generate(PROCESSED_TIMESTAMPS_FROM - 2 * QUARTER, 4, 3, 600, 1);
        for event in &data.audit {
            assert_eq!(
                event.processed.is_none(),
                event.timestamp < PROCESSED_TIMESTAMPS_FROM
            );
            assert_eq!(
                event.json["processed_timestamp"].is_null(),
                event.processed.is_none()
            );
        }
        assert!(Dataset::generate(START, 0, 5, 600, 1).audit.is_empty());
    }
}
