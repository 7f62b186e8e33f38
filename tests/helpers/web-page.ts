import type { Page } from 'playwright-core';

/** Collects into `errors` the page's script errors and what its Content-Security-Policy blocked (told on the console). */
export function collectPageErrors(page: Page, errors: string[]): void {
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
}

/** Opens the backups page and signs in with a team token, as a person does. */
export async function signIn(page: Page, apiUrl: string, token: string): Promise<void> {
  await page.goto(`${apiUrl}/app`);
  await page.getByLabel('Team token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Environments' }).waitFor();
}
