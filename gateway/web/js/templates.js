// Template picker: search the configured templates, preview one with its
// slots filled (customer, agent and queue from the conversation; any other
// slot from a field), and send it with `send_template`. The engine fills the
// slots for real; the preview only shows what it will say.

import { el, clear } from './util.js';

const SLOT = /<([A-Za-z0-9_]+)>/g;

export class TemplatePicker {
  /**
   * @param {object} options
   * @param {() => Promise<Array>} options.load  GET /templates
   * @param {() => object} options.context  {customerName, customerEmail, agentName, queueName}
   * @param {(template: object, params: object) => Promise<unknown>} options.onSend
   */
  constructor({ load, context, onSend }) {
    this.load = load;
    this.context = context;
    this.onSend = onSend;
    this.button = el('button.btn.btn-ghost.template-button', {
      type: 'button',
      'aria-haspopup': 'dialog',
      'aria-expanded': 'false',
      onclick: () => (this.panel.hidden ? this.open() : this.close()),
    }, 'Templates');
    this.panel = el('section.template-panel', {
      role: 'dialog',
      'aria-label': 'Message templates',
      hidden: true,
      onkeydown: (event) => {
        if (event.key === 'Escape') {
          event.stopPropagation();
          this.close();
          this.button.focus();
        }
      },
    });
  }

  async open() {
    this.button.setAttribute('aria-expanded', 'true');
    this.panel.hidden = false;
    clear(this.panel).append(el('p.muted', {}, 'Loading templates…'));
    try {
      this.templates = await this.load();
    } catch (error) {
      clear(this.panel).append(el('p.error', { role: 'alert' }, error.message));
      return;
    }
    this.showList('');
  }

  close() {
    this.panel.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }

  showList(query) {
    const search = el('input.input', {
      type: 'search',
      placeholder: 'Search templates',
      'aria-label': 'Search templates',
      value: query,
      oninput: () => fill(search.value),
    });
    const list = el('ul.template-list', { 'aria-label': 'Templates' });
    const fill = (q) => {
      const needle = q.trim().toLowerCase();
      const matches = this.templates.filter((t) =>
        !needle || t.name.toLowerCase().includes(needle) || t.text.toLowerCase().includes(needle));
      clear(list).append(...matches.map((t) => el('li', {},
        el('button.template-item', { type: 'button', onclick: () => this.showTemplate(t, search.value) },
          el('span.template-name', {}, t.name),
          el('span.template-text', {}, t.text)))));
      if (!matches.length) list.append(el('li.muted', {}, 'No template matches.'));
    };
    fill(query);
    clear(this.panel).append(
      el('header.template-head', {}, el('h3', {}, 'Templates'),
        el('button.btn.btn-ghost.btn-small', { type: 'button', onclick: () => this.close(), 'aria-label': 'Close templates' }, '✕')),
      search, list);
    search.focus();
  }

  showTemplate(template, query) {
    const known = this.context();
    const slots = template.params && template.params.length ? template.params : [...template.text.matchAll(SLOT)].map((m) => m[1]);
    const asked = [...new Set(slots)].filter((name) => !known[name]);
    const inputs = new Map();
    const preview = el('p.template-preview', { 'aria-live': 'polite' });
    const error = el('p.error', { role: 'alert', hidden: true });
    const render = () => {
      clear(preview);
      let last = 0;
      for (const match of template.text.matchAll(SLOT)) {
        preview.append(template.text.slice(last, match.index));
        const value = known[match[1]] || inputs.get(match[1])?.value;
        preview.append(el(value ? 'span.slot.slot-filled' : 'span.slot.slot-empty', {}, value || match[1]));
        last = match.index + match[0].length;
      }
      preview.append(template.text.slice(last));
    };
    const fields = asked.map((name) => {
      const input = el('input.input', { type: 'text', name, required: true, oninput: render, 'aria-label': name });
      inputs.set(name, input);
      return el('label.field', {}, el('span.field-label', {}, name), input);
    });
    const send = el('button.btn.btn-primary', { type: 'submit' }, 'Send template');
    const form = el('form.template-form', {
      onsubmit: async (event) => {
        event.preventDefault();
        const params = {};
        for (const [name, input] of inputs) params[name] = input.value;
        send.disabled = true;
        try {
          await this.onSend(template, params);
          this.close();
        } catch (e) {
          error.textContent = e.code === 'missing_template_params' ? `Fill in every slot: ${e.message}` : e.message;
          error.hidden = false;
        } finally {
          send.disabled = false;
        }
      },
    },
    el('header.template-head', {},
      el('button.btn.btn-ghost.btn-small', { type: 'button', onclick: () => this.showList(query) }, '‹ Back'),
      el('h3', {}, template.name)),
    preview, ...fields, error,
    el('div.actions', {}, send));
    render();
    clear(this.panel).append(form);
    (fields.length ? inputs.values().next().value : send).focus();
  }
}
