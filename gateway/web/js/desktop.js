// The agent desktop: sign in, state control, offers, conversations.
// Everything goes through protocol v1 (REST + one WebSocket).

import { api, Client } from './protocol.js';
import { bindLoginForm, clearSession, loadSession, saveSession } from './session.js';
import { el, clear, formatDuration, newId, onTick, secondsSince, toast, now } from './util.js';
import { Thread } from './thread.js';
import { Compose } from './compose.js';
import { TemplatePicker } from './templates.js';
import { OfferPopover } from './popover.js';
import { ConversationList, STATE_LABEL } from './conversation-list.js';
import { openConferenceDialog, openTransferDialog, openWrapUpDialog } from './dialogs.js';
import { describeError } from './errors.js';
import { CustomerPanel } from './customer-panel.js';

const ORIGIN = location.origin;
const $ = (id) => document.getElementById(id);
const LIVE_STATES = ['active', 'conference_requested', 'conference'];
const REFUSED = ['reserved_characters', 'too_long', 'bad_request', 'not_owner', 'invalid_state', 'not_found', 'forbidden'];

let session = null; // {token, agent}
let client = null;
let me = null; // agent profile
let agentState = null; // {state, reason, since}
let idleReasons = [];
let list = null;
const convs = new Map(); // conversation_id -> Conv
const popovers = new Map(); // conversation_id -> OfferPopover
let selectedId = null;

const notify = (text, kind) => toast($('toasts'), text, kind);
const announce = (text) => { $('announcer').textContent = text; };
const rest = (path, options = {}) => api(ORIGIN, path, { token: session.token, ...options });

// ---------------------------------------------------------------- sign in

function showLogin(message) {
  $('desktop').hidden = true;
  $('login').hidden = false;
  document.title = 'Switchboard · Agent sign in';
  const error = $('login-error');
  error.hidden = !message;
  error.textContent = message || '';
  $('login-username').focus();
}

bindLoginForm($('login-form'), (signedIn) => {
  // Back after an expired token: the same agent carries on where it was
  // (chats, drafts); someone else starts from a clean desktop.
  if (me && signedIn.agent.id !== me.id) signOutLocally();
  session = signedIn;
  startDesktop();
});

/**
 * The session's token expired (the server closed it, 4001): sign in again
 * without losing anything on the page. The desktop stays as it was, hidden
 * under the sign-in form, typed drafts included.
 */
function reauthenticate() {
  dropSession();
  showLogin('Your session expired. Sign in again to carry on: your chats and drafts are kept.');
}

/** Closes the connection and forgets the token. */
function dropSession() {
  client?.close();
  client = null;
  clearSession();
  session = null;
}

function signOutLocally(message) {
  dropSession();
  for (const popover of popovers.values()) popover.remove();
  popovers.clear();
  for (const id of [...convs.keys()]) removeConversation(id);
  showLogin(message);
}

$('logout').addEventListener('click', async () => {
  try {
    await client.request('logout');
  } catch (e) {
    if (e.code === 'invalid_state') {
      notify('Finish and wrap up your chats before signing out.', 'error');
      return;
    }
  }
  signOutLocally();
});

// ---------------------------------------------------------------- desktop

