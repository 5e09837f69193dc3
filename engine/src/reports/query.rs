//! A report request: its parameters checked (each refusal names the
//! parameter, and nothing is read), then the stored 15-minute buckets
//! summed into the asked intervals of the asked time zone.

use super::projection::{bucket_of, Buckets, BUCKET_MS};
use super::totals::{AgentTotals, QueueTotals};
use crate::error::EngineError;
use chrono::{DateTime, LocalResult, NaiveDate, SecondsFormat, TimeZone, Timelike};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use switchboard_proto::report::Interval;
use switchboard_proto::Timestamp;

/// A report's query string, as sent.
#[derive(Clone, Debug, Default)]
pub struct ReportRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    pub interval: Option<String>,
    pub tz: Option<String>,
    /// Comma-separated queue (or agent) ids; all when absent.
    pub only: Option<String>,
}

/// A checked request: intervals from `from` (an interval's start) up to
/// `to` (an interval's end), in `tz`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRange {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval: Interval,
    pub tz: Tz,
}

/// The longest range for each interval.
fn longest_days(interval: Interval) -> i64 {
    match interval {
        Interval::Quarter => 92,
        Interval::Hour => 366,
        Interval::Day => 732,
    }
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidParameter(message)
}

/// The time zone named `name` (IANA), UTC when absent.
pub fn time_zone(name: Option<&str>) -> Result<Tz, EngineError> {
    match name.map(str::trim).filter(|name| !name.is_empty()) {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            invalid(format!(
                "tz: {name:?} is not an IANA time zone (e.g. Europe/Rome, UTC)"
            ))
        }),
    }
}

/// The first instant of `date` in `tz` (the first valid one if midnight
/// falls in a DST gap).
fn start_of_day(date: NaiveDate, tz: Tz) -> i64 {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return at.timestamp_millis()
            }
            LocalResult::None => local += chrono::Duration::minutes(30),
        }
    }
    tz.from_utc_datetime(&local).timestamp_millis()
}

/// `ms` in `tz` (an instant has one local time; out of chrono's range,
/// the epoch: [`range`] refuses such instants first).
fn local(ms: i64, tz: Tz) -> DateTime<Tz> {
    let utc = DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH);
    utc.with_timezone(&tz)
}

/// 9999-12-31T23:59:59.999Z: times are years 1970 to 9999.
const LAST_MS: i64 = 253_402_300_799_999;

/// The start of the interval holding `ms`.
pub fn interval_start(ms: i64, interval: Interval, tz: Tz) -> i64 {
    match interval {
        Interval::Quarter => bucket_of(ms),
        Interval::Hour => {
            let at = local(ms, tz);
            ms - i64::from(at.minute()) * 60_000
                - i64::from(at.second()) * 1000
                - i64::from(at.timestamp_subsec_millis())
        }
        Interval::Day => start_of_day(local(ms, tz).date_naive(), tz),
    }
}

/// The end of the interval holding `ms`.
pub fn interval_end(ms: i64, interval: Interval, tz: Tz) -> i64 {
    match interval {
        Interval::Quarter => bucket_of(ms) + BUCKET_MS,
        Interval::Hour => interval_start(ms, interval, tz) + 3_600_000,
        Interval::Day => match local(ms, tz).date_naive().succ_opt() {
            Some(next) => start_of_day(next, tz),
            None => ms,
        },
    }
}

/// `from` or `to`: RFC 3339, or a date (its midnight in `tz`), from 1970
/// to 9999.
fn moment(name: &str, text: &str, tz: Tz) -> Result<i64, EngineError> {
    let text = text.trim();
    let at = match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(start_of_day(date, tz)),
        Err(_) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.timestamp_millis()),
    };
    match at {
        Some(at) if (0..=LAST_MS).contains(&at) => Ok(at),
        Some(_) => Err(invalid(format!(
            "{name}: {text:?} is not between 1970 and 9999"
        ))),
        None => Err(invalid(format!(
            "{name}: {text:?} is neither a date (2026-12-08) nor an RFC 3339 time \
             (2026-12-08T09:00:00Z)"
        ))),
    }
}

