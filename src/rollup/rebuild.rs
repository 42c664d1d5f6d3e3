//! `meridian rollup --from --to`: rebuilds closed hours from raw points (after raw rows were
//! corrected or imported by hand), then catches the job up to `--to` where it had not got
//! that far — with a progress bar. Hours after the newest closed one are closed the job's way
//! (`close_next_hour`: in order, only once due and no writer is still in them), never skipped.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_postgres::Client;

use crate::store::rollups::{self, Close};
use crate::store::StoreError;

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rebuilt {
    pub hours_rebuilt: u64,
    pub hours_closed: u64,
    pub days: u64,
    pub points: u64,
    /// Hours of the range the job may not close yet (not due, or a writer still in them).
    pub hours_left: u64,
}

/// An hour bound from the command line: a date (its midnight, UTC) or an RFC 3339 time.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(date.and_time(NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{raw:?} is neither a date (2026-11-30) nor an RFC 3339 time: {e}"))
}

/// Rebuilds the hours that `[from, to)` touches (widened to whole hours).
pub async fn run(
    client: &mut Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Rebuilt, StoreError> {
    let first = rollups::hour_of(from);
    let end = rollups::hour_of(to + TimeDelta::hours(1) - TimeDelta::microseconds(1));
    let total = (end - first).num_hours().max(0) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{wide_bar}] {pos}/{len} hours, {eta} left")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut done = Rebuilt::default();
    let watermark = rollups::watermark(&*client).await?;
    bar.set_message("rebuilding");
    let mut hour = first;
    while hour < end && watermark.is_some_and(|w| hour <= w) {
        let rebuilt = rollups::rebuild_hour(client, hour).await?;
        done.hours_rebuilt += 1;
        done.points += rebuilt.points;
        bar.inc(1);
        hour += TimeDelta::hours(1);
    }
    bar.set_message("closing");
    while hour < end {
        match rollups::close_next_hour(client).await? {
            Close::Closed(closed) => {
                done.hours_closed += 1;
                done.points += closed.points;
                if closed.bucket >= first {
                    bar.inc(1);
                    hour = closed.bucket + TimeDelta::hours(1);
                }
            }
            Close::Busy => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            Close::NotYet | Close::WritersInFlight => break,
        }
    }
    done.hours_left = (end - hour).num_hours().max(0) as u64;
    bar.set_message("days");
    // Days the rebuilt hours touch, if closed (a day still open gets its row when its last
    // hour closes).
    let rebuilt_until = first + TimeDelta::hours(done.hours_rebuilt as i64);
    let mut day = rollups::day_of(first);
    while day < rebuilt_until && watermark.is_some_and(|w| day + TimeDelta::hours(23) <= w) {
        rollups::rebuild_day(client, day).await?;
        done.days += 1;
        day += TimeDelta::days(1);
    }
    bar.finish_with_message("done");
    Ok(done)
}
