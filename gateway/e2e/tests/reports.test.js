// The supervisor's Reports page over chats driven through the real node:
// two chats accepted, answered, ended and wrapped up, one abandoned in the
// queue; the page's charts draw (uPlot, under the page's CSP), its tables
// show those counts, the CSV downloads, a bad range is refused naming the
// field, and axe finds nothing serious.
//
// The reports read a projection of the event stream that trails the live
// events by well under a second: the test clicks Show again until the
// figures are in (each click a real round trip), never sleeps.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer, AGENTS } from '../lib/server.js';
import { launch, openPage, screenshots } from '../lib/browser.js';
import { assertAccessible } from '../lib/axe.js';
import { agentSays, setState, signIn, startChat, widget } from '../lib/actors.js';

/** Today in UTC (the browser contexts' time zone), "YYYY-MM-DD". */
const utcDay = (ms = Date.now()) => new Date(ms).toISOString().slice(0, 10);
const nextDay = (day) => utcDay(Date.parse(`${day}T00:00:00Z`) + 86400000);

/** The first series' colours (report-charts.js PALETTE) as RGB. */
const SERIES_COLOURS = [[0x2f, 0x5b, 0xea], [0x0b, 0x7a, 0x50], [0xc6, 0x2f, 0x3c], [0x8a, 0x53, 0x00]];

