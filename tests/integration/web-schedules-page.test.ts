import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { beginRun } from '../../db/schedules.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { chromiumPath, lowContrast, fitsPhone, screenshot } from '../helpers/browser.ts';
import { startControlPlane, type AgentServer, type ControlPlane } from '../helpers/control-plane.ts';
import { collectPageErrors, signIn } from '../helpers/web-page.ts';

describe('the backups page: schedules and the environments at a glance, in a browser', () => {
  let cp: ControlPlane;
  let server: AgentServer;
  let token: string;
  let envId: string;
  let destinationId: string;
  let destinationName: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    cp = await startControlPlane();
    const team = await createTeam(cp.db, 'web-schedules');
    token = team.token;
    server = await cp.addServer(token, team.team.id, 'web-s');
    envId = await cp.deployWebEnvironment(token, server.id);
    ({ destinationId, bucket: destinationName } = await cp.addDestination(token));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    // The viewer is in New York: the schedule's runs are shown in its zone and in this one.
    const context = await browser.newContext({
      viewport: { width: 1100, height: 800 },
      timezoneId: 'America/New_York',
    });
    page = await context.newPage();
    collectPageErrors(page, pageErrors);
    await signIn(page, cp.apiUrl, token);
  });

  after(async () => {
    await browser?.close();
    await server?.agent.kill();
    if (server) await cp?.stopServices(server.root);
    await cp?.stop();
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
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');

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

  it('pauses the schedule from the environment, and resumes it', async () => {
    const list = page.locator('.schedule-list');
    const enabled = async () =>
      (
        await cp.request<{ schedules: { enabled: boolean }[] }>(
          'GET',
          `/environments/${envId}/schedules`,
          token,
        )
      ).body.schedules[0]!.enabled;
    await list.getByRole('button', { name: /^Pause the schedule 30 2 \* \* 0$/ }).click();
    await list.getByRole('button', { name: /^Resume/ }).waitFor();
    assert.match(await list.innerText(), /\(paused\)/);
    assert.match(await page.locator('.facts').innerText(), /\(schedule paused\)/, 'the glance says so too');
    assert.equal(await enabled(), false);
    await list.getByRole('button', { name: /^Resume/ }).click();
    await list.getByRole('button', { name: /^Pause/ }).waitFor();
    assert.doesNotMatch(await list.innerText(), /\(paused\)/);
    assert.equal(await enabled(), true);
  });

  it('shows the environment at a glance: last success, next runs, a missed run with its reason, storage, retention', async () => {
    await cp.backUp(token, envId, destinationId);
    const { schedules } = (
      await cp.request<{ schedules: { id: string }[] }>('GET', `/environments/${envId}/schedules`, token)
    ).body;
    // Recorded as the missed-backups sweep records a run that never started (activities/schedule.activities.ts).
    const reason =
      'it never started: the schedule was paused in Temporal, or Temporal or the control-plane worker was not running';
    await beginRun(cp.db, {
      scheduleId: schedules[0]!.id,
      nominalAt: new Date(Date.now() - 3_600_000),
      status: 'missed',
      error: reason,
    });
    await page.getByRole('navigation').getByRole('link', { name: 'Environments' }).click();
    const card = page.getByRole('listitem').filter({ has: page.getByRole('link', { name: /^web-/ }) });
    await card.getByText('Missed runs').waitFor();
    const facts = await card.locator('.facts').innerText();
    assert.match(facts, /Last successful backup\n.+\), [\d.]+ (B|KiB|MiB)\n/);
    // Sundays at 02:30 in Berlin, the schedule's zone beside the viewer's (New York).
    assert.match(facts, /Next runs\n.+\(schedule’s zone: \d{4}-\d\d-\d\d 02:30, UTC\+0[12]:00\)/);
    assert.match(facts, /Missed runs\n1\n.+: missed: it never started: the schedule was paused in Temporal/);
    assert.match(
      facts,
      new RegExp(`Storage used\\n${destinationName}: [\\d.]+ (B|KiB|MiB) in 1 snapshot\\n`),
    );
    assert.match(
      facts,
      /Retention\nkeeps the last 3 and one a day for 14 days that have backups, and every pinned snapshot/,
    );
    await screenshot(page, 'environments-at-a-glance');
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
  });

  it('made no script error, and the CSP blocked nothing', () => {
    assert.deepEqual(pageErrors, []);
  });
});
