// Debian's Chromium, headless, driven by playwright-core (no downloaded browser).

import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS } from './server.js';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    ],
  });
}

/**
 * A page in its own context (own sessionStorage), with every JS dialog
 * (alert, confirm) recorded and dismissed, and page errors collected: the
 * XSS test asserts that neither list grows. CSP violations are collected
 * too (`page.violations`).
 */
export async function openPage(browser, url, { viewport = { width: 1360, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on('dialog', (dialog) => {
    page.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => page.errors.push(String(error)));
  // Every Content-Security-Policy violation the browser reports (a console error).
  page.violations = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) page.violations.push(message.text());
  });
  // Every resource the server did not find (each is also a console error).
  page.notFound = [];
  page.on('response', (response) => {
    if (response.status() === 404) page.notFound.push(response.url());
  });
  page.setDefaultTimeout(15000);
  await page.goto(url);
  return page;
}

/** shot(page, 'popover') -> target/e2e-artifacts/<suite>/<nn>-popover.png */
export function screenshots(suite) {
  const dir = join(ARTIFACTS, suite);
  rmSync(dir, { recursive: true, force: true }); // only this run's pictures
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return (page, name) => {
    n += 1;
    return page.screenshot({ path: join(dir, `${String(n).padStart(2, '0')}-${name}.png`) });
  };
}

/** Resolves when the element's text differs from `before` (a running timer). */
export async function textChanges(locator, before, timeout = 5000) {
  const handle = await locator.elementHandle();
  await locator.page().waitForFunction(([node, text]) => node.textContent !== text, [handle, before], { timeout });
}
