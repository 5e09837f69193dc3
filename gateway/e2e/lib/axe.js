// axe-core (the npm package, injected into the page under test): the
// accessibility rules a screen-reader or keyboard user depends on. Serious
// and critical findings fail a test; the page's shadow roots (the widget)
// are checked too.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe on the page as it is now; returns the serious and critical violations. */
export async function seriousViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    // Evaluated, not added as a <script>: the pages' CSP allows no inline
    // script, and the test must not weaken it.
    await page.evaluate(AXE_SOURCE);
  }
  // A popover still sliding in is half transparent: its contrast is read
  // once every finite animation has ended (an endless one never does).
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((animation) => Number.isFinite(animation.effect?.getComputedTiming().endTime))
        .map((animation) => animation.finished.catch(() => undefined)),
    ),
  );
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      nodes: violation.nodes.map((node) => `${node.target.join(' ')}: ${node.failureSummary}`),
    }));
}

/** Fails with axe's findings if the page (in its current state) has any serious one. */
export async function assertAccessible(page, what) {
  const found = await seriousViolations(page);
  assert.deepEqual(found, [], `axe: serious or critical findings on ${what}:\n${JSON.stringify(found, null, 2)}`);
}
