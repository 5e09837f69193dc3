// The agent's sign-in, shared by the desktop and the supervisor view. The
// token is kept in sessionStorage: it survives a reload, not a closed tab.

import { api } from './protocol.js';
import { describeError } from './errors.js';

const STORAGE_KEY = 'switchboard.agent';

export function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    return session && session.token ? session : null;
  } catch {
    return null;
  }
}

/** Keeps the session (a new token after a refresh) for a reload. */
export function saveSession(session) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/**
 * Wires a login form (#login-username, #login-password, #login-error) to
 * POST /agent/login; calls onLogin({token, agent}) once signed in.
 * `takeChats: false` (the supervisor page) signs in without logging in as
 * an agent: the supervisor is not listed as an idle agent until a desktop
 * connects.
 */
export function bindLoginForm(form, onLogin, { takeChats = true } = {}) {
  const username = form.querySelector('#login-username');
  const password = form.querySelector('#login-password');
  const error = form.querySelector('#login-error');
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!username.value.trim() || !password.value) return fail('Enter your username and password.');
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    error.hidden = true;
    try {
      const answer = await api(location.origin, '/agent/login', {
        method: 'POST',
        body: { username: username.value.trim(), password: password.value, ...(takeChats ? {} : { take_chats: false }) },
      });
      const session = { token: answer.token, agent: answer.agent };
      saveSession(session);
      password.value = '';
      onLogin(session);
    } catch (e) {
      fail(e.code === 'unauthorized' ? 'Wrong username or password.' : describeError(e));
    } finally {
      button.disabled = false;
    }
  });
}
