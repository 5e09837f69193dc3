// The supervisor's Reports page: GET /reports/queues and /reports/agents
// over a range of days, by 15 minutes, hours or days in a chosen time zone,
// drawn as charts (uPlot) with a table of the figures under each, and the
// same report downloaded as CSV (fetched with the session's token, so no
// token in a URL).
//
// Several queues (or agents) at once: counts and times are summed over
// them; a mean or a percentage (service level, ASA, AHT, occupancy) cannot
// be summed, so it is drawn per queue (or agent), a series each.

import { api } from './protocol.js';
import { bindLoginForm, clearSession, loadSession } from './session.js';
import { el, clear } from './util.js';
import { describeError } from './errors.js';
import {
  PALETTE, addDays, browserTimeZone, dayIn, destroyCharts, drawChart, formatValue, intervalFormatter,
  intervalStarts, isTimeZone, startOfDay, tickFormatter, timeZones,
} from './report-charts.js';

const $ = (id) => document.getElementById(id);

/** What each report shows. `sum`: summed over the selected items; else one series per item. */
const KINDS = {
  queues: {
    path: '/reports/queues',
    idField: 'queue',
    param: 'queue',
    noun: 'queue',
    plural: 'Queues',
    charts: [
      {
        id: 'service-level', title: 'Service level', unit: 'pct', sum: false,
        note: 'Share of the chats answered within the service level target, per queue.',
        series: [{ field: 'service_level_pct', label: 'Service level' }],
      },
      {
        id: 'speed', title: 'Speed of answer and handle time', unit: 'seconds', sum: false,
        note: 'Average speed of answer (solid) and average handle time (dashed), per queue.',
        series: [{ field: 'asa_s', label: 'ASA' }, { field: 'aht_s', label: 'AHT', dash: true }],
      },
      {
        id: 'volumes', title: 'Volumes', unit: 'count', sum: true,
        note: 'Chats that entered, were handled and were abandoned, summed over the selected queues.',
        series: [
          { field: 'entered', label: 'Entered' }, { field: 'handled', label: 'Handled' },
          { field: 'abandoned', label: 'Abandoned' },
        ],
      },
      {
        id: 'abandonment', title: 'Abandonment', unit: 'count', sum: true,
        note: 'Abandoned chats, and those abandoned within the short-abandon time, summed over the selected queues.',
        series: [{ field: 'abandoned', label: 'Abandoned' }, { field: 'short_abandoned', label: 'Short abandoned' }],
      },
      {
        id: 'moves', title: 'RONA, transfers and overflows', unit: 'count', sum: true,
        note: 'Offers not answered in time, and chats moved out by transfer or overflow, summed over the selected queues.',
        series: [
          { field: 'rona', label: 'RONA' }, { field: 'transferred_out', label: 'Transferred out' },
          { field: 'overflowed_out', label: 'Overflowed out' },
        ],
      },
    ],
    reasons: { id: 'wrap-ups', field: 'wrap_ups', title: 'Wrap-up reasons', unit: 'count', what: 'Wrap-ups',
      note: 'Wrap-ups by reason over the whole range, summed over the selected queues.',
      empty: 'No wrap-up in this range.' },
  },
  agents: {
    path: '/reports/agents',
    idField: 'agent',
    param: 'agent',
    noun: 'agent',
    plural: 'Agents',
    charts: [
      {
        id: 'agent-time', title: 'Logged in, available, idle and RONA time', unit: 'seconds', sum: true,
        note: 'Time in each state, summed over the selected agents.',
        series: [
          { field: 'logged_in_s', label: 'Logged in' }, { field: 'available_s', label: 'Available' },
          { field: 'idle_s', label: 'Idle' }, { field: 'rona_s', label: 'RONA' },
        ],
      },
      {
        id: 'occupancy', title: 'Occupancy', unit: 'pct', sum: false,
        note: 'Share of the logged-in time holding at least one chat, per agent.',
        series: [{ field: 'occupancy_pct', label: 'Occupancy' }],
      },
      {
        id: 'chats', title: 'Chats handled', unit: 'count', sum: true,
        note: 'Chats offered, accepted and handled, and offers not answered in time, summed over the selected agents.',
        series: [
          { field: 'offered', label: 'Offered' }, { field: 'accepted', label: 'Accepted' },
          { field: 'handled', label: 'Handled' }, { field: 'rona', label: 'RONA' },
        ],
      },
      {
        id: 'handle-time', title: 'Average handle time', unit: 'seconds', sum: false,
        note: 'Mean time from accepting a chat to its wrap-up, per agent.',
        series: [{ field: 'aht_s', label: 'AHT' }],
      },
    ],
    reasons: { id: 'idle-reasons', field: 'idle_by_reason', title: 'Idle time by reason', unit: 'seconds', what: 'Idle time',
      note: 'Idle time by reason over the whole range, summed over the selected agents.',
      empty: 'No idle time in this range.' },
  },
};

