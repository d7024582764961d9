//! Splitting a requested range into windows, sized by how densely the stream holds records.
//!
//! A request costs the same whether it is a window's first page or its tenth, but every window
//! costs at least one request, and one whose last page is short costs a partial one. So the
//! fewest requests come from the largest windows the vendor pages through: where records are
//! sparse, a window spans as much as the connector allows (`max-window`). Where they are dense, a
//! window is sized to hold about [`TARGET_PAGES`] full pages: the partial page at its end costs
//! at most 1/TARGET_PAGES more requests, and the workers still have windows to fetch side by
//! side. What a stream holds is learned from the windows fetched (and remembered between runs).

use crate::state::{Density, Interval, WindowProgress, gaps, merge};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// How many full pages a window of dense records is sized to hold.
pub const TARGET_PAGES: u64 = 32;

/// The shortest window sized from density: records stamped within one second of each other are
/// not worth splitting (Yandex's disk events have whole seconds).
const MIN_SIZED_WINDOW_MS: i64 = 1000;

/// How much evidence is kept: beyond this span of windows, older evidence is scaled down, so that
/// a stream whose volume changed is sized by what it holds now.
const EVIDENCE_SPAN_MS: u64 = 7 * 24 * 3_600_000;

/// A window to fetch, and how far an earlier run got with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedWindow {
    pub window: Interval,
    pub resume: Option<WindowProgress>,
}

/// How the planner reads and grows the density the state store keeps.
impl Density {
    /// Adds what one fetched window held: its span, its records and its fullest page that was
    /// followed by another.
    pub fn observe(&mut self, window: Interval, records: u64, full_page: u64) {
        let span = u64::try_from(window.end - window.start).unwrap_or(0);
        self.records = self.records.saturating_add(records);
        self.millis = self.millis.saturating_add(span);
        self.full_page = self.full_page.max(full_page);
        if self.millis > EVIDENCE_SPAN_MS {
            // Keeps the rate, forgets the weight: later windows move the estimate as much as
            // the last week's did.
            let scale = EVIDENCE_SPAN_MS as f64 / self.millis as f64;
            self.records = (self.records as f64 * scale).round() as u64;
            self.millis = EVIDENCE_SPAN_MS;
        }
    }

    /// Adds what a window the vendor refused to page deeper into held: `records` stamped within
    /// `seen` (its pages' oldest to newest record), after `pages` pages.
    pub fn observe_refusal(&mut self, seen: Interval, records: u64, full_page: u64, pages: u64) {
        self.observe(seen, records, full_page);
        if pages > 0 && (self.refused_after_pages == 0 || pages < self.refused_after_pages) {
            self.refused_after_pages = pages;
        }
    }

    /// How many full pages a window is sized to hold: [`TARGET_PAGES`], or half as many as the
    /// vendor let a window take before it refused to go deeper.
    pub fn target_pages(&self) -> u64 {
        match self.refused_after_pages {
            0 => TARGET_PAGES,
            refused => (refused / 2).clamp(1, TARGET_PAGES),
        }
    }

    /// The window span expected to hold `pages` full pages; `None` when nothing shows the records
    /// are dense enough to need more than one page in any window.
    pub fn span_for_pages(&self, pages: u64) -> Option<i64> {
        if self.full_page == 0 || self.records == 0 || self.millis == 0 {
            return None;
        }
        let wanted = (self.full_page * pages) as f64;
        let per_ms = self.records as f64 / self.millis as f64;
        let span = (wanted / per_ms).round().min(i64::MAX as f64) as i64;
        Some(span.max(MIN_SIZED_WINDOW_MS))
    }

    /// The span of a window sized for this stream; `None` for as long as the cap allows.
    pub fn window_span(&self) -> Option<i64> {
        self.span_for_pages(self.target_pages())
    }
}

