// The customer chat widget, mounted by /widget.js inside a shadow root.
// Pre-chat form -> POST /chats -> one WebSocket with the customer token.
// The token lives in sessionStorage so a reload resumes the same chat.

import { api, Client } from './protocol.js';
import { el, clear } from './util.js';
import { Thread } from './thread.js';
import { Compose } from './compose.js';
import { describeError } from './errors.js';

const FINAL = ['ended', 'closed', 'abandoned'];

/** A stroked 24x24 icon (no icon font, no emoji: both may be missing). */
function icon(className, ...paths) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', className);
  for (const d of paths) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

export function mount(root, { origin, queue, title, color, identity = () => null }) {
  const storageKey = `switchboard.widget.${queue}`;
  const load = () => { try { return JSON.parse(sessionStorage.getItem(storageKey) || 'null'); } catch { return null; } };
  const save = (value) => sessionStorage.setItem(storageKey, JSON.stringify(value));
  let stored = load();
  let client = null;
  let thread = null;
  let unread = 0;
  let state = null;
  let renderChat = () => {};

  // ---------- shell
  const frame = el('div.sb', { hidden: true });
  if (color) frame.style.setProperty('--sb-brand', color);
  const link = el('link', { rel: 'stylesheet', href: `${origin}/assets/css/widget.css` });
  link.addEventListener('load', () => { frame.hidden = false; });
  root.append(link, frame);

  const badge = el('span.sb-badge', { hidden: true, 'aria-hidden': 'true' });
  const launcher = el('button.sb-launcher', {
    type: 'button', 'aria-label': 'Open chat', 'aria-expanded': 'false', 'aria-controls': 'sb-panel',
    onclick: () => setOpen(!isOpen()),
  },
  icon('sb-icon sb-icon-chat', 'M4 5h16v11H9l-5 4z', 'M8 9h8M8 12h5'),
  icon('sb-icon sb-icon-close', 'M6 6l12 12M18 6L6 18'),
  badge);

  const subtitle = el('p.sb-subtitle', {}, 'We usually reply within a few minutes');
  const endButton = el('button.sb-head-btn', { type: 'button', hidden: true, onclick: () => confirmEnd() }, 'End chat');
  const body = el('div.sb-body');
  const panel = el('section.sb-panel', {
    id: 'sb-panel', role: 'dialog', 'aria-label': title, hidden: true,
    onkeydown: (event) => { if (event.key === 'Escape') setOpen(false); },
  },
  // A div, not a <header>: the host page has its own banner landmark.
  el('div.sb-head', {},
    el('div.sb-head-text', {}, el('h2.sb-title', {}, title), subtitle),
    endButton,
    el('button.sb-head-btn.sb-min', { type: 'button', 'aria-label': 'Minimize chat', onclick: () => setOpen(false) }, '—')),
  body);
  frame.append(panel, launcher);

  function isOpen() { return !panel.hidden; }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', String(open));
    launcher.setAttribute('aria-label', open ? 'Close chat' : 'Open chat');
    frame.classList.toggle('sb-open', open);
    if (stored) save({ ...stored, open });
    if (open) {
      unread = 0;
      renderBadge();
      thread?.scrollToEnd();
      (body.querySelector('input, textarea:not(:disabled)') || panel).focus?.();
    } else {
      launcher.focus();
    }
  }

  function renderBadge() {
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
  }

  // ---------- pre-chat form
  function showForm(prefill = {}) {
    endButton.hidden = true;
    subtitle.textContent = 'We usually reply within a few minutes';
    const error = el('p.sb-error', { role: 'alert', hidden: true });
    const name = el('input.sb-input', { name: 'name', autocomplete: 'name', required: true, value: prefill.name || '' });
    const email = el('input.sb-input', { name: 'email', type: 'email', autocomplete: 'email', value: prefill.email || '' });
    const question = el('textarea.sb-input', { name: 'message', rows: 3, required: true });
    const submit = el('button.sb-btn.sb-btn-primary', { type: 'submit' }, 'Start chat');
    const form = el('form.sb-form', {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const customer = { name: name.value.trim() };
        if (email.value.trim()) customer.email = email.value.trim();
        const message = question.value.trim();
        if (!customer.name || !message) {
          error.textContent = 'Please enter your name and your question.';
          error.hidden = false;
          return;
        }
        if (customer.email && !email.checkValidity()) {
          error.textContent = 'That email address does not look right.';
          error.hidden = false;
          return;
        }
        submit.disabled = true;
        submit.textContent = 'Starting…';
        try {
          const body = { queue, customer, message };
          // Signed by the embedding site: links this chat to the customer's earlier ones.
          const signed = identity();
          if (signed) body.identity = signed;
          const chat = await api(origin, '/chats', { method: 'POST', body });
          stored = { token: chat.token, conversation_id: chat.conversation_id, name: customer.name, email: customer.email, open: true };
          save(stored);
          startChat([{ seq: 1, from: { role: 'customer', name: customer.name }, text: message, ts: chat.created_at }]);
        } catch (e) {
          error.textContent = describeError(e);
          error.hidden = false;
          submit.disabled = false;
          submit.textContent = 'Start chat';
        }
      },
    },
    el('p.sb-intro', {}, 'Hi! Tell us who you are and what you need, and we will connect you with an agent.'),
    el('label.sb-field', {}, el('span', {}, 'Name'), name),
    el('label.sb-field', {}, el('span', {}, 'Email ', el('em', {}, '(optional)')), email),
    el('label.sb-field', {}, el('span', {}, 'How can we help?'), question),
    error,
    submit);
    clear(body).append(form);
    if (isOpen()) name.focus();
  }

  // ---------- chat
  function startChat(seed = []) {
    endButton.hidden = false;
    thread = new Thread({ me: { role: 'customer' }, label: 'Chat messages' });
    const status = el('div.sb-status', { role: 'status' });
    const typing = el('div.sb-typing', { 'aria-live': 'polite' });
    const after = el('div.sb-after');
    const failed = new Map();
    const deliver = async (clientMsgId, text, fromCompose) => {
      try {
        const ack = await client.request('send', { text, client_msg_id: clientMsgId });
        failed.delete(clientMsgId);
        thread.confirm(clientMsgId, ack);
      } catch (e) {
        if (['bad_request', 'too_long', 'invalid_state', 'not_found'].includes(e.code)) {
          thread.drop(clientMsgId);
          failed.delete(clientMsgId);
          if (fromCompose) throw e;
          return;
        }
        failed.set(clientMsgId, text);
        thread.fail(clientMsgId, 'Not sent yet.', () => deliver(clientMsgId, text, false));
      }
    };
    const compose = new Compose({
      placeholder: 'Write a message…',
      onSend: (text) => {
        const clientMsgId = `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
        thread.addPending(text, clientMsgId, { role: 'customer', name: stored.name });
        return deliver(clientMsgId, text, true);
      },
      onTyping: () => client.request('typing').catch(() => {}),
    });
    compose.node.classList.add('sb-compose');
    clear(body).append(status, thread.node, typing, after, compose.node);

    let typingTimer = null;
    let agents = [];
    let queueStatus = null; // the last `queue_status`
    const render = () => {
      const ended = FINAL.includes(state);
      status.className = 'sb-status';
      if (client.status === 'reconnecting') {
        status.textContent = 'Reconnecting…';
        status.classList.add('sb-status-warn');
      } else if (ended) {
        status.textContent = 'This chat has ended.';
        status.classList.add('sb-status-ended');
      } else if (!state || state === 'queued' || state === 'offered') {
        status.textContent = waitingText(state, queueStatus);
        status.classList.add('sb-status-wait');
        status.classList.toggle('sb-status-offline', queueStatus?.no_estimate === 'no_agents_online');
      } else {
        status.textContent = '';
      }
      status.hidden = !status.textContent;
      subtitle.textContent = agents.length ? `You are chatting with ${agents.join(' and ')}` : ended ? 'Chat ended' : 'Connecting you to an agent';
      endButton.hidden = ended;
      compose.setEnabled(!ended, ended ? 'This chat has ended' : 'Write a message…');
      clear(after);
      if (ended) {
        after.append(el('button.sb-btn.sb-btn-primary', {
          type: 'button',
          onclick: () => {
            client.close();
            const prefill = { name: stored.name, email: stored.email };
            sessionStorage.removeItem(storageKey);
            stored = null;
            state = null;
            showForm(prefill);
          },
        }, 'Start a new chat'));
      }
    };

    renderChat = render;
    const onSummary = (summary) => {
      // Back in a queue (an unanswered transfer): wait for its new status.
      if (summary.state === 'queued' && state !== 'queued') queueStatus = null;
      state = summary.state;
      agents = (summary.participants || []).filter((p) => p.role === 'agent').map((p) => p.name);
      render();
    };

    client = new Client({ origin, token: stored.token });
    for (const message of seed) {
      client.markSeen(stored.conversation_id, message.seq);
      thread.add(message);
    }
    client
      .on('status', render)
      // A refreshed token: a reload resumes the chat with it.
      .on('token', ({ token }) => { stored = { ...stored, token }; save(stored); })
      .on('hello', (hello) => {
        const summary = (hello.conversations || [])[0];
        if (summary) onSummary(summary);
        else { state = 'closed'; render(); }
        for (const [clientMsgId, text] of failed) deliver(clientMsgId, text, false);
      })
      .on('conversation', onSummary)
      .on('queue_status', (event) => { queueStatus = event; render(); })
      .on('message', (message) => {
        thread.add(message);
        if (message.from.role === 'agent') typing.textContent = '';
        if (message.from.role !== 'customer' && !isOpen()) {
          unread += 1;
          renderBadge();
        }
      })
      .on('typing', (event) => {
        if (event.from.role !== 'agent') return;
        typing.textContent = `${event.from.name} is typing…`;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { typing.textContent = ''; }, 5000);
      });
    client.connect();
    render();
    if (isOpen()) compose.focus();
  }

  /**
   * What a waiting customer reads: the place in line and the estimated wait
   * when the engine could estimate it honestly; otherwise a plain sentence
   * (and when no agent is online at all, that).
   */
  function waitingText(conversationState, queued) {
    const lead = 'Waiting for an agent…';
    if (conversationState === 'offered') return `${lead} An agent is being connected to you now.`;
    if (!queued) return `${lead} You are in the queue; we will be with you shortly.`;
    if (queued.no_estimate === 'no_agents_online') {
      return `${lead} No agent is online right now. Keep this chat open: we will answer as soon as one is back.`;
    }
    if (queued.estimated_wait_s === undefined || queued.estimated_wait_s === null) {
      return `${lead} You are in the queue; an agent will answer as soon as one is free.`;
    }
    return `${lead} You are number ${queued.position} in line. Estimated wait: ${aboutMinutes(queued.estimated_wait_s)}.`;
  }

  function aboutMinutes(seconds) {
    if (seconds < 60) return 'less than a minute';
    const minutes = Math.round(seconds / 60);
    return minutes === 1 ? 'about 1 minute' : `about ${minutes} minutes`;
  }

  function confirmEnd() {
    if (panel.querySelector('.sb-confirm')) return;
    const bar = el('div.sb-confirm', { role: 'alertdialog', 'aria-label': 'End this chat?' },
      el('span', {}, 'End this chat?'),
      el('button.sb-btn', { type: 'button', onclick: () => bar.remove() }, 'Cancel'),
      el('button.sb-btn.sb-btn-danger', {
        type: 'button',
        onclick: async () => {
          bar.remove();
          try {
            const ack = await client.request('end');
            state = ack.conversation ? ack.conversation.state : 'ended';
            renderChat();
          } catch (e) {
            body.prepend(el('p.sb-error', { role: 'alert' }, describeError(e)));
          }
        },
      }, 'End chat'));
    body.prepend(bar);
    bar.querySelector('.sb-btn-danger').focus();
  }

  window.addEventListener('online', () => client?.reconnectNow());

  // ---------- boot
  if (stored && stored.token) {
    startChat();
    setOpen(stored.open !== false);
  } else {
    showForm();
  }
}
