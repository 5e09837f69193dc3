// Modal dialogs of the interaction pane: Transfer, Conference, Wrap-up.
// Each is a native <dialog> (focus kept inside, Escape closes) built around a
// searchable list of radio options, so arrow keys and screen readers work.

import { el, clear, formatDuration, newId, onTick, secondsUntil } from './util.js';
import { describeError, WHY_NOT } from './errors.js';

/** A search box over a radio list. `load(query)` returns [{id, name, detail, disabled}]. */
export class SearchList {
  constructor({ label, placeholder, load, onChange }) {
    this.load = load;
    this.onChange = onChange;
    this.name = newId('pick-');
    this.value = null;
    this.search = el('input.input.search-input', {
      type: 'search',
      placeholder,
      'aria-label': `Search ${label.toLowerCase()}`,
      autocomplete: 'off',
      oninput: () => this.debounced(),
      onkeydown: (event) => {
        if (event.key === 'ArrowDown') {
          event.preventDefault();
          this.list.querySelector('input:not(:disabled)')?.focus();
        }
      },
    });
    this.status = el('p.search-status.muted', { 'aria-live': 'polite' });
    this.list = el('div.search-list', { role: 'radiogroup', 'aria-label': label });
    this.node = el('div.search-box', {}, this.search, this.status, this.list);
  }

  debounced() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 150);
  }

  async refresh() {
    const query = this.search.value.trim();
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    this.status.textContent = 'Loading…';
    let items;
    try {
      items = await this.load(query);
    } catch (error) {
      if (ticket === this.ticket) this.status.textContent = describeError(error);
      return;
    }
    if (ticket !== this.ticket) return; // a newer search answered first
    clear(this.list);
    if (!items.some((item) => item.id === this.value)) this.select(null);
    for (const item of items) {
      const input = el('input', {
        type: 'radio', name: this.name, value: item.id, disabled: !!item.disabled,
        checked: item.id === this.value, onchange: () => this.select(item.id),
      });
      this.list.append(el(`label.option${item.disabled ? '.option-disabled' : ''}`, {},
        input,
        el('span.option-name', {}, item.name),
        item.detail ? el('span.option-detail', {}, item.detail) : null,
        item.why ? el('span.option-why', {}, item.why) : null));
    }
    this.status.textContent = items.length ? `${items.length} result${items.length === 1 ? '' : 's'}` : 'Nothing matches.';
  }

  select(id) {
    this.value = id;
    this.onChange?.(id);
  }
}

/**
 * The shell every dialog shares: title, body, error line, Cancel + primary
 * button. A refused primary action shows its sentence here, once (the
 * caller does not toast it too); `onRefused(error)` may react (refresh).
 */
function modal({ title, primary, onPrimary, body, footerExtra, onRefused }) {
  const id = newId('dlg-');
  const error = el('p.error', { role: 'alert', hidden: true });
  const submit = el('button.btn.btn-primary', { type: 'submit', disabled: true }, primary);
  const dialog = el('dialog.dialog', { 'aria-labelledby': `${id}-title` });
  const form = el('form.dialog-form', {
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        await onPrimary();
        dialog.close();
      } catch (e) {
        error.textContent = describeError(e);
        error.hidden = false;
        submit.disabled = false;
        onRefused?.(e);
      }
    },
  },
  el('header.dialog-head', {},
    el('h2', { id: `${id}-title` }, title),
    el('button.btn.btn-ghost.btn-small', { type: 'button', 'aria-label': 'Close', onclick: () => dialog.close() }, '✕')),
  el('div.dialog-body', {}, ...body, error),
  el('footer.dialog-foot', {},
    footerExtra || el('span'),
    el('div.actions', {},
      el('button.btn', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
      submit)));
  dialog.append(form);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, submit, error };
}

const STATE_NAME = { available: 'Available', idle: 'Idle', rona: 'RONA', offline: 'Offline' };

/**
 * Agents for the transfer and conference dialogs, as GET
 * /agents?conversation_id= lists them: those who can take the chat first;
 * the others marked, disabled, with the reason, so nothing is refused after
 * the click. (Without `can_take`, a full agent is the one marked.)
 */
function agentItems(agents, selfId) {
  const items = agents.filter((agent) => agent.id !== selfId).map((agent) => {
    const cannot = agent.can_take === false || (agent.can_take === undefined && agent.active_chats >= agent.max_chats);
    const why = agent.why_not ? WHY_NOT[agent.why_not] || agent.why_not.replace(/_/g, ' ') : 'no free slot';
    return {
      id: agent.id,
      name: agent.name,
      detail: `${STATE_NAME[agent.state] || agent.state} · ${agent.active_chats}/${agent.max_chats} chats`,
      why: cannot ? `Cannot take it now: ${why}` : null,
      disabled: cannot,
    };
  });
  return [...items.filter((item) => !item.disabled), ...items.filter((item) => item.disabled)];
}

/**
 * Transfer: to a queue or to an agent who can take the chat now.
 * @param {object} o {customerName, selfId, fetchQueues(), fetchAgents(q), onTransfer(to)}
 */
