// The customer beside a conversation: who they are (verified by their web
// site, or only what they typed) and their earlier conversations, each of
// which opens its transcript read-only. The server decides who may see a
// customer's history: an agent who served them, or a supervisor.

import { el, clear, formatDate } from './util.js';
import { Thread } from './thread.js';

const STATE_LABEL = {
  queued: 'Queued', offered: 'Offered', active: 'Active', conference_requested: 'Conference',
  conference: 'Conference', ended: 'Ended', closed: 'Closed', abandoned: 'Abandoned',
};

/** Opens a conversation's transcript in a read-only dialog. */
export async function openTranscript(rest, item, me) {
  const thread = new Thread({ me: me || { role: 'none' }, label: `Transcript of ${item.conversation_id}` });
  const status = el('p.muted.small', { role: 'status' }, 'Loading…');
  const title = `${item.customer && item.customer.name ? item.customer.name : 'Customer'} · ${formatDate(item.created_at)}`;
  const dialog = el('dialog.dialog.dialog-transcript', { 'aria-label': `Transcript: ${title}` },
    el('header.dialog-head', {},
      el('h2', {}, title),
      el('button.btn.btn-ghost.btn-small', { type: 'button', 'aria-label': 'Close', onclick: () => dialog.close() }, '✕')),
    el('div.dialog-body.transcript-body', {}, status, thread.node));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  try {
    const transcript = await rest(`/conversations/${encodeURIComponent(item.conversation_id)}/transcript`);
    for (const message of transcript.messages) thread.add(message);
    status.textContent = transcript.messages.length ? '' : 'No messages (the customer was erased).';
    status.hidden = !!transcript.messages.length;
  } catch (error) {
    status.textContent = error.message;
  }
  return dialog;
}

export class CustomerPanel {
  constructor({ rest, me }) {
    this.rest = rest;
    this.me = me;
    this.loaded = false;
    this.name = el('p.customer-name');
    this.verified = el('span.pill');
    this.email = el('p.muted.small.customer-email');
    this.status = el('p.muted.small', { role: 'status' });
    this.list = el('ul.history', { 'aria-label': 'Earlier conversations' });
    this.node = el('aside.customer-panel', { 'aria-label': 'Customer' },
      el('h3.panel-heading', {}, 'Customer'),
      el('div.customer-who', {}, this.name, this.verified),
      this.email,
      el('h3.panel-heading', {}, 'Earlier conversations'),
      this.status,
      this.list);
  }

  /** Shows `customer` (of conversation `current`). */
  show(customer, current) {
    this.customer = customer || {};
    this.current = current;
    this.name.textContent = this.customer.name || 'Customer';
    this.verified.textContent = this.customer.verified ? 'Verified' : 'Not verified';
    this.verified.className = `pill ${this.customer.verified ? 'pill-verified' : ''}`;
    this.verified.title = this.customer.verified
      ? 'Signed in on the web site: earlier chats are theirs'
      : 'Only what they typed: chats are not linked';
    this.email.textContent = this.customer.email || '';
    this.email.hidden = !this.customer.email;
  }

  /** Loads the history once (again with `force`). */
  async load(force = false) {
    if ((this.loaded && !force) || this.loading) return;
    if (!this.customer || !this.customer.id) {
      this.status.textContent = 'No history.';
      return;
    }
    this.loading = true;
    this.status.textContent = 'Loading…';
    try {
      const page = await this.rest(`/customers/${encodeURIComponent(this.customer.id)}/conversations?limit=20`);
      const earlier = page.items.filter((item) => item.conversation_id !== this.current);
      clear(this.list);
      for (const item of earlier) this.list.append(this.entry(item));
      this.status.textContent = earlier.length ? '' : 'No earlier conversations.';
      this.status.hidden = !!earlier.length;
      this.loaded = true;
    } catch (error) {
      this.status.hidden = false;
      this.status.textContent = error.status === 403 ? 'History shown once you have accepted the chat.' : error.message;
    } finally {
      this.loading = false;
    }
  }

  entry(item) {
    const detail = [item.queue.name, STATE_LABEL[item.state] || item.state, (item.wrap_ups || []).join(', ')]
      .filter(Boolean).join(' · ');
    return el('li', {},
      el('button.history-item', {
        type: 'button',
        dataset: { conversationId: item.conversation_id },
        onclick: () => openTranscript(this.rest, item, this.me),
      },
      el('span.history-date', {}, formatDate(item.created_at)),
      el('span.history-detail.muted.small', {}, detail)));
  }
}