function startDesktop() {
  me = session.agent;
  $('login').hidden = true;
  $('desktop').hidden = false;
  $('agent-name').textContent = me.name;
  $('supervisor-link').hidden = !(me.roles || []).some((role) => role === 'supervisor' || role === 'admin');
  if (!list) {
    list = new ConversationList({ onSelect: (id) => select(id, true) });
    $('conv-list').append(list.node);
  }
  updateSlots();
  rest('/idle-reasons').then((reasons) => { idleReasons = reasons; renderState(); })
    .catch(() => {});

  client = new Client({
    origin: ORIGIN,
    token: session.token,
    checkToken: () => rest('/idle-reasons').then(() => true, (e) => e.code !== 'unauthorized'),
  });
  client
    .on('status', ({ status }) => renderConnection(status))
    .on('unauthorized', ({ expired } = {}) => (expired
      ? reauthenticate()
      : signOutLocally('Your session has expired. Please sign in again.')))
    .on('token', ({ token }) => { session = { ...session, token }; saveSession(session); })
    .on('hello', onHello)
    .on('agent_state', (state) => { agentState = state; renderState(); })
    .on('offer', showOffer)
    .on('offer_withdrawn', onOfferWithdrawn)
    .on('conversation', onConversation)
    .on('message', onMessage)
    .on('typing', onTyping)
    .on('wrap_up_required', onWrapUpRequired)
    .on('notice', (notice) => notify(notice.text, 'warning'))
    .on('protocol_error', (e) => e.code !== 'offline' && notify(describeError(e), 'error'));
  client.connect();
}