export function openTransferDialog(o) {
  let mode = 'queue';
  const list = new SearchList({
    label: 'Transfer targets',
    placeholder: 'Search queues',
    load: async (query) => {
      if (mode === 'agent') return agentItems(await o.fetchAgents(query), o.selfId);
      const needle = query.toLowerCase();
      return (await o.fetchQueues())
        .filter((queue) => !needle || queue.name.toLowerCase().includes(needle) || queue.id.includes(needle))
        .map((queue) => ({
          id: queue.id,
          name: queue.name,
          detail: `${queue.waiting} waiting · ${queue.available_agents} agent${queue.available_agents === 1 ? '' : 's'} available`,
        }));
    },
    onChange: (id) => { shell.submit.disabled = !id; },
  });
  const modeName = newId('mode-');
  const modeRadio = (value, label) => el('label.segment', {},
    el('input', {
      type: 'radio', name: modeName, value, checked: value === mode,
      onchange: () => {
        mode = value;
        list.search.placeholder = value === 'queue' ? 'Search queues' : 'Search agents';
        list.search.value = '';
        list.select(null);
        list.refresh();
      },
    }),
    el('span', {}, label));
  const refresh = el('button.btn.btn-small', { type: 'button', onclick: () => list.refresh(), 'aria-label': 'Refresh queues and agents' }, '↻ Refresh');
  const shell = modal({
    title: `Transfer chat with ${o.customerName}`,
    primary: 'Transfer',
    body: [
      el('div.segmented', { role: 'radiogroup', 'aria-label': 'Transfer to' }, modeRadio('queue', 'Queue'), modeRadio('agent', 'Agent')),
      el('div.search-row', {}, list.search, refresh),
      list.node,
    ],
    onPrimary: () => o.onTransfer(mode === 'queue' ? { queue: list.value } : { agent: list.value }),
    // Refused because the agent changed meanwhile: show why, next to them.
    onRefused: (e) => { if (e.code === 'agent_unavailable') list.refresh(); },
  });
  list.refresh();
  list.search.focus();
  return shell.dialog;
}

/** Conference: invite an agent who can take the chat now. */
export function openConferenceDialog(o) {
  const list = new SearchList({
    label: 'Available agents',
    placeholder: 'Search available agents',
    load: async (query) => agentItems(await o.fetchAgents(query), o.selfId),
    onChange: (id) => { shell.submit.disabled = !id; },
  });
  const refresh = el('button.btn.btn-small', { type: 'button', onclick: () => list.refresh(), 'aria-label': 'Refresh agents' }, '↻ Refresh');
  const shell = modal({
    title: `Conference: invite an agent to the chat with ${o.customerName}`,
    primary: 'Conference',
    body: [el('div.search-row', {}, list.search, refresh), list.node],
    onPrimary: () => o.onConference(list.value),
    onRefused: (e) => { if (e.code === 'agent_unavailable') list.refresh(); },
  });
  list.refresh();
  list.search.focus();
  return shell.dialog;
}

/**
 * Wrap-up: a searchable list of reasons, optional notes, and the countdown to
 * the automatic wrap-up.
 * @param {object} o {customerName, reasons: [{id,label}] | null, fetchReasons(q), autoAt?, onSubmit(reason, notes)}
 */
export function openWrapUpDialog(o) {
  const list = new SearchList({
    label: 'Wrap-up reasons',
    placeholder: 'Search reasons',
    load: async (query) => {
      const needle = query.toLowerCase();
      const reasons = o.reasons && o.reasons.length ? o.reasons : await o.fetchReasons(query);
      return reasons.filter((r) => !needle || r.label.toLowerCase().includes(needle) || r.id.includes(needle))
        .map((r) => ({ id: r.id, name: r.label }));
    },
    onChange: (id) => { shell.submit.disabled = !id; },
  });
  const notes = el('textarea.input.notes', { rows: 2, placeholder: 'Notes (optional)', 'aria-label': 'Wrap-up notes' });
  const countdown = el('p.wrapup-countdown', { role: 'timer', 'aria-live': 'off' });
  const shell = modal({
    title: `Wrap up the chat with ${o.customerName}`,
    primary: 'Submit wrap-up',
    body: [countdown,
      el('label.field-label', { for: list.search.id = newId('reason-') }, 'Reason'), list.search, list.node,
      el('label.field-label', { for: notes.id = newId('notes-') }, 'Notes'), notes],
    onPrimary: () => o.onSubmit(list.value, notes.value.trim() || undefined),
  });
  shell.dialog.classList.add('dialog-wrapup');
  const stop = o.autoAt
    ? onTick(() => {
      const left = secondsUntil(o.autoAt);
      countdown.textContent = left > 0
        ? `Auto wrap-up in ${formatDuration(Math.ceil(left))} with the default reason`
        : 'Auto wrap-up is being applied…';
    })
    : (countdown.hidden = true, () => {});
  shell.dialog.addEventListener('close', stop);
  list.refresh();
  list.search.focus();
  return shell.dialog;
}
