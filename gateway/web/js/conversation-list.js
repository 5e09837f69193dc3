// The agent's open conversations: one row each with the customer, queue,
// state badge, its own timer and an unread mark. Arrow keys move between rows.

import { el, formatDuration, initials, onTick, secondsSince } from './util.js';

export const STATE_LABEL = {
  queued: 'Queued',
  offered: 'Offered',
  active: 'Active',
  conference_requested: 'Conference requested',
  conference: 'Conference',
  ended: 'Ended',
  closed: 'Closed',
  abandoned: 'Abandoned',
};

export class ConversationList {
  constructor({ onSelect }) {
    this.onSelect = onSelect;
    this.rows = new Map(); // id -> {item, button, badge, timer, dot, createdAt}
    this.selected = null;
    this.node = el('ul.conv-list', { 'aria-label': 'Open conversations' });
    this.node.addEventListener('keydown', (event) => this.keydown(event));
    onTick(() => {
      for (const row of this.rows.values()) row.timer.textContent = formatDuration(secondsSince(row.createdAt));
    });
  }

  /** conv: {id, customerName, queueName, state, createdAt, badge?} */
  upsert(conv) {
    let row = this.rows.get(conv.id);
    if (!row) {
      const badge = el('span.badge');
      const timer = el('span.conv-timer', { 'aria-label': 'Chat duration' });
      const dot = el('span.unread-dot', { hidden: true, 'aria-label': 'Unread messages' });
      const name = el('span.conv-name');
      const queue = el('span.conv-queue');
      const button = el('button.conv-item', {
        type: 'button',
        dataset: { conversationId: conv.id },
        onclick: () => this.onSelect(conv.id),
      },
      el('span.avatar', { 'aria-hidden': 'true' }, initials(conv.customerName)),
      el('span.conv-main', {},
        el('span.conv-line', {}, name, dot),
        el('span.conv-line', {}, queue, timer),
        el('span.conv-line.conv-status', {}, badge)));
      const item = el('li', {}, button);
      this.node.append(item);
      row = { item, button, badge, timer, dot, name, queue, createdAt: conv.createdAt };
      this.rows.set(conv.id, row);
      row.timer.textContent = formatDuration(secondsSince(conv.createdAt));
    }
    row.name.textContent = conv.customerName;
    row.queue.textContent = conv.queueName;
    row.badge.textContent = conv.badge || STATE_LABEL[conv.state] || conv.state;
    row.badge.className = `badge badge-${conv.badgeKind || conv.state}`;
  }

  remove(id) {
    this.rows.get(id)?.item.remove();
    this.rows.delete(id);
  }

  select(id) {
    this.selected = id;
    for (const [rowId, row] of this.rows) {
      row.button.classList.toggle('selected', rowId === id);
      if (rowId === id) row.button.setAttribute('aria-current', 'true');
      else row.button.removeAttribute('aria-current');
    }
  }

  setUnread(id, unread) {
    const row = this.rows.get(id);
    if (!row) return;
    row.dot.hidden = !unread;
    row.button.classList.toggle('unread', unread);
  }

  keydown(event) {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    const buttons = [...this.node.querySelectorAll('.conv-item')];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    event.preventDefault();
    const next = buttons[(index + (event.key === 'ArrowDown' ? 1 : buttons.length - 1)) % buttons.length];
    next.focus();
  }
}
