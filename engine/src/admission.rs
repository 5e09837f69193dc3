//! Admission under overload. A node past its capacity refuses part of its
//! new work at once (`unavailable` with a retry hint) so that the work it
//! admits keeps a bounded latency, instead of queueing everything and
//! answering all of it late.
//!
//! The signal is a standing queue. Over each interval two figures are kept:
//! the median time a command took (from the engine taking it to its
//! answer), and for each of the node's threads its *shortest* scheduling
//! lag (a probe timer on each: as in CoDel, a thread whose every wake-up
//! was late had work waiting all along). When the median thread's lag
//! exceeds the target (most threads short of CPU: one unlucky thread on a
//! shared machine is not an overload), or the median command time exceeds
//! its usual value (the
//! lowest interval median of the last five minutes: a durable write to
//! PostgreSQL or Redis takes milliseconds even on an idle node) by the
//! target, work is waiting behind work: the node sheds a share of
//! messages, raised each interval while the queue stands and lowered once
//! it is gone. A median rather than a minimum for commands: they cross
//! several queues (a thread, an actor's mailbox, the database), and the
//! fastest of them says nothing of the others.
//!
//! What is shed first follows the delivery guarantee (STYLE.md): typing is
//! dropped as soon as the node is strained, new chats are refused at three
//! times the shed share (each would bring tens of messages), messages at
//! the shed share, and what finishes work (accept, end, wrap-up, transfer,
//! resume, logout) is always admitted.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use switchboard_proto::command::{AgentCommand, CustomerCommand};

/// `[limits] overload_target_ms`: the standing queue a node tolerates.
#[derive(Clone, Copy, Debug)]
pub struct OverloadConfig {
    /// Zero turns shedding off.
    pub target: Duration,
    /// How often the shed share is revised.
    pub interval: Duration,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        Self {
            target: Duration::from_millis(10),
            interval: Duration::from_millis(100),
        }
    }
}

/// A command as the shedding order sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// May be dropped: nobody loses anything.
    Typing,
    /// `POST /api/v1/chats`.
    NewChat,
    /// `send`, `send_template`.
    Message,
    /// Frees capacity or restores a client: never shed.
    Finishing,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Typing => "typing",
            Work::NewChat => "new_chat",
            Work::Message => "message",
            Work::Finishing => "finishing",
        }
    }
}

impl From<&AgentCommand> for Work {
    fn from(command: &AgentCommand) -> Self {
        match command {
            AgentCommand::Typing { .. } => Work::Typing,
            AgentCommand::Send { .. } | AgentCommand::SendTemplate { .. } => Work::Message,
            AgentCommand::SetState { .. }
            | AgentCommand::Accept { .. }
            | AgentCommand::Transfer { .. }
            | AgentCommand::Conference { .. }
            | AgentCommand::EndConference { .. }
            | AgentCommand::End { .. }
            | AgentCommand::WrapUp { .. }
            | AgentCommand::Resume { .. }
            | AgentCommand::Logout
            | AgentCommand::RefreshToken => Work::Finishing,
        }
    }
}

impl From<&CustomerCommand> for Work {
    fn from(command: &CustomerCommand) -> Self {
        match command {
            CustomerCommand::Typing => Work::Typing,
            CustomerCommand::Send { .. } => Work::Message,
            CustomerCommand::End
            | CustomerCommand::Resume { .. }
            | CustomerCommand::RefreshToken => Work::Finishing,
        }
    }
}

/// What to do with one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Answer as if done, do nothing (typing).
    Drop,
    /// `unavailable`, with when to try again.
    Refuse {
        retry_after_ms: u64,
    },
}

/// Shed share added per interval while a queue stands, and taken off per
/// interval once it is gone: up fast, down gently, so a node does not
/// swing between refusing everything and admitting everything.
const SHED_STEP_UP: f64 = 0.1;
const SHED_STEP_DOWN: f64 = 0.05;
/// New chats are refused this many times as often as messages.
const NEW_CHAT_SHED_FACTOR: f64 = 3.0;
/// Some messages always get through, so the signal keeps being measured.
const SHED_MAX: f64 = 0.9;
/// The retry hint: a second, spread by half either way so refused clients
/// do not come back together.
const RETRY_AFTER_MS: f64 = 1000.0;

/// Command times kept per interval: enough for a median, bounded memory.
const WORK_SAMPLES: usize = 2048;
/// How far back a command's usual time is looked for.
const FLOOR_WINDOW_S: u64 = 300;
/// Fewer messages than this in an interval say nothing of a queue.
const MIN_WORK_SAMPLES: usize = 8;

