// The record in the pages: a returning customer (signed in on the shop,
// identity passed to the widget) is recognised, and the agent reads their
// earlier chat beside the new one; a supervisor finds a conversation by its
// words, reads it, and exports the list.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { startServer, AGENTS, IDENTITY_SECRET } from '../lib/server.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { agentSays, setState, signIn, startChat, widget } from '../lib/actors.js';

/** An identity as the shop signs it (HS256 JWT). */
function identity(sub, name) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, name, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac('sha256', IDENTITY_SECRET).update(body).digest('base64url')}`;
}

describe('the record in the desktop and the supervisor view', () => {
  let server;
  let browser;
  let shop;
  let bob;
  const shot = screenshots('records');

  before(async () => {
    // The shop page of a signed-in customer: the identity on the tag. The
    // node lists the shop in [widget] allowed_origins.
    const token = identity('shop-customer-7', 'Grace Hopper');
    shop = createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><html><head><title>Signed-in shop</title></head><body>
        <h1>Welcome back, Grace</h1>
        <script src="${server.url}/widget.js" data-queue="sales" data-identity="${token}" async></script>
        </body></html>`);
    });
    await new Promise((resolve) => shop.listen(0, '127.0.0.1', resolve));
    server = await startServer('records', {
      rona: 30000, autoWrapUp: 30000, allowedOrigins: [`http://127.0.0.1:${shop.address().port}`],
    });
    browser = await launch();
    bob = await openPage(browser, `${server.url}/`);
    await signIn(bob, 'bob');
    await setState(bob, 'available');
  });

  after(async () => {
    await new Promise((resolve) => (shop ? shop.close(resolve) : resolve()));
    await browser?.close();
    await server?.stop();
  });

  const shopUrl = () => `http://127.0.0.1:${shop.address().port}/`;

  async function acceptAndAnswer(question, answer) {
    await bob.locator('.offer', { hasText: question }).getByRole('button', { name: 'Accept' }).click();
    await bob.locator('#pane .msg-text', { hasText: question }).waitFor();
    await agentSays(bob, answer);
  }

  async function endAndWrapUp() {
    await bob.locator('#pane').getByRole('button', { name: 'End', exact: true }).click();
    const wrap = bob.getByRole('dialog', { name: /Wrap up/ });
    await wrap.waitFor();
    await wrap.getByRole('radio', { name: 'Resolved' }).check();
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
    await wrap.waitFor({ state: 'detached' });
  }

  test('a returning customer is verified and their earlier chat opens beside the new one', async () => {
    const first = await openPage(browser, shopUrl());
    await startChat(first, { name: 'typed name', question: 'Where is my parcel?' });
    await acceptAndAnswer('Where is my parcel?', 'Your parcel left the warehouse today');
    await endAndWrapUp();

    const second = await openPage(browser, shopUrl());
    await startChat(second, { name: 'typed name', question: 'Can I change the address?' });
    await acceptAndAnswer('Can I change the address?', 'Yes, tell me the new one');
    const panel = bob.locator('#pane .customer-panel');
    await panel.locator('.customer-name', { hasText: 'Grace Hopper' }).waitFor();
    await panel.locator('.pill-verified', { hasText: 'Verified' }).waitFor();
    const earlier = panel.locator('.history-item');
    await earlier.first().waitFor();
    assert.equal(await earlier.count(), 1);
    await shot(bob, 'customer-panel');

    await earlier.first().click();
    const transcript = bob.getByRole('dialog', { name: /Transcript/ });
    await transcript.locator('.msg-text', { hasText: 'Your parcel left the warehouse today' }).waitFor();
    await transcript.locator('.msg-text', { hasText: 'Where is my parcel?' }).waitFor();
    // Read-only: no compose box in it.
    assert.equal(await transcript.getByLabel('Message', { exact: true }).count(), 0);
    await shot(bob, 'earlier-transcript');
    await transcript.getByRole('button', { name: 'Close' }).click();
    await widget(second).locator('.msg-text', { hasText: 'Yes, tell me the new one' }).waitFor();
    assert.deepEqual(bob.errors, []);
  });

  test('a supervisor finds a conversation by its words, reads it and exports the list', async () => {
    const page = await openPage(browser, `${server.url}/supervisor`);
    await page.getByLabel('Username', { exact: true }).fill(AGENTS.alice.username);
    await page.getByLabel('Password', { exact: true }).fill(AGENTS.alice.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const search = page.getByRole('search', { name: 'Search conversations' });
    await search.waitFor();
    await search.getByLabel('Words').fill('WAREHOUSE');
    await search.getByLabel('State').selectOption('closed');
    await search.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('#search-table tbody tr');
    await page.locator('#search-status', { hasText: '1 conversation' }).waitFor();
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /Grace Hopper.*Sales.*bob.*closed.*resolved/);
    await shot(page, 'search');

    await rows.first().click();
    const transcript = page.getByRole('dialog', { name: /Transcript/ });
    await transcript.locator('.msg-text', { hasText: 'Your parcel left the warehouse today' }).waitFor();
    await transcript.getByRole('button', { name: 'Close' }).click();

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      search.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const csv = await readFile(await download.path(), 'utf8');
    const lines = csv.trim().split('\n');
    assert.match(lines[0], /^conversation_id,state,queue_id,customer_id,customer_name,/);
    assert.equal(lines.length, 2, csv);
    assert.match(lines[1], /,closed,sales,cu-[0-9a-f]+,Grace Hopper,bob,/);
    assert.deepEqual(page.errors, []);
  });
});
