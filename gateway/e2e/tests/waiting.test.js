// A day's stumbles, fixed and held: the customer's place in line and
// estimated wait, the transfer dialog that marks who cannot take the chat
// (and why), a refusal said once in words, the customer told when a
// transfer falls back to the queue, badges that never cover the text, and
// axe-core clean on every page and dialog.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENTS, startServer } from '../lib/server.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { setState, signIn, startChat, widget } from '../lib/actors.js';
import { assertAccessible } from '../lib/axe.js';

/** A chat started over REST: a customer who waits without a browser. */
async function restChat(server, name) {
  const response = await fetch(`${server.url}/api/v1/chats`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ queue: 'sales', customer: { name }, message: `Hello, this is ${name}` }),
  });
  assert.equal(response.status, 201);
  return (await response.json()).conversation_id;
}

/** Accepts the next chat request offered to this desktop (the customer named). */
async function acceptOffer(page, customer) {
  const card = page.locator('.offer', { hasText: customer });
  await card.getByRole('button', { name: 'Accept' }).click();
  await card.waitFor({ state: 'detached' });
  await page.locator('.conv-item', { hasText: customer }).waitFor();
}

/** Ends the chat with `customer` and wraps it up. */
async function endAndWrapUp(page, customer) {
  await page.locator('.conv-item', { hasText: customer }).click();
  await page.locator('#pane .pane-title', { hasText: customer }).waitFor();
  await page.locator('#pane').getByRole('button', { name: 'End', exact: true }).click();
  const wrap = page.getByRole('dialog', { name: /Wrap up/ });
  await wrap.getByRole('radio', { name: 'Resolved' }).check();
  await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
  await page.locator('.conv-item', { hasText: customer }).waitFor({ state: 'detached' });
}