/// The pieces a window the vendor refused to page through is asked for in: each sized for the
/// stream (halves when nothing says more), of equal length, none under `min_piece`.
pub fn split(window: Interval, density: &Density, min_piece: i64) -> Vec<Interval> {
    let length = window.end - window.start;
    let pieces = density
        .window_span()
        .map_or(2, |span| length.div_euclid(span.max(1)) + 1)
        .clamp(2, (length / min_piece.max(1)).max(2));
    (0..pieces)
        .map(|piece| {
            let start = window.start + length * piece / pieces;
            let end = window.start + length * (piece + 1) / pieces;
            Interval::new(start, end)
        })
        .collect()
}

/// The density of a stream's run, shared by the workers that observe it and the planner that
/// sizes windows from it.
#[derive(Clone, Debug, Default)]
pub struct SharedDensity(Arc<Mutex<Density>>);

impl SharedDensity {
    pub fn new(density: Density) -> Self {
        SharedDensity(Arc::new(Mutex::new(density)))
    }

    pub fn get(&self) -> Density {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn observe(&self, window: Interval, records: u64, full_page: u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(window, records, full_page);
    }

    pub fn observe_refusal(&self, seen: Interval, records: u64, full_page: u64, pages: u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe_refusal(seen, records, full_page, pages);
    }
}

/// Hands out the windows of a run, in time order, one at a time: windows an earlier run started
/// (resumed where they stopped) as they were, and the rest of the range sized when it is handed
/// out, from what the windows before it held.
#[derive(Debug)]
pub struct WindowPlanner {
    /// What is left to plan, in time order.
    gaps: VecDeque<Interval>,
    /// Windows an earlier run started, in time order.
    resumed: VecDeque<PlannedWindow>,
    /// Where windows' grid starts: a range's windows of one size share edges with a resumed run's.
    origin: i64,
    /// The connector's `max-window`; `i64::MAX` for none.
    cap: i64,
    density: SharedDensity,
    handed_out: usize,
}

impl WindowPlanner {
    /// Plans what of `range` is not `completed`: windows an earlier run started (`in_progress`)
    /// are resumed, the rest is cut as it is handed out, no window longer than `max_window`
    /// milliseconds (0: no limit).
    pub fn new(
        range: Interval,
        completed: &[Interval],
        in_progress: &[WindowProgress],
        max_window: u64,
        density: SharedDensity,
    ) -> Self {
        let overlaps = |a: &Interval, b: &Interval| a.start < b.end && b.start < a.end;
        let mut resumed: Vec<PlannedWindow> = in_progress
            .iter()
            .filter(|progress| overlaps(&progress.window, &range))
            .filter(|progress| {
                !completed
                    .iter()
                    .any(|done| overlaps(done, &progress.window))
            })
            .map(|progress| PlannedWindow {
                window: progress.window,
                resume: Some(progress.clone()),
            })
            .collect();
        resumed.sort_by_key(|planned| planned.window.start);
        let covered = resumed.iter().fold(completed.to_vec(), |covered, planned| {
            merge(&covered, planned.window)
        });
        WindowPlanner {
            gaps: gaps(range, &covered).into(),
            resumed: resumed.into(),
            origin: range.start,
            cap: match i64::try_from(max_window) {
                Ok(0) | Err(_) => i64::MAX,
                Ok(cap) => cap,
            },
            density,
            handed_out: 0,
        }
    }

    /// How many windows were handed out so far.
    pub fn handed_out(&self) -> usize {
        self.handed_out
    }

