// Small DOM and time helpers shared by every page. Text is always set with
// textContent: nothing a person typed ever goes through innerHTML.

/** el('button.primary', {type: 'button', onclick}, 'Accept', childNode...) */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const node = document.createElement(tag || 'div');
  if (classes.length) node.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key === 'text') {
      node.textContent = value;
    } else if (key in node && typeof value !== 'string') {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** A client id for `request_id` and `client_msg_id`; works on plain http too. */
export function newId(prefix = '') {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Server time: `hello.server_time` sets the offset so timers match the engine. */
let clockOffsetMs = 0;
export function syncClock(serverTime) {
  const server = Date.parse(serverTime);
  if (!Number.isNaN(server)) clockOffsetMs = server - Date.now();
}
export function now() {
  return Date.now() + clockOffsetMs;
}

/** 75 -> "1:15", 3725 -> "1:02:05" */
export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export function secondsSince(iso) {
  return (now() - Date.parse(iso)) / 1000;
}

export function secondsUntil(iso) {
  return (Date.parse(iso) - now()) / 1000;
}

export function formatClock(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function formatDate(iso) {
  const d = new Date(iso);
  return d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' }) +
    ' ' + d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** One shared 1 s tick for every live timer on the page. */
const tickers = new Set();
setInterval(() => tickers.forEach((fn) => fn()), 1000);
export function onTick(fn) {
  tickers.add(fn);
  fn();
  return () => tickers.delete(fn);
}

/** A polite live region for short notices (offer withdrawn, errors...). */
export function toast(container, text, kind = 'info', ms = 6000) {
  const node = el(`div.toast.toast-${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, text);
  container.append(node);
  setTimeout(() => node.remove(), ms);
  return node;
}

export function initials(name) {
  return (name || '?').split(/\s+/).filter(Boolean).slice(0, 2)
    .map((part) => part[0].toUpperCase()).join('') || '?';
}
