import { expect, Page, test } from '@playwright/test';
import { consolePages, openLoaded, seedActivity, signIn, watchForErrors } from './helpers';

/**
 * What does not fit: the page wider than the window, or a table wider than the box
 * that holds it (so its last columns are cut off or scroll sideways).
 */
async function overflows(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const found: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > window.innerWidth) {
      found.push(`the page is ${root.scrollWidth} px wide in a ${window.innerWidth} px window`);
    }
    document.querySelectorAll('table').forEach((table, i) => {
      const box = table.parentElement!;
      const name = table.dataset.testid ?? table.getAttribute('aria-label') ?? table.caption?.textContent ?? `table ${i + 1}`;
      const width = Math.max(table.scrollWidth, table.getBoundingClientRect().width);
      if (width > box.clientWidth + 1) {
        found.push(`${name} is ${Math.round(width)} px wide in a ${box.clientWidth} px box`);
      }
    });
    return found;
  });
}

for (const [width, height] of [[1280, 800], [1366, 768]]) {
  test(`every console page fits a ${width}×${height} screen, tables included`, async ({ page }) => {
    // Every page in turn, each audited: longer than one story's usual 30 s.
    test.setTimeout(120_000);
    const errors = watchForErrors(page);
    await page.setViewportSize({ width, height });
    await signIn(page);
    await seedActivity(page);
    const problems: string[] = [];
    for (const path of await consolePages(page, 'admin')) {
      await openLoaded(page, path);
      problems.push(...(await overflows(page)).map((p) => `${path}: ${p}`));
    }
    expect(problems).toEqual([]);
    expect(errors).toEqual([]);
  });
}
