import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createTeam } from '../../db/teams.data.ts';
import { generateTeamKey, printableSecretKey } from '../../format/team-key.ts';
import { chromiumPath, fitsPhone, screenshot } from '../helpers/browser.ts';
import { stackS3, startControlPlane, type AgentServer, type ControlPlane } from '../helpers/control-plane.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { stack, uniqueName, waitFor } from '../helpers/stack.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';

describe('the backups page: destinations, the team key, schedules, webhooks and operations, in a browser', () => {
  // Not reached by the test: the page only links to it.
  const temporalUiUrl = 'http://127.0.0.1:8233';
  let cp: ControlPlane;
  let server: AgentServer;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let token: string;
  let envId: string;
  let bucket: string;
  let browser: Browser;
  let page: Page;
  let secretKey = '';
  // Every request the page makes, whole: address, headers and body.
  const requests: { url: string; headers: string; body: string }[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    cp = await startControlPlane({ temporalUiUrl });
    const team = await createTeam(cp.db, 'web-team');
    token = team.token;
    server = await cp.addServer(token, team.team.id, 'web-s');
    // Its deploy is the first operation of the team, listed with its link to the Temporal UI.
    envId = await cp.deployWebEnvironment(token, server.id);
    receiver = await startWebhookReceiver();
    bucket = uniqueName('backups');
    await stackS3().send(new CreateBucketCommand({ Bucket: bucket }));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    // The viewer is in New York: the schedule's runs are shown in its zone and in this one.
    const context = await browser.newContext({
      viewport: { width: 1100, height: 800 },
      timezoneId: 'America/New_York',
      acceptDownloads: true,
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cp.apiUrl });
    page = await context.newPage();
    page.on('request', (r) =>
      requests.push({ url: r.url(), headers: JSON.stringify(r.headers()), body: r.postData() ?? '' }),
    );
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
    await page.goto(`${cp.apiUrl}/app`);
    await page.getByLabel('Team token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Environments' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.agent.kill();
    if (server) await cp?.stopServices(server.root);
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
    assert.equal(await page.locator('#bucket-check').count(), 0, 'the bucket was not reached: no verdict');
    await screenshot(page, 'destination-check-failed');

    await secretField.fill(stack.s3.secretAccessKey);
    await page.getByRole('button', { name: 'Check and add' }).click();
    const panel = page.getByRole('region', { name: 'Your team key: save it now' });
    await panel.waitFor();
    await page.getByRole('status').filter({ hasText: 'Added office-bucket' }).waitFor();
    assert.equal(await secretField.inputValue(), '', 'the form is emptied, the secret with it');
    secretKey = (await panel.locator('.secret').innerText()).trim();
    assert.match(secretKey, /^STK1-[A-Z2-7-]+$/);
    assert.equal(await page.evaluate('document.activeElement?.id'), 'key-once', 'the key takes the focus');
    await screenshot(page, 'team-key-once');

    await panel.getByRole('button', { name: 'Copy' }).click();
    await panel.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), secretKey);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      panel.getByRole('link', { name: 'Download' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'strackt-team-key.txt');
    assert.match(await readFile((await download.path())!, 'utf8'), new RegExp(secretKey));

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

  it('previews a schedule as it is typed (AND/OR, then a clock change), and saves it', async () => {
    await page.goto(`${cp.apiUrl}/app/environments/${envId}`);
    await page.getByRole('link', { name: 'Add a schedule' }).click();
    await page.getByRole('heading', { name: /^Schedule backups of web-/ }).waitFor();
    assert.equal(
      await page.evaluate('document.activeElement?.tagName'),
      'H1',
      'the new view’s heading has the focus',
    );
    // The preset's preview is there before anything is typed, in the viewer's zone too.
    await page.getByRole('table').waitFor();
    assert.match(await page.getByRole('table').innerText(), /Your time \(America\/New_York\)/);

    await page.getByLabel('A cron expression').check();
    await page.getByLabel('Time zone').selectOption('Europe/Berlin');
    await page.getByLabel('Runs to preview').selectOption('50');
    const cron = page.getByRole('textbox', { name: 'Cron expression' });
    await cron.pressSequentially('30 2 1 * 1');
    const warnings = page.locator('.warnings');
    await warnings.filter({ hasText: 'names both a day of the month and a day of the week' }).waitFor();

    // Sundays at 02:30 in Berlin: the last Sunday of March has no 02:30, which 50 weekly runs reach.
    await cron.fill('');
    await cron.pressSequentially('30 2 * * 0');
    await warnings.filter({ hasText: '02:30 will not run' }).waitFor();
    assert.match(
      await warnings.innerText(),
      /^Clocks in Europe\/Berlin go forward 1 hour on \d{4}-03-\d\d at 02:00/m,
    );
    assert.doesNotMatch(await warnings.innerText(), /day of the month/);
    await page.getByLabel('Daily', { exact: true }).fill('7');
    await page.getByLabel('Last snapshots', { exact: true }).fill('3');
    await page.getByRole('table').locator('tbody tr').nth(49).waitFor();
    await page.getByText('Preview up to date.').waitFor();
    await screenshot(page, 'schedule-editor');

    // A bad expression is shown at its field, and saving it is refused there too.
    await cron.fill('61 2 * * 0');
    await page.locator('#cron-error').waitFor();
    assert.equal(await cron.getAttribute('aria-invalid'), 'true');
    await cron.fill('30 2 * * 0');
    await warnings.filter({ hasText: '02:30 will not run' }).waitFor();
    assert.equal(await cron.getAttribute('aria-invalid'), null);

    await page.getByText('Preview up to date.').waitFor();
    assert.equal(await fitsPhone(page), true, 'the editor fits a phone');
    await screenshot(page, 'schedule-editor-phone');
    await page.setViewportSize({ width: 1100, height: 800 });

    await page.getByRole('button', { name: 'Save the schedule' }).click();
    await page.getByRole('heading', { name: 'Schedules' }).waitFor();
    const saved = await cp.request<{
      schedules: { id: string; cron: string; timezone: string; retention: unknown }[];
    }>('GET', `/environments/${envId}/schedules`, token);
    assert.equal(saved.body.schedules.length, 1);
    const [schedule] = saved.body.schedules;
    assert.equal(schedule!.cron, '30 2 * * 0');
    assert.equal(schedule!.timezone, 'Europe/Berlin');
    assert.deepEqual(schedule!.retention, { last: 3, daily: 7 });
    assert.match(await page.locator('.schedule-list').innerText(), /30 2 \* \* 0 in Europe\/Berlin/);

    // Changed: the editor opens with what was saved, and saving replaces it.
    await page.getByRole('link', { name: /^Change/ }).click();
    await page.getByRole('heading', { name: /^Change the schedule of web-/ }).waitFor();
    assert.equal(await cron.inputValue(), '30 2 * * 0');
    assert.equal(await page.getByLabel('Time zone').inputValue(), 'Europe/Berlin');
    await page.getByLabel('Daily', { exact: true }).fill('14');
    await page.getByText('Preview up to date.').waitFor();
    await page.getByRole('button', { name: 'Save the schedule' }).click();
    await page.getByRole('heading', { name: 'Schedules' }).waitFor();
    const changed = await cp.request<{ retention: unknown; cron: string }>(
      'GET',
      `/schedules/${schedule!.id}`,
      token,
    );
    assert.deepEqual([changed.body.cron, changed.body.retention], ['30 2 * * 0', { last: 3, daily: 14 }]);
  });

  it('adds a webhook (its secret shown once) and shows its delivery log after a backup', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await page.getByLabel('URL').fill(receiver.url);
    await page.getByLabel('backup.succeeded').check();
    await page.getByRole('button', { name: 'Add the webhook' }).click();
    const shown = page.getByRole('status').filter({ hasText: 'Signing secret, shown this once' });
    await shown.waitFor();
    receiver.secret.value = (await shown.locator('.secret').innerText()).trim();
    assert.match(receiver.secret.value, /^whsec_/);
    await shown.getByRole('button', { name: 'I have saved it' }).click();
    await page.getByRole('heading', { name: receiver.url }).waitFor();
    await screenshot(page, 'webhooks');

    const { destinations } = (
      await cp.request<{ destinations: { id: string; name: string }[] }>('GET', '/destinations', token)
    ).body;
    // To the bucket: the receiver added above was stopped when its test ended.
    await cp.backUp(token, envId, destinations.find((d) => d.name === 'office-bucket')!.id);
    await waitFor('the delivery', async () => receiver.received.some((r) => r.event === 'backup.succeeded'));
    assert.equal(receiver.received[0]!.valid, true, 'signed with the secret the page showed');

    await page.getByRole('link', { name: /^Delivery log/ }).click();
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    const row = page.getByRole('row').filter({ hasText: 'backup.succeeded' });
    // The log's row is written when the delivery ends: refreshed until it says so.
    await waitFor('the delivered row', async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      return /delivered\s+1\s+HTTP 200/.test(await row.innerText().catch(() => ''));
    });
    await screenshot(page, 'webhook-deliveries');
    await page.getByRole('link', { name: 'Back to the webhooks' }).click();
    // Its events changed in place: failures only from now on.
    await page.getByText(/^Change events/).click();
    for (const event of [
      'backup.succeeded',
      'backup.missed',
      'restore.finished',
      'restore.failed',
      'snapshot.verification_failed',
    ])
      await page
        .getByRole('group', { name: /^Events sent to/ })
        .getByLabel(event)
        .uncheck();
    await page.getByRole('button', { name: 'Save the events' }).click();
    await page.getByText('Sent: backup.failed', { exact: true }).waitFor();
    const hooks = await cp.request<{ webhooks: { events: string[] }[] }>('GET', '/webhooks', token);
    assert.deepEqual(hooks.body.webhooks[0]!.events, ['backup.failed']);
    assert.equal(await fitsPhone(page), true, 'the delivery log fits a phone');
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  it('lists the team’s operations, each linked to its live view and its workflow in the Temporal UI', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Operations' }).click();
    await page.getByRole('heading', { name: 'Operations', level: 1 }).waitFor();
    const rows = page.locator('tbody tr');
    await rows.nth(1).waitFor();
    const { operations } = (
      await cp.request<{ operations: { id: string; kind: string; workflowId: string }[] }>(
        'GET',
        '/operations',
        token,
      )
    ).body;
    assert.deepEqual(
      operations.map((o) => o.kind),
      ['backup', 'deploy'],
    );
    for (const [i, op] of operations.entries()) {
      const link = rows.nth(i).getByRole('link', { name: /^Temporal UI/ });
      assert.equal(
        await link.getAttribute('href'),
        `${temporalUiUrl}/namespaces/${stack.namespace}/workflows/${encodeURIComponent(op.workflowId)}`,
      );
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    }
    await screenshot(page, 'operations');
    await page.getByLabel('Kind').selectOption('deploy');
    await rows.filter({ hasText: 'backup' }).waitFor({ state: 'detached' });
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /deploy\s+web-\w+\s+succeeded/);
    await rows.first().getByRole('link').first().click();
    await page.getByRole('heading', { name: /^Deploy of web-/ }).waitFor();
    assert.ok(await page.getByRole('link', { name: /^Temporal UI/ }).isVisible());
    assert.equal(await fitsPhone(page), true, 'the operation view fits a phone');
    await page.setViewportSize({ width: 1100, height: 800 });
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