    /// The next window in time order, or `None` when the range is covered.
    pub fn next_window(&mut self) -> Option<PlannedWindow> {
        let resumed_first = match (self.resumed.front(), self.gaps.front()) {
            (Some(resumed), Some(gap)) => resumed.window.start <= gap.start,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let planned = if resumed_first {
            self.resumed.pop_front()?
        } else {
            let gap = self.gaps.pop_front()?;
            let window = self.cut(gap);
            if window.end < gap.end {
                self.gaps.push_front(Interval::new(window.end, gap.end));
            }
            PlannedWindow {
                window,
                resume: None,
            }
        };
        self.handed_out += 1;
        Some(planned)
    }

    /// The first window of `gap`: as long as the density allows and the cap permits (windows of
    /// the cap's length on its grid from the range's start, so that a rerun asks the same
    /// questions), taking the gap's end along rather than leaving a sliver of under a quarter
    /// window for a window of its own.
    fn cut(&self, gap: Interval) -> Interval {
        let end = match self.density.get().window_span() {
            Some(span) if span < self.cap => gap.start.saturating_add(span),
            _ => {
                let offset = (gap.start - self.origin).rem_euclid(self.cap);
                (gap.start - offset).saturating_add(self.cap)
            }
        };
        if end >= gap.end {
            return gap;
        }
        let size = end - gap.start;
        if gap.end - end < size / 4 && gap.end - gap.start <= self.cap {
            return gap;
        }
        Interval::new(gap.start, end)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 3_600_000;

    fn plan(
        range: Interval,
        completed: &[Interval],
        in_progress: &[WindowProgress],
        max_window: i64,
        density: Density,
    ) -> Vec<PlannedWindow> {
        let mut planner = WindowPlanner::new(
            range,
            completed,
            in_progress,
            max_window as u64,
            SharedDensity::new(density),
        );
        std::iter::from_fn(|| planner.next_window()).collect()
    }

    fn windows(range: Interval, completed: &[Interval], max_window: i64) -> Vec<Interval> {
        plan(range, completed, &[], max_window, Density::default())
            .into_iter()
            .map(|planned| planned.window)
            .collect()
    }

    /// A stream holding `per_minute` records a minute, on pages of 100.
    fn dense(per_minute: u64) -> Density {
        let mut density = Density::default();
        density.observe(Interval::new(0, HOUR), per_minute * 60, 100);
        density
    }

    #[test]
    fn a_cap_splits_into_windows_without_shared_edges() {
        let planned = windows(Interval::new(0, 3 * HOUR), &[], HOUR);
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
    fn sparse_records_take_one_window_as_long_as_the_cap_allows() {
        // Nothing seen yet, or windows that never needed a second page: the vendor pages
        // through whatever is there, one request for a quiet range.
        let range = Interval::new(0, 180 * 24 * HOUR);
        assert_eq!(windows(range, &[], 0), vec![range]);
        let mut quiet = Density::default();
        quiet.observe(Interval::new(0, 24 * HOUR), 40, 0);
        assert_eq!(
            plan(range, &[], &[], 0, quiet).len(),
            1,
            "a quiet stream is one window"
        );
        assert_eq!(windows(range, &[], 30 * 24 * HOUR).len(), 6);
    }

    #[test]
    fn dense_records_take_windows_of_about_the_target_pages() {
        // 100 records a minute on pages of 100: 32 pages are 32 minutes.
        let planned = plan(Interval::new(0, 4 * HOUR), &[], &[], 0, dense(100));
        assert!(
            planned.iter().all(
                |planned| planned.window.end - planned.window.start == 32 * MINUTE
                    || planned.window.end == 4 * HOUR
            ),
            "{planned:?}"
        );
        assert_eq!(planned.len(), 8);
        // The cap still caps.
        let capped = plan(Interval::new(0, HOUR), &[], &[], 15 * MINUTE, dense(1));
        assert_eq!(capped.len(), 4);
    }

    #[test]
    fn the_size_follows_what_workers_observe_while_the_range_is_handed_out() {
        let density = SharedDensity::default();
        let mut planner = WindowPlanner::new(
            Interval::new(0, 10 * HOUR),
            &[],
            &[],
            HOUR as u64,
            density.clone(),
        );
        assert_eq!(
            planner.next_window().unwrap().window,
            Interval::new(0, HOUR)
        );
        // That hour needed 60 full pages: the next windows are a little over half an hour.
        density.observe(Interval::new(0, HOUR), 6000, 100);
        let next = planner.next_window().unwrap().window;
        assert_eq!(next.start, HOUR);
        assert_eq!(next.end - next.start, 32 * MINUTE);
        assert_eq!(planner.handed_out(), 2);
    }

    #[test]
    fn a_sliver_at_the_end_joins_the_window_before_it_within_the_cap() {
        let dense = dense(100);
        let planned = plan(Interval::new(0, 32 * MINUTE + MINUTE), &[], &[], 0, dense);
        assert_eq!(planned.len(), 1, "{planned:?}");
        // Past the cap it stays a window of its own.
        assert_eq!(
            windows(Interval::new(0, HOUR + 5), &[], HOUR),
            vec![Interval::new(0, HOUR), Interval::new(HOUR, HOUR + 5)]
        );
    }

    #[test]
    fn completed_parts_are_skipped_and_the_grid_is_kept() {
        let completed = [Interval::new(0, HOUR + HOUR / 2)];
        let planned = windows(Interval::new(0, 3 * HOUR), &completed, HOUR);
        assert_eq!(
            planned,
            vec![
                Interval::new(HOUR + HOUR / 2, 2 * HOUR),
                Interval::new(2 * HOUR, 3 * HOUR)
            ]
        );
        assert!(windows(Interval::new(0, HOUR), &[Interval::new(0, HOUR)], 1).is_empty());
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
        let planned = plan(
            Interval::new(0, 3 * HOUR),
            &[],
            std::slice::from_ref(&progress),
            HOUR,
            Density::default(),
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
            plan(
                Interval::new(5 * HOUR, 6 * HOUR),
                &[],
                &[progress],
                HOUR,
                Density::default()
            )
            .iter()
            .all(|planned| planned.resume.is_none())
        );
    }

    #[test]
    fn old_evidence_weighs_less_but_keeps_its_rate() {
        let mut density = Density::default();
        density.observe(Interval::new(0, 30 * 24 * HOUR), 30 * 24 * 600, 100);
        assert_eq!(density.millis, EVIDENCE_SPAN_MS);
        let before = density.span_for_pages(TARGET_PAGES).unwrap();
        assert_eq!(before, (3200.0 / (600.0 / HOUR as f64)) as i64);
        // A quieter day now moves it noticeably.
        density.observe(Interval::new(0, 24 * HOUR), 0, 0);
        assert!(density.span_for_pages(TARGET_PAGES).unwrap() > before);
    }

    #[test]
    fn a_window_the_vendor_would_not_page_through_is_split_by_what_its_pages_held() {
        // Nothing known: halves.
        let window = Interval::new(0, 8 * HOUR);
        assert_eq!(
            split(window, &Density::default(), 1000),
            vec![
                Interval::new(0, 4 * HOUR),
                Interval::new(4 * HOUR, 8 * HOUR)
            ]
        );
        // Ten full pages of 100 stamped within the window's newest hour, then a refusal: the
        // rest is asked for in windows of five pages (half what the vendor allowed), and so are
        // the windows planned after it.
        let mut density = Density::default();
        density.observe_refusal(Interval::new(7 * HOUR, 8 * HOUR), 1000, 100, 10);
        assert_eq!(density.target_pages(), 5);
        assert_eq!(density.window_span(), Some(30 * MINUTE));
        let pieces = split(window, &density, 1000);
        assert_eq!(pieces.len(), 17);
        assert_eq!(pieces.first().unwrap().start, 0);
        assert_eq!(pieces.last().unwrap().end, 8 * HOUR);
        assert!(pieces.windows(2).all(|pair| pair[0].end == pair[1].start));
        // Never pieces under the shortest a vendor can be asked for.
        let mut crowded = Density::default();
        crowded.observe_refusal(Interval::new(0, 10), 1000, 100, 10);
        assert_eq!(split(Interval::new(0, 5000), &crowded, 1000).len(), 5);
        assert_eq!(split(Interval::new(0, 2000), &crowded, 1000).len(), 2);
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
}