const INTERVAL_LABEL = { '15m': '15 min', '1h': '1 hour', '1d': '1 day' };
/** A calendar day ("YYYY-MM-DD", read as UTC midnight) in the user's words. */
const DAY = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

let session = null;
/** id -> display name, per kind; reason id -> label. */
const names = { queues: new Map(), agents: new Map() };
const reasonLabels = { wrap_ups: new Map(), idle_by_reason: new Map([['none', 'No reason given']]) };
/** The checked items per kind (kept when switching back and forth); null = all. */
const picked = { queues: null, agents: null };
let shown = 0; // reports drawn, for whoever waits for the next one

const kind = () => document.querySelector('input[name="kind"]:checked').value;

// ---------- sign-in

function showLogin(message) {
  $('reports').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login-error').hidden = !message;
  $('login-username').focus();
}

async function start(signedIn) {
  session = signedIn;
  const roles = session.agent.roles || [];
  if (!roles.includes('supervisor') && !roles.includes('admin')) {
    clearSession();
    showLogin(`${session.agent.name} has no supervisor role. Sign in with a supervisor account.`);
    return;
  }
  $('login').hidden = true;
  $('reports').hidden = false;
  $('agent-name').textContent = session.agent.name;
  if (!(await loadNames())) return;
  renderItems();
  show();
}

const rest = (path) => api(location.origin, path, { token: session.token });

/** Queue and agent names, and the reasons' labels: the report has ids only. False when signed out. */
async function loadNames() {
  const [queues, stats, wrapUps, idle] = await Promise.allSettled([
    rest('/queues'), rest('/stats'), rest('/wrapup-reasons'), rest('/idle-reasons'),
  ]);
  if (queues.status === 'fulfilled') for (const q of queues.value) names.queues.set(q.id, q.name);
  if (stats.status === 'fulfilled') for (const a of stats.value.agents || []) names.agents.set(a.id, a.name);
  if (wrapUps.status === 'fulfilled') for (const r of wrapUps.value) reasonLabels.wrap_ups.set(r.id, r.label);
  if (idle.status === 'fulfilled') for (const r of idle.value) reasonLabels.idle_by_reason.set(r.id, r.label);
  const refused = [queues, stats].find((r) => r.status === 'rejected' && ['unauthorized', 'forbidden'].includes(r.reason.code));
  if (refused) signOut(refused.reason);
  return !refused;
}

function signOut(error) {
  clearSession();
  session = null;
  destroyCharts();
  showLogin(error.code === 'forbidden' ? 'This account may not see reports.' : 'Your session has expired. Please sign in again.');
}

// ---------- controls

/** The page's settings from its address (?kind=&from=&to=&interval=&tz=&items=), else the defaults. */
function initControls() {
  const query = new URLSearchParams(location.search);
  const tzSelect = $('report-tz');
  const wanted = query.get('tz');
  const tz = wanted && isTimeZone(wanted) ? wanted : browserTimeZone();
  const zones = timeZones();
  if (!zones.includes(tz)) zones.unshift(tz);
  tzSelect.append(...zones.map((zone) => el('option', { value: zone }, zone.replaceAll('_', ' '))));
  tzSelect.value = tz;
  const today = dayIn(tz);
  const day = (value) => (/^\d{4}-\d{2}-\d{2}$/.test(value || '') ? value : today);
  $('report-from').value = day(query.get('from'));
  $('report-to').value = day(query.get('to'));
  if (INTERVAL_LABEL[query.get('interval')]) $('report-interval').value = query.get('interval');
  const wantedKind = query.get('kind') === 'agents' ? 'agents' : 'queues';
  document.querySelector(`input[name="kind"][value="${wantedKind}"]`).checked = true;
  if (query.get('items')) picked[wantedKind] = query.get('items').split(',').filter(Boolean);
}

