// Switchboard protocol v1 client, shared by the agent desktop and the chat
// widget. One WebSocket (JSON subprotocol), commands matched to their
// `ack`/`error` by request_id with a timeout, reconnect with exponential
// backoff and jitter, and after every `hello` a `resume` per conversation
// with `after_seq`, so a client misses nothing and shows nothing twice.

import { newId, now, syncClock } from './util.js';

export const SUBPROTOCOL = 'switchboard.v1.json';

/** A protocol error (`error` frame, REST error body, timeout, offline). */
export class ProtocolError extends Error {
  constructor(code, message, status, retryAfterMs) {
    super(message || code);
    this.code = code;
    this.status = status;
    /** Set when a node past its capacity shed the request: nothing was done. */
    this.retryAfterMs = retryAfterMs;
  }
}

/** Tries of a request a busy server shed, before the caller hears of it. */
const SHED_TRIES = 4;

/**
 * Runs `attempt` again after the server's hint while the server sheds it
 * (`unavailable` with `retry_after_ms`): a shed request was not carried
 * out, so sending it again is safe (sends are idempotent anyway).
 */
async function untilAdmitted(attempt) {
  for (let tries = 1; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error.retryAfterMs > 0) || tries >= SHED_TRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs));
    }
  }
}

/** REST call under /api/v1. Resolves with the JSON body, throws ProtocolError. */
export function api(origin, path, options = {}) {
  return untilAdmitted(() => apiOnce(origin, path, options));
}