/// Checks a request's range, interval and time zone. Without `from` the
/// range is today (in `tz`); without `to`, it ends with the day of `from`.
pub fn range(request: &ReportRequest, now: Timestamp) -> Result<ReportRange, EngineError> {
    let interval = match request.interval.as_deref().map(str::trim) {
        None | Some("") => Interval::Quarter,
        Some(name) => Interval::parse(name)
            .ok_or_else(|| invalid(format!("interval: {name:?} is not one of 15m, 1h, 1d")))?,
    };
    let tz = time_zone(request.tz.as_deref())?;
    // An empty parameter is one not given (a form sends `from=`).
    let given = |text: &Option<String>| text.clone().filter(|text| !text.trim().is_empty());
    let from = match given(&request.from) {
        Some(text) => moment("from", &text, tz)?,
        None => interval_start(now.millis(), Interval::Day, tz),
    };
    let to = match given(&request.to) {
        Some(text) => moment("to", &text, tz)?,
        None => interval_end(from, Interval::Day, tz),
    };
    if from >= to {
        return Err(invalid(format!(
            "from: {} is not before to ({})",
            local(from, tz).to_rfc3339_opts(SecondsFormat::Secs, true),
            local(to, tz).to_rfc3339_opts(SecondsFormat::Secs, true)
        )));
    }
    let days = longest_days(interval);
    // An hour more: a range of whole local days may hold a DST change.
    if to - from > days * 86_400_000 + 3_600_000 {
        let name = request.interval.as_deref().unwrap_or("15m");
        return Err(invalid(format!(
            "to: a range of at most {days} days at interval {name}; ask a wider interval \
             or a shorter range"
        )));
    }
    Ok(ReportRange {
        from_ms: interval_start(from, interval, tz),
        to_ms: interval_end(to - 1, interval, tz),
        interval,
        tz,
    })
}

/// The most 15-minute buckets one report reads (subjects x quarters):
/// 300 agents for three weeks, or ten queues for three months.
pub const MOST_BUCKETS: i64 = 1_000_000;

/// Refuses a report that would read more than [`MOST_BUCKETS`]: of the
/// subjects asked (`only`), or of all `known` when none was named.
pub fn check_size(
    range: &ReportRange,
    only: &[String],
    known: usize,
    name: &str,
) -> Result<(), EngineError> {
    let subjects = if only.is_empty() { known } else { only.len() };
    let quarters = (range.to_ms - range.from_ms) / BUCKET_MS;
    let buckets = quarters.saturating_mul(subjects.max(1) as i64);
    if buckets > MOST_BUCKETS {
        return Err(invalid(format!(
            "{name}: this report would read {buckets} quarter-hour rows ({subjects} {name}s \
             x {quarters}), at most {MOST_BUCKETS}: name fewer with {name}= or ask a shorter range"
        )));
    }
    Ok(())
}

