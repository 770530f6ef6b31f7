import AxeBuilder from '@axe-core/playwright';
import { expect, Page, test } from '@playwright/test';
import { MARKETER, PASSWORD, Role, consolePages, openLoaded, seedActivity, signIn, watchForErrors } from './helpers';

/** WCAG 2.0, 2.1 and 2.2, levels A and AA. */
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];

/** axe's serious and critical findings on the page as it is now, one line each. */
async function seriousViolations(page: Page, path: string): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page })
    .withTags(WCAG)
    // WCAG 2.5.3 (Label in Name): axe ships this rule as experimental, off unless asked.
    .options({ rules: { 'label-content-name-mismatch': { enabled: true } } })
    .analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${path}: ${v.id} (${v.impact}) on ${v.nodes.map((n) => n.target.join(' ')).join(', ')}: ${v.help}`);
}

test('the sign-in page passes the WCAG 2.2 A/AA audit', async ({ page }) => {
  const errors = watchForErrors(page);
  await openLoaded(page, '/login');
  expect(await seriousViolations(page, '/login')).toEqual([]);
  expect(errors).toEqual([]);
});

for (const role of ['admin', 'marketer'] as Role[]) {
  test(`every console page passes the WCAG 2.2 A/AA audit as ${role === 'admin' ? 'an admin' : 'a marketer'}`, async ({ page }) => {
    // Every page in turn, each audited: longer than one story's usual 30 s.
    test.setTimeout(120_000);
    const errors = watchForErrors(page);
    await signIn(page);
    await seedActivity(page);
    if (role === 'marketer') {
      await page.context().clearCookies();
      await signIn(page, MARKETER, PASSWORD);
    }
    const problems: string[] = [];
    for (const path of await consolePages(page, role)) {
      await openLoaded(page, path);
      problems.push(...(await seriousViolations(page, path)));
    }
    expect(problems).toEqual([]);
    expect(errors).toEqual([]);
  });
}