/// The lower middle value: with two threads, both must be late.
fn lower_median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let middle = (values.len() - 1) / 2;
    Some(*values.select_nth_unstable(middle).1)
}

fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let middle = values.len() / 2;
    Some(*values.select_nth_unstable(middle).1)
}

/// The pure state: fed times and samples, no clock of its own.
#[derive(Clone, Debug)]
pub struct Pressure {
    target_us: u64,
    interval_ms: u64,
    window_start_ms: u64,
    /// This interval's command times (µs), up to `WORK_SAMPLES`.
    work_us: Vec<u64>,
    /// Per probe (thread), its shortest lag this interval (µs).
    lag_min_us: Vec<Option<u64>>,
    /// Per probe, when it last woke (ms): a thread that did not wake in
    /// an interval was stalled that long.
    probe_seen_ms: Vec<Option<u64>>,
    /// Per second, the lowest calm interval median (µs), for
    /// `FLOOR_WINDOW_S`.
    usual_work_us: std::collections::VecDeque<(u64, u64)>,
    /// The last usual time known, kept when a long overload leaves no calm
    /// second in the window.
    last_usual_us: Option<u64>,
    shed: f64,
    strained: bool,
}

impl Pressure {
    pub fn new(config: OverloadConfig) -> Self {
        Self {
            target_us: config.target.as_micros() as u64,
            interval_ms: (config.interval.as_millis() as u64).max(1),
            window_start_ms: 0,
            work_us: Vec::new(),
            lag_min_us: Vec::new(),
            probe_seen_ms: Vec::new(),
            usual_work_us: std::collections::VecDeque::new(),
            last_usual_us: None,
            shed: 0.0,
            strained: false,
        }
    }

    fn enabled(&self) -> bool {
        self.target_us > 0
    }

    /// Closes the intervals that ended by `now_ms`. Without probes (no
    /// thread to watch), intervals with no sample at all were idle ones;
    /// with probes, which wake every 10 ms, they were a stall.
    fn roll(&mut self, now_ms: u64) {
        if !self.enabled() || now_ms < self.window_start_ms + self.interval_ms {
            return;
        }
        let window_end = self.window_start_ms + self.interval_ms;
        // How much longer than usual the median message took (too few
        // samples say nothing: one slow write is not a queue).
        let median_work = (self.work_us.len() >= MIN_WORK_SAMPLES)
            .then(|| median(&mut self.work_us))
            .flatten();
        let usual = self.usual_work(self.window_start_ms / 1000);
        let work = median_work.map(|median| median.saturating_sub(usual.unwrap_or(median)));
        // The lower median thread: most threads' work waits that long. A
        // thread that did not wake at all was stalled since it last did.
        let mut lags: Vec<u64> = self
            .lag_min_us
            .iter()
            .zip(&self.probe_seen_ms)
            .filter_map(|(min, seen)| {
                min.or_else(|| seen.map(|seen| window_end.saturating_sub(seen) * 1000))
            })
            .collect();
        let lag = lower_median(&mut lags);
        let above = |figure: Option<u64>, limit: u64| figure.is_some_and(|us| us > limit);
        let standing = above(work, self.target_us) || above(lag, self.target_us);
        let half = self.target_us / 2;
        self.strained = standing || above(work, half) || above(lag, half);
        self.shed = if standing {
            (self.shed + SHED_STEP_UP).min(SHED_MAX)
        } else {
            (self.shed - SHED_STEP_DOWN).max(0.0)
        };
        // Only a calm interval tells what a message usually takes, so a
        // long overload does not become the usual.
        if let (Some(median), false) = (median_work, self.strained || self.shed > 0.0) {
            self.record_usual(self.window_start_ms / 1000, median);
        }
        let skipped = (now_ms - self.window_start_ms) / self.interval_ms - 1;
        if skipped > 0 && self.probe_seen_ms.is_empty() {
            self.strained = false;
            self.shed = (self.shed - SHED_STEP_DOWN * skipped as f64).max(0.0);
        }
        self.window_start_ms = now_ms - (now_ms - self.window_start_ms) % self.interval_ms;
        self.work_us.clear();
        self.lag_min_us.iter_mut().for_each(|min| *min = None);
    }

    /// Records a calm interval's median as second `second`'s.
    fn record_usual(&mut self, second: u64, median: u64) {
        match self.usual_work_us.back_mut() {
            Some((last, lowest)) if *last == second => *lowest = (*lowest).min(median),
            _ => self.usual_work_us.push_back((second, median)),
        }
    }