function renderConnection(status) {
  const pill = $('connection');
  const text = { open: 'Connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: 'Offline' };
  pill.textContent = text[status] || status;
  pill.className = `pill pill-${status}`;
}

function onHello(hello) {
  if (hello.you && hello.you.role === 'agent') {
    me = { ...me, ...hello.you };
    $('agent-name').textContent = me.name;
  }
  if (hello.agent_state) agentState = hello.agent_state;
  renderState();
  const present = new Set();
  for (const summary of hello.conversations || []) {
    present.add(summary.conversation_id);
    onConversation(summary);
  }
  for (const [id, conv] of convs) {
    if (!present.has(id) && !conv.wrapUp && !conv.leaving) removeConversation(id);
    else conv.retryFailed();
  }
  const offered = new Set((hello.offers || []).map((offer) => offer.offer_id));
  for (const [id, popover] of popovers) {
    if (!offered.has(popover.offer.offer_id)) {
      popover.remove();
      popovers.delete(id);
    }
  }
  for (const offer of hello.offers || []) showOffer(offer);
}

// ---------------------------------------------------------------- state

function renderState() {
  const select = $('state-select');
  const state = agentState ? agentState.state : 'idle';
  clear(select);
  const rona = state === 'rona'; // only Available leads out of RONA
  select.append(el('option', { value: 'available' }, 'Available'));
  for (const reason of idleReasons) {
    select.append(el('option', { value: `idle:${reason.id}`, disabled: rona }, `Idle · ${reason.label}`));
  }
  if (!idleReasons.length || (state === 'idle' && !agentState?.reason)) select.append(el('option', { value: 'idle:', disabled: rona }, 'Idle'));
  if (state === 'rona') select.append(el('option', { value: 'rona', disabled: true }, 'Missed request (RONA)'));
  select.value = state === 'idle' ? `idle:${agentState?.reason || ''}` : state;
  if (select.selectedIndex < 0) select.value = 'idle:';
  $('state-dot').className = `state-dot state-${state}`;
  $('rona-banner').hidden = state !== 'rona';
  document.body.dataset.agentState = state;
  renderStateSince();
}

function renderStateSince() {
  if (agentState && agentState.since) $('state-since').textContent = formatDuration(secondsSince(agentState.since));
}
onTick(renderStateSince);

async function setState(value) {
  const [state, reason] = value.split(':');
  try {
    const ack = await client.request('set_state', reason ? { state, reason } : { state });
    if (ack.state) agentState = { state: ack.state, reason: reason || undefined, since: ack.since || new Date(now()).toISOString() };
  } catch (e) {
    notify(`Could not change state. ${describeError(e)}`, 'error');
  }
  renderState();
}

$('state-select').addEventListener('change', (event) => setState(event.target.value));
$('rona-available').addEventListener('click', () => setState('available'));

// ---------------------------------------------------------------- offers

function showOffer(offer) {
  popovers.get(offer.conversation_id)?.remove();
  const popover = new OfferPopover(offer, { onAccept: accept });
  popovers.set(offer.conversation_id, popover);
  $('offers').append(popover.node);
  announce(`${offer.kind === 'new' ? 'New chat request' : offer.kind === 'transfer' ? 'Transfer request' : 'Conference invitation'} from ${offer.customer.name}. Accept is in the requests area.`);
}

function dropOffer(conversationId) {
  popovers.get(conversationId)?.remove();
  popovers.delete(conversationId);
}

function onOfferWithdrawn(event) {
  const popover = popovers.get(event.conversation_id);
  if (!popover || (event.offer_id && popover.offer.offer_id !== event.offer_id)) return;
  const name = popover.offer.customer.name;
  dropOffer(event.conversation_id);
  const why = {
    rona: `You did not accept the request from ${name} in time: it went back to the queue.`,
    customer_left: `${name} left before the chat was accepted.`,
    cancelled: `The request from ${name} was cancelled.`,
    accepted_elsewhere: `The request from ${name} was accepted in another window.`,
  };
  notify(why[event.reason] || `The request from ${name} was withdrawn.`, event.reason === 'rona' ? 'warning' : 'info');
}

async function accept(offer) {
  const ack = await client.request('accept', { conversation_id: offer.conversation_id });
  dropOffer(offer.conversation_id);
  const summary = ack.conversation || {
    conversation_id: offer.conversation_id,
    state: 'active',
    queue: offer.queue,
    participants: [{ role: 'agent', id: me.id, name: me.name }],
    customer: offer.customer,
    created_at: offer.created_at,
  };
  const conv = ensureConversation(summary, offer);
  if (conv) select(conv.id, true);
}

// ---------------------------------------------------------------- conversations

class Conv {
  constructor(summary) {
    this.id = summary.conversation_id;
    this.summary = summary;
    this.wrapUp = null; // {reasons, autoAt}
    this.leaving = false; // transferred away: a wrap-up is owed
    this.failed = new Map(); // client_msg_id -> text, retried after reconnect
    this.thread = new Thread({ me: { role: 'agent', id: me.id }, label: `Messages with ${summary.customer.name}` });
    this.build();
    this.render();
    this.tick();
  }

  get customer() { return this.summary.customer || { name: 'Customer' }; }
  get isOwner() { return this.summary.owner === me.id; }
  get isPresent() { return (this.summary.participants || []).some((p) => p.role === 'agent' && p.id === me.id); }

  build() {
    const action = (label, handler, extra = {}) => el('button.btn', { type: 'button', onclick: handler, ...extra }, label);
    this.badge = el('span.badge');
    this.timer = el('span.conv-timer');
    this.buttons = {
      transfer: action('Transfer', () => this.openTransfer(), { 'aria-haspopup': 'dialog' }),
      conference: action('Conference', () => this.openConference(), { 'aria-haspopup': 'dialog' }),
      endConference: action('End conference', () => this.command('end_conference')),
      end: action('End', () => this.end(), { class: 'btn btn-danger' }),
      wrapUp: action('Wrap-up', () => this.openWrapUp(), { class: 'btn btn-primary', 'aria-haspopup': 'dialog' }),
      dismiss: action('Close', () => removeConversation(this.id)),
    };
    this.typing = el('div.typing', { 'aria-live': 'polite' });
    this.picker = new TemplatePicker({
      load: () => rest('/templates'),
      context: () => ({
        customerName: this.customer.name,
        customerEmail: this.customer.email,
        agentName: me.name,
        queueName: this.summary.queue.name,
      }),
      onSend: (template, params) => this.sendTemplate(template, params),
    });
    this.compose = new Compose({
      forbidReserved: true,
      placeholder: `Reply to ${this.customer.name}`,
      onSend: (text) => this.send(text),
      onTyping: () => client.request('typing', { conversation_id: this.id }).catch(() => {}),
      extra: this.picker.button,
    });
    this.compose.node.prepend(this.picker.panel);
    this.title = el('h2.pane-title');
    this.subtitle = el('p.pane-subtitle.muted');
    this.panel = new CustomerPanel({ rest, me: { role: 'agent', id: me.id } });
    this.view = el('div.conv-view', { dataset: { conversationId: this.id } },
      el('div.conv-main', {},
        el('header.pane-head', {},
          el('div.pane-who', {}, el('div.pane-title-row', {}, this.title, this.badge), this.subtitle),
          el('div.pane-actions', { role: 'toolbar', 'aria-label': 'Conversation actions' },
            this.timer, ...Object.values(this.buttons))),
        this.thread.node,
        this.typing,
        this.compose.node),
      this.panel.node);
  }

  render() {
    const s = this.summary;
    const live = LIVE_STATES.includes(s.state);
    this.title.textContent = this.customer.name;
    const others = (s.participants || []).filter((p) => p.role === 'agent' && p.id !== me.id).map((p) => p.name);
    this.subtitle.textContent = [this.customer.email, s.queue.name, others.length ? `with ${others.join(', ')}` : '']
      .filter(Boolean).join(' · ');
    const owed = this.wrapUp || (s.state === 'ended' && this.isPresent);
    const label = owed ? 'Wrap-up' : this.leaving && !this.isPresent ? 'Transferred' : STATE_LABEL[s.state] || s.state;
    this.badge.textContent = label;
    this.badge.className = `badge badge-${owed ? 'wrapup' : s.state}`;
    const b = this.buttons;
    const ownerLive = this.isOwner && this.isPresent && live;
    b.transfer.disabled = !(ownerLive && s.state === 'active');
    b.conference.disabled = !(ownerLive && s.state === 'active');
    b.endConference.hidden = !(this.isOwner && (s.state === 'conference' || s.state === 'conference_requested'));
    b.end.disabled = !ownerLive;
    b.end.hidden = !!owed;
    b.wrapUp.hidden = !owed;
    b.dismiss.hidden = !!(owed || this.isPresent);
    b.transfer.hidden = b.conference.hidden = !!owed;
    const canWrite = this.isPresent && live;
    this.compose.setEnabled(canWrite, canWrite ? `Reply to ${this.customer.name}` : 'This chat has ended');
    this.panel.show(this.customer, this.id);
    if (this.isPresent && selectedId === this.id) this.panel.load();
    this.picker.button.disabled = !canWrite;
    list.upsert({
      id: this.id,
      customerName: this.customer.name,
      queueName: s.queue.name,
      state: s.state,
      createdAt: s.created_at,
      badge: label,
      badgeKind: owed ? 'wrapup' : s.state,
    });
  }

  tick() {
    this.timer.textContent = formatDuration(secondsSince(this.summary.created_at));
    if (this.wrapUp && this.wrapUp.autoAt && !this.checking && now() > Date.parse(this.wrapUp.autoAt) + 1500) {
      this.checkAutoWrapUp();
    }
  }

  /** After the auto wrap-up time, the record says whether it was applied. */
  async checkAutoWrapUp() {
    this.checking = true;
    try {
      const record = await rest(`/conversations/${encodeURIComponent(this.id)}`);
      if ((record.wrap_ups || []).some((w) => w.agent.id === me.id)) {
        notify(`The chat with ${this.customer.name} was wrapped up automatically.`, 'info');
        removeConversation(this.id);
        return;
      }
    } catch { /* try again on a later tick */ }
    setTimeout(() => { this.checking = false; }, 3000);
  }

  /** `inline`: the caller (a dialog) shows a refusal itself, so no toast. */
  async command(type, fields = {}, { inline = false } = {}) {
    try {
      const ack = await client.request(type, { conversation_id: this.id, ...fields });
      if (ack.conversation) onConversation(ack.conversation);
      return ack;
    } catch (e) {
      if (!inline) notify(describeError(e), 'error');
      throw e;
    }
  }

  async send(text) {
    const clientMsgId = newId('m-');
    this.thread.addPending(text, clientMsgId, { role: 'agent', id: me.id, name: me.name });
    return this.deliver(clientMsgId, text, true);
  }

  async deliver(clientMsgId, text, fromCompose) {
    try {
      const ack = await client.request('send', { conversation_id: this.id, text, client_msg_id: clientMsgId });
      this.failed.delete(clientMsgId);
      this.thread.confirm(clientMsgId, ack);
    } catch (e) {
      if (REFUSED.includes(e.code)) {
        this.thread.drop(clientMsgId);
        this.failed.delete(clientMsgId);
        if (fromCompose) throw e;
        notify(describeError(e), 'error');
        return;
      }
      this.failed.set(clientMsgId, text);
      this.thread.fail(clientMsgId, 'Not sent yet.', () => this.deliver(clientMsgId, text, false));
    }
  }

  retryFailed() {
    for (const [clientMsgId, text] of this.failed) this.deliver(clientMsgId, text, false);
  }

  async sendTemplate(template, params) {
    const ack = await client.request('send_template', {
      conversation_id: this.id,
      template_id: template.id,
      params,
      client_msg_id: newId('m-'),
    });
    if (ack.seq && ack.text) {
      this.thread.add({ seq: ack.seq, id: ack.id, text: ack.text, ts: new Date(now()).toISOString(), from: { role: 'agent', id: me.id, name: me.name } });
    }
    this.compose.focus();
  }

  showTyping(from) {
    this.typing.textContent = `${from.name} is typing…`;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => { this.typing.textContent = ''; }, 5000);
  }

  /** Logged-in agents, each marked whether it can take this chat now. */
  takers(query) {
    const q = query ? `&q=${encodeURIComponent(query)}` : '';
    return rest(`/agents?conversation_id=${encodeURIComponent(this.id)}${q}`);
  }

  openTransfer() {
    openTransferDialog({
      customerName: this.customer.name,
      selfId: me.id,
      fetchQueues: () => rest('/queues'),
      fetchAgents: (q) => this.takers(q),
      onTransfer: async (to) => {
        this.leaving = true;
        try {
          await this.command('transfer', { to }, { inline: true });
          notify(`Chat with ${this.customer.name} transferred.`, 'info');
        } catch (e) {
          this.leaving = false;
          throw e;
        }
        this.render();
      },
    });
  }

  openConference() {
    openConferenceDialog({
      customerName: this.customer.name,
      selfId: me.id,
      fetchAgents: (q) => this.takers(q),
      onConference: (agent) => this.command('conference', { agent }, { inline: true }),
    });
  }

  async end() {
    this.wantWrapUp = true;
    try {
      await this.command('end');
    } catch {
      this.wantWrapUp = false;
      return;
    }
    if (this.wrapUp) this.openWrapUp();
  }

  openWrapUp() {
    if (this.dialog && this.dialog.open) return;
    this.wantWrapUp = false;
    this.dialog = openWrapUpDialog({
      customerName: this.customer.name,
      reasons: this.wrapUp?.reasons,
      fetchReasons: (q) => rest(`/wrapup-reasons${q ? `?q=${encodeURIComponent(q)}` : ''}`),
      autoAt: this.wrapUp?.autoAt,
      onSubmit: async (reason, notes) => {
        this.submitting = true;
        try {
          await client.request('wrap_up', { conversation_id: this.id, reason, ...(notes ? { notes } : {}) });
        } finally {
          this.submitting = false;
        }
        notify(`Chat with ${this.customer.name} wrapped up.`, 'info');
        removeConversation(this.id);
      },
    });
  }
}