describe('reports', () => {
  let server;
  let browser;
  let bob;
  let page; // the supervisor's, on the Reports page from the first test on
  let form;
  let firstDay;
  const shot = screenshots('reports');

  before(async () => {
    server = await startServer('reports', { rona: 30000, autoWrapUp: 30000 });
    browser = await launch();
    bob = await openPage(browser, `${server.url}/`);
    await signIn(bob, 'bob');
    await setState(bob, 'available');
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Clicks Show until `figures()` deep-equals `expected` (the projection catches up), or fails with the last figures. */
  async function showUntil(page, figures, expected, what) {
    const deadline = Date.now() + 15000;
    let last;
    for (;;) {
      const before = await page.evaluate(() => document.body.dataset.reportsShown || '0');
      await page.getByRole('button', { name: 'Show', exact: true }).click();
      await page.waitForFunction((count) => (document.body.dataset.reportsShown || '0') !== count, before);
      last = await figures();
      if (JSON.stringify(last) === JSON.stringify(expected)) return;
      if (Date.now() > deadline) {
        assert.deepEqual(last, expected, `${what}: ${await page.locator('#report-status').textContent()}`);
      }
    }
  }

  /** The text of each `td[data-col]` in a table's total row. */
  const totals = (page, table, cols) => page.locator(`table[data-table="${table}"] tfoot`).evaluateAll(
    (feet, wanted) => (feet[0] ? Object.fromEntries(wanted.map((col) => [col, feet[0].querySelector(`td[data-col="${col}"]`).textContent])) : null),
    cols);

  /** How many pixels of a chart's canvas are exactly a series' colour (its points and lines), per series. */
  const seriesPixels = (page, chart) => page.locator(`[data-chart="${chart}"] .chart canvas`).evaluate((canvas, colours) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    const counts = colours.map(() => 0);
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] !== 255) continue;
      colours.forEach(([r, g, b], n) => {
        if (data[i] === r && data[i + 1] === g && data[i + 2] === b) counts[n] += 1;
      });
    }
    return counts;
  }, SERIES_COLOURS);

  /** Asserts that each named chart drew its first `series` series (1: the first one at least). */
  async function chartsDrew(page, charts) {
    for (const [chart, series] of Object.entries(charts)) {
      const counts = (await seriesPixels(page, chart)).slice(0, series);
      assert.ok(counts.every((n) => n > 0), `the ${chart} chart drew its ${series} series: pixels ${counts}`);
    }
  }

  async function chat(name, question, answer, reason) {
    const customer = await openPage(browser, `${server.url}/demo`);
    await startChat(customer, { name, question });
    await bob.locator('.offer', { hasText: question }).getByRole('button', { name: 'Accept' }).click();
    await bob.locator('#pane .msg-text', { hasText: question }).waitFor();
    await agentSays(bob, answer);
    await widget(customer).locator('.msg-text', { hasText: answer }).waitFor();
    await bob.locator('#pane').getByRole('button', { name: 'End', exact: true }).click();
    const wrap = bob.getByRole('dialog', { name: /Wrap up/ });
    await wrap.getByRole('radio', { name: reason }).check();
    await wrap.getByRole('button', { name: 'Submit wrap-up' }).click();
    await wrap.waitFor({ state: 'detached' });
    await customer.context().close();
  }

  test('the Reports page is for supervisors: its sign-in is accessible, an agent is turned away', async () => {
    const door = await openPage(browser, `${server.url}/supervisor/reports`);
    await door.getByRole('button', { name: 'Sign in' }).waitFor();
    await assertAccessible(door, 'the reports sign-in');
    await door.getByLabel('Username', { exact: true }).fill(AGENTS.carol.username);
    await door.getByLabel('Password', { exact: true }).fill(AGENTS.carol.password);
    await door.getByRole('button', { name: 'Sign in' }).click();
    await door.getByRole('alert').filter({ hasText: 'no supervisor role' }).waitFor();
    assert.equal(await door.locator('#reports').isHidden(), true);
    assert.deepEqual(door.notFound, []);
    assert.deepEqual(door.violations, []);
    await door.context().close();
  });

  test('two handled chats and one abandoned one show in the Sales queue report: tables, charts, CSV', async () => {
    firstDay = utcDay();
    await chat('Ada Lovelace', 'Do you ship to Norway?', 'Yes, in three to five days', 'Resolved');
    await chat('Grace Hopper', 'Can I pay by invoice?', 'Let me ask our billing team', 'Follow-up needed');
    // Bob steps away; the next customer gives up while waiting in the queue.
    await setState(bob, 'idle:break');
    const quitter = await openPage(browser, `${server.url}/demo`);
    await startChat(quitter, { name: 'Linus', question: 'Anyone there?' });
    await widget(quitter).getByRole('button', { name: 'End chat' }).click();
    await widget(quitter).getByRole('alertdialog').getByRole('button', { name: 'End chat' }).click();
    await widget(quitter).getByText('This chat has ended.').waitFor();
    await quitter.context().close();

    // The supervisor goes from the live view to Reports by its tab.
    page = await openPage(browser, `${server.url}/supervisor`);
    await page.getByLabel('Username', { exact: true }).fill(AGENTS.alice.username);
    await page.getByLabel('Password', { exact: true }).fill(AGENTS.alice.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Supervisor pages' }).getByRole('link', { name: 'Reports' }).click();
    await page.waitForURL(/\/supervisor\/reports/);
    form = page.getByRole('form', { name: 'Report settings' });
    await form.waitFor();
    // Signed in already (the same tab's session), and today by default.
    const today = utcDay();
    assert.equal(await form.getByLabel('From').inputValue(), today);
    assert.equal(await form.getByLabel(/^To/).inputValue(), today);
    assert.equal(await form.getByLabel('Time zone').inputValue(), 'UTC');

    // Today (from the day the chats began, should the test cross midnight) by 15 minutes, Sales only.
    await form.getByLabel('From').fill(firstDay);
    await form.getByLabel(/^To/).fill(utcDay());
    await form.getByLabel('Interval').selectOption('15m');
    await form.getByRole('checkbox', { name: 'Support' }).uncheck();
    assert.equal(await form.getByRole('checkbox', { name: 'Sales' }).isChecked(), true);
    await showUntil(page, () => totals(page, 'volumes', ['entered', 'handled', 'abandoned']),
      { entered: '3', handled: '2', abandoned: '1' }, 'Sales volumes');
    assert.match(await page.locator('#report-status').textContent(), /Queues report: Sales · .* by 15 min · UTC/);

    // Wrap-up reasons with their labels.
    const reasons = page.locator('table[data-table="wrap-ups"] tbody tr');
    assert.deepEqual(await reasons.evaluateAll((rows) => rows.map((row) => [row.dataset.reason, row.querySelector('th').textContent, row.querySelector('td[data-col="value"]').textContent]).sort()),
      [['follow_up', 'Follow-up needed', '1'], ['resolved', 'Resolved', '1']]);
    // Service level, ASA and AHT per queue: Sales only, handled chats with figures.
    const slRows = page.locator('table[data-table="service-level"] tbody tr');
    assert.ok(await slRows.count() >= 1);
    assert.deepEqual([...new Set(await slRows.evaluateAll((rows) => rows.map((row) => row.dataset.item)))], ['sales']);
    const aht = await page.locator('table[data-table="speed"] tbody td[data-col="aht_s"]').allTextContents();
    assert.ok(aht.some((text) => /^\d/.test(text)), `an AHT for Sales: ${aht}`);
    // Tables are real tables: column and row headers.
    assert.ok(await page.locator('table[data-table="volumes"] thead th[scope="col"]').count() === 4);
    assert.ok(await page.locator('table[data-table="volumes"] tbody th[scope="row"] time').count() >= 1);

    // Every chart drew its first series on its canvas.
    await chartsDrew(page, { 'service-level': 1, speed: 1, volumes: 3, abandonment: 1, moves: 1 });
    await shot(page, 'queues');
    await page.locator('[data-chart="wrap-ups"]').scrollIntoViewIfNeeded();
    await shot(page, 'queues-wrap-ups');
    await assertAccessible(page, 'the queue report');

    // The same report as CSV: a header and a line per row.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      form.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `queues-report-${firstDay}-${utcDay()}.csv`);
    const lines = (await readFile(await download.path(), 'utf8')).trim().split(/\r?\n/);
    assert.match(lines[0], /interval_start/);
    assert.match(lines[0], /\bentered\b/);
    assert.match(lines[0], /wrap_up:resolved/);
    assert.ok(lines.length >= 2, lines.join('\n'));
    assert.ok(lines.slice(1).every((line) => line.includes('sales')), lines.join('\n'));
    await page.locator('#report-status', { hasText: 'Downloaded' }).waitFor();
    assert.deepEqual(page.violations, [], 'no CSP violation');
    assert.deepEqual(page.errors, []);
  });

  test('the agent report shows Bob\'s handled chats and his time', async () => {
    await form.getByRole('radio', { name: 'Agents' }).check();
    await page.locator('#items-legend', { hasText: 'Agents' }).waitFor();
    await form.getByRole('button', { name: 'Clear' }).click();
    await form.getByRole('checkbox', { name: 'Bob Chen' }).check();
    await showUntil(page, () => totals(page, 'chats', ['accepted', 'handled']),
      { accepted: '2', handled: '2' }, 'Bob\'s chats');
    const bobRows = await page.locator('table[data-table="handle-time"] tbody tr').evaluateAll((rows) => rows.map((row) => row.dataset.item));
    assert.ok(bobRows.length >= 1 && bobRows.every((id) => id === 'bob'), `AHT rows: ${bobRows}`);
    const loggedIn = await totals(page, 'agent-time', ['logged_in_s']);
    assert.match(loggedIn.logged_in_s, /^(\d+(\.\d)? s|\d+:\d\d(:\d\d)?)$/);
    assert.notEqual(loggedIn.logged_in_s, '0 s');
    await chartsDrew(page, { 'agent-time': 1, occupancy: 1, chats: 1, 'handle-time': 1 });
    await shot(page, 'agents');
    await assertAccessible(page, 'the agent report');
    assert.deepEqual(page.violations, [], 'no CSP violation');
  });

  test('a range that ends before it starts, or too long for its interval, is refused naming the field', async () => {
    await form.getByLabel('From').fill(nextDay(utcDay()));
    await form.getByRole('button', { name: 'Show', exact: true }).click();
    const error = page.getByRole('alert').filter({ hasText: /From/ });
    await error.waitFor();
    assert.equal(await form.getByLabel('From').getAttribute('aria-invalid'), 'true');
    await shot(page, 'bad-range');
    await assertAccessible(page, 'the report with a refused range');

    // A range the API refuses (too long for 15-minute intervals): its
    // answer names the parameter, shown with the field's label.
    await form.getByLabel('From').fill(utcDay(Date.now() - 400 * 86400000));
    await form.getByRole('button', { name: 'Show', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: /^The report could not be made\. To: / }).waitFor();
    assert.equal(await form.getByLabel(/^To/).getAttribute('aria-invalid'), 'true');
    assert.equal(await form.getByLabel('From').getAttribute('aria-invalid'), null);
    assert.equal(await page.locator('#report-body .chart').count(), 0, 'no report under a refusal');

    assert.deepEqual(page.violations, [], 'no CSP violation');
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.notFound, []);
  });
});