const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe('waiting, transfers and accessibility', () => {
  let server;
  let browser;
  let bob;
  let carol;
  let alice;
  let ada; // the demo site with Ada's widget
  const shot = screenshots('waiting');
  const status = () => widget(ada).locator('.sb-status');

  before(async () => {
    server = await startServer('waiting', { rona: 6000, autoWrapUp: 120000, queueStatus: 100 });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('sign-in pages are accessible and load without a 404', async () => {
    const login = await openPage(browser, `${server.url}/`);
    await login.getByRole('button', { name: 'Sign in' }).waitFor();
    await assertAccessible(login, 'the desktop sign-in');
    const supervisor = await openPage(browser, `${server.url}/supervisor`);
    await supervisor.getByRole('button', { name: 'Sign in' }).waitFor();
    await assertAccessible(supervisor, 'the supervisor sign-in');
    const demo = await openPage(browser, `${server.url}/demo`);
    await widget(demo).getByRole('button', { name: 'Open chat' }).click();
    await widget(demo).getByLabel('Name', { exact: true }).waitFor();
    await assertAccessible(demo, 'the demo site with the widget form open');
    for (const page of [login, supervisor, demo]) assert.deepEqual(page.notFound, [], page.url());
  });

  test('a waiting customer sees their place go 3 -> 2 -> 1, with an estimated wait', async () => {
    bob = await openPage(browser, `${server.url}/`);
    await signIn(bob, 'bob');
    await setState(bob, 'available');
    await assertAccessible(bob, 'the desktop, available');
    // Three chats answered: the queue has a rate to estimate from.
    for (const name of ['Ann', 'Ben', 'Cal']) {
      await restChat(server, name);
      await acceptOffer(bob, name);
    }
    // Bob is full: the next ones wait, Ada third.
    await restChat(server, 'Dee');
    await restChat(server, 'Eve');
    ada = await openPage(browser, `${server.url}/demo`);
    await startChat(ada, { name: 'Ada Lovelace', question: 'Where is my parcel?' });
    await status().filter({ hasText: 'You are number 3 in line.' }).waitFor();
    assert.match(await status().textContent(), /Estimated wait: (less than a minute|about \d+ minutes?)\./);
    await shot(ada, 'number-3');
    await assertAccessible(ada, 'the widget, waiting');

    await endAndWrapUp(bob, 'Ann');
    await acceptOffer(bob, 'Dee');
    await status().filter({ hasText: 'You are number 2 in line.' }).waitFor();
    await shot(ada, 'number-2');
    await endAndWrapUp(bob, 'Ben');
    await acceptOffer(bob, 'Eve');
    await status().filter({ hasText: 'You are number 1 in line.' }).waitFor();
    await shot(ada, 'number-1');
  });

  test('Carol takes Ada and transfers her to Bob; Bob\'s dialog marks Carol as owing a wrap-up', async () => {
    carol = await openPage(browser, `${server.url}/`);
    await signIn(carol, 'carol');
    await setState(carol, 'available');
    // Bob is full: Ada goes to Carol. Then Bob frees a slot.
    await acceptOffer(carol, 'Ada Lovelace');
    await endAndWrapUp(bob, 'Cal');
    await carol.locator('#pane').getByRole('button', { name: 'Transfer' }).click();
    const carolsDialog = carol.getByRole('dialog', { name: /Transfer/ });
    await carolsDialog.getByRole('radio', { name: 'Agent', exact: true }).check();
    await carolsDialog.getByRole('radio', { name: /Bob Chen/ }).check();
    await carolsDialog.getByRole('button', { name: 'Transfer', exact: true }).click();
    await acceptOffer(bob, 'Ada Lovelace');
    // Carol owes the wrap-up and leaves its dialog open.
    await carol.getByRole('dialog', { name: /Wrap up/ }).waitFor();

    await bob.locator('.conv-item', { hasText: 'Ada Lovelace' }).click();
    await bob.locator('#pane').getByRole('button', { name: 'Transfer' }).click();
    const dialog = bob.getByRole('dialog', { name: /Transfer/ });
    await dialog.getByRole('radio', { name: 'Agent', exact: true }).check();
    const carolOption = dialog.locator('label.option', { hasText: 'Carol Diaz' });
    await carolOption.locator('.option-why', { hasText: 'Cannot take it now: owes a wrap-up from this chat' }).waitFor();
    assert.equal(await dialog.getByRole('radio', { name: /Carol Diaz/ }).isDisabled(), true);
    await shot(bob, 'transfer-dialog-marks-carol');
    await assertAccessible(bob, 'the transfer dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await assertAccessible(carol, 'the wrap-up dialog');
  });

  test('a transfer refused after the list loaded is said once, in words, and the list shows why', async () => {
    alice = await openPage(browser, `${server.url}/`);
    await signIn(alice, 'alice');
    await setState(alice, 'available');
    await bob.locator('#pane').getByRole('button', { name: 'Transfer' }).click();
    const dialog = bob.getByRole('dialog', { name: /Transfer/ });
    await dialog.getByRole('radio', { name: 'Agent', exact: true }).check();
    await dialog.getByRole('radio', { name: /Alice Martin/ }).check();
    // Alice steps away before Bob clicks.
    await setState(alice, 'idle:break');
    await dialog.getByRole('button', { name: 'Transfer', exact: true }).click();
    const alert = dialog.getByRole('alert');
    await alert.filter({ hasText: 'That agent cannot take the chat now. Pick another one.' }).waitFor();
    await dialog.locator('label.option', { hasText: 'Alice Martin' })
      .locator('.option-why', { hasText: 'not available' }).waitFor();
    await shot(bob, 'transfer-refused-once');
    // Once: no toast repeats it, and no code is shown.
    assert.equal(await bob.locator('.toast').filter({ hasText: 'cannot take' }).count(), 0);
    assert.doesNotMatch(await alert.textContent(), /_/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  test('a conference request badge never covers the name or the timer in the chat list', async () => {
    await bob.locator('.conv-item', { hasText: 'Dee' }).click();
    await bob.locator('#pane .pane-title', { hasText: 'Dee' }).waitFor();
    await bob.locator('#pane').getByRole('button', { name: 'Conference', exact: true }).click();
    const dialog = bob.getByRole('dialog', { name: /Conference/ });
    await assertAccessible(bob, 'the conference dialog');
    await dialog.getByRole('radio', { name: /Carol Diaz/ }).check();
    await dialog.getByRole('button', { name: 'Conference', exact: true }).click();
    const row = bob.locator('.conv-item', { hasText: 'Dee' });
    await row.locator('.badge', { hasText: 'Conference requested' }).waitFor();
    const badge = await row.locator('.badge').boundingBox();
    for (const part of ['.conv-name', '.conv-timer', '.conv-queue']) {
      const box = await row.locator(part).boundingBox();
      assert.ok(!overlaps(badge, box), `the badge covers ${part}: ${JSON.stringify({ badge, box })}`);
    }
    await shot(bob, 'badge-on-its-own-line');
    // Carol's invite shows as a popover: accessible too.
    await carol.locator('.offer', { hasText: 'Dee' }).waitFor();
    await assertAccessible(carol, 'a conference invite popover');
    await bob.locator('#pane').getByRole('button', { name: 'End conference' }).click();
    await row.locator('.badge', { hasText: 'Active' }).waitFor();
  });

  test('a transfer nobody accepts: the customer reads that the chat is back in the queue', async () => {
    await setState(alice, 'available');
    await bob.locator('.conv-item', { hasText: 'Ada Lovelace' }).click();
    await bob.locator('#pane').getByRole('button', { name: 'Transfer' }).click();
    const dialog = bob.getByRole('dialog', { name: /Transfer/ });
    await dialog.getByRole('radio', { name: 'Agent', exact: true }).check();
    await dialog.getByRole('radio', { name: /Alice Martin/ }).check();
    await dialog.getByRole('button', { name: 'Transfer', exact: true }).click();
    await widget(ada).locator('.msg-system', { hasText: 'Bob Chen transferred the chat to Alice Martin' }).waitFor();
    // Alice lets the request run out (RONA).
    await alice.locator('.offer', { hasText: 'Ada Lovelace' }).waitFor();
    await assertAccessible(alice, 'a transfer request popover');
    await alice.locator('#rona-banner').waitFor({ timeout: 15000 });
    const fellBack = widget(ada).locator('.msg-system', { hasText: 'Your chat is back in the queue; the next available agent will answer.' });
    await fellBack.waitFor();
    await widget(ada).locator('.sb-status', { hasText: 'Waiting for an agent' }).waitFor();
    await shot(ada, 'back-in-the-queue');
    await assertAccessible(ada, 'the widget after a transfer fell back');
  });

  test('the supervisor page: accessible, and a supervisor watching is not an idle agent', async () => {
    // Alice (a supervisor too) signs out of her desktop: only the
    // supervisor page remains, and she is not taking chats.
    await alice.getByRole('button', { name: 'Sign out' }).click();
    await alice.getByRole('button', { name: 'Sign in' }).waitFor();
    const page = await openPage(browser, `${server.url}/supervisor`);
    await page.getByLabel('Username', { exact: true }).fill(AGENTS.alice.username);
    await page.getByLabel('Password', { exact: true }).fill(AGENTS.alice.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#agents-table tr[data-agent="alice"] .badge', { hasText: 'Offline' }).waitFor();
    await page.locator('#agents-table tr[data-agent="bob"] .badge', { hasText: 'Available' }).waitFor();
    await shot(page, 'supervisor');
    await assertAccessible(page, 'the supervisor page');
    for (const desk of [bob, carol, page]) {
      assert.deepEqual(desk.notFound, [], `404 on ${desk.url()}`);
      assert.deepEqual(desk.errors, []);
    }
    assert.deepEqual(ada.errors, []);
  });
});