/** One checkbox per queue (or agent), names in the user's alphabetical order. */
function renderItems() {
  const k = kind();
  const spec = KINDS[k];
  $('items-legend').textContent = spec.plural;
  const chosen = picked[k];
  const entries = [...names[k].entries()].sort((a, b) => a[1].localeCompare(b[1]));
  // Ids asked for in the address but unknown here stay listed: the API says whether they exist.
  for (const id of chosen || []) if (!names[k].has(id)) entries.push([id, id]);
  clear($('item-list')).append(...entries.map(([id, name]) => el('label.check', {},
    el('input', { type: 'checkbox', name: 'item', value: id, checked: !chosen || chosen.includes(id) }),
    el('span', {}, name))));
  if (!entries.length) $('item-list').append(el('span.muted.small', {}, `No ${spec.noun} is configured.`));
}

function checkedItems() {
  return [...document.querySelectorAll('#item-list input[name="item"]')].filter((box) => box.checked).map((box) => box.value);
}

/** Every box ticked means "all": the parameter is left out, so the report covers every one. */
function itemsParam() {
  const boxes = document.querySelectorAll('#item-list input[name="item"]');
  const checked = checkedItems();
  return checked.length === boxes.length ? null : checked.join(',');
}

/** The settings as picked: days as "YYYY-MM-DD", both included; items null for all. */
function settings() {
  const from = $('report-from').value;
  const to = $('report-to').value;
  return { kind: kind(), from, to, interval: $('report-interval').value, tz: $('report-tz').value, items: itemsParam() };
}

/** The settings as the API's parameters: its `to` is not included, so the day after the last. */
function apiParams(s, format) {
  const params = new URLSearchParams({ from: s.from, to: addDays(s.to, 1), interval: s.interval, tz: s.tz });
  if (s.items !== null) params.set(KINDS[s.kind].param, s.items);
  if (format) params.set('format', format);
  return params;
}

/** The control a parameter comes from (queue and agent: the check boxes, which the message names). */
const FIELD_OF_PARAM = { from: 'report-from', to: 'report-to', interval: 'report-interval', tz: 'report-tz' };

function clearError() {
  $('report-error').hidden = true;
  $('report-error').textContent = '';
  for (const id of Object.values(FIELD_OF_PARAM)) {
    $(id).removeAttribute('aria-invalid');
    $(id).removeAttribute('aria-errormessage');
  }
}

/**
 * Shows a refusal beside the settings, marking the control it names
 * (`param`); the report drawn before goes, as it is not what the settings
 * now say.
 */
function showError(text, param) {
  destroyCharts();
  clear($('report-body'));
  $('report-error').textContent = text;
  $('report-error').hidden = false;
  const id = FIELD_OF_PARAM[param];
  if (id) {
    $(id).setAttribute('aria-invalid', 'true');
    $(id).setAttribute('aria-errormessage', 'report-error');
  }
  $('report-status').textContent = '';
}

/** Checks what the browser can before asking; returns false when it showed why not. */
function valid(s) {
  clearError();
  let why = null;
  if (!s.from) why = ['Pick the first day (From).', 'from'];
  else if (!s.to) why = ['Pick the last day (To).', 'to'];
  else if (s.from > s.to) why = [`From (${s.from}) is after To (${s.to}): pick a From on or before To.`, 'from'];
  else if (s.items === '') why = [`Pick at least one ${KINDS[s.kind].noun}.`, null];
  if (why) showError(...why);
  return !why;
}

const PARAM_LABEL = { from: 'From', to: 'To', interval: 'Interval', tz: 'Time zone', queue: 'Queues', agent: 'Agents', format: 'Format' };

/**
 * An API refusal as a sentence. A 422 (`invalid_parameter`) message starts
 * with the parameter it refuses ("to: a range of at most 92 days..."):
 * shown with the control's label in its place, and that control marked.
 */
function explain(error) {
  if (error.status === 422 || error.status === 400) {
    const message = String(error.message || '');
    const named = message.match(/^(\w+):\s*(.*)$/s);
    if (named && PARAM_LABEL[named[1]]) {
      return { text: `The report could not be made. ${PARAM_LABEL[named[1]]}: ${named[2]}`, param: named[1] };
    }
    const param = (message.match(/\b(from|to|interval|tz|queue|agent)\b/) || [])[1];
    return { text: `The report could not be made: ${message}`, param };
  }
  return { text: `Could not load the report. ${describeError(error)}` };
}

// ---------- the report

let asked = 0; // the latest request: an older answer arriving after it is dropped

