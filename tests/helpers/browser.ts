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

// WCAG 2's contrast ratio of each visible text against the background it is drawn on (the nearest
// ancestor with a colour): at least 4.5:1, or 3:1 for large text. Disabled controls are exempt, as in
// WCAG; text hidden for sighted readers (visually-hidden: a 1 px box) is not drawn and not measured.
const contrastScript = `(() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return undefined;
    const [r, g, b, a = 1] = m[1].split(/[\\s,/]+/).filter(Boolean).map(Number);
    return [r, g, b, a];
  };
  const channel = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const backgroundOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || seen.has(el) || !node.textContent.trim()) continue;
    seen.add(el);
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1 || style.visibility === 'hidden') continue;
    if (el.closest('button:disabled, input:disabled, select:disabled')) continue;
    const fg = parse(style.color);
    const bg = backgroundOf(el);
    if (!fg) {
      failures.push('an unreadable colour ' + style.color);
      continue;
    }
    const drawn = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
    const [hi, lo] = [luminance(drawn), luminance(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5))
      failures.push(ratio.toFixed(2) + ':1 "' + node.textContent.trim().slice(0, 40) + '" (' + style.color + ' on rgb(' + bg.slice(0, 3).join(', ') + '))');
  }
  return failures;
})()`;

/** Each visible text of the page whose contrast with its background is below WCAG AA, said with its ratio. */
export function lowContrast(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(contrastScript);
}