/// The ids asked for, each checked against `known`; empty for all.
pub fn subjects(
    name: &str,
    only: Option<&str>,
    known: impl Fn(&str) -> bool,
) -> Result<Vec<String>, EngineError> {
    let mut ids = Vec::new();
    for id in only.unwrap_or_default().split(',').map(str::trim) {
        if id.is_empty() {
            continue;
        }
        if !known(id) {
            return Err(invalid(format!("{name}: no {name} {id:?}")));
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// An interval start as the report shows it: RFC 3339 with `tz`'s offset.
pub fn shown(ms: i64, tz: Tz) -> String {
    local(ms, tz).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Sums buckets into the range's intervals, by (interval start, id).
pub fn sum_into<T: Default + Clone>(
    range: &ReportRange,
    buckets: impl IntoIterator<Item = (i64, String, T)>,
    add: impl Fn(&mut T, &T),
) -> BTreeMap<(i64, String), T> {
    let mut rows: BTreeMap<(i64, String), T> = BTreeMap::new();
    for (bucket, id, totals) in buckets {
        if bucket < range.from_ms || bucket >= range.to_ms {
            continue;
        }
        let start = interval_start(bucket, range.interval, range.tz);
        add(rows.entry((start, id)).or_default(), &totals);
    }
    rows
}

/// The agents' time not yet in stored buckets (from their last counted
/// moment to now), for the asked agents.
pub fn live_agent_time<'a>(
    live: &'a Buckets,
    only: &'a [String],
) -> impl Iterator<Item = (i64, String, AgentTotals)> + 'a {
    live.agents
        .iter()
        .filter(move |((_, id), _)| only.is_empty() || only.iter().any(|o| o == id.as_str()))
        .map(|((bucket, id), totals)| (*bucket, id.as_str().to_owned(), totals.clone()))
}

/// Queue buckets as rows.
pub fn queue_rows(
    range: &ReportRange,
    buckets: Vec<(i64, String, QueueTotals)>,
) -> Vec<switchboard_proto::report::QueueReportRow> {
    sum_into(range, buckets, QueueTotals::add)
        .into_iter()
        .map(|((start, id), totals)| {
            totals.row(switchboard_proto::QueueId::new(id), shown(start, range.tz))
        })
        .collect()
}

/// Agent buckets as rows.
pub fn agent_rows(
    range: &ReportRange,
    buckets: impl IntoIterator<Item = (i64, String, AgentTotals)>,
) -> Vec<switchboard_proto::report::AgentReportRow> {
    sum_into(range, buckets, AgentTotals::add)
        .into_iter()
        .map(|((start, id), totals)| {
            totals.row(switchboard_proto::AgentId::new(id), shown(start, range.tz))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    fn request(from: &str, to: &str, interval: &str, tz: &str) -> ReportRequest {
        ReportRequest {
            from: Some(from.into()),
            to: Some(to.into()),
            interval: Some(interval.into()),
            tz: Some(tz.into()),
            only: None,
        }
    }

    #[test]
    fn a_day_is_the_contact_centers_day_across_dst() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        // The last Sunday of October 2026: 25 hours long in Rome.
        let start = interval_start(at("2026-10-25T12:00:00Z"), Interval::Day, rome);
        assert_eq!(start, at("2026-10-24T22:00:00Z"));
        let end = interval_end(at("2026-10-25T12:00:00Z"), Interval::Day, rome);
        assert_eq!(end - start, 25 * 3_600_000);
        assert_eq!(shown(start, rome), "2026-10-25T00:00:00+02:00");
        assert_eq!(shown(end, rome), "2026-10-26T00:00:00+01:00");
    }

    #[test]
    fn an_hour_starts_on_the_local_hour_in_a_half_hour_zone() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let start = interval_start(at("2026-12-08T10:10:00Z"), Interval::Hour, kolkata);
        assert_eq!(start, at("2026-12-08T09:30:00Z"));
        assert_eq!(shown(start, kolkata), "2026-12-08T15:00:00+05:30");
    }

    #[test]
    fn bad_report_parameters_are_refused_naming_the_parameter() {
        let now = Timestamp(at("2026-12-08T12:00:00Z"));
        let refused = |request: ReportRequest, name: &str| {
            let error = range(&request, now).unwrap_err();
            assert!(matches!(error, EngineError::InvalidParameter(_)), "{error}");
            assert!(error.to_string().starts_with(name), "{error}");
        };
        refused(request("2026-12-08", "2026-12-07", "1h", "UTC"), "from:");
        refused(request("2026-12-08", "2026-12-08", "1h", "UTC"), "from:");
        refused(request("2025-01-01", "2026-02-05", "15m", "UTC"), "to:");
        refused(
            request("2026-12-01", "2026-12-08", "2h", "UTC"),
            "interval:",
        );
        refused(
            request("2026-12-01", "2026-12-08", "1h", "Mars/Olympus"),
            "tz:",
        );
        refused(request("yesterday", "2026-12-08", "1h", "UTC"), "from:");
        refused(
            request("-262000-01-01", "+262000-01-01", "1d", "UTC"),
            "from:",
        );
        refused(request("2026-01-01", "+262000-01-01", "1d", "UTC"), "to:");
        refused(request("1969-12-31", "1970-01-02", "1d", "UTC"), "from:");
        let known = |id: &str| id == "sales";
        assert!(subjects("queue", Some("sales,nope"), known)
            .unwrap_err()
            .to_string()
            .starts_with("queue:"));
        assert_eq!(
            subjects("queue", Some("sales"), known).unwrap(),
            vec!["sales"]
        );
        // 400 days is fine by the day.
        assert!(range(&request("2025-11-01", "2026-12-05", "1d", "UTC"), now).is_ok());
    }

    #[test]
    fn the_longest_range_is_counted_in_local_days_across_dst() {
        let now = Timestamp(at("2026-12-08T12:00:00Z"));
        // 92 days in Rome, one of them 25 hours long.
        assert!(range(
            &request("2026-09-01", "2026-12-02", "15m", "Europe/Rome"),
            now
        )
        .is_ok());
        assert!(range(
            &request("2026-09-01", "2026-12-03", "15m", "Europe/Rome"),
            now
        )
        .is_err());
    }

    #[test]
    fn a_spring_forward_day_is_23_hours_and_its_hours_are_whole() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        let noon = at("2026-03-29T10:00:00Z");
        let start = interval_start(noon, Interval::Day, rome);
        assert_eq!(start, at("2026-03-28T23:00:00Z"));
        assert_eq!(
            interval_end(noon, Interval::Day, rome) - start,
            23 * 3_600_000
        );
        // 03:00 local follows 01:59: the hour after the gap starts at 01:00Z.
        let after_gap = interval_start(at("2026-03-29T01:20:00Z"), Interval::Hour, rome);
        assert_eq!(after_gap, at("2026-03-29T01:00:00Z"));
        assert_eq!(shown(after_gap, rome), "2026-03-29T03:00:00+02:00");
    }

    #[test]
    fn a_report_reading_too_many_buckets_is_refused_naming_the_subjects() {
        let now = Timestamp(at("2026-12-08T12:00:00Z"));
        let week = range(&request("2026-12-01", "2026-12-08", "15m", "UTC"), now).unwrap();
        assert!(check_size(&week, &[], 300, "agent").is_ok());
        let quarter = range(&request("2026-09-08", "2026-12-08", "1d", "UTC"), now).unwrap();
        let refused = check_size(&quarter, &[], 300, "agent").unwrap_err();
        assert!(check_size(&quarter, &["lt1".to_owned()], 300, "agent").is_ok());
        assert!(refused.to_string().starts_with("agent:"), "{refused}");
    }

    #[test]
    fn without_a_range_a_report_is_today_in_its_time_zone() {
        let now = Timestamp(at("2026-12-08T23:30:00Z"));
        let rome = range(
            &ReportRequest {
                tz: Some("Europe/Rome".into()),
                ..ReportRequest::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(rome.from_ms, at("2026-12-08T23:00:00Z"));
        assert_eq!(rome.to_ms, at("2026-12-09T23:00:00Z"));
        assert_eq!(rome.interval, Interval::Quarter);
        // Empty parameters are parameters not given.
        let empty = ReportRequest {
            from: Some(String::new()),
            to: Some(" ".into()),
            interval: Some(String::new()),
            tz: Some(String::new()),
            only: Some(String::new()),
        };
        let utc = range(&empty, now).unwrap();
        assert_eq!(utc.from_ms, at("2026-12-08T00:00:00Z"));
        assert_eq!(utc.to_ms, at("2026-12-09T00:00:00Z"));
    }
}
