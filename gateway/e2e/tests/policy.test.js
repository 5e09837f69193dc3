// What the browser enforces for the node: a page on another origin cannot
// read the agent API (even with a token) and cannot frame the desktop; the
// node's own pages run under their Content-Security-Policy without a single
// violation.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:http';
import { startServer } from '../lib/server.js';
import { launch, openPage } from '../lib/browser.js';
import { setState, signIn, startChat, widget } from '../lib/actors.js';

describe('browser policy', () => {
  let server;
  let browser;
  let site;
  let siteOrigin;

  before(async () => {
    // Another site: allowed to embed the widget, so it is as close to the
    // node as a foreign page gets. It is still not allowed the agent API.
    site = createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><html><head><title>Elsewhere</title></head><body>
        <h1>Elsewhere</h1>
        <iframe id="frame" title="desktop" src="${server.url}/"></iframe>
        </body></html>`);
    });
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteOrigin = `http://127.0.0.1:${site.address().port}`;
    server = await startServer('policy', { allowedOrigins: [siteOrigin] });
    browser = await launch();
  });

  after(async () => {
    await new Promise((resolve) => (site ? site.close(resolve) : resolve()));
    await browser?.close();
    await server?.stop();
  });

  test('a page on another origin cannot read the agent API, even holding a token', async () => {
    const login = await fetch(`${server.url}/api/v1/agent/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-pass', take_chats: false }),
    });
    assert.equal(login.status, 200);
    const { token } = await login.json();

    const page = await openPage(browser, `${siteOrigin}/`);
    const results = await page.evaluate(async ({ url, token }) => {
      const attempt = async (path, init) => {
        try {
          const response = await fetch(`${url}${path}`, init);
          return `read ${response.status}`;
        } catch (error) {
          return `blocked: ${error.name}`;
        }
      };
      const bearer = { headers: { authorization: `Bearer ${token}` } };
      return {
        stats: await attempt('/api/v1/stats', bearer),
        conversations: await attempt('/api/v1/conversations', bearer),
        metrics: await attempt('/metrics', {}),
        // What the widget needs stays open to this allowed site.
        widget: await attempt('/widget.js', {}),
      };
    }, { url: server.url, token });
    assert.match(results.stats, /^blocked/);
    assert.match(results.conversations, /^blocked/);
    assert.match(results.metrics, /^blocked/);
    assert.equal(results.widget, 'read 200');
    await page.context().close();
  });

  test('the desktop cannot be framed by another site', async () => {
    // openPage returns after the load event, which waits for the frame.
    const page = await openPage(browser, `${siteOrigin}/`);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    assert.ok(frame, 'the page has its frame');
    // Chromium puts its error page in a frame whose content was refused.
    assert.match(frame.url(), /^chrome-error:/, `framed: ${frame.url()}`);
    await page.context().close();
  });

  /** A page with every CSP violation and page error recorded from the start. */
  async function watched(url) {
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.violations = [];
    page.errors = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) page.violations.push(message.text());
    });
    page.on('pageerror', (error) => page.errors.push(String(error)));
    const response = await page.goto(url);
    return { page, headers: response.headers() };
  }

  test('the desktop and the supervisor view run under their CSP without a violation', async () => {
    const desktop = await watched(`${server.url}/`);
    const supervisor = await watched(`${server.url}/supervisor`);
    for (const { headers } of [desktop, supervisor]) {
      assert.match(headers['content-security-policy'] || '', /script-src 'self'/);
      assert.match(headers['content-security-policy'] || '', /frame-ancestors 'none'/);
      assert.equal(headers['x-frame-options'], 'DENY');
      assert.equal(headers['x-content-type-options'], 'nosniff');
    }
    await signIn(desktop.page, 'alice');
    await setState(desktop.page, 'available');
    const page = supervisor.page;
    await page.getByLabel('Username', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('alice-pass');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The agents table fills in, load bars included (styled from script).
    await page.locator('#agents-table tbody tr').first().waitFor();
    for (const { page: p } of [desktop, supervisor]) {
      assert.deepEqual(p.violations, []);
      assert.deepEqual(p.errors, []);
      await p.context().close();
    }
  });

  test('a desktop keeps its session and its typed draft past its first token', async () => {
    // Tokens that last 4 s: the desktop refreshes its own before then.
    const short = await startServer('token', { tokenTtl: 4 });
    try {
      const agent = await openPage(browser, `${short.url}/`);
      await signIn(agent, 'alice');
      await setState(agent, 'available');
      const customer = await openPage(browser, `${short.url}/demo`);
      await startChat(customer, { name: 'Ada', question: 'Is my order late?' });
      await agent.locator('.offer').getByRole('button', { name: 'Accept' }).click();
      await agent.locator('#pane .msg-text', { hasText: 'Is my order late?' }).waitFor();
      const compose = agent.locator('#pane').getByLabel('Message', { exact: true });
      await compose.fill('Let me check that for y');
      const stored = () => agent.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard.agent')).token);
      const first = await stored();
      // The token's lifetime is the subject: wait past the first token.
      await new Promise((resolve) => setTimeout(resolve, 6000));
      await agent.locator('#connection', { hasText: 'Connected' }).waitFor();
      assert.equal(await compose.inputValue(), 'Let me check that for y');
      // The first token is refused now; the one the desktop holds works.
      const now = await stored();
      assert.notEqual(now, first, 'the desktop refreshed its token');
      const read = async (token) => (await fetch(`${short.url}/api/v1/queues`, {
        headers: { authorization: `Bearer ${token}` },
      })).status;
      assert.equal(await read(first), 401);
      assert.equal(await read(now), 200);
      await compose.fill('Let me check that for you.');
      await compose.press('Enter');
      await widget(customer).locator('.msg-text', { hasText: 'Let me check that for you.' }).waitFor();
      assert.deepEqual(agent.errors, []);
    } finally {
      await short.stop();
    }
  });
});