async function show() {
  const s = settings();
  if (!valid(s)) return;
  const ticket = ++asked;
  $('report-status').textContent = 'Loading…';
  $('report-show').disabled = true;
  try {
    const answer = await rest(`${KINDS[s.kind].path}?${apiParams(s)}`);
    if (ticket !== asked) return;
    render(s, answer.rows || [], answer.as_of);
    rememberInAddress(s);
  } catch (error) {
    if (ticket !== asked) return;
    if (error.code === 'unauthorized' || error.code === 'forbidden') return signOut(error);
    const { text, param } = explain(error);
    showError(text, param);
  } finally {
    if (ticket === asked) {
      $('report-show').disabled = false;
      shown += 1;
      document.body.dataset.reportsShown = String(shown);
    }
  }
}

function rememberInAddress(s) {
  const query = new URLSearchParams({ kind: s.kind, from: s.from, to: s.to, interval: s.interval, tz: s.tz });
  if (s.items !== null) query.set('items', s.items);
  history.replaceState(null, '', `${location.pathname}?${query}`);
}

const nameOf = (k, id) => names[k].get(id) || id;

/** Draws a report; `asOf` (the API's `as_of`, when it says it): every event up to then is counted. */
function render(s, rows, asOf) {
  const spec = KINDS[s.kind];
  destroyCharts();
  const body = clear($('report-body'));
  const scope = s.items === null ? `all ${spec.plural.toLowerCase()}` : s.items.split(',').map((id) => nameOf(s.kind, id)).join(', ');
  const dayText = (day) => DAY.format(Date.parse(`${day}T00:00:00Z`));
  const days = s.from === s.to ? dayText(s.from) : `${dayText(s.from)} to ${dayText(s.to)}`;
  const countedTo = Date.parse(asOf || '');
  const upTo = Number.isNaN(countedTo) ? ''
    : ` · counted up to ${new Intl.DateTimeFormat(undefined, { timeZone: s.tz, timeStyle: 'medium' }).format(countedTo)}`;
  $('report-status').textContent = rows.length
    ? `${spec.plural} report: ${scope} · ${days} · by ${INTERVAL_LABEL[s.interval]} · ${s.tz} · ${rows.length} row${rows.length === 1 ? '' : 's'}${upTo}`
    : `No activity for ${scope} on ${days} (${s.tz})${upTo}.`;
  if (!rows.length) {
    body.append(el('p.card.report-empty', {}, 'Nothing happened in this range. Pick other days or other ' + spec.plural.toLowerCase() + '.'));
    return;
  }

  // Interval starts: every interval of the range, plus any the API has that the grid lacks.
  const at = (row) => Date.parse(row.interval_start) / 1000;
  const starts = new Set(intervalStarts(s.from, s.to, s.interval, s.tz));
  for (const row of rows) starts.add(at(row));
  const xs = [...starts].sort((a, b) => a - b);
  const nowS = (Number.isNaN(countedTo) ? Date.now() : countedTo) / 1000;
  const rowsAt = new Map();
  for (const row of rows) {
    const t = at(row);
    if (!rowsAt.has(t)) rowsAt.set(t, []);
    rowsAt.get(t).push(row);
  }
  const active = [...rowsAt.keys()].sort((a, b) => a - b);
  const items = [...new Set(rows.map((row) => row[spec.idField]))]
    .sort((a, b) => nameOf(s.kind, a).localeCompare(nameOf(s.kind, b)));
  const spansDays = s.from !== s.to;
  const shape = { withDate: spansDays || s.interval === '1d', withTime: s.interval !== '1d' };
  const intervalText = intervalFormatter(s.tz, shape);
  const tick = tickFormatter(s.tz, shape);
  const span = [startOfDay(s.from, s.tz) / 1000, Math.max(startOfDay(addDays(s.to, 1), s.tz) / 1000, xs[xs.length - 1] + 1)];

  const sections = spec.charts.map((chart) => {
    const series = [];
    if (chart.sum) {
      chart.series.forEach((def, i) => series.push({
        label: def.label,
        field: def.field,
        color: PALETTE[i % PALETTE.length],
        // Intervals to come have no figure yet: a gap, not a zero.
        values: xs.map((t) => (rowsAt.has(t) ? sumOf(rowsAt.get(t), def.field) : t > nowS ? null : 0)),
      }));
    } else {
      items.forEach((id, n) => chart.series.forEach((def) => series.push({
        label: chart.series.length > 1 ? `${nameOf(s.kind, id)} · ${def.label}` : nameOf(s.kind, id),
        field: def.field,
        color: PALETTE[n % PALETTE.length],
        dash: def.dash,
        values: xs.map((t) => {
          const row = (rowsAt.get(t) || []).find((r) => r[spec.idField] === id);
          return row && row[def.field] !== undefined ? row[def.field] : null;
        }),
      })));
    }
    const section = chartSection(chart, series);
    const table = chart.sum
      ? sumTable(chart, active, rowsAt, intervalText)
      : perItemTable(chart, spec, s.kind, rows, at, intervalText);
    section.append(table);
    return { section, chart, series };
  });
  body.append(...sections.map((x) => x.section), reasonsSection(spec.reasons, rows));
  // Drawn once in the page: uPlot sizes the chart to its laid-out container.
  for (const { section, chart, series } of sections) {
    drawChart(section.querySelector('.chart'), { xs, span, series, unit: chart.unit, tz: s.tz, tick, days: s.interval === '1d' });
  }
}

