// A conversation transcript: messages kept in seq order, each shown once.
// Used by the desktop (interaction pane, offer popover) and the widget.

import { el, formatClock } from './util.js';

export class Thread {
  /**
   * @param {object} options
   * @param {{role: string, id?: string}} options.me  whose messages sit on the right
   * @param {string} options.label  accessible name of the log
   */
  constructor({ me, label = 'Conversation' }) {
    this.me = me;
    this.bySeq = new Map();
    this.pending = new Map(); // client_msg_id -> li
    // A list (each message an item) that announces what is added: a
    // `role="log"` here would take the list's role away from its items.
    this.node = el('ol.thread', { 'aria-label': label, 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0' });
  }

  get count() {
    return this.bySeq.size;
  }

  get lastSeq() {
    return Math.max(0, ...this.bySeq.keys());
  }

  isMine(from) {
    if (!from || from.role !== this.me.role) return false;
    return from.role === 'customer' || from.id === this.me.id;
  }

  /** Adds a `message` (event, offer thread or resume replay); duplicates are ignored. */
  add(message) {
    if (this.bySeq.has(message.seq)) return null;
    let item = message.client_msg_id && this.pending.get(message.client_msg_id);
    if (item) {
      this.pending.delete(message.client_msg_id);
      item.remove();
      item = null;
    }
    const li = this.render(message);
    this.bySeq.set(message.seq, li);
    this.insert(li, message.seq);
    return li;
  }

  /** Shows what was just sent, before the engine confirms it. */
  addPending(text, clientMsgId, from) {
    const li = this.render({ from, text, ts: new Date().toISOString() });
    li.classList.add('msg-pending');
    li.dataset.clientMsgId = clientMsgId;
    this.pending.set(clientMsgId, li);
    this.insert(li, Infinity);
    return li;
  }

  /** The `send` ack: the pending bubble becomes the message with its seq. */
  confirm(clientMsgId, ack) {
    const li = this.pending.get(clientMsgId);
    if (!li) return;
    this.pending.delete(clientMsgId);
    if (this.bySeq.has(ack.seq)) {
      li.remove(); // the event came first
      return;
    }
    li.classList.remove('msg-pending', 'msg-failed');
    li.querySelector('.msg-status')?.remove();
    li.dataset.seq = ack.seq;
    if (ack.text) li.querySelector('.msg-text').textContent = ack.text;
    this.bySeq.set(ack.seq, li);
    li.remove();
    this.insert(li, ack.seq);
  }

  /** A send that failed: say so, with a retry. */
  fail(clientMsgId, reason, retry) {
    const li = this.pending.get(clientMsgId);
    if (!li) return;
    li.classList.add('msg-failed');
    li.querySelector('.msg-status')?.remove();
    const status = el('div.msg-status', {}, reason + ' ');
    if (retry) status.append(el('button.link', { type: 'button', onclick: retry }, 'Retry'));
    li.append(status);
  }

  /** Forgets a pending bubble the server refused outright. */
  drop(clientMsgId) {
    this.pending.get(clientMsgId)?.remove();
    this.pending.delete(clientMsgId);
  }

  render(message) {
    const role = message.from ? message.from.role : 'system';
    const mine = this.isMine(message.from);
    const kind = role === 'system' ? 'system' : mine ? 'mine' : 'theirs';
    const li = el(`li.msg.msg-${kind}.msg-from-${role}`, {});
    if (message.seq !== undefined) li.dataset.seq = message.seq;
    if (kind === 'theirs') li.append(el('div.msg-author', {}, message.from.name));
    li.append(el('div.msg-text', {}, message.text));
    if (message.ts) {
      li.append(el('time.msg-time', { datetime: message.ts }, formatClock(message.ts)));
    }
    return li;
  }

  insert(li, seq) {
    const list = this.node;
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    let before = null;
    for (const child of list.children) {
      const childSeq = child.dataset.seq === undefined ? Infinity : Number(child.dataset.seq);
      if (childSeq > seq) {
        before = child;
        break;
      }
    }
    list.insertBefore(li, before);
    if (stick || seq === Infinity) list.scrollTop = list.scrollHeight;
  }

  scrollToEnd() {
    this.node.scrollTop = this.node.scrollHeight;
  }
}
