//! Splitting a requested range into the windows still to fetch.

use crate::state::{Interval, WindowProgress, gaps, merge};

/// A window to fetch, and how far an earlier run got with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWindow {
    pub window: Interval,
    pub resume: Option<WindowProgress>,
}

/// The windows that cover what of `range` is not `completed`: windows an earlier run started
/// (`in_progress`, resumed where they stopped) first, then new ones on the grid, in time order.
pub fn schedule(
    range: Interval,
    completed: &[Interval],
    in_progress: &[WindowProgress],
    max_window: u64,
) -> Vec<PlannedWindow> {
    let overlaps = |a: &Interval, b: &Interval| a.start < b.end && b.start < a.end;
    let resumed: Vec<&WindowProgress> = in_progress
        .iter()
        .filter(|progress| overlaps(&progress.window, &range))
        .filter(|progress| {
            !completed
                .iter()
                .any(|done| overlaps(done, &progress.window))
        })
        .collect();
    let covered = resumed
        .iter()
        .fold(completed.to_vec(), |covered, progress| {
            merge(&covered, progress.window)
        });
    let mut planned: Vec<PlannedWindow> = windows(range, &covered, max_window)
        .into_iter()
        .map(|window| PlannedWindow {
            window,
            resume: None,
        })
        .chain(resumed.into_iter().map(|progress| PlannedWindow {
            window: progress.window,
            resume: Some(progress.clone()),
        }))
        .collect();
    planned.sort_by_key(|planned| planned.window.start);
    planned
}

/// `intervals` without the part inside `cut`.
pub fn subtract(intervals: &[Interval], cut: Interval) -> Vec<Interval> {
    let mut left = Vec::new();
    for interval in intervals {
        if interval.end <= cut.start || interval.start >= cut.end {
            left.push(*interval);
            continue;
        }
        if interval.start < cut.start {
            left.push(Interval::new(interval.start, cut.start));
        }
        if interval.end > cut.end {
            left.push(Interval::new(cut.end, interval.end));
        }
    }
    left
}

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
    fn started_windows_are_resumed_not_replanned() {
        let progress = WindowProgress {
            window: Interval::new(HOUR / 2, HOUR + HOUR / 2),
            cursor: Some("c".into()),
            staged_len: 10,
            pages: 1,
            done: false,
        };
        let planned = schedule(
            Interval::new(0, 3 * HOUR),
            &[],
            std::slice::from_ref(&progress),
            HOUR as u64,
        );
        let windows: Vec<Interval> = planned.iter().map(|planned| planned.window).collect();
        assert_eq!(
            windows,
            vec![
                Interval::new(0, HOUR / 2),
                Interval::new(HOUR / 2, HOUR + HOUR / 2),
                Interval::new(HOUR + HOUR / 2, 2 * HOUR),
                Interval::new(2 * HOUR, 3 * HOUR),
            ]
        );
        assert_eq!(planned[1].resume, Some(progress.clone()));
        // A started window outside the range waits for a run that asks for it.
        assert!(
            schedule(
                Interval::new(5 * HOUR, 6 * HOUR),
                &[],
                &[progress],
                HOUR as u64
            )
            .iter()
            .all(|planned| planned.resume.is_none())
        );
    }

    #[test]
    fn subtracting_reopens_the_overlap() {
        let done = [Interval::new(0, 10), Interval::new(20, 30)];
        assert_eq!(
            subtract(&done, Interval::new(25, 40)),
            vec![Interval::new(0, 10), Interval::new(20, 25)]
        );
        assert_eq!(
            subtract(&done, Interval::new(5, 22)),
            vec![Interval::new(0, 5), Interval::new(22, 30)]
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
