// The supervisor view: live queue and agent figures, for supervisors only.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, AGENTS } from '../lib/server.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { setState, signIn, startChat, widget } from '../lib/actors.js';

describe('supervisor view', () => {
  let server;
  let browser;
  const shot = screenshots('supervisor');

  before(async () => {
    server = await startServer('supervisor', { rona: 30000, autoWrapUp: 30000 });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('an agent without the supervisor role is turned away', async () => {
    const page = await openPage(browser, `${server.url}/supervisor`);
    await page.getByLabel('Username', { exact: true }).fill(AGENTS.bob.username);
    await page.getByLabel('Password', { exact: true }).fill(AGENTS.bob.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'no supervisor role' }).waitFor();
    await shot(page, 'not-a-supervisor');
  });

  test('queues and agents refresh by themselves', async () => {
    const bob = await openPage(browser, `${server.url}/`);
    await signIn(bob, 'bob');

    const page = await openPage(browser, `${server.url}/supervisor`);
    await page.getByLabel('Username', { exact: true }).fill(AGENTS.alice.username);
    await page.getByLabel('Password', { exact: true }).fill(AGENTS.alice.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const sales = page.locator('#queues-table tr[data-queue="sales"]');
    await sales.waitFor();
    assert.equal(await page.locator('#queues-table tr[data-queue="support"] th').textContent(), 'Support');
    await page.locator('#agents-table tr[data-agent="bob"] .badge', { hasText: 'Idle' }).waitFor();
    // Alice watches from the supervisor page only: she is not an idle agent.
    await page.locator('#agents-table tr[data-agent="alice"] .badge', { hasText: 'Offline' }).waitFor();

    // A chat comes in: it waits in Sales, then Bob takes it. The view follows
    // without a reload.
    const customer = await openPage(browser, `${server.url}/demo`);
    await startChat(customer, { name: 'Linus', question: 'Is the jacket waterproof?' });
    await page.locator('#queues-table tr[data-queue="sales"] td[data-col="waiting"]', { hasText: '1' }).waitFor({ timeout: 10000 });
    await shot(page, 'dashboard-waiting');
    await setState(bob, 'available');
    await page.locator('.tile-value[data-state="available"]', { hasText: '1' }).waitFor({ timeout: 10000 });
    await bob.locator('.offer').getByRole('button', { name: 'Accept' }).click();
    await widget(customer).locator('.msg-system', { hasText: 'joined' }).waitFor();
    await page.locator('#queues-table tr[data-queue="sales"] td[data-col="accepted"]', { hasText: '1' }).waitFor({ timeout: 10000 });
    await page.locator('#agents-table tr[data-agent="bob"]', { hasText: '1 / 3' }).waitFor({ timeout: 10000 });
    await shot(page, 'dashboard');
    assert.deepEqual(page.errors, []);
  });
});
