// What agents and customers do in the pages, as a person would: by roles,
// labels and visible text.

import { AGENTS } from './server.js';

export async function signIn(page, who) {
  const agent = AGENTS[who];
  await page.getByLabel('Username', { exact: true }).fill(agent.username);
  await page.getByLabel('Password', { exact: true }).fill(agent.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#desktop').waitFor({ state: 'visible' });
  await page.locator('#connection', { hasText: 'Connected' }).waitFor();
  return agent;
}

/** 'available' or 'idle:<reason>' */
export async function setState(page, value) {
  await page.locator('#state-select').selectOption(value);
  const state = value.split(':')[0];
  await page.waitForFunction((s) => document.body.dataset.agentState === s, state);
}

export const widget = (page) => page.locator('#switchboard-widget');

export async function startChat(page, { name, email, question }) {
  const w = widget(page);
  await w.getByRole('button', { name: 'Open chat' }).click();
  await w.getByLabel('Name', { exact: true }).fill(name);
  if (email) await w.getByLabel(/Email/).fill(email);
  await w.getByLabel('How can we help?').fill(question);
  await w.getByRole('button', { name: 'Start chat' }).click();
  await w.locator('.thread .msg-mine', { hasText: question }).waitFor();
}

/** Types in the widget's compose box and presses Enter. */
export async function customerSays(page, text) {
  const input = widget(page).getByLabel('Message', { exact: true });
  await input.fill(text);
  await input.press('Enter');
  await widget(page).locator('.msg-mine:not(.msg-pending) .msg-text', { hasText: text }).last().waitFor();
}

/** Types in the selected conversation's compose box and presses Enter. */
export async function agentSays(page, text) {
  const input = page.locator('#pane').getByLabel('Message', { exact: true });
  await input.fill(text);
  await input.press('Enter');
  await page.locator('#pane .msg-mine:not(.msg-pending) .msg-text', { hasText: text }).last().waitFor();
}

/** The seq of every message shown in a thread: each must appear once. */
export function seqs(threadLocator) {
  return threadLocator.locator('li[data-seq]').evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));
}
