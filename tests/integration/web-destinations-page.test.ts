import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createTeam } from '../../db/teams.data.ts';
import { generateTeamKey, printableSecretKey } from '../../format/team-key.ts';
import { chromiumPath, lowContrast, fitsPhone, screenshot } from '../helpers/browser.ts';
import { stackS3, startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { stack, uniqueName } from '../helpers/stack.ts';
import { collectPageErrors, signIn } from '../helpers/web-page.ts';

describe('the backups page: destinations and the team key, in a browser', () => {
  let cp: ControlPlane;
  let token: string;
  let bucket: string;
  let browser: Browser;
  let page: Page;
  let secretKey = '';
  // Every request the page makes, whole: address, headers and body.
  const requests: { url: string; headers: string; body: string }[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'web-destinations');
    token = team.token;
    bucket = uniqueName('backups');
    await stackS3().send(new CreateBucketCommand({ Bucket: bucket }));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    const context = await browser.newContext({
      viewport: { width: 1100, height: 800 },
      acceptDownloads: true,
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cp.apiUrl });
    page = await context.newPage();
    page.on('request', (r) =>
      requests.push({ url: r.url(), headers: JSON.stringify(r.headers()), body: r.postData() ?? '' }),
    );
    collectPageErrors(page, pageErrors);
    await signIn(page, cp.apiUrl, token);
  });

  after(async () => {
    await browser?.close();
    await cp?.stop();
  });

  const fillBucket = async (secret: string) => {
    await page.getByLabel('Name', { exact: true }).fill('office-bucket');
    await page.getByLabel('Endpoint', { exact: true }).fill(stack.s3.endpoint);
    await page.getByLabel('Bucket', { exact: true }).fill(bucket);
    await page.getByLabel('Prefix', { exact: true }).fill('strackt');
    await page.getByLabel('Access key id', { exact: true }).fill(stack.s3.accessKeyId);
    await page.getByLabel('Secret access key', { exact: true }).fill(secret);
    await page.getByRole('button', { name: 'Check and add' }).click();
  };

  it('adds a bucket: a refused secret is shown at its field, then the check passes and the key is shown once', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Destinations' }).click();
    await page.getByRole('heading', { name: 'Destinations', level: 1 }).waitFor();
    assert.match(await page.locator('#team-key ~ p').first().innerText(), /No key yet/);

    await fillBucket('not-the-secret');
    const secretField = page.getByLabel('Secret access key', { exact: true });
    await page.locator('#secretAccessKey-check', { hasText: 'refused the credentials' }).waitFor();
    assert.equal(await secretField.getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('#endpoint-check').innerText(), /✓ reached/);
    // The API names the secret (the storage knew the key id, and refused the signature): the key id passed.
    assert.match(await page.locator('#accessKeyId-check').innerText(), /✓ known to the storage/);
    assert.equal(await page.getByLabel('Access key id', { exact: true }).getAttribute('aria-invalid'), null);
    assert.equal(await page.locator('#bucket-check').count(), 0, 'the bucket was not reached: no verdict');
    await screenshot(page, 'destination-check-failed');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');

    await secretField.fill(stack.s3.secretAccessKey);
    await page.getByRole('button', { name: 'Check and add' }).click();
    const panel = page.getByRole('region', { name: 'Your team key: save it now' });
    await panel.waitFor();
    await page.getByRole('status').filter({ hasText: 'Added office-bucket' }).waitFor();
    assert.equal(await secretField.inputValue(), '', 'the form is emptied, the secret with it');
    secretKey = (await panel.locator('.secret').innerText()).trim();
    assert.match(secretKey, /^STK1-[A-Z2-7-]+$/);
    const fingerprint = (await panel.locator('code').innerText()).trim();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'key-once', 'the key takes the focus');
    await screenshot(page, 'team-key-once');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');

    await panel.getByRole('button', { name: 'Copy' }).click();
    await panel.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), secretKey);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      panel.getByRole('link', { name: 'Download' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'strackt-team-key.txt');
    assert.match(await readFile((await download.path())!, 'utf8'), new RegExp(secretKey));

    // Printed, the page is the key alone: no navigation, buttons, lists or forms around it.
    await panel.getByRole('button', { name: 'Print' }).click();
    await page.emulateMedia({ media: 'print' });
    try {
      assert.equal(await panel.locator('.secret').isVisible(), true, 'the key is printed');
      assert.equal(await panel.getByText(fingerprint).isVisible(), true, 'with its fingerprint');
      for (const hidden of [
        page.getByRole('navigation'),
        panel.getByRole('button', { name: 'Print' }),
        page.getByRole('button', { name: 'Check and add' }),
        page.getByRole('heading', { name: 'office-bucket' }),
      ])
        assert.equal(await hidden.isVisible(), false, `not printed: ${String(hidden)}`);
    } finally {
      await page.emulateMedia({ media: 'screen' });
    }

    const listed = await cp.request<{ destinations: { name: string; lastCheckedAt: string | null }[] }>(
      'GET',
      '/destinations',
      token,
    );
    assert.deepEqual(
      listed.body.destinations.map((d) => [d.name, d.lastCheckedAt !== null]),
      [['office-bucket', true]],
    );
  });

  it('does not show the key on a second visit: only its fingerprint', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Environments' }).click();
    await page.getByRole('heading', { name: 'Environments' }).waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'Destinations' }).click();
    await page.getByRole('heading', { name: 'Check that you still hold the key' }).waitFor();
    const text = await page.locator('main').innerText();
    assert.ok(!text.includes(secretKey), 'the secret key is not on the page');
    assert.ok(!text.includes('STK1-') || !/STK1-[A-Z2-7]{4}/.test(text));
    const team = await cp.request<{ key: { fingerprint: string } }>('GET', '/team', token);
    assert.equal(await page.locator('.fingerprint').innerText(), team.body.key.fingerprint);
    await screenshot(page, 'destinations');
    assert.equal(await fitsPhone(page), true, 'the destinations page fits a phone');
    await screenshot(page, 'destinations-phone');
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  it('checks the key in the page: the right one matches, another and a typo do not', async () => {
    const field = page.getByLabel('Secret key (STK1-…)');
    const answer = page.locator('#key-check-answer');
    // By keyboard: typed into the field, Enter checks it.
    await field.fill(secretKey);
    await field.press('Enter');
    await answer.filter({ hasText: 'This is the team’s key' }).waitFor();
    await screenshot(page, 'team-key-check');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');

    await field.fill(printableSecretKey(generateTeamKey().secretKey));
    await page.getByRole('button', { name: 'Check the key' }).click();
    await answer.filter({ hasText: 'This is not the team’s key' }).waitFor();

    // One character changed: the checksum catches it before any fingerprint is compared.
    const typo = secretKey.replace(
      /(STK1-.)(.)/,
      (_, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'),
    );
    await field.fill(typo);
    await page.getByRole('button', { name: 'Check the key' }).click();
    await answer.filter({ hasText: 'typo' }).waitFor();
  });

  it('adds a receiver: a wrong pin and a wrong code are shown at their fields, and no second key is shown', async () => {
    const dataDir = join(stack.runDir, uniqueName('receiver'));
    const running = await startReceiver(dataDir);
    try {
      await page.getByLabel('A receiver you run').check();
      await page.getByLabel('Name', { exact: true }).fill('home-receiver');
      await page.getByLabel('Receiver URL').fill(running.url);
      const pin = page.getByLabel('Certificate fingerprint');
      const code = page.getByLabel('Enrolment code');
      await pin.fill(`00:${running.fingerprint.slice(3)}`);
      await code.fill(running.enrolmentCode!);
      await page.getByRole('button', { name: 'Check and add' }).click();
      await page.locator('#fingerprint-check', { hasText: '✗' }).waitFor();
      assert.equal(await pin.getAttribute('aria-invalid'), 'true');
      assert.match(await page.locator('#url-check').innerText(), /✓ reached/);

      await pin.fill(running.fingerprint);
      await code.fill('A'.repeat(24));
      await page.getByRole('button', { name: 'Check and add' }).click();
      await page.locator('#enrolmentCode-check', { hasText: '✗' }).waitFor();
      assert.match(await page.locator('#fingerprint-check').innerText(), /✓ certificate matches/);
      assert.equal(await code.getAttribute('aria-invalid'), 'true');

      await code.fill(running.enrolmentCode!);
      await page.getByRole('button', { name: 'Check and add' }).click();
      await page.getByRole('status').filter({ hasText: 'Added home-receiver' }).waitFor();
      await page.getByRole('heading', { name: 'home-receiver' }).waitFor();
      assert.equal(await page.locator('.key-once').count(), 0, 'the team had its key: none is shown');
    } finally {
      await running.program.kill();
    }
  });

  it('sent the key nowhere: no request carried it in its address, headers or body', () => {
    assert.ok(secretKey.length > 0 && requests.length > 0);
    const compact = secretKey.slice('STK1-'.length).replaceAll('-', '');
    for (const r of requests)
      for (const part of [r.url, r.headers, r.body]) {
        assert.ok(!part.includes(secretKey), `the key in a request to ${r.url}`);
        assert.ok(
          !part.replaceAll('-', '').includes(compact),
          `the key's characters in a request to ${r.url}`,
        );
      }
    assert.ok(
      requests.some((r) => r.url.includes('/app/assets/chunk-')),
      'libsodium came as a chunk of this origin',
    );
    assert.deepEqual(pageErrors, [], 'no script error and nothing blocked by the CSP');
  });
});