function sumOf(rows, field) {
  return rows.reduce((total, row) => total + (Number(row[field]) || 0), 0);
}

function chartSection(chart, series) {
  const headingId = `${chart.id}-heading`;
  const legend = el('ul.chart-legend', { 'aria-label': `Series of ${chart.title}` }, ...series.map((s) => {
    const swatch = el(`span.swatch${s.dash ? '.swatch-dash' : ''}`, { 'aria-hidden': 'true' });
    // A style property, not a style attribute: the page's CSP allows no inline style.
    swatch.style.borderColor = s.color;
    return el('li', {}, swatch, s.label);
  }));
  return el('section.card.report-card', { 'aria-labelledby': headingId, dataset: { chart: chart.id } },
    el('h2', { id: headingId }, chart.title),
    el('p.chart-note.muted.small', {}, chart.note),
    el('figure.chart-figure', {},
      el('div.chart', { role: 'img', 'aria-label': `${chart.title} over time: chart. The figures are in the table below.` }),
      el('figcaption', {}, legend)));
}

const scrollBox = (label, table) => el('div.table-box', { tabindex: '0', role: 'region', 'aria-label': label }, table);

/** Intervals with activity as rows, a column per series, and the total. */
function sumTable(chart, active, rowsAt, intervalText) {
  const head = el('tr', {}, el('th', { scope: 'col' }, 'Interval'), ...chart.series.map((def) => el('th', { scope: 'col' }, def.label)));
  const body = active.map((t) => el('tr', { dataset: { interval: String(t) } },
    el('th', { scope: 'row' }, el('time', { datetime: new Date(t * 1000).toISOString() }, intervalText(t))),
    ...chart.series.map((def) => el('td', { dataset: { col: def.field } }, formatValue(chart.unit, sumOf(rowsAt.get(t), def.field))))));
  const all = active.flatMap((t) => rowsAt.get(t));
  const foot = el('tr.total-row', {}, el('th', { scope: 'row' }, 'Total'),
    ...chart.series.map((def) => el('td', { dataset: { col: def.field } }, formatValue(chart.unit, sumOf(all, def.field)))));
  return scrollBox(`${chart.title}: figures`, el('table.table.report-table', { dataset: { table: chart.id } },
    el('caption.visually-hidden', {}, `${chart.title} by interval, with the total`),
    el('thead', {}, head), el('tbody', {}, ...body), el('tfoot', {}, foot)));
}

/** A row per interval and queue (or agent) with activity. */
function perItemTable(chart, spec, k, rows, at, intervalText) {
  const head = el('tr', {}, el('th', { scope: 'col' }, 'Interval'), el('th.cell-name', { scope: 'col' }, spec.noun === 'queue' ? 'Queue' : 'Agent'),
    ...chart.series.map((def) => el('th', { scope: 'col' }, def.label)));
  const body = rows.map((row) => el('tr', { dataset: { interval: String(at(row)), item: row[spec.idField] } },
    el('th', { scope: 'row' }, el('time', { datetime: row.interval_start }, intervalText(at(row)))),
    el('th.cell-name', { scope: 'row' }, nameOf(k, row[spec.idField])),
    ...chart.series.map((def) => el('td', { dataset: { col: def.field } }, formatValue(chart.unit, row[def.field])))));
  return scrollBox(`${chart.title}: figures`, el('table.table.report-table', { dataset: { table: chart.id } },
    el('caption.visually-hidden', {}, `${chart.title} by interval and ${spec.noun}`),
    el('thead', {}, head), el('tbody', {}, ...body)));
}

