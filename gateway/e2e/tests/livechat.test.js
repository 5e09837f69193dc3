// The whole Livechat flow in real browsers: one customer in the demo site's
// widget, Alice and Bob in agent desktops, against the real server.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { launch, openPage, screenshots, textChanges } from '../lib/browser.js';
import { agentSays, customerSays, seqs, setState, signIn, startChat, widget } from '../lib/actors.js';

const CUSTOMER = { name: 'Ada Lovelace', email: 'ada@example.com', question: 'Hi, where is my order #1182?' };
const XSS = '<img src=x onerror=alert(1)>';

describe('agent desktop and chat widget', () => {
  let server;
  let browser;
  let alice; // Alice's desktop page
  let bob; // Bob's desktop page
  let customer; // the demo site with the widget
  const shot = screenshots('livechat');
  const pane = () => alice.locator('#pane');
  const offer = (page) => page.locator('.offer');

  before(async () => {
    server = await startServer('livechat', { rona: 5000, autoWrapUp: 20000 });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('sign in: a wrong password is refused, then the desktop opens idle', async () => {
    alice = await openPage(browser, `${server.url}/`);
    await alice.getByLabel('Username', { exact: true }).fill('alice');
    await alice.getByLabel('Password', { exact: true }).fill('wrong');
    await alice.getByRole('button', { name: 'Sign in' }).click();
    await alice.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await shot(alice, 'login-refused');
    await signIn(alice, 'alice');
    await alice.waitForFunction(() => document.body.dataset.agentState === 'idle');
    assert.equal(await alice.locator('#agent-name').textContent(), 'Alice Martin');
    await shot(alice, 'desktop-idle');
  });

  test('customer starts a chat from the demo site and waits for an agent', async () => {
    customer = await openPage(browser, `${server.url}/demo`);
    await widget(customer).getByRole('button', { name: 'Open chat' }).waitFor();
    await shot(customer, 'demo-site');
    await startChat(customer, CUSTOMER);
    await widget(customer).getByText('Waiting for an agent', { exact: false }).waitFor();
    await shot(customer, 'widget-waiting');
  });

  test('popover: customer, queue, thread, agent, date, running timer and time left', async () => {
    await setState(alice, 'available');
    const card = offer(alice);
    await card.waitFor();
    assert.equal(await card.locator('.offer-customer').textContent(), CUSTOMER.name);
    assert.equal(await card.locator('.offer-email').textContent(), CUSTOMER.email);
    assert.equal(await card.locator('.offer-queue').textContent(), 'Sales');
    assert.equal(await card.locator('.offer-agent').textContent(), 'Alice Martin');
    assert.equal(await card.locator('.offer-kind').textContent(), 'New chat request');
    assert.match(await card.locator('.offer-date').textContent(), new RegExp(String(new Date().getUTCFullYear())));
    await card.locator('.msg-text', { hasText: CUSTOMER.question }).waitFor();
    assert.match(await card.locator('.offer-left').textContent(), /\d+ s to accept/);
    const timer = card.locator('.offer-waiting');
    const before = await timer.textContent();
    assert.match(before, /^\d+:\d\d$/);
    await textChanges(timer, before);
    await card.getByRole('button', { name: 'Accept' }).waitFor();
    await shot(alice, 'offer-popover');
  });

  test('RONA: the offer expires, a banner explains it, Set Available brings the request back', async () => {
    await offer(alice).waitFor({ state: 'detached', timeout: 10000 });
    const banner = alice.locator('#rona-banner');
    await banner.waitFor();
    assert.match(await banner.textContent(), /missed a chat request/i);
    await alice.locator('.toast', { hasText: 'did not accept the request' }).waitFor();
    assert.equal(await alice.evaluate(() => document.body.dataset.agentState), 'rona');
    await shot(alice, 'rona-banner');
    await banner.getByRole('button', { name: 'Set Available' }).click();
    await banner.waitFor({ state: 'hidden' });
    await offer(alice).waitFor();
    await shot(alice, 'offer-again');
  });

  test('accept opens the conversation with its thread; the customer sees the agent join', async () => {
    await offer(alice).getByRole('button', { name: 'Accept' }).click();
    await offer(alice).waitFor({ state: 'detached' });
    await pane().locator('.pane-title', { hasText: CUSTOMER.name }).waitFor();
    await pane().locator('.badge', { hasText: 'Active' }).waitFor();
    await pane().locator('.msg-text', { hasText: CUSTOMER.question }).waitFor();
    await pane().locator('.msg-system', { hasText: 'joined' }).waitFor();
    await alice.locator('.conv-item', { hasText: CUSTOMER.name }).waitFor();
    await widget(customer).locator('.msg-system', { hasText: 'joined' }).waitFor();
    await widget(customer).getByText('You are chatting with Alice Martin').waitFor();
    await shot(alice, 'accepted');
    await shot(customer, 'widget-agent-joined');
  });

  test('Enter sends, Shift+Enter is a new line; typing shows; the customer replies', async () => {
    const input = pane().getByLabel('Message', { exact: true });
    await input.click();
    await input.pressSequentially('Hello Ada, thanks for waiting.');
    await input.press('Shift+Enter');
    await input.pressSequentially('Let me check that order.');
    assert.equal(await input.inputValue(), 'Hello Ada, thanks for waiting.\nLet me check that order.');
    await input.press('Enter');
    assert.equal(await input.inputValue(), '');
    const sent = pane().locator('.msg-mine .msg-text', { hasText: 'Let me check that order.' });
    await sent.waitFor();
    assert.equal(await sent.textContent(), 'Hello Ada, thanks for waiting.\nLet me check that order.');
    await widget(customer).locator('.msg-theirs .msg-text', { hasText: 'Let me check that order.' }).waitFor();

    await widget(customer).getByLabel('Message', { exact: true }).pressSequentially('It was a blue jacket');
    await pane().locator('.typing', { hasText: `${CUSTOMER.name} is typing` }).waitFor();
    await shot(alice, 'customer-typing');
    await widget(customer).getByLabel('Message', { exact: true }).press('Enter');
    await pane().locator('.msg-theirs .msg-text', { hasText: 'It was a blue jacket' }).waitFor();
    await shot(alice, 'enter-to-send');
    await shot(customer, 'widget-conversation');
  });

  test('typing < or > shows the reserved-characters notice at once and sends nothing', async () => {
    const input = pane().getByLabel('Message', { exact: true });
    const count = (await seqs(pane().locator('.thread'))).length;
    await input.fill('');
    await input.pressSequentially('a < b');
    const notice = pane().locator('.compose-notice');
    await notice.waitFor();
    assert.match(await notice.textContent(), /reserved for template slots/);
    assert.equal(await pane().getByRole('button', { name: 'Send', exact: true }).isDisabled(), true);
    await input.press('Enter');
    await shot(alice, 'reserved-characters');
    assert.equal((await seqs(pane().locator('.thread'))).length, count);
    assert.equal(await input.inputValue(), 'a < b');
    await input.fill('');
    await notice.waitFor({ state: 'hidden' });
  });

  test('a template is sent with its slots filled', async () => {
    await pane().getByRole('button', { name: 'Templates' }).click();
    const panel = alice.getByRole('dialog', { name: 'Message templates' });
    await panel.getByRole('button', { name: /Greeting/ }).click();
    await panel.locator('.template-preview', { hasText: `Hello ${CUSTOMER.name}, I'm Alice Martin from Sales.` }).waitFor();
    await shot(alice, 'template-preview');
    await panel.getByRole('button', { name: 'Send template' }).click();
    const text = `Hello ${CUSTOMER.name}, I'm Alice Martin from Sales. How can I help you today?`;
    await pane().locator('.msg-mine .msg-text', { hasText: text }).waitFor();
    await widget(customer).locator('.msg-text', { hasText: text }).waitFor();

    // A template with a slot only the agent can fill asks for it.
    await pane().getByRole('button', { name: 'Templates' }).click();
    await panel.getByRole('searchbox', { name: 'Search templates' }).fill('order');
    await panel.getByRole('button', { name: /Order status/ }).click();
    await panel.getByLabel('orderId').fill('1182');
    await panel.locator('.template-preview', { hasText: 'checking order 1182' }).waitFor();
    await shot(alice, 'template-param');
    await panel.getByRole('button', { name: 'Send template' }).click();
    await widget(customer).locator('.msg-text', { hasText: `Thanks ${CUSTOMER.name}, I'm checking order 1182 for you now.` }).waitFor();
    await shot(alice, 'template-sent');
  });

  test('customer text is shown as typed, never run as HTML', async () => {
    await customerSays(customer, XSS);
    const shown = pane().locator('.msg-theirs .msg-text', { hasText: 'onerror' });
    await shown.waitFor();
    assert.equal(await shown.textContent(), XSS);
    assert.equal(await alice.locator('#pane img').count(), 0);
    assert.equal(await widget(customer).locator('img').count(), 0);
    assert.equal(await widget(customer).locator('.msg-mine .msg-text', { hasText: 'onerror' }).textContent(), XSS);
    assert.deepEqual(alice.dialogs, []);
    assert.deepEqual(customer.dialogs, []);
    await shot(alice, 'xss-as-text');
  });

  test('reload mid-chat: both sides come back with the same thread, nothing twice', async () => {
    const agentBefore = await seqs(pane().locator('.thread'));
    const customerBefore = await seqs(widget(customer).locator('.thread'));
    assert.ok(agentBefore.length >= 7, `only ${agentBefore.length} messages before the reload`);

    await alice.reload();
    await alice.locator('#connection', { hasText: 'Connected' }).waitFor();
    await pane().locator('.pane-title', { hasText: CUSTOMER.name }).waitFor();
    await alice.waitForFunction((n) => document.querySelectorAll('#pane .thread li[data-seq]').length >= n, agentBefore.length);
    const agentAfter = await seqs(pane().locator('.thread'));
    assert.deepEqual(agentAfter, agentBefore);

    await customer.reload();
    const thread = widget(customer).locator('.thread');
    await thread.waitFor();
    await customer.waitForFunction(
      (n) => document.querySelector('#switchboard-widget').shadowRoot.querySelectorAll('.thread li[data-seq]').length >= n,
      customerBefore.length);
    assert.deepEqual(await seqs(thread), customerBefore);
    await shot(alice, 'agent-after-reload');
    await shot(customer, 'widget-after-reload');

    await agentSays(alice, 'Still here after the reload.');
    await widget(customer).locator('.msg-text', { hasText: 'Still here after the reload.' }).waitFor();
    await customerSays(customer, 'Me too.');
    await pane().locator('.msg-text', { hasText: 'Me too.' }).waitFor();
    const all = await seqs(pane().locator('.thread'));
    assert.equal(new Set(all).size, all.length);
    assert.deepEqual(await seqs(widget(customer).locator('.thread')), all);
  });

  test('conference: invite Bob, badge goes Conference requested -> Conference, then End conference', async () => {
    bob = await openPage(browser, `${server.url}/`);
    await signIn(bob, 'bob');
    await setState(bob, 'available');

    await pane().getByRole('button', { name: 'Conference', exact: true }).click();
    const dialog = alice.getByRole('dialog', { name: /Conference/ });
    await dialog.getByRole('searchbox').fill('bo');
    await dialog.getByRole('radio', { name: /Bob Chen/ }).check();
    await shot(alice, 'conference-dialog');
    await dialog.getByRole('button', { name: 'Conference', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await pane().locator('.badge', { hasText: 'Conference requested' }).waitFor();
    await shot(alice, 'conference-requested');

    const invite = offer(bob);
    await invite.waitFor();
    assert.equal(await invite.locator('.offer-kind').textContent(), 'Conference invite from Alice Martin');
    await shot(bob, 'conference-offer');
    await invite.getByRole('button', { name: 'Accept' }).click();
    await pane().locator('.badge', { hasText: /^Conference$/ }).waitFor();
    await pane().locator('.msg-system', { hasText: 'Bob Chen joined the chat' }).waitFor();
    await bob.locator('#pane .msg-system', { hasText: 'Bob Chen joined the chat' }).waitFor();
    await widget(customer).locator('.msg-system', { hasText: 'Bob Chen joined the chat' }).waitFor();
    await agentSays(bob, 'Bob here, I can help with shipping.');
    await widget(customer).locator('.msg-text', { hasText: 'Bob here' }).waitFor();
    await shot(alice, 'conference');
    await shot(customer, 'widget-conference');

    await pane().getByRole('button', { name: 'End conference' }).click();
    await pane().locator('.msg-system', { hasText: 'Bob Chen left the chat' }).waitFor();
    await pane().locator('.badge', { hasText: 'Active' }).waitFor();
    // The released guest owes a wrap-up.
    const wrap = bob.getByRole('dialog', { name: /Wrap up/ });
    await wrap.waitFor();
    await wrap.getByRole('radio', { name: 'Resolved' }).check();
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
    await bob.locator('.conv-item').waitFor({ state: 'detached' });
    await shot(alice, 'conference-ended');
  });

  test('transfer to an agent: Bob gets a transfer request from Alice; Alice wraps up', async () => {
    await pane().getByRole('button', { name: 'Transfer' }).click();
    const dialog = alice.getByRole('dialog', { name: /Transfer/ });
    await dialog.getByRole('radio', { name: 'Agent', exact: true }).check();
    await dialog.getByRole('radio', { name: /Bob Chen/ }).check();
    await shot(alice, 'transfer-dialog-agent');
    await dialog.getByRole('button', { name: 'Transfer', exact: true }).click();

    const request = offer(bob);
    await request.waitFor();
    assert.equal(await request.locator('.offer-kind').textContent(), 'Transfer from Alice Martin');
    await shot(bob, 'transfer-offer');
    await request.getByRole('button', { name: 'Accept' }).click();
    await bob.locator('#pane .badge', { hasText: 'Active' }).waitFor();
    await bob.locator('#pane .msg-text', { hasText: CUSTOMER.question }).waitFor();

    const wrap = alice.getByRole('dialog', { name: /Wrap up/ });
    await wrap.waitFor();
    await wrap.getByRole('radio', { name: 'Follow-up needed' }).check();
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
    await alice.locator('.conv-item').waitFor({ state: 'detached' });
    await widget(customer).getByText('You are chatting with Bob Chen').waitFor();
    await shot(bob, 'after-transfer');
  });

  test('transfer to a queue: Bob sends the chat to Support, Alice (Support) gets it', async () => {
    await bob.locator('#pane').getByRole('button', { name: 'Transfer' }).click();
    const dialog = bob.getByRole('dialog', { name: /Transfer/ });
    await dialog.getByRole('radio', { name: /Support/ }).check();
    await shot(bob, 'transfer-dialog-queue');
    await dialog.getByRole('button', { name: 'Transfer', exact: true }).click();
    const wrap = bob.getByRole('dialog', { name: /Wrap up/ });
    await wrap.waitFor();
    await wrap.getByRole('radio', { name: 'Resolved' }).check();
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();

    const request = offer(alice);
    await request.waitFor();
    assert.equal(await request.locator('.offer-queue').textContent(), 'Support');
    await shot(alice, 'queue-transfer-offer');
    await request.getByRole('button', { name: 'Accept' }).click();
    await pane().locator('.badge', { hasText: 'Active' }).waitFor();
    assert.match(await pane().locator('.pane-subtitle').textContent(), /Support/);
  });

  test('End opens the wrap-up dialog with its countdown; Submit wrap-up closes the chat', async () => {
    await pane().getByRole('button', { name: 'End', exact: true }).click();
    const wrap = alice.getByRole('dialog', { name: /Wrap up/ });
    await wrap.waitFor();
    const countdown = wrap.locator('.wrapup-countdown');
    assert.match(await countdown.textContent(), /Auto wrap-up in \d+:\d\d/);
    await textChanges(countdown, await countdown.textContent());
    await wrap.getByRole('searchbox').fill('resol');
    await wrap.getByRole('radio', { name: 'Follow-up needed' }).waitFor({ state: 'detached' });
    assert.equal(await wrap.getByRole('radio').count(), 1);
    await wrap.getByRole('radio', { name: 'Resolved' }).check();
    await wrap.getByLabel('Wrap-up notes').fill('Order located, shipping tomorrow.');
    await shot(alice, 'wrap-up-dialog');
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
    await alice.locator('.conv-item').waitFor({ state: 'detached' });
    await alice.locator('#pane-empty').waitFor();
    await widget(customer).getByText('This chat has ended.').waitFor();
    await widget(customer).getByRole('button', { name: 'Start a new chat' }).waitFor();
    await shot(alice, 'wrapped-up');
    await shot(customer, 'widget-ended');
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
    assert.deepEqual(customer.errors, []);
  });
});
