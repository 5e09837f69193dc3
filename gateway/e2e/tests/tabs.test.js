// One agent, two tabs: both show the request; accepting it in one closes
// the popover in the other, and both list the chat.

import { after, before, describe, test } from 'node:test';
import { startServer } from '../lib/server.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { setState, signIn } from '../lib/actors.js';

describe('agent with two tabs', () => {
  let server;
  let browser;
  const shot = screenshots('tabs');

  before(async () => {
    server = await startServer('tabs', { rona: 20000, autoWrapUp: 20000 });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('accepting in one tab closes the request in the other', async () => {
    const first = await openPage(browser, `${server.url}/`);
    await signIn(first, 'alice');
    const second = await openPage(browser, `${server.url}/`);
    await signIn(second, 'alice');
    await setState(first, 'available');

    const response = await fetch(`${server.url}/api/v1/chats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ queue: 'sales', customer: { name: 'Tab Tester' }, message: 'Two tabs?' }),
    });
    if (response.status !== 201) throw new Error(`chat start: ${response.status}`);

    for (const tab of [first, second]) await tab.locator('.offer').waitFor();
    await shot(second, 'second-tab-offer');
    await first.locator('.offer').getByRole('button', { name: 'Accept' }).click();
    await second.locator('.offer').waitFor({ state: 'detached' });
    for (const tab of [first, second]) {
      await tab.locator('#pane .msg-text', { hasText: 'Two tabs?' }).or(tab.getByText('Tab Tester').first()).first().waitFor();
    }
    await shot(second, 'second-tab-after-accept');
  });
});