    /// The lowest calm median of the last `FLOOR_WINDOW_S` seconds before
    /// `second`: what a message takes here when nothing waits. With no
    /// calm second in the window, the last one known.
    fn usual_work(&mut self, second: u64) -> Option<u64> {
        while self
            .usual_work_us
            .front()
            .is_some_and(|(at, _)| *at + FLOOR_WINDOW_S <= second)
        {
            self.usual_work_us.pop_front();
        }
        if let Some(lowest) = self.usual_work_us.iter().map(|(_, lowest)| *lowest).min() {
            self.last_usual_us = Some(lowest);
        }
        self.last_usual_us
    }

    /// How long an admitted message took, engine in to answer out.
    pub fn observe_work(&mut self, now_ms: u64, took: Duration) {
        self.roll(now_ms);
        if self.enabled() && self.work_us.len() < WORK_SAMPLES {
            self.work_us.push(took.as_micros() as u64);
        }
    }

    /// A new probe (one per thread): its number for `observe_lag`.
    pub fn add_probe(&mut self) -> usize {
        self.lag_min_us.push(None);
        self.probe_seen_ms.push(None);
        self.lag_min_us.len() - 1
    }

    /// How late probe `probe`'s timer fired.
    pub fn observe_lag(&mut self, now_ms: u64, probe: usize, late: Duration) {
        self.roll(now_ms);
        let us = late.as_micros() as u64;
        if let Some(min) = self.lag_min_us.get_mut(probe) {
            *min = Some(min.map_or(us, |min| min.min(us)));
        }
        if let Some(seen) = self.probe_seen_ms.get_mut(probe) {
            *seen = Some(now_ms);
        }
    }

    /// `roll` and `spread` are uniform in [0, 1): `roll` picks which
    /// messages and chats are refused, `spread` spreads the retry hints.
    pub fn admit(&mut self, now_ms: u64, work: Work, roll: f64, spread: f64) -> Admit {
        if !self.enabled() {
            return Admit::Yes;
        }
        self.roll(now_ms);
        let refuse = Admit::Refuse {
            retry_after_ms: (RETRY_AFTER_MS * (0.5 + spread)) as u64,
        };
        match work {
            Work::Finishing => Admit::Yes,
            Work::Typing if self.strained || self.shed > 0.0 => Admit::Drop,
            Work::Typing => Admit::Yes,
            Work::NewChat if roll < self.shed * NEW_CHAT_SHED_FACTOR => refuse,
            Work::NewChat => Admit::Yes,
            Work::Message if roll < self.shed => refuse,
            Work::Message => Admit::Yes,
        }
    }

    /// Past capacity: a load balancer should send new sessions elsewhere.
    pub fn overloaded(&self) -> bool {
        self.shed > 0.0
    }

    /// The share of messages being refused.
    pub fn shed(&self) -> f64 {
        self.shed
    }
}

/// A node's admission, shared by its threads.
pub struct Admission {
    epoch: Instant,
    pressure: Mutex<Pressure>,
}

/// A probe timer's period: each thread's lag is sampled this often.
const PROBE_PERIOD: Duration = Duration::from_millis(10);

impl Admission {
    pub fn new(config: OverloadConfig) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            pressure: Mutex::new(Pressure::new(config)),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn pressure(&self) -> std::sync::MutexGuard<'_, Pressure> {
        // A panic while holding it leaves plain numbers: still usable.
        self.pressure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn admit(&self, work: Work) -> Admit {
        let now = self.now_ms();
        let admit = self
            .pressure()
            .admit(now, work, rand::random::<f64>(), rand::random::<f64>());
        if admit != Admit::Yes {
            metrics::counter!("switchboard_shed_total", "work" => work.name()).increment(1);
        }
        admit
    }

    pub fn observe_work(&self, took: Duration) {
        let now = self.now_ms();
        self.pressure().observe_work(now, took);
    }

    pub fn overloaded(&self) -> bool {
        let now = self.now_ms();
        let mut pressure = self.pressure();
        pressure.roll(now);
        pressure.overloaded()
    }

    pub fn shed(&self) -> f64 {
        self.pressure().shed()
    }

