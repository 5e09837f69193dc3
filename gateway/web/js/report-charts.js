// Time in a chosen time zone, and the Reports page's charts (uPlot, the
// vendored window.uPlot). A chart draws through the canvas and sets its
// elements' styles through the CSSOM, both of which the pages' CSP allows.

// ---------- days and intervals in a time zone

const partFormats = new Map();

/** The wall clock of `ms` in `tz`: {year, month, day, hour, minute, second}. */
function wallClock(ms, tz) {
  let format = partFormats.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    partFormats.set(tz, format);
  }
  const parts = {};
  for (const { type, value } of format.formatToParts(new Date(ms))) parts[type] = Number(value);
  return parts;
}

/** How far `tz`'s wall clock is ahead of UTC at the instant `ms`, in ms. */
function offsetAt(ms, tz) {
  const c = wallClock(ms, tz);
  const wall = Date.UTC(c.year, c.month - 1, c.day, c.hour % 24, c.minute, c.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** A time zone this browser knows (an IANA name). */
export function isTimeZone(tz) {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The browser's own time zone (UTC when it cannot tell). */
export function browserTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Every time zone the browser knows, for a picker. */
export function timeZones() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return [...new Set(['UTC', ...zones])];
}

/** "YYYY-MM-DD" of the instant `ms` (default: now) in `tz`. */
export function dayIn(tz, ms = Date.now()) {
  const c = wallClock(ms, tz);
  return `${c.year}-${String(c.month).padStart(2, '0')}-${String(c.day).padStart(2, '0')}`;
}

/** "YYYY-MM-DD" plus `days` days (calendar days: no time zone involved). */
export function addDays(day, days) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** The instant (ms) at which `day` begins in `tz` (its midnight, or the first time after a DST gap). */
export function startOfDay(day, tz) {
  const [y, m, d] = day.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d);
  const guess = wall - offsetAt(wall, tz);
  return wall - offsetAt(guess, tz);
}

const STEP_S = { '15m': 900, '1h': 3600 };

/**
 * The start (unix seconds) of every interval from the first day's midnight
 * to the last day's end in `tz`: the x axis, with intervals without
 * activity in it too (the API lists only intervals that had some).
 */
export function intervalStarts(fromDay, toDay, interval, tz) {
  const end = startOfDay(addDays(toDay, 1), tz) / 1000;
  const starts = [];
  if (interval === '1d') {
    for (let day = fromDay; day <= toDay && starts.length < 1000; day = addDays(day, 1)) starts.push(startOfDay(day, tz) / 1000);
    return starts;
  }
  const step = STEP_S[interval] || 3600;
  for (let t = startOfDay(fromDay, tz) / 1000; t < end && starts.length < 20000; t += step) starts.push(t);
  return starts;
}

// ---------- formats

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const PERCENT = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const DECIMAL = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

/** 75.2 -> "1:15"; 3725 -> "1:02:05"; under a minute in seconds with its tenths ("4.3 s"). */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 59.95) return `${DECIMAL.format(Math.max(0, seconds))} s`;
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** A value of a unit ('count', 'seconds', 'pct') as text. */
export function formatValue(unit, value) {
  if (value === null || value === undefined) return '—';
  if (unit === 'seconds') return duration(value);
  if (unit === 'pct') return `${PERCENT.format(value)} %`;
  return NUMBER.format(value);
}

/** A duration on an axis, with its unit: "45 s", "15 min", "2.5 h". */
export function axisDuration(seconds) {
  if (seconds < 60) return `${DECIMAL.format(seconds)} s`;
  if (seconds < 3600) return `${DECIMAL.format(seconds / 60)} min`;
  return `${DECIMAL.format(seconds / 3600)} h`;
}

/** Formats an interval's start (unix seconds) in `tz`: the time of day, with the date when the range spans days. */
export function intervalFormatter(tz, { withDate, withTime }) {
  const format = new Intl.DateTimeFormat(undefined, {
    timeZone: tz,
    ...(withDate ? { year: 'numeric', month: 'short', day: 'numeric' } : {}),
    ...(withTime ? { hour: '2-digit', minute: '2-digit' } : {}),
  });
  return (seconds) => format.format(new Date(seconds * 1000));
}

/**
 * An x tick's label, short: the time of day ("09:00 AM"), or the date
 * ("Dec 8") for days and for the midnights of a range of several days.
 */
