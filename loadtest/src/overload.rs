//! `overload`: customers arrive at the sustainable rate (`--rate`), then at
//! `--factor` times it for `--overload`, then at the sustainable rate
//! again. Every `send`'s answer is kept with the time its attempt went out,
//! and cut afterwards into the phases:
//! - the admitted sends' ack latency, before and during the overload;
//! - how fast shed sends (`unavailable`) were answered;
//! - how long after the overload the node was back to normal: no more sends
//!   shed than before (give or take 1%) and the admitted p99 within twice
//!   the one before, in every second from then on;
//! - acknowledged messages lost (the tracker's counters), which must be 0.
//!
//! A shed command is sent again after the node's `retry_after_ms`, for up
//! to 30 s (the web clients try four times); a refused chat start is not
//! tried again (the widget would).

use serde::Serialize;
use std::time::{Duration, Instant};

use crate::cli::OverloadArgs;
use crate::failover::p99;
use crate::scenario::{shared_for, steady_with, SteadyReport};
use crate::stats::Answer;

/// Buckets of the recovery timeline.
const BUCKET: Duration = Duration::from_secs(1);
/// Normal again: admitted p99 within this many times the one before...
const NORMAL_P99_FACTOR: f64 = 2.0;
/// ...and no more sends shed than before, give or take this share.
const NORMAL_SHED_SLACK: f64 = 0.01;

#[derive(Serialize)]
pub struct Phase {
    pub from_s: f64,
    pub to_s: f64,
    pub sends_per_s: f64,
    pub admitted: usize,
    pub shed: usize,
    pub admitted_p50_ms: Option<f64>,
    pub admitted_p99_ms: Option<f64>,
    /// How long a shed send waited for its `unavailable`.
    pub shed_answer_p99_ms: Option<f64>,
    pub shed_answer_max_ms: Option<f64>,
}

#[derive(Serialize)]
pub struct OverloadReport {
    pub load: SteadyReport,
    pub factor: f64,
    pub before: Phase,
    pub during: Phase,
    pub after: Phase,
    /// From the end of the overload to the first second from which the
    /// rest of the run is normal; `None`: not before the run ended.
    pub recovered_after_s: Option<f64>,
    /// The calm phase after, second by second (times from the start).
    pub recovery: Vec<Phase>,
    pub admitted_p99_over_before: Option<f64>,
    pub acked_lost: u64,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn phase(answers: &[Answer], start: Instant, from: Duration, to: Duration) -> Phase {
    let within: Vec<&Answer> = answers
        .iter()
        .filter(|answer| {
            let at = answer.sent.saturating_duration_since(start);
            at >= from && at < to
        })
        .collect();
    let mut admitted: Vec<f64> = within
        .iter()
        .filter(|answer| answer.admitted)
        .map(|answer| ms(answer.took))
        .collect();
    let mut shed: Vec<f64> = within
        .iter()
        .filter(|answer| !answer.admitted)
        .map(|answer| ms(answer.took))
        .collect();
    let median = |values: &mut [f64]| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    Phase {
        from_s: from.as_secs_f64(),
        to_s: to.as_secs_f64(),
        sends_per_s: within.len() as f64 / (to - from).as_secs_f64().max(1e-9),
        admitted: admitted.len(),
        shed: shed.len(),
        admitted_p50_ms: median(&mut admitted),
        admitted_p99_ms: p99(&mut admitted),
        shed_answer_p99_ms: p99(&mut shed),
        shed_answer_max_ms: shed.iter().copied().reduce(f64::max),
    }
}

/// `BUCKET`-long phases from `from` (the end of the overload) to `to`.
fn buckets(answers: &[Answer], start: Instant, from: Duration, to: Duration) -> Vec<Phase> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        out.push(phase(answers, start, at, (at + BUCKET).min(to)));
        at += BUCKET;
    }
    out
}

impl Phase {
    fn shed_share(&self) -> f64 {
        self.shed as f64 / (self.admitted + self.shed).max(1) as f64
    }
}

/// The first whole second after `from` (the end of the overload) from
/// which the rest of the run, `to`, is as normal as `before`: no more
/// sends shed (give or take 1%), admitted p99 within twice. The rest is
/// taken together: a calm node sheds now and then too.
fn recovered_after(
    answers: &[Answer],
    start: Instant,
    from: Duration,
    to: Duration,
    before: &Phase,
) -> Option<f64> {
    let normal = |rest: &Phase| {
        rest.shed_share() <= before.shed_share() + NORMAL_SHED_SLACK
            && match (rest.admitted_p99_ms, before.admitted_p99_ms) {
                (Some(p99), Some(normal)) => p99 <= normal * NORMAL_P99_FACTOR,
                _ => true,
            }
    };
    let mut at = from;
    // The last few seconds alone say too little.
    while at + BUCKET * 5 <= to {
        if normal(&phase(answers, start, at, to)) {
            return Some((at - from).as_secs_f64());
        }
        at += BUCKET;
    }
    None
}

