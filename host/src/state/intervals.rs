//! Half-open time intervals, kept merged.

/// A half-open interval of milliseconds since the epoch: `start <= t < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
}

impl Interval {
    pub fn new(start: i64, end: i64) -> Self {
        Interval { start, end }
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Adds `new` to a sorted, merged list, keeping it sorted and merged (touching intervals join).
pub fn merge(intervals: &[Interval], new: Interval) -> Vec<Interval> {
    let mut all: Vec<Interval> = intervals.to_vec();
    if !new.is_empty() {
        all.push(new);
    }
    all.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(all.len());
    for interval in all {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    merged
}

/// The parts of `range` not covered by the sorted, merged `covered`.
pub fn gaps(range: Interval, covered: &[Interval]) -> Vec<Interval> {
    let mut gaps = Vec::new();
    let mut cursor = range.start;
    for interval in covered {
        if interval.end <= cursor {
            continue;
        }
        if interval.start >= range.end {
            break;
        }
        if interval.start > cursor {
            gaps.push(Interval::new(cursor, interval.start.min(range.end)));
        }
        cursor = cursor.max(interval.end);
    }
    if cursor < range.end {
        gaps.push(Interval::new(cursor, range.end));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start: i64, end: i64) -> Interval {
        Interval::new(start, end)
    }

    #[test]
    fn merge_joins_touching_and_overlapping() {
        let list = merge(&[], iv(10, 20));
        let list = merge(&list, iv(30, 40));
        assert_eq!(list, vec![iv(10, 20), iv(30, 40)]);
        let list = merge(&list, iv(20, 30));
        assert_eq!(list, vec![iv(10, 40)]);
        let list = merge(&list, iv(5, 12));
        assert_eq!(list, vec![iv(5, 40)]);
        assert_eq!(merge(&list, iv(7, 7)), vec![iv(5, 40)]);
    }

    #[test]
    fn gaps_are_what_is_left() {
        let covered = [iv(10, 20), iv(30, 40)];
        assert_eq!(
            gaps(iv(0, 50), &covered),
            vec![iv(0, 10), iv(20, 30), iv(40, 50)]
        );
        assert_eq!(gaps(iv(12, 18), &covered), vec![]);
        assert_eq!(gaps(iv(15, 35), &covered), vec![iv(20, 30)]);
        assert_eq!(gaps(iv(0, 5), &covered), vec![iv(0, 5)]);
        assert_eq!(gaps(iv(0, 50), &[]), vec![iv(0, 50)]);
    }
}