export function tickFormatter(tz, { withDate, withTime }) {
  const time = new Intl.DateTimeFormat(undefined, { timeZone: tz, hour: '2-digit', minute: '2-digit' });
  const date = new Intl.DateTimeFormat(undefined, { timeZone: tz, month: 'short', day: 'numeric' });
  return (seconds) => {
    const at = new Date(seconds * 1000);
    if (!withTime) return date.format(at);
    if (!withDate) return time.format(at);
    const c = wallClock(at.getTime(), tz);
    return c.hour === 0 && c.minute === 0 ? date.format(at) : time.format(at);
  };
}

// ---------- charts

/** Series colours: distinct hues, each at least 3:1 against white. */
export const PALETTE = ['#2f5bea', '#0b7a50', '#c62f3c', '#8a5300', '#6b46c1', '#0e7490', '#be185d', '#4d7c0f', '#475569', '#b45309'];

const charts = new Set();
let observer = null;

function observe(chart, container) {
  if (!observer) {
    observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const owner = [...charts].find((c) => c.container === entry.target);
        const width = Math.floor(entry.contentRect.width);
        if (owner && width > 0 && width !== owner.plot.width) owner.plot.setSize({ width, height: owner.plot.height });
      }
    });
  }
  charts.add({ plot: chart, container });
  observer.observe(container);
}

/** Removes every chart drawn so far (before a new report is drawn). */
export function destroyCharts() {
  for (const { plot, container } of charts) {
    observer.unobserve(container);
    plot.destroy();
  }
  charts.clear();
}

/**
 * Draws a time series chart into `container` (which must be laid out).
 * @param {HTMLElement} container
 * @param {object} spec
 * @param {number[]} spec.xs         interval starts, unix seconds, ascending
 * @param {[number, number]} spec.span  the x axis: the range's start and end, unix seconds
 * @param {{label: string, values: (number|null)[], color: string, dash?: boolean}[]} spec.series
 * @param {'count'|'seconds'|'pct'} spec.unit
 * @param {string} spec.tz           the axis's time zone
 * @param {(seconds: number) => string} spec.tick  an x tick's label
 * @param {boolean} [spec.days]      intervals of a day: ticks on days only
 */
export function drawChart(container, { xs, span, series, unit, tz, tick, days = false }) {
  const uPlot = window.uPlot;
  const muted = '#5d6b80';
  const grid = '#e6ebf2';
  const yRange = (u, min, max) => {
    if (unit === 'pct') return [0, 100];
    const top = Math.max(max || 0, unit === 'count' ? 4 : 60);
    return [0, top * 1.1];
  };
  const yAxis = {
    stroke: muted,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 },
    size: unit === 'seconds' ? 64 : 52,
    values: (u, splits) => splits.map((v) => (unit === 'seconds' ? axisDuration(v) : formatValue(unit, v))),
  };
  if (unit === 'count') yAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  if (unit === 'seconds') yAxis.incrs = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 57600];
  const options = {
    width: Math.max(280, Math.floor(container.clientWidth)),
    height: 220,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), tz),
    legend: { show: false }, // the page draws its own legend, and a table of the figures
    cursor: { drag: { x: false, y: false, setScale: false } },
    // The whole range on the x axis, even where nothing happened (or a single interval did).
    scales: { x: { time: true, range: () => span }, y: { range: yRange } },
    axes: [
      {
        stroke: muted,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        space: 64,
        // By day: a tick a day (or a week, or a month), never within a day.
        incrs: days ? [86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 365 * 86400] : undefined,
        values: (u, splits) => splits.map((v) => (v === null ? '' : tick(v))),
      },
      yAxis,
    ],
    series: [
      {},
      // Each series a little thinner than the one before (drawn under it),
      // so equal figures (abandoned = short abandoned) show both colours.
      ...series.map((s, i) => {
        const rank = Math.min(i, 3);
        return {
          label: s.label,
          stroke: s.color,
          width: [4, 2.5, 1.5, 1][rank],
          dash: s.dash ? [6, 4] : undefined,
          points: { show: true, size: [10, 7, 5, 3][rank], fill: s.color, stroke: s.color },
          spanGaps: false,
        };
      }),
    ],
  };
  const plot = new uPlot(options, [xs, ...series.map((s) => s.values)], container);
  observe(plot, container);
  return plot;
}