pub async fn overload(args: OverloadArgs) -> anyhow::Result<OverloadReport> {
    let mut steady = args.steady.clone();
    steady.duration = args.before + args.overload + args.after;
    steady.surge = Some(crate::run::Surge {
        at: args.before,
        lasts: args.overload,
        factor: args.factor,
    });
    let shared = shared_for(&steady.target, &steady.agents, &steady.workload)?;
    shared.metrics.keep_answers();
    let metrics = shared.metrics.clone();
    // Spawned when the measured window starts: its start.
    let (load, start) = steady_with(steady, shared, "overload", async { Instant::now() }).await?;
    let answers = metrics.take_answers();
    let overload_end = args.before + args.overload;
    let end = overload_end + args.after;
    // The first half of the calm phase warms the node up.
    let before = phase(&answers, start, args.before / 2, args.before);
    let during = phase(&answers, start, args.before, overload_end);
    let after = phase(&answers, start, overload_end, end);
    let recovery = buckets(&answers, start, overload_end, end);
    let recovered_after_s = recovered_after(&answers, start, overload_end, end, &before);
    let admitted_p99_over_before = match (during.admitted_p99_ms, before.admitted_p99_ms) {
        (Some(during), Some(before)) if before > 0.0 => Some(during / before),
        _ => None,
    };
    let acked_lost = load.result.counters.lost;
    Ok(OverloadReport {
        load,
        factor: args.factor,
        before,
        during,
        after,
        recovered_after_s,
        recovery,
        admitted_p99_over_before,
        acked_lost,
    })
}

impl OverloadReport {
    pub fn print(&self) {
        self.load.print();
        println!("-- overload: {}x the rate --", self.factor);
        let line = |name: &str, phase: &Phase| {
            let show = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.1}"));
            println!(
                "  {name:<7} {:>5.0}-{:<5.0}s  sends {:>7.0}/s  admitted {:>7} (p50 {} ms, p99 {} ms)  shed {:>7} (answered p99 {} ms, max {} ms)",
                phase.from_s,
                phase.to_s,
                phase.sends_per_s,
                phase.admitted,
                show(phase.admitted_p50_ms),
                show(phase.admitted_p99_ms),
                phase.shed,
                show(phase.shed_answer_p99_ms),
                show(phase.shed_answer_max_ms),
            );
        };
        line("before", &self.before);
        line("during", &self.during);
        line("after", &self.after);
        match self.admitted_p99_over_before {
            Some(ratio) => println!("  admitted p99 during / before: {ratio:.2}x (target <= 3)"),
            None => println!("  admitted p99 during / before: -"),
        }
        match self.recovered_after_s {
            Some(s) => println!("  normal again {s:.1} s after the overload (target <= 5)"),
            None => println!("  not normal again before the run ended"),
        }
        println!("  acknowledged messages lost: {}", self.acked_lost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn before(shed: usize, p99: f64) -> Phase {
        Phase {
            from_s: 0.0,
            to_s: 10.0,
            sends_per_s: 100.0,
            admitted: 1000 - shed,
            shed,
            admitted_p50_ms: None,
            admitted_p99_ms: Some(p99),
            shed_answer_p99_ms: None,
            shed_answer_max_ms: None,
        }
    }

    /// Second `n` (from the start) has 100 admitted sends of `took_ms`
    /// each and `shed` shed ones.
    fn second(start: Instant, n: u64, took_ms: u64, shed: usize) -> Vec<Answer> {
        let at = |i: u64| start + Duration::from_millis(n * 1000 + i * 5);
        let admitted = (0..100).map(|i| Answer {
            sent: at(i),
            took: Duration::from_millis(took_ms),
            admitted: true,
        });
        let refused = (0..shed as u64).map(|i| Answer {
            sent: at(i),
            took: Duration::from_millis(1),
            admitted: false,
        });
        admitted.chain(refused).collect()
    }

    #[test]
    fn recovery_is_the_first_second_from_which_the_rest_is_as_calm_as_before() {
        let start = Instant::now();
        let seconds = [
            (30, 50),
            (9, 20),
            (4, 0),
            (4, 3),
            (4, 0),
            (4, 0),
            (5, 0),
            (4, 0),
        ];
        let answers: Vec<Answer> = seconds
            .iter()
            .enumerate()
            .flat_map(|(n, (took, shed))| second(start, n as u64, *took, *shed))
            .collect();
        let end = Duration::from_secs(seconds.len() as u64);
        let calm = before(0, 4.0);
        // From second 2 on: 3 shed in 603 answers is within 1%; p99 5 ms.
        assert_eq!(
            recovered_after(&answers, start, Duration::ZERO, end, &calm),
            Some(2.0)
        );
        // Too little left to say.
        assert_eq!(
            recovered_after(
                &answers,
                start,
                Duration::ZERO,
                Duration::from_secs(6),
                &calm
            ),
            None
        );
    }

    #[test]
    fn phases_cut_answers_by_the_time_their_attempt_went_out() {
        let start = Instant::now();
        let answer = |at_ms: u64, took_ms: u64, admitted: bool| Answer {
            sent: start + Duration::from_millis(at_ms),
            took: Duration::from_millis(took_ms),
            admitted,
        };
        let answers = [
            answer(100, 5, true),
            answer(900, 50, false),
            answer(1100, 7, true),
        ];
        let first = phase(&answers, start, Duration::ZERO, Duration::from_secs(1));
        assert_eq!((first.admitted, first.shed), (1, 1));
        assert_eq!(first.admitted_p99_ms, Some(5.0));
        assert_eq!(first.shed_answer_max_ms, Some(50.0));
        assert!((first.sends_per_s - 2.0).abs() < 1e-9);
    }
}