/** Wrap-up reasons (or idle reasons) over the whole range: a table with a bar per reason. */
function reasonsSection(reasons, rows) {
  const totals = new Map();
  for (const row of rows) {
    for (const [id, value] of Object.entries(row[reasons.field] || {})) totals.set(id, (totals.get(id) || 0) + Number(value || 0));
  }
  const entries = [...totals.entries()].sort((a, b) => b[1] - a[1]);
  const all = entries.reduce((total, [, value]) => total + value, 0);
  const headingId = `${reasons.id}-heading`;
  const section = el('section.card.report-card', { 'aria-labelledby': headingId, dataset: { chart: reasons.id } },
    el('h2', { id: headingId }, reasons.title),
    el('p.chart-note.muted.small', {}, reasons.note));
  if (!entries.length) {
    section.append(el('p.report-none', {}, reasons.empty));
    return section;
  }
  const labels = reasonLabels[reasons.field];
  const share = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });
  const body = entries.map(([id, value]) => {
    const fill = el('span.reason-fill');
    fill.style.width = `${all ? (value / all) * 100 : 0}%`; // CSSOM, not a style attribute
    return el('tr', { dataset: { reason: id } },
      el('th', { scope: 'row' }, labels.get(id) || id),
      el('td', { dataset: { col: 'value' } }, formatValue(reasons.unit, value)),
      el('td', { dataset: { col: 'share' } }, el('span.reason-share', {},
        el('span.reason-bar', { 'aria-hidden': 'true' }, fill), share.format(all ? value / all : 0))));
  });
  section.append(scrollBox(`${reasons.title}: figures`, el('table.table.report-table.reasons-table', { dataset: { table: reasons.id } },
    el('caption.visually-hidden', {}, `${reasons.title} over the range`),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Reason'), el('th', { scope: 'col' }, reasons.what), el('th', { scope: 'col' }, 'Share'))),
    el('tbody', {}, ...body))));
  return section;
}

// ---------- CSV

async function downloadCsv() {
  const s = settings();
  if (!valid(s)) return;
  const name = `${s.kind}-report-${s.from}-${s.to}.csv`;
  $('report-status').textContent = 'Preparing the CSV…';
  try {
    const response = await fetch(`/api/v1${KINDS[s.kind].path}?${apiParams(s, 'csv')}`, {
      headers: { Authorization: `Bearer ${session.token}`, Accept: 'text/csv' },
    });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      const detail = (data && data.error) || {};
      const error = { code: detail.code || 'internal', message: detail.message || `HTTP ${response.status}`, status: response.status };
      if (error.code === 'unauthorized' || error.code === 'forbidden') return signOut(error);
      const { text, param } = explain(error);
      return showError(text, param);
    }
    const blob = await response.blob();
    const link = el('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    $('report-status').textContent = `Downloaded ${name}.`;
  } catch (error) {
    showError(`Could not download the CSV. ${describeError({ code: 'offline' })}`);
  }
}

// ---------- wiring

$('report-form').addEventListener('submit', (event) => {
  event.preventDefault();
  show();
});
$('report-csv').addEventListener('click', downloadCsv);
for (const radio of document.querySelectorAll('input[name="kind"]')) {
  radio.addEventListener('change', () => {
    const other = kind() === 'queues' ? 'agents' : 'queues';
    picked[other] = itemsParam() === null ? null : checkedItems();
    renderItems();
    show();
  });
}
$('items-all').addEventListener('click', () => {
  for (const box of document.querySelectorAll('#item-list input[name="item"]')) box.checked = true;
});
$('items-none').addEventListener('click', () => {
  for (const box of document.querySelectorAll('#item-list input[name="item"]')) box.checked = false;
});
$('logout').addEventListener('click', () => {
  clearSession();
  session = null;
  destroyCharts();
  showLogin();
});

initControls();
// A new time zone moves "today": follow it while both days are still today.
let currentTz = $('report-tz').value;
$('report-tz').addEventListener('change', () => {
  const today = dayIn(currentTz);
  currentTz = $('report-tz').value;
  if ($('report-from').value === today && $('report-to').value === today) {
    $('report-from').value = dayIn(currentTz);
    $('report-to').value = dayIn(currentTz);
  }
});
// Reading reports is not taking chats: no agent presence from this page.
bindLoginForm($('login-form'), start, { takeChats: false });
const existing = loadSession();
if (existing) start(existing);
else showLogin();
