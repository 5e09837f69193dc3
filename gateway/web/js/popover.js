// The contact-request popover: one per pending offer, with everything the
// agent needs to decide (customer, queue, the thread so far, who it is for,
// the date, a live timer since the conversation was received, the time left
// to accept) and an Accept button.

import { describeError } from './errors.js';
import { el, formatDate, formatDuration, newId, onTick, secondsSince, secondsUntil } from './util.js';
import { Thread } from './thread.js';

const KIND_TITLE = {
  new: () => 'New chat request',
  transfer: (from) => `Transfer from ${from}`,
  conference: (from) => `Conference invite from ${from}`,
};

export class OfferPopover {
  /**
   * @param {object} offer  the `offer` event
   * @param {object} options
   * @param {(offer: object) => Promise<unknown>} options.onAccept
   */
  constructor(offer, { onAccept }) {
    this.offer = offer;
    const id = newId('offer-');
    const fromName = offer.from_agent ? offer.from_agent.name : 'another agent';
    const thread = new Thread({ me: { role: 'agent', id: offer.agent.id }, label: `Messages from ${offer.customer.name}` });
    for (const message of offer.messages || []) thread.add(message);

    this.waiting = el('span.offer-waiting', { 'aria-label': 'Waiting time' });
    this.left = el('span.offer-left');
    this.bar = el('span.offer-bar-fill');
    this.error = el('p.error', { role: 'alert', hidden: true });
    this.accept = el('button.btn.btn-accept', {
      type: 'button',
      'aria-describedby': `${id}-title`,
      onclick: () => this.doAccept(onAccept),
    }, 'Accept');

    const total = Math.max(1, (Date.parse(offer.expires_at) - Date.parse(offer.offered_at)) / 1000);
    this.node = el(`article.offer.offer-${offer.kind}`, {
      role: 'dialog',
      'aria-labelledby': `${id}-title`,
      'aria-describedby': `${id}-meta`,
      dataset: { conversationId: offer.conversation_id, offerId: offer.offer_id },
    },
    el('header.offer-head', {},
      el('span.offer-kind', {}, KIND_TITLE[offer.kind] ? KIND_TITLE[offer.kind](fromName) : 'Chat request'),
      el('span.offer-timer', {}, el('span.offer-timer-label', {}, 'Waiting'), this.waiting)),
    el('h3.offer-customer', { id: `${id}-title` }, offer.customer.name),
    offer.customer.email ? el('p.offer-email', {}, offer.customer.email) : null,
    el('dl.offer-meta', { id: `${id}-meta` },
      el('div', {}, el('dt', {}, 'Queue'), el('dd.offer-queue', {}, offer.queue.name)),
      el('div', {}, el('dt', {}, 'For'), el('dd.offer-agent', {}, offer.agent.name)),
      offer.from_agent ? el('div', {}, el('dt', {}, 'From'), el('dd.offer-from', {}, offer.from_agent.name)) : null,
      el('div.offer-meta-wide', {}, el('dt', {}, 'Received'), el('dd.offer-date', {}, formatDate(offer.created_at)))),
    thread.node,
    this.error,
    el('footer.offer-foot', {},
      el('div.offer-expiry', {},
        el('span.offer-bar', { 'aria-hidden': 'true' }, this.bar),
        this.left),
      this.accept));

    this.stop = onTick(() => {
      this.waiting.textContent = formatDuration(secondsSince(offer.created_at));
      const left = Math.max(0, secondsUntil(offer.expires_at));
      this.left.textContent = left > 0 ? `${Math.ceil(left)} s to accept` : 'Expiring…';
      this.bar.style.width = `${Math.min(100, (left / total) * 100)}%`;
      this.node.classList.toggle('offer-urgent', left <= Math.min(10, total / 3));
    });
    queueMicrotask(() => thread.scrollToEnd());
  }

  async doAccept(onAccept) {
    this.accept.disabled = true;
    this.accept.textContent = 'Accepting…';
    this.error.hidden = true;
    try {
      await onAccept(this.offer);
    } catch (error) {
      this.error.textContent = describeError(error);
      this.error.hidden = false;
      this.accept.disabled = false;
      this.accept.textContent = 'Accept';
    }
  }

  remove() {
    this.stop();
    this.node.remove();
  }
}
