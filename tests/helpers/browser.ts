import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { repoRoot, stack } from './stack.ts';

// Debian's chromium (deploy/test.sh installs it), driven headless by playwright-core.
export const chromiumPath = '/usr/bin/chromium';

// Each view is saved as a screenshot: into the run's folder, and into docs/screenshots when asked
// (STRACKT_UPDATE_SCREENSHOTS=1), so a plain test run leaves the checkout as it was.
const screenshotDirs = [
  join(stack.runDir, 'screenshots'),
  ...(process.env.STRACKT_UPDATE_SCREENSHOTS === '1' ? [join(repoRoot, 'docs', 'screenshots')] : []),
];

export async function screenshot(page: Page, name: string) {
  for (const dir of screenshotDirs) {
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true, animations: 'disabled' });
  }
}

/** Nothing on the page is wider than a phone's screen (what scrolls sideways does so in its own box). */
export async function fitsPhone(page: Page): Promise<boolean> {
  await page.setViewportSize({ width: 390, height: 844 });
  return page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');
}
