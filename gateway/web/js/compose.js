// The compose box: Enter sends, Shift+Enter is a new line, a Send button
// does the same. For agents, `<` and `>` are refused at once with an inline
// notice (the engine refuses them too: they are reserved for template slots).

import { describeError } from './errors.js';
import { el, newId } from './util.js';

const RESERVED = /[<>]/;
export const RESERVED_NOTICE = '“<” and “>” are reserved for template slots and cannot be sent. Remove them to send.';

export class Compose {
  /**
   * @param {object} options
   * @param {(text: string) => Promise<unknown>} options.onSend
   * @param {() => void} [options.onTyping]  called at most every 3 s while typing
   * @param {boolean} [options.forbidReserved]  agents: refuse `<` and `>`
   * @param {string} [options.placeholder]
   * @param {Node} [options.extra]  e.g. the template picker button
   */
  constructor({ onSend, onTyping, forbidReserved = false, placeholder = 'Type a message', extra }) {
    this.onSend = onSend;
    this.onTyping = onTyping;
    this.forbidReserved = forbidReserved;
    this.lastTyping = 0;
    const id = newId('compose-');
    this.notice = el('div.compose-notice', { id: `${id}-notice`, role: 'alert', hidden: true });
    this.input = el('textarea.compose-input', {
      rows: 2,
      placeholder,
      'aria-label': 'Message',
      'aria-describedby': `${id}-notice ${id}-hint`,
      onkeydown: (event) => this.keydown(event),
      oninput: () => this.changed(),
    });
    this.sendButton = el('button.btn.btn-primary.compose-send', { type: 'submit' }, 'Send');
    this.node = el('form.compose', { onsubmit: (event) => { event.preventDefault(); this.submit(); } },
      this.notice,
      this.input,
      el('div.compose-bar', {},
        el('span.compose-hint', { id: `${id}-hint` }, 'Enter to send · Shift+Enter for a new line'),
        extra,
        this.sendButton));
  }

  keydown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    }
  }

  changed() {
    const bad = this.forbidReserved && RESERVED.test(this.input.value);
    if (bad) this.showNotice(RESERVED_NOTICE);
    else if (this.notice.dataset.kind === 'reserved' || !this.input.value) this.hideNotice();
    if (bad) this.notice.dataset.kind = 'reserved';
    this.input.setAttribute('aria-invalid', bad ? 'true' : 'false');
    this.sendButton.disabled = bad || this.disabled;
    const now = Date.now();
    if (this.onTyping && this.input.value && now - this.lastTyping > 3000) {
      this.lastTyping = now;
      this.onTyping();
    }
  }

  async submit() {
    if (this.disabled) return;
    const text = this.input.value;
    if (!text.trim()) return;
    if (this.forbidReserved && RESERVED.test(text)) {
      this.showNotice(RESERVED_NOTICE);
      this.notice.dataset.kind = 'reserved';
      return;
    }
    this.input.value = '';
    this.lastTyping = 0;
    this.hideNotice();
    try {
      await this.onSend(text);
    } catch (error) {
      // Refused outright (reserved characters, too long...): give the text back.
      if (!this.input.value) this.input.value = text;
      this.showNotice(error.code === 'reserved_characters' ? RESERVED_NOTICE : describeError(error));
    }
  }

  showNotice(text) {
    this.notice.textContent = text;
    this.notice.dataset.kind = '';
    this.notice.hidden = false;
  }

  hideNotice() {
    this.notice.hidden = true;
    this.notice.textContent = '';
  }

  setEnabled(enabled, placeholder) {
    this.disabled = !enabled;
    this.input.disabled = !enabled;
    this.sendButton.disabled = !enabled;
    if (placeholder) this.input.placeholder = placeholder;
  }

  focus() {
    this.input.focus();
  }
}
