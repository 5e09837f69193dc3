// The supervisor's conversation search: filters over the record, pages by
// cursor, a row opens its transcript, and the same filters export as CSV
// or NDJSON (downloaded with the session's token, so no token in a URL).

import { api } from './protocol.js';
import { el, clear, formatDate } from './util.js';
import { openTranscript } from './customer-panel.js';

const $ = (id) => document.getElementById(id);
const STATES = ['queued', 'offered', 'active', 'conference_requested', 'conference', 'ended', 'closed', 'abandoned'];

export class ConversationSearch {
  constructor({ token }) {
    this.token = token;
    this.rest = (path) => api(location.origin, path, { token: this.token });
    this.form = $('search-form');
    this.body = $('search-table').tBodies[0];
    this.status = $('search-status');
    this.more = $('search-more');
    this.cursor = null;
    const state = $('search-state');
    if (state.options.length <= 1) {
      for (const name of STATES) state.append(el('option', { value: name }, name.replace('_', ' ')));
    }
    this.form.onsubmit = (event) => {
      event.preventDefault();
      this.search(false);
    };
    this.more.onclick = () => this.search(true);
    $('export-csv').onclick = () => this.download('csv');
    $('export-ndjson').onclick = () => this.download('ndjson');
    this.loadQueues();
  }

  async loadQueues() {
    const select = $('search-queue');
    if (select.options.length > 1) return;
    try {
      for (const queue of await this.rest('/queues')) select.append(el('option', { value: queue.id }, queue.name));
    } catch { /* the search still works by typing nothing */ }
  }

  /** The filters as query parameters (empty fields left out). */
  params() {
    const params = new URLSearchParams();
    const put = (name, value) => { if (value) params.set(name, value); };
    put('q', $('search-q').value.trim());
    put('queue', $('search-queue').value);
    put('agent', $('search-agent').value.trim());
    put('state', $('search-state').value);
    put('wrap_up', $('search-wrap-up').value.trim());
    const day = (id, end) => {
      const value = $(id).value; // yyyy-mm-dd, the user's day
      if (!value) return '';
      const date = new Date(`${value}T00:00:00`);
      if (end) date.setDate(date.getDate() + 1);
      return date.toISOString();
    };
    put('from', day('search-from', false));
    put('to', day('search-to', true));
    return params;
  }

  async search(more) {
    const params = this.params();
    params.set('limit', '50');
    if (more && this.cursor) params.set('cursor', this.cursor);
    this.status.textContent = 'Searching…';
    try {
      const page = await this.rest(`/conversations?${params}`);
      if (!more) clear(this.body);
      for (const item of page.items) this.body.append(this.row(item));
      this.cursor = page.next_cursor || null;
      this.more.hidden = !this.cursor;
      const shown = this.body.rows.length;
      this.status.textContent = shown ? `${shown} conversation${shown === 1 ? '' : 's'}${this.cursor ? ' (more below)' : ''}` : 'No conversation matches.';
    } catch (error) {
      this.status.textContent = error.message;
    }
  }

  row(item) {
    const open = () => openTranscript(this.rest, item, { role: 'none' });
    return el('tr.result-row', { dataset: { conversationId: item.conversation_id }, tabindex: '0', onclick: open,
      onkeydown: (event) => { if (event.key === 'Enter') open(); } },
      el('td', {}, formatDate(item.created_at)),
      el('th', { scope: 'row' }, item.customer.name || '(erased)'),
      el('td', {}, item.queue.name),
      el('td', {}, item.agents.join(', ')),
      el('td', {}, el(`span.badge.badge-${item.state}`, {}, item.state.replace('_', ' '))),
      el('td', {}, item.wrap_ups.join(', ')),
      el('td', {}, String(item.message_count)));
  }

  async download(format) {
    const params = this.params();
    params.set('format', format);
    this.status.textContent = 'Exporting…';
    try {
      const response = await fetch(`/api/v1/conversations/export?${params}`, {
        headers: { Authorization: `Bearer ${this.token}` },
      });
      if (!response.ok) throw new Error(`export failed: HTTP ${response.status}`);
      const blob = await response.blob();
      const link = el('a', { href: URL.createObjectURL(blob), download: `conversations.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      this.status.textContent = 'Exported.';
    } catch (error) {
      this.status.textContent = error.message;
    }
  }
}
