// The chat widget on its own: phone width, style isolation, a dropped
// connection (nothing lost, nothing twice), the customer leaving, and the
// automatic wrap-up on the agent's side.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { startProxy } from '../lib/proxy.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { agentSays, customerSays, seqs, setState, signIn, startChat, widget } from '../lib/actors.js';

describe('chat widget', () => {
  let server;
  let proxy;
  let browser;
  let agent;
  let phone;
  const shot = screenshots('widget');

  before(async () => {
    server = await startServer('widget', { rona: 8000, autoWrapUp: 3000 });
    proxy = await startProxy(server.port);
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
  });

  test('phone width (360 px): the form and the open chat fill the screen, host styles stay out', async () => {
    // The customer reaches the server through a proxy the test can cut.
    phone = await openPage(browser, `${proxy.url}/demo`, { viewport: { width: 360, height: 740 } });
    const w = widget(phone);
    await w.getByRole('button', { name: 'Open chat' }).click();
    const panel = w.getByRole('dialog');
    await panel.getByLabel('Name', { exact: true }).waitFor();
    const box = await panel.boundingBox();
    assert.equal(Math.round(box.width), 360);
    assert.equal(Math.round(box.x), 0);
    const font = await w.locator('.sb-title').evaluate((node) => getComputedStyle(node).fontFamily);
    assert.doesNotMatch(font, /Georgia/);
    await shot(phone, 'phone-prechat');

    await panel.getByRole('button', { name: 'Start chat' }).click();
    await panel.getByRole('alert').filter({ hasText: 'enter your name' }).waitFor();
    await panel.getByRole('button', { name: 'Minimize chat' }).click();
    await startChat(phone, { name: 'Grace Hopper', question: 'Do you ship to Lisbon?' });
    await w.getByText('Waiting for an agent', { exact: false }).waitFor();
    const scrollWidth = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= 360, `page scrolls sideways: ${scrollWidth}`);
    await shot(phone, 'phone-waiting');
  });

  test('an agent accepts; the customer keeps writing while queued and it all arrives', async () => {
    await customerSays(phone, 'Also: how long does it take?');
    agent = await openPage(browser, `${server.url}/`);
    await signIn(agent, 'alice');
    await setState(agent, 'available');
    await agent.locator('.offer').getByRole('button', { name: 'Accept' }).click();
    await agent.locator('#pane .msg-text', { hasText: 'how long does it take?' }).waitFor();
    await agentSays(agent, 'Yes, we ship to Portugal in 3 days.');
    await widget(phone).locator('.msg-text', { hasText: 'we ship to Portugal' }).waitFor();
    await shot(phone, 'phone-chat');
  });

  test('a dropped connection shows "Reconnecting…", then resumes: nothing lost, nothing twice', async () => {
    const w = widget(phone);
    proxy.drop();
    await w.getByText('Reconnecting…').waitFor();
    await shot(phone, 'phone-reconnecting');
    // Written while the customer is cut off: must arrive after the resume.
    await agentSays(agent, 'Sent while you were offline.');
    await agentSays(agent, 'And a second one.');
    proxy.restore();
    await w.locator('.msg-text', { hasText: 'And a second one.' }).waitFor({ timeout: 30000 });
    await w.getByText('Reconnecting…').waitFor({ state: 'hidden' });
    const customerSeqs = await seqs(w.locator('.thread'));
    assert.equal(new Set(customerSeqs).size, customerSeqs.length, 'a message is shown twice');
    assert.deepEqual(customerSeqs, await seqs(agent.locator('#pane .thread')));
    await customerSays(phone, 'Got both, thanks!');
    await agent.locator('#pane .msg-text', { hasText: 'Got both, thanks!' }).waitFor();
    await shot(phone, 'phone-resumed');
  });

  test('two chats at once: each row has its own timer, and an unread mark until opened', async () => {
    const second = await openPage(browser, `${server.url}/demo`);
    await startChat(second, { name: 'Alan Turing', question: 'Can I change my delivery address?' });
    await agent.locator('.offer').getByRole('button', { name: 'Accept' }).click();
    await agent.locator('#pane .pane-title', { hasText: 'Alan Turing' }).waitFor();
    assert.equal(await agent.locator('.conv-item').count(), 2);
    assert.equal(await agent.locator('#slots').textContent(), '2 / 3');

    const graceRow = agent.locator('.conv-item', { hasText: 'Grace Hopper' });
    await customerSays(phone, 'One more question about sizes.');
    await graceRow.locator('.unread-dot').waitFor();
    const timers = await agent.locator('.conv-item .conv-timer').allTextContents();
    assert.equal(timers.length, 2);
    timers.forEach((t) => assert.match(t, /^\d+:\d\d$/));
    await shot(agent, 'two-chats-unread');

    await graceRow.click();
    await graceRow.locator('.unread-dot').waitFor({ state: 'hidden' });
    await agent.locator('#pane .msg-text', { hasText: 'One more question about sizes.' }).waitFor();

    // Close the second chat so the next test starts from Grace's alone.
    await agent.locator('.conv-item', { hasText: 'Alan Turing' }).click();
    await agent.locator('#pane').getByRole('button', { name: 'End', exact: true }).click();
    const wrap = agent.getByRole('dialog', { name: /Wrap up/ });
    await wrap.getByRole('radio', { name: 'Resolved' }).check();
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
    await agent.locator('.conv-item', { hasText: 'Alan Turing' }).waitFor({ state: 'detached' });
    await agent.locator('#pane .pane-title', { hasText: 'Grace Hopper' }).waitFor();
  });

  test('the customer ends the chat; the agent is wrapped up automatically when the time runs out', async () => {
    const w = widget(phone);
    await w.getByRole('button', { name: 'End chat' }).click();
    await w.getByRole('alertdialog').getByRole('button', { name: 'End chat' }).click();
    await w.getByText('This chat has ended.').waitFor();
    await shot(phone, 'phone-ended');

    const wrap = agent.getByRole('dialog', { name: /Wrap up/ });
    await wrap.waitFor();
    await wrap.locator('.wrapup-countdown', { hasText: 'Auto wrap-up in' }).waitFor();
    await agent.locator('#pane .msg-system', { hasText: /Grace Hopper (left|ended) the chat/ }).waitFor();
    await shot(agent, 'auto-wrap-up-countdown');
    await agent.locator('.toast', { hasText: 'wrapped up automatically' }).waitFor({ timeout: 15000 });
    await agent.locator('.conv-item').waitFor({ state: 'detached' });
    await wrap.waitFor({ state: 'detached' });
    await shot(agent, 'auto-wrapped-up');

    await w.getByRole('button', { name: 'Start a new chat' }).click();
    assert.equal(await w.getByLabel('Name', { exact: true }).inputValue(), 'Grace Hopper');
    assert.deepEqual(phone.errors, []);
    assert.deepEqual(agent.errors, []);
  });
});
