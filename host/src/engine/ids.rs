//! What the engine remembers of a record's id.
//!
//! Ids are the connector's to choose, and the engine keeps them: in memory while it orders and
//! deduplicates a window, in staging files, and in the state file for the overlap a later run
//! reads again. A record's id is only ever compared there, never written out, so an id longer
//! than [`LONGEST_KEPT_ID`] bytes is kept as its SHA-256 digest instead: deduplication is as exact
//! (two ids share a digest only if SHA-256 is broken), and an id costs at most
//! [`DIGEST_ID_LEN`] bytes however long the connector made it.

use sha2::{Digest, Sha256};

/// The longest id kept as it is. Real APIs' ids are a UUID (36 bytes), a ULID (26), a number
/// (at most 20) or an object id (24): all kept readable in the state file. Anything longer costs
/// [`DIGEST_ID_LEN`] bytes, which only ids between 65 and 71 bytes pay for.
pub const LONGEST_KEPT_ID: usize = 64;

const DIGEST_PREFIX: &str = "sha256:";

/// The length of a digested id: longer than any id kept as it is, so that no id a connector
/// returns can equal the digest of another.
pub const DIGEST_ID_LEN: usize = DIGEST_PREFIX.len() + 64;
const _: () = assert!(DIGEST_ID_LEN > LONGEST_KEPT_ID);

/// The id the engine keeps for a record whose connector gave it `id`.
pub fn kept_id(id: String) -> String {
    if id.len() <= LONGEST_KEPT_ID {
        return id;
    }
    let mut kept = String::with_capacity(DIGEST_ID_LEN);
    kept.push_str(DIGEST_PREFIX);
    kept.push_str(&hex::encode(Sha256::digest(id.as_bytes())));
    kept
}

/// An id read back from the state file in the form the engine keeps now: a trawl from before
/// ids were digested remembered long ones as they were, and a record read again in the overlap
/// must still be recognised (else it is written twice, once, after an upgrade). Ids already
/// digested are left as they are.
pub fn remembered_by_an_older_trawl(id: String) -> String {
    if id.starts_with(DIGEST_PREFIX) && id.len() == DIGEST_ID_LEN {
        return id;
    }
    kept_id(id)
}

/// The most record ids remembered for one stream's overlap (each at most [`DIGEST_ID_LEN`]
/// bytes): what keeps the state file, and the set of ids a run loads from it, bounded whatever
/// the connector returns. A quarter of a million is more than an overlap of a real API holds (a
/// day of one record a second is 86,400).
pub const MAX_REMEMBERED_IDS: usize = 250_000;

/// `ids` (in event-time order) to remember when `remembered` are remembered already, less the
/// oldest past `cap`: the newest are nearest the watermark, where a later run's overlap is read
/// again. Also says how many were dropped.
pub fn newest_within(mut ids: Vec<String>, remembered: usize, cap: usize) -> (Vec<String>, usize) {
    let room = cap.saturating_sub(remembered);
    let dropped = ids.len().saturating_sub(room);
    ids.drain(..dropped);
    (ids, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_remembered_as_they_were_are_recognised_and_digests_stay() {
        let long = "u".repeat(80);
        let digest = kept_id(long.clone());
        assert_eq!(digest.len(), DIGEST_ID_LEN);
        assert_eq!(remembered_by_an_older_trawl(long), digest);
        assert_eq!(remembered_by_an_older_trawl(digest.clone()), digest);
        assert_eq!(remembered_by_an_older_trawl("short".into()), "short");
    }

    #[test]
    fn past_the_cap_the_newest_ids_are_remembered() {
        let ids = |range: std::ops::Range<u32>| range.map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(newest_within(ids(0..5), 3, 10), (ids(0..5), 0));
        assert_eq!(newest_within(ids(0..5), 7, 10), (ids(2..5), 2));
        assert_eq!(newest_within(ids(0..5), 10, 10), (ids(0..0), 5));
        assert_eq!(newest_within(ids(0..5), 12, 10), (ids(0..0), 5));
    }

    #[test]
    fn short_ids_are_kept_as_they_are_and_long_ones_as_a_digest() {
        let uuid = "0191b7a4-4c4e-7a3e-9d6f-2b1c3d4e5f60".to_string();
        assert_eq!(kept_id(uuid.clone()), uuid);
        let longest = "x".repeat(LONGEST_KEPT_ID);
        assert_eq!(kept_id(longest.clone()), longest);

        let long = "x".repeat(400);
        let kept = kept_id(long.clone());
        assert_eq!(kept.len(), DIGEST_ID_LEN);
        assert!(kept.starts_with("sha256:"));
        assert_eq!(kept, kept_id(long), "the same id is kept the same way");
        let other = format!("{}y", "x".repeat(399));
        assert_ne!(kept_id(other), kept, "ids differing anywhere stay apart");
    }
}