onTick(() => convs.forEach((conv) => conv.tick()));

function isParticipant(summary) {
  return (summary.participants || []).some((p) => p.role === 'agent' && p.id === me.id);
}

/** Creates the conversation if this agent is in it; seeds it from an offer's thread. */
function ensureConversation(summary, offer) {
  let conv = convs.get(summary.conversation_id);
  if (!conv) {
    if (!isParticipant(summary)) return null;
    conv = new Conv(summary);
    convs.set(conv.id, conv);
    for (const message of offer ? offer.messages || [] : []) {
      client.markSeen(conv.id, message.seq);
      conv.thread.add(message);
    }
    client.resume(conv.id);
    updateSlots();
    if (!selectedId) select(conv.id, false);
  } else {
    conv.summary = { ...conv.summary, ...summary };
    conv.render();
  }
  return conv;
}

function onConversation(summary) {
  const conv = convs.get(summary.conversation_id);
  if (['closed', 'abandoned'].includes(summary.state)) {
    if (conv && conv.wrapUp && !conv.submitting) {
      notify(`The chat with ${conv.customer.name} was wrapped up automatically.`, 'info');
    }
    if (conv) removeConversation(conv.id);
    dropOffer(summary.conversation_id);
    return;
  }
  // Accepted (here or in another tab): this agent is in it, the request is gone.
  if (isParticipant(summary)) dropOffer(summary.conversation_id);
  if (conv && !isParticipant(summary) && !conv.wrapUp && !conv.leaving) {
    conv.summary = { ...conv.summary, ...summary };
    conv.render(); // e.g. a released conference guest: the row stays with a Close button
    return;
  }
  ensureConversation(summary);
}

