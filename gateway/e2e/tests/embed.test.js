// The widget embedded on another site: a shop at its own origin adds one
// script tag pointing at the Switchboard node; the widget loads across
// origins (CORS) and the customer reaches an agent.

import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:http';
import { startServer } from '../lib/server.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { setState, signIn, startChat, widget } from '../lib/actors.js';

describe('widget on another origin', () => {
  let server;
  let browser;
  let shop;
  const shot = screenshots('embed');

  before(async () => {
    // The shop: another origin (its own port) on this machine, serving one
    // page with the widget's script tag pointing at the node. The node lists
    // it in [widget] allowed_origins.
    shop = createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><html><head><title>Corner Shop</title></head><body>
        <h1>Corner Shop</h1>
        <script src="${server.url}/widget.js" data-queue="sales" async></script>
        </body></html>`);
    });
    await new Promise((resolve) => shop.listen(0, '127.0.0.1', resolve));
    const shopOrigin = `http://127.0.0.1:${shop.address().port}`;
    server = await startServer('embed', { rona: 8000, autoWrapUp: 3000, allowedOrigins: [shopOrigin] });
    browser = await launch();
  });

  after(async () => {
    await new Promise((resolve) => (shop ? shop.close(resolve) : resolve()));
    await browser?.close();
    await server?.stop();
  });

  test('a shop at another origin embeds the widget with one tag and chats with an agent', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = [];
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    await page.goto(`http://127.0.0.1:${shop.address().port}/`);
    const w = widget(page);
    // The launcher only exists if the widget's module loaded cross-origin.
    await w
      .getByRole('button', { name: 'Open chat' })
      .waitFor()
      .catch((error) => {
        throw new Error(`${error.message}\nbrowser console: ${problems.join(' | ')}`);
      });
    await startChat(page, { name: 'Linus', question: 'Do you sell penguins?' });
    await w.getByText('Waiting for an agent', { exact: false }).waitFor();
    await shot(page, 'embedded-waiting');

    const agent = await openPage(browser, `${server.url}/`);
    await signIn(agent, 'alice');
    await setState(agent, 'available');
    await agent.locator('.offer').getByRole('button', { name: 'Accept' }).click();
    await agent.locator('#pane .msg-text', { hasText: 'Do you sell penguins?' }).waitFor();
    await shot(page, 'embedded-accepted');
    await context.close();
  });
});