async function apiOnce(origin, path, { token, method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(`${origin}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ProtocolError('offline', 'The server cannot be reached. Check your connection.');
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && data.error ? data.error : {};
    throw new ProtocolError(detail.code || 'internal', detail.message || `HTTP ${response.status}`, response.status, detail.retry_after_ms);
  }
  return data;
}

/** The close code of a session whose token expired. */
export const TOKEN_EXPIRED = 4001;

export class Client extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.origin   e.g. "https://chat.example.com"
   * @param {string} options.token
   * @param {number} [options.timeoutMs]  per command
   * @param {() => Promise<boolean>} [options.checkToken]  asked after repeated
   *   failures to connect; false means the token is no longer valid.
   */
  constructor({ origin, token, timeoutMs = 10000, checkToken }) {
    super();
    this.origin = origin;
    this.setToken(token);
    this.refreshTimer = null;
    this.timeoutMs = timeoutMs;
    this.checkToken = checkToken;
    this.pending = new Map(); // request_id -> {resolve, reject, timer}
    this.seen = new Map(); // conversation_id -> Set of seq
    this.status = 'idle';
    this.attempt = 0;
    this.stopped = false;
    this.socket = null;
    this.retryTimer = null;
    this.role = null; // 'agent' or 'customer', from hello.you
    this.resuming = new Set();
  }

  /** The token sessions open with (a refresh replaces it). */
  setToken(token) {
    this.token = token;
    this.url = `${this.origin.replace(/^http/, 'ws')}/api/v1/ws?token=${encodeURIComponent(token)}`;
  }

  /**
   * The server closes a session when its token expires (code 4001): ask
   * for a new one when four fifths of the time left have passed. The new
   * token is announced ('token') so the page can keep it for a reload.
   */
  scheduleRefresh(expiresAt) {
    clearTimeout(this.refreshTimer);
    if (!expiresAt) return;
    // On the server's clock (`now()` follows hello's server_time), and
    // within what setTimeout can wait (about 24.8 days).
    const left = new Date(expiresAt).getTime() - now();
    this.refreshTimer = setTimeout(() => {
      this.request('refresh_token').then((ack) => {
        if (!ack.token) return;
        this.setToken(ack.token);
        this.emit('token', { token: ack.token, expiresAt: ack.token_expires_at });
        this.scheduleRefresh(ack.token_expires_at);
      }, () => this.scheduleRefresh(expiresAt)); // offline now: the next hello reschedules
    }, Math.min(2 ** 31 - 1, Math.max(1000, left * 0.8)));
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    this.setStatus(this.attempt || this.greeted ? 'reconnecting' : 'connecting');
    const socket = new WebSocket(this.url, SUBPROTOCOL);
    this.socket = socket;
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === 'hello') {
        this.greeted = true;
        this.attempt = 0;
      }
      this.receive(frame);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.failPending('disconnected', 'The connection was lost.');
      if (event.code === TOKEN_EXPIRED) {
        // Reconnecting with this token would be refused: sign in again.
        this.stopped = true;
        clearTimeout(this.refreshTimer);
        this.setStatus('closed');
        this.emit('unauthorized', { expired: true });
        return;
      }
      if (this.stopped) return this.setStatus('closed');
      this.attempt += 1;
      this.scheduleReconnect();
    };
  }

  /** Close for good (logout, chat finished). */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.failPending('disconnected', 'Closed.');
    this.setStatus('closed');
  }

  /** Drop the socket and come back at once (e.g. the browser went online). */
  reconnectNow() {
    if (this.stopped) return;
    if (this.socket) return; // open or still connecting
    this.attempt = Math.max(this.attempt, 1);
    this.connect();
  }

  async scheduleReconnect(afterMs) {
    this.setStatus('reconnecting');
    if (this.attempt >= 3 && this.checkToken && this.attempt % 3 === 0) {
      const valid = await this.checkToken().catch(() => true);
      if (!valid) {
        this.stopped = true;
        this.setStatus('closed');
        this.emit('unauthorized', {});
        return;
      }
    }
    // Exponential backoff (1 s doubling to 15 s) with "equal jitter"; a
    // draining server's advice is followed with up to 50 % jitter.
    const base = Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5));
    const delay = afterMs !== undefined ? afterMs * (1 + Math.random() / 2) : base / 2 + Math.random() * (base / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', { status });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, handler) {
    this.addEventListener(type, (event) => handler(event.detail));
    return this;
  }

  /** Send one command; resolves with its ack, rejects with a ProtocolError. */
  request(type, fields = {}, options = {}) {
    return untilAdmitted(() => this.requestOnce(type, fields, options));
  }

  requestOnce(type, fields, { timeoutMs = this.timeoutMs } = {}) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || this.status !== 'open') {
      return Promise.reject(new ProtocolError('offline', 'Not connected. Reconnecting…'));
    }
    const request_id = newId('r-');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(request_id);
        reject(new ProtocolError('timeout', 'The server did not answer in time.'));
      }, timeoutMs);
      this.pending.set(request_id, { resolve, reject, timer });
      socket.send(JSON.stringify({ type, request_id, ...fields }));
    });
  }

  failPending(code, message) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ProtocolError(code, message));
    }
    this.pending.clear();
  }

  receive(frame) {
    switch (frame.type) {
      case 'ack':
      case 'error': {
        const waiter = this.pending.get(frame.request_id);
        if (!waiter) {
          if (frame.type === 'error') this.emit('protocol_error', frame);
          return;
        }
        this.pending.delete(frame.request_id);
        clearTimeout(waiter.timer);
        if (frame.type === 'ack') waiter.resolve(frame);
        else waiter.reject(new ProtocolError(frame.code, frame.message, undefined, frame.retry_after_ms));
        return;
      }
      case 'hello':
        syncClock(frame.server_time);
        this.role = frame.you && frame.you.role;
        this.setStatus('open');
        this.scheduleRefresh(frame.token_expires_at);
        this.emit('hello', frame);
        this.resumeAll(frame.conversations || []);
        return;
      case 'message':
        if (!this.markSeen(frame.conversation_id, frame.seq)) return; // duplicate
        this.emit('message', frame);
        this.checkGap(frame.conversation_id);
        return;
      case 'reconnect':
        // The node is draining: go to another one after the advised pause.
        if (this.socket) {
          const socket = this.socket;
          this.socket = null;
          socket.onclose = null;
          socket.close(1000);
          this.failPending('disconnected', 'The server asked to reconnect.');
          this.scheduleReconnect(frame.after_ms || 500);
        }
        return;
      default:
        this.emit(frame.type, frame);
    }
  }

  /** Records a seq as shown; false when it already was. */
  markSeen(conversationId, seq) {
    let seen = this.seen.get(conversationId);
    if (!seen) this.seen.set(conversationId, (seen = new Set()));
    if (seen.has(seq)) return false;
    seen.add(seq);
    return true;
  }

  /** The highest seq with every earlier one seen: what `resume` asks after. */
  afterSeq(conversationId) {
    const seen = this.seen.get(conversationId);
    let n = 0;
    while (seen && seen.has(n + 1)) n += 1;
    return n;
  }

  /** Ask for the messages after what this client has; the replay comes as `message` events. */
  resume(conversationId) {
    if (this.resuming.has(conversationId)) return Promise.resolve();
    const after_seq = this.afterSeq(conversationId);
    const fields = this.role === 'customer' ? { after_seq } : { conversation_id: conversationId, after_seq };
    this.resuming.add(conversationId);
    return this.request('resume', fields)
      .catch((error) => this.emit('protocol_error', { code: error.code, message: error.message }))
      .finally(() => this.resuming.delete(conversationId));
  }

  resumeAll(conversations) {
    for (const summary of conversations) {
      if (summary.last_seq === undefined || summary.last_seq > this.afterSeq(summary.conversation_id)) {
        this.resume(summary.conversation_id);
      }
    }
  }

  /** A seq beyond a hole means a frame was missed: fetch the hole once. */
  checkGap(conversationId) {
    if (this.resuming.has(conversationId)) return;
    const highest = Math.max(...this.seen.get(conversationId));
    if (highest > this.afterSeq(conversationId)) this.resume(conversationId);
  }
}