function onMessage(message) {
  const conv = convs.get(message.conversation_id);
  if (!conv) return;
  conv.thread.add(message);
  if (message.from.role !== 'agent' || message.from.id !== me.id) {
    if (message.from.role !== 'system') conv.typing.textContent = '';
    if (selectedId !== conv.id || document.hidden) setUnread(conv, true);
  }
}

function onTyping(event) {
  if (event.from.role === 'agent' && event.from.id === me.id) return;
  convs.get(event.conversation_id)?.showTyping(event.from);
}

function onWrapUpRequired(event) {
  const conv = convs.get(event.conversation_id);
  if (!conv) return;
  conv.wrapUp = { reasons: event.reasons, autoAt: event.auto_wrap_up_at };
  conv.render();
  if (selectedId === conv.id || conv.wantWrapUp) {
    select(conv.id, false);
    conv.openWrapUp();
  } else {
    notify(`The chat with ${conv.customer.name} has ended: wrap-up needed.`, 'warning');
  }
}

function setUnread(conv, unread) {
  conv.unread = unread;
  list.setUnread(conv.id, unread);
  const count = [...convs.values()].filter((c) => c.unread).length;
  document.title = `${count ? `(${count}) ` : ''}Switchboard · ${me.name}`;
}

function select(id, focus) {
  const conv = convs.get(id);
  if (!conv) return;
  selectedId = id;
  list.select(id);
  clear($('pane')).append(conv.view);
  conv.thread.scrollToEnd();
  if (conv.isPresent) conv.panel.load();
  setUnread(conv, false);
  if (focus && !conv.compose.disabled) conv.compose.focus();
  if (conv.wrapUp && focus) conv.openWrapUp();
}

function removeConversation(id) {
  const conv = convs.get(id);
  if (!conv) return;
  if (conv.dialog && conv.dialog.open) conv.dialog.close();
  convs.delete(id);
  list.remove(id);
  updateSlots();
  if (selectedId === id) {
    selectedId = null;
    const next = convs.keys().next();
    if (!next.done) select(next.value, false);
    else clear($('pane')).append(emptyPane);
  }
}

function updateSlots() {
  const max = me && me.max_chats;
  $('slots').textContent = max ? `${convs.size} / ${max}` : String(convs.size);
  $('no-chats').hidden = convs.size > 0;
}

const emptyPane = $('pane-empty');

// ---------------------------------------------------------------- boot

window.addEventListener('online', () => client?.reconnectNow());
session = loadSession();
if (session) startDesktop();
else showLogin();
