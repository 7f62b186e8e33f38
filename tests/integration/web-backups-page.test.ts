import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer } from '../../db/servers.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { chromiumPath, fitsPhone, lowContrast, screenshot } from '../helpers/browser.ts';
import { startControlPlane, type AgentServer, type ControlPlane } from '../helpers/control-plane.ts';
import { collectPageErrors } from '../helpers/web-page.ts';

describe('the backups page in a browser, on the real stack', () => {
  let cp: ControlPlane;
  let token: string;
  let a: AgentServer;
  let b: AgentServer;
  let envId: string;
  let browser: Browser;
  let page: Page;
  const requests: { url: string; authorization?: string }[] = [];
  const pageErrors: string[] = [];
  // The API's log lines while the page is used.
  const apiLog: string[] = [];

  before(async () => {
    cp = await startControlPlane({ apiLog: { write: (line) => apiLog.push(line) } });
    const team = await createTeam(cp.db, 'web');
    token = team.token;
    // 8 MiB/s: the backup's 96 MiB take ~12 s to upload, long enough to watch.
    a = await cp.addServer(token, team.team.id, 'web-a', { env: { STRACKT_UPLOAD_MIB_PER_SECOND: '8' } });
    // 12 MiB/s down: a restore onto it fetches for some seconds, long enough to cancel it.
    b = await cp.addServer(token, team.team.id, 'web-b', { env: { STRACKT_DOWNLOAD_MIB_PER_SECOND: '12' } });
    // A server whose agent never connected: the restore offers it, refused with the reason.
    await createServer(cp.db, team.team.id, 'web-c');
    envId = await cp.deployWebEnvironment(token, a.id);
    await writeFile(join(a.root, 'volumes', envId, 'webdata', 'media.bin'), randomBytes(96 * 1024 * 1024));
    await cp.addDestination(token);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }));
    collectPageErrors(page, pageErrors);
  });

  after(async () => {
    await browser?.close();
    for (const server of [a, b]) {
      await server?.agent.kill();
      if (server) await cp?.stopServices(server.root);
    }
    await cp?.stop();
  });

  it('signs in with the team token, which no URL carries, under a strict CSP', async () => {
    const res = await page.goto(`${cp.apiUrl}/app`);
    assert.match(res!.headers()['content-security-policy']!, /script-src 'self'/);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await screenshot(page, 'sign-in');
    await page.getByLabel('Team token').fill('stt_notatoken');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    // By keyboard alone: the heading has the focus, the next Tab is the token field, Enter signs in.
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.id'), 'token');
    await page.keyboard.type(token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Environments' }).waitFor();
    assert.ok(!page.url().includes(token));
  });

  it('shows the environment with its backups at a glance', async () => {
    const card = page.getByRole('listitem').filter({ has: page.getByRole('link', { name: /^web-/ }) });
    await card.getByText('Last successful backup').waitFor();
    assert.match(await card.innerText(), /none yet/);
    await screenshot(page, 'environments');
    await card.getByRole('link', { name: /^web-/ }).click();
    await page.getByRole('heading', { name: 'Backups at a glance' }).waitFor();
  });

  it('takes a backup and watches its bytes grow to success', async () => {
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.waitForURL(/\/app\/operations\/op_/);
    await page.getByRole('heading', { name: /^Backup of web-/ }).waitFor();
    // The live figures while the upload runs: bytes, and a rate once they move.
    const live = page.locator('.transfer p', { hasText: /MiB.* at .*\/s/ });
    await live.waitFor({ timeout: 60_000 });
    assert.match(await page.locator('.status strong').innerText(), /running/);
    await screenshot(page, 'backup-running');
    await page.locator('.status strong', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    assert.match(await page.locator('.steps').innerText(), /capture and upload: succeeded/);
    await screenshot(page, 'backup-done');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
  });

  it('cancels a backup from its live view: it ends cancelled and leaves no snapshot', async () => {
    // New data: a backup of the same volume would find every chunk stored and send nothing to cancel.
    await writeFile(join(a.root, 'volumes', envId, 'webdata', 'media-2.bin'), randomBytes(96 * 1024 * 1024));
    await page.getByRole('link', { name: /^Back to web-/ }).click();
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.waitForURL(/\/app\/operations\/op_/);
    // Uploading (at 8 MiB/s, some seconds to go): the button names what it cancels.
    await page.locator('.transfer p', { hasText: /MiB.* at .*\/s/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Cancel backup' }).click();
    await page.locator('.status strong', { hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
    assert.equal(
      await page.getByRole('button', { name: 'Cancel backup' }).count(),
      0,
      'nothing left to cancel',
    );
    const { snapshots } = (
      await cp.request<{ snapshots: unknown[] }>('GET', `/environments/${envId}/snapshots`, token)
    ).body;
    assert.equal(snapshots.length, 1, 'only the first backup’s snapshot');
  });

  it('cancels a restore while it fetches: the environment stays on the server it ran on', async () => {
    await page.getByRole('link', { name: /^Back to web-/ }).click();
    await page
      .getByRole('link', { name: /^Restore/ })
      .first()
      .click();
    await page.getByLabel('web-b').check();
    await page.getByRole('button', { name: 'Review the restore' }).click();
    await page.getByRole('button', { name: 'Restore now' }).click();
    await page.waitForURL(/\/app\/operations\/op_/);
    await page.getByRole('heading', { name: /^Restore of web-/ }).waitFor();
    await page.locator('.transfer p', { hasText: /MiB.* at .*\/s/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Cancel restore' }).click();
    await page.locator('.status strong', { hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
    const env = await cp.request<{ serverId: string }>('GET', `/environments/${envId}`, token);
    assert.equal(env.body.serverId, a.id);
  });

  it('restores onto a second server, refusing an offline one, and watches the steps until healthy', async () => {
    await page.getByRole('link', { name: /^Back to web-/ }).click();
    await page.getByRole('heading', { name: 'Snapshots' }).waitFor();
    await screenshot(page, 'environment');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
    // On a phone: one column, and nothing wider than the screen but the snapshots table, which scrolls.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true);
    await screenshot(page, 'environment-phone');
    await page.setViewportSize({ width: 1100, height: 800 });
    await page
      .getByRole('link', { name: /^Restore/ })
      .first()
      .click();
    await page.getByRole('heading', { name: /^Restore web-/ }).waitFor();
    const offline = page.getByLabel('web-c');
    assert.equal(await offline.isDisabled(), true);
    assert.match(await page.locator('.choice', { has: offline }).innerText(), /never connected/);
    await page.getByLabel('web-b').check();
    await screenshot(page, 'restore-choose');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
    await page.getByRole('button', { name: 'Review the restore' }).click();
    // The team's first restore: nothing measured yet to expect a downtime from.
    await page
      .locator('.expected-downtime', { hasText: 'no restore of this team has been measured yet' })
      .waitFor();
    const plan = await page.getByRole('region', { name: 'What will happen' }).innerText();
    assert.match(plan, /stopped on web-a/);
    assert.match(plan, /start on web-b/);
    await screenshot(page, 'restore-confirm');
    assert.equal(await fitsPhone(page), true, 'the confirm fits a phone');
    await page.setViewportSize({ width: 1100, height: 800 });
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
    await page.getByRole('button', { name: 'Restore now' }).click();
    await page.waitForURL(/\/app\/operations\/op_/);
    await page.getByRole('heading', { name: /^Restore of web-/ }).waitFor();
    await page.locator('.status strong', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    const steps = await page.locator('.steps').innerText();
    for (const step of ['fetch, verify and unpack', 'stop services', 'health check'])
      assert.match(steps, new RegExp(`${step}: succeeded`));
    await page.getByText('Downtime:').waitFor();
    await screenshot(page, 'restore-done');
    const env = await cp.request<{ serverId: string }>('GET', `/environments/${envId}`, token);
    assert.equal(env.body.serverId, b.id);
  });

  it('expects, on the next restore’s confirm, the downtime the last one measured', async () => {
    const { operations } = (
      await cp.request<{ operations: { id: string }[] }>(
        'GET',
        `/operations?kind=restore&environmentId=${envId}`,
        token,
      )
    ).body;
    const measured = await cp.request<{ restore: { downtimeMs: number } }>(
      'GET',
      `/operations/${operations[0]!.id}`,
      token,
    );
    await page.getByRole('link', { name: /^Back to web-/ }).click();
    await page
      .getByRole('link', { name: /^Restore/ })
      .first()
      .click();
    await page.getByLabel('web-a').check();
    await page.getByRole('button', { name: 'Review the restore' }).click();
    const expected = page.locator('.expected-downtime', { hasText: 'measured on the last restore' });
    await expected.waitFor();
    const text = await expected.innerText();
    assert.match(text, /\(measured on the last restore of this environment\)/);
    const [, figure, unit] = /Expected downtime: about (\d+) (ms|s)\b/.exec(text) ?? [];
    assert.ok(figure, `a downtime in ms or s: ${text}`);
    const shownMs = Number(figure) * (unit === 's' ? 1000 : 1);
    assert.ok(
      Math.abs(shownMs - measured.body.restore.downtimeMs) <= 500,
      `${text} vs ${measured.body.restore.downtimeMs} ms`,
    );
    // The snapshot's bytes at the rate the last restore read its own: the wait before the stop.
    assert.match(
      text,
      /after about \d+ (ms|s) of fetching and unpacking \(at the [\d.]+ (B|KiB|MiB|GiB)\/s past restores read\)/,
    );
    await screenshot(page, 'restore-confirm-expected');
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: 'Review the restore' }).waitFor();
  });

  it('pins a snapshot (then not offered for deletion), verifies it live, unpins and deletes it', async () => {
    await page.getByRole('link', { name: /^Back to web-/ }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: /^Verify/ }) });
    await row.getByRole('button', { name: /^Pin/ }).click();
    await row.getByRole('button', { name: /^Unpin/ }).waitFor();
    assert.match(await row.innerText(), /pinned/);
    assert.equal(await row.getByRole('button', { name: /^Delete/ }).isDisabled(), true);
    // Each snapshot's time, size, duration, held-still time, verification state and pin.
    assert.deepEqual(await page.getByRole('columnheader').allInnerTexts(), [
      'Taken',
      'Size',
      'Duration',
      'Held still',
      'Verification',
      'Pinned',
      'Actions',
    ]);
    assert.match(
      await row.innerText(),
      /^\w{3} \d+, \d{4}, .+\t[\d.]+ MiB\t[\d.]+ (ms|s|min \d+ s)\t[\d.]+ (ms|s)\tnot verified\tpinned\t/,
    );
    await screenshot(page, 'snapshots-pinned');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
    await row.getByRole('button', { name: /^Verify/ }).click();
    await page.getByRole('heading', { name: /^Verify of web-/ }).waitFor();
    await page.locator('.status strong', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    await page.getByRole('link', { name: /^Back to web-/ }).click();
    assert.match(await row.innerText(), /(?<!not )verified /);
    await row.getByRole('button', { name: /^Unpin/ }).click();
    page.once('dialog', (dialog) => void dialog.accept());
    await row.getByRole('button', { name: /^Delete/ }).click();
    await page.getByText('No snapshots yet.').waitFor();
  });

  it('sent the token only as the Authorization header of its own origin, and the API logged it nowhere', () => {
    assert.ok(requests.length > 0);
    for (const r of requests) {
      assert.ok(!r.url.includes(token), `the token in a URL: ${r.url}`);
      assert.ok(r.url.startsWith(cp.apiUrl), `a request to another origin: ${r.url}`);
    }
    assert.ok(requests.some((r) => r.authorization === `Bearer ${token}`));
    // The page's own requests were logged (one access line each), none with the token, prefix or not.
    assert.ok(
      apiLog.some((line) => line.includes('"path":"/environments/')),
      'the access lines are there',
    );
    for (const line of apiLog)
      assert.ok(!line.includes(token.slice('stt_'.length)), `the token in a log line: ${line}`);
    assert.deepEqual(pageErrors, [], 'no script error and nothing blocked by the CSP');
  });
});
