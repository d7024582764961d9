//! Splitting a requested range into the windows still to fetch.

use crate::state::{Interval, gaps};

/// The windows that cover what of `range` is not yet `completed`, each at most `max_window`
/// milliseconds long (0: no limit), in time order. Windows are half-open and share no edge.
pub fn windows(range: Interval, completed: &[Interval], max_window: u64) -> Vec<Interval> {
    let step = i64::try_from(max_window).unwrap_or(i64::MAX);
    let mut windows = Vec::new();
    for gap in gaps(range, completed) {
        if step == 0 {
            windows.push(gap);
            continue;
        }
        // Windows are laid on a grid from the range's start, so that a resumed run asks the same
        // questions as the first one did.
        let mut start = gap.start;
        while start < gap.end {
            let offset = (start - range.start).rem_euclid(step);
            let end = (start - offset).saturating_add(step).min(gap.end);
            windows.push(Interval::new(start, end));
            start = end;
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn splits_into_hours_without_shared_edges() {
        let planned = windows(Interval::new(0, 3 * HOUR), &[], HOUR as u64);
        assert_eq!(
            planned,
            vec![
                Interval::new(0, HOUR),
                Interval::new(HOUR, 2 * HOUR),
                Interval::new(2 * HOUR, 3 * HOUR)
            ]
        );
        // Half-open: each instant belongs to exactly one window.
        for instant in [0, HOUR - 1, HOUR, 2 * HOUR, 3 * HOUR - 1] {
            let owners = planned
                .iter()
                .filter(|window| window.start <= instant && instant < window.end)
                .count();
            assert_eq!(owners, 1, "{instant}");
        }
    }

    #[test]
    fn skips_completed_and_keeps_the_grid() {
        let completed = [Interval::new(0, HOUR + HOUR / 2)];
        let planned = windows(Interval::new(0, 3 * HOUR), &completed, HOUR as u64);
        assert_eq!(
            planned,
            vec![
                Interval::new(HOUR + HOUR / 2, 2 * HOUR),
                Interval::new(2 * HOUR, 3 * HOUR)
            ]
        );
    }

    #[test]
    fn a_short_tail_and_no_limit() {
        assert_eq!(
            windows(Interval::new(0, HOUR + 5), &[], HOUR as u64),
            vec![Interval::new(0, HOUR), Interval::new(HOUR, HOUR + 5)]
        );
        assert_eq!(
            windows(Interval::new(0, 10 * HOUR), &[], 0),
            vec![Interval::new(0, 10 * HOUR)]
        );
        assert!(windows(Interval::new(0, HOUR), &[Interval::new(0, HOUR)], 1).is_empty());
    }
}
