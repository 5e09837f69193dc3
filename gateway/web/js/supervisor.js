// Supervisor view: GET /stats every few seconds, per queue and per agent.

import { api } from './protocol.js';
import { bindLoginForm, clearSession, loadSession } from './session.js';
import { el, clear, formatDuration } from './util.js';
import { ConversationSearch } from './conversation-search.js';
import { describeError } from './errors.js';

const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);
let session = null;
let timer = null;
let search = null;

const STATE_LABEL = { available: 'Available', idle: 'Idle', rona: 'RONA', offline: 'Offline' };

function showLogin(message) {
  clearTimeout(timer);
  $('dashboard').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login-error').hidden = !message;
  $('login-username').focus();
}

function start(signedIn) {
  session = signedIn;
  const roles = session.agent.roles || [];
  if (!roles.includes('supervisor') && !roles.includes('admin')) {
    clearSession();
    showLogin(`${session.agent.name} has no supervisor role. Sign in with a supervisor account.`);
    return;
  }
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('agent-name').textContent = session.agent.name;
  search = new ConversationSearch({ token: session.token });
  search.search(false);
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  try {
    const stats = await api(location.origin, '/stats', { token: session.token });
    render(stats);
    $('sup-error').hidden = true;
    $('updated').textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
    $('updated').className = 'pill pill-open';
  } catch (e) {
    if (e.code === 'unauthorized' || e.code === 'forbidden') {
      clearSession();
      showLogin(e.code === 'forbidden' ? 'This account may not see the supervisor view.' : 'Your session has expired. Please sign in again.');
      return;
    }
    $('sup-error').textContent = `Could not refresh. ${describeError(e)}`;
    $('sup-error').hidden = false;
    $('updated').textContent = 'Reconnecting…';
    $('updated').className = 'pill pill-reconnecting';
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

const percent = (value) => (value === undefined || value === null ? '—' : `${Math.round(value)} %`);
const seconds = (value) => (value === undefined || value === null ? '—' : formatDuration(value));

function render(stats) {
  $('service-level-note').textContent = `Service level: share of chats accepted within ${stats.service_level_s} s`;
  const counts = stats.agents_by_state || {};
  clear($('tiles')).append(...['available', 'idle', 'rona', 'offline'].map((state) =>
    el(`div.tile.tile-${state}`, {},
      el('div.tile-label', {}, STATE_LABEL[state]),
      el('div.tile-value', { dataset: { state } }, String(counts[state] ?? 0)))));

  clear($('queues-table').tBodies[0]).append(...stats.queues.map((q) => {
    const cells = [
      ['waiting', String(q.waiting), q.waiting > 0],
      ['longest_wait', formatDuration(q.longest_wait_s)],
      ['service_level', percent(q.service_level_pct)],
      ['asa', seconds(q.average_speed_of_answer_s)],
      ['offered', String(q.offered)],
      ['accepted', String(q.accepted)],
      ['abandoned', String(q.abandoned)],
      ['rona', String(q.rona), q.rona > 0],
      ['available_agents', String(q.available_agents)],
    ];
    return el('tr', { dataset: { queue: q.id } },
      el('th', { scope: 'row' }, q.name),
      ...cells.map(([col, text, warn]) => el(`td${warn ? '.warn-cell' : ''}`, { dataset: { col } }, text)));
  }));

  clear($('agents-table').tBodies[0]).append(...(stats.agents || []).map((a) => {
    const pct = a.max_chats ? Math.min(100, (a.active_chats / a.max_chats) * 100) : 0;
    // A style property, not a style attribute: the page's CSP allows no inline style.
    const fill = el('span.load-fill');
    fill.style.width = `${pct}%`;
    return el('tr', { dataset: { agent: a.id } },
      el('th', { scope: 'row' }, a.name),
      el('td', {}, el(`span.badge.badge-${a.state}`, {}, STATE_LABEL[a.state] || a.state)),
      el('td', {}, el('span.load', {},
        el('span.load-bar', { 'aria-hidden': 'true' }, fill),
        `${a.active_chats} / ${a.max_chats}`)));
  }));
}

$('logout').addEventListener('click', () => {
  clearSession();
  session = null;
  showLogin();
});

// Watching the floor is not taking chats: no agent presence from this page.
bindLoginForm($('login-form'), start, { takeChats: false });
const existing = loadSession();
if (existing) start(existing);
else showLogin();