    /// Runs on the calling thread's runtime for as long as `admission`
    /// lives: a timer whose lateness is how long ready work waits for this
    /// thread (a frame read from a socket, a message in a mailbox).
    pub async fn probe(admission: Weak<Admission>) {
        let Some(probe) = admission.upgrade().map(|a| a.pressure().add_probe()) else {
            return;
        };
        loop {
            let before = Instant::now();
            tokio::time::sleep(PROBE_PERIOD).await;
            let Some(admission) = admission.upgrade() else {
                return;
            };
            let late = before.elapsed().saturating_sub(PROBE_PERIOD);
            metrics::histogram!("switchboard_thread_lag_seconds").record(late.as_secs_f64());
            let now = admission.now_ms();
            admission.pressure().observe_lag(now, probe, late);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pressure() -> Pressure {
        Pressure::new(OverloadConfig {
            target: Duration::from_millis(10),
            interval: Duration::from_millis(100),
        })
    }

    /// Fills interval `n` (of 100 ms) with ten messages that took
    /// `took_ms`.
    fn interval(pressure: &mut Pressure, n: u64, took_ms: u64) {
        for at in (0..100).step_by(10) {
            pressure.observe_work(n * 100 + at, Duration::from_millis(took_ms));
        }
    }

    #[test]
    fn a_node_with_no_standing_queue_admits_everything() {
        let mut p = pressure();
        for n in 0..5 {
            interval(&mut p, n, 2);
        }
        for work in [Work::Typing, Work::NewChat, Work::Message, Work::Finishing] {
            assert_eq!(p.admit(500, work, 0.0, 0.0), Admit::Yes, "{work:?}");
        }
        assert!(!p.overloaded());
    }

    /// A node whose commands take 2 ms when nothing waits, then `took_ms`
    /// from interval 1 on (the usual time is known from interval 0).
    fn usually_two_ms_then(took_ms: u64, intervals: u64) -> Pressure {
        let mut p = pressure();
        interval(&mut p, 0, 2);
        for n in 1..=intervals {
            interval(&mut p, n, took_ms);
        }
        p
    }

    #[test]
    fn a_standing_queue_sheds_typing_then_new_chats_then_a_share_of_messages() {
        let mut p = usually_two_ms_then(30, 1);
        // The interval closes at the next sample: shedding starts.
        assert_eq!(p.admit(200, Work::Typing, 0.99, 0.0), Admit::Drop);
        // Three tenths of new chats are refused.
        assert!(matches!(
            p.admit(200, Work::NewChat, 0.25, 0.0),
            Admit::Refuse { .. }
        ));
        assert_eq!(p.admit(200, Work::NewChat, 0.35, 0.0), Admit::Yes);
        // A tenth of messages is refused (the roll picks which).
        assert!(matches!(
            p.admit(200, Work::Message, 0.05, 0.0),
            Admit::Refuse { .. }
        ));
        assert_eq!(p.admit(200, Work::Message, 0.5, 0.0), Admit::Yes);
        assert_eq!(p.admit(200, Work::Finishing, 0.0, 0.0), Admit::Yes);
        assert!(p.overloaded());
    }

    #[test]
    fn commands_that_always_take_long_are_no_queue_only_longer_than_usual_is() {
        // Every command waits 9 ms for a remote database: that is its usual.
        let mut p = pressure();
        for n in 0..20 {
            interval(&mut p, n, 9);
        }
        p.roll(2000);
        assert!(!p.overloaded());
        // 25 ms is 16 ms more than usual: a queue.
        for n in 20..22 {
            interval(&mut p, n, 25);
        }
        p.roll(2200);
        assert!(p.overloaded());
    }

    #[test]
    fn shedding_grows_while_the_queue_stands_and_never_refuses_every_message() {
        let mut p = usually_two_ms_then(50, 29);
        p.roll(3000);
        assert!((p.shed() - SHED_MAX).abs() < 1e-9, "{}", p.shed());
        assert_eq!(p.admit(3000, Work::Message, 0.95, 0.0), Admit::Yes);
    }

    #[test]
    fn once_the_queue_is_gone_shedding_falls_back_to_nothing() {
        let mut p = usually_two_ms_then(50, 4);
        p.roll(500);
        assert!(p.overloaded());
        // Short work: down a step per interval.
        for n in 5..20 {
            interval(&mut p, n, 1);
        }
        p.roll(2000);
        assert!(!p.overloaded(), "{}", p.shed());
        assert_eq!(p.admit(2000, Work::NewChat, 0.0, 0.0), Admit::Yes);
    }

    #[test]
    fn an_idle_spell_clears_the_shedding_at_once() {
        let mut p = usually_two_ms_then(50, 4);
        // Nothing for two seconds: nothing was waiting.
        assert_eq!(p.admit(2600, Work::NewChat, 0.0, 0.0), Admit::Yes);
        assert_eq!(p.admit(2600, Work::Typing, 0.0, 0.0), Admit::Yes);
    }

    #[test]
    fn threads_late_at_every_wake_up_count_like_slow_work() {
        let mut p = pressure();
        let probes: Vec<usize> = (0..3).map(|_| p.add_probe()).collect();
        for at in [0, 40, 80] {
            p.observe_lag(at, probes[0], Duration::from_millis(25));
            p.observe_lag(at, probes[1], Duration::from_millis(20));
            p.observe_lag(at, probes[2], Duration::ZERO);
        }
        p.roll(100);
        assert!(p.overloaded());
        // One unlucky thread of three is not an overload.
        let mut p = pressure();
        let probes: Vec<usize> = (0..3).map(|_| p.add_probe()).collect();
        for at in [0, 40, 80] {
            p.observe_lag(at, probes[0], Duration::from_millis(25));
            p.observe_lag(at, probes[1], Duration::ZERO);
            p.observe_lag(at, probes[2], Duration::ZERO);
        }
        p.roll(100);
        assert!(!p.overloaded());
        // Half the target strains the node: typing goes, nothing else.
        let mut p = pressure();
        let probe = p.add_probe();
        for at in [0, 40, 80] {
            p.observe_lag(at, probe, Duration::from_millis(6));
        }
        assert_eq!(p.admit(100, Work::Typing, 0.0, 0.0), Admit::Drop);
        assert_eq!(p.admit(100, Work::NewChat, 0.0, 0.0), Admit::Yes);
    }

    #[test]
    fn a_thread_on_time_once_in_an_interval_had_no_standing_queue() {
        let mut p = pressure();
        let probe = p.add_probe();
        for (at, late) in [(0, 30), (40, 0), (80, 30)] {
            p.observe_lag(at, probe, Duration::from_millis(late));
        }
        p.roll(100);
        assert!(!p.overloaded());
    }

    #[test]
    fn a_few_slow_messages_among_fast_ones_are_no_standing_queue() {
        let mut p = pressure();
        let times = [80, 1, 80, 1, 2, 1, 80, 1, 2];
        for (i, took) in times.into_iter().enumerate() {
            p.observe_work(i as u64 * 10, Duration::from_millis(took));
        }
        p.roll(100);
        assert!(!p.overloaded());
        // Nor is one slow write on a quiet node.
        let mut p = usually_two_ms_then(2, 3);
        p.observe_work(450, Duration::from_millis(40));
        p.roll(500);
        assert!(!p.overloaded());
    }

    #[test]
    fn a_long_overload_does_not_become_the_usual() {
        // Calm at 2 ms, then 50 ms for ten minutes: still a queue.
        let mut p = usually_two_ms_then(50, 6000);
        p.roll(600_200);
        assert!(p.overloaded());
    }

    #[test]
    fn threads_that_stop_waking_are_a_stall_not_an_idle_spell() {
        let mut p = usually_two_ms_then(50, 4);
        let probe = p.add_probe();
        p.observe_lag(450, probe, Duration::from_millis(1));
        p.roll(500);
        let before = p.shed();
        assert!(before > 0.0);
        // Nothing for a second, probes included: the node stalled.
        p.roll(1500);
        assert!(p.shed() >= before, "{} < {before}", p.shed());
        // A thread that did not wake in an interval counts as that late.
        let mut p = pressure();
        let (quiet, busy) = (p.add_probe(), p.add_probe());
        p.observe_lag(0, quiet, Duration::ZERO);
        p.observe_lag(0, busy, Duration::ZERO);
        p.roll(100);
        assert!(!p.overloaded());
        for at in (110..200).step_by(10) {
            p.observe_lag(at, busy, Duration::from_millis(20));
        }
        p.roll(200);
        assert!(p.overloaded());
    }

    #[test]
    fn a_zero_target_admits_everything() {
        let mut p = Pressure::new(OverloadConfig {
            target: Duration::ZERO,
            interval: Duration::from_millis(100),
        });
        let probe = p.add_probe();
        interval(&mut p, 0, 500);
        p.observe_lag(50, probe, Duration::from_millis(500));
        assert_eq!(p.admit(200, Work::NewChat, 0.0, 0.0), Admit::Yes);
        assert_eq!(p.admit(200, Work::Typing, 0.0, 0.0), Admit::Yes);
        p.roll(300);
        assert!(!p.overloaded(), "never reported either");
    }

    #[test]
    fn retry_hints_spread_between_half_a_second_and_a_second_and_a_half() {
        let mut p = usually_two_ms_then(30, 1);
        let hint = |p: &mut Pressure, spread| match p.admit(200, Work::Message, 0.0, spread) {
            Admit::Refuse { retry_after_ms } => retry_after_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(hint(&mut p, 0.0), 500);
        assert_eq!(hint(&mut p, 0.999), 1499);
    }
}
