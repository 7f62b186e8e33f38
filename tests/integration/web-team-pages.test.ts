import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createOperation, recordProgress } from '../../db/operations.data.ts';
import { createSnapshot, getSnapshotById, markComplete } from '../../db/snapshots.data.ts';
import { createTeam } from '../../db/teams.data.ts';
import { chromiumPath, lowContrast, fitsPhone, screenshot } from '../helpers/browser.ts';
import { startControlPlane, type AgentServer, type ControlPlane } from '../helpers/control-plane.ts';
import { stack, waitFor } from '../helpers/stack.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';
import { collectPageErrors, signIn } from '../helpers/web-page.ts';

// Destinations and the team key, and schedules, have files of their own (web-destinations-page.test.ts,
// web-schedules-page.test.ts).
describe('the backups page: webhooks, operations, long lists and deleting a destination, in a browser', () => {
  // Not reached by the test: the page only links to it.
  const temporalUiUrl = 'http://127.0.0.1:8233';
  let cp: ControlPlane;
  let server: AgentServer;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let token: string;
  let envId: string;
  let destinationId: string;
  let destinationName: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    cp = await startControlPlane({ temporalUiUrl });
    const team = await createTeam(cp.db, 'web-team');
    token = team.token;
    server = await cp.addServer(token, team.team.id, 'web-s');
    // Its deploy is the first operation of the team, listed with its link to the Temporal UI.
    envId = await cp.deployWebEnvironment(token, server.id);
    receiver = await startWebhookReceiver();
    ({ destinationId, bucket: destinationName } = await cp.addDestination(token));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    collectPageErrors(page, pageErrors);
    await signIn(page, cp.apiUrl, token);
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.agent.kill();
    if (server) await cp?.stopServices(server.root);
    await cp?.stop();
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

    await cp.backUp(token, envId, destinationId);
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
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
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
    assert.deepEqual(await lowContrast(page), [], 'every text at WCAG AA contrast');
    await page.getByLabel('Kind').selectOption('deploy');
    // The other list goes at once (not shown as if it were this one); the narrowed one comes after.
    await rows.filter({ hasText: 'backup' }).waitFor({ state: 'detached' });
    await rows.first().waitFor();
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /deploy\s+web-\w+\s+succeeded/);
    await rows.first().getByRole('link').first().click();
    await page.getByRole('heading', { name: /^Deploy of web-/ }).waitFor();
    assert.ok(await page.getByRole('link', { name: /^Temporal UI/ }).isVisible());
    assert.equal(await fitsPhone(page), true, 'the operation view fits a phone');
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  it('shows 50 snapshots and 50 operations, the next ones when asked, and keeps them shown when one changes', async () => {
    const { snapshots } = (
      await cp.request<{ snapshots: { id: string }[] }>('GET', `/environments/${envId}/snapshots`, token)
    ).body;
    assert.equal(snapshots.length, 1);
    const real = await getSnapshotById(cp.db, snapshots[0]!.id);
    // Rows like the real backup's, written in PostgreSQL (fifty backups would take minutes); their
    // objects are never read, and their keys are their own.
    for (let i = 0; i < 50; i++) {
      const row = await createSnapshot(cp.db, {
        teamId: real.team_id,
        environmentId: envId,
        destinationId,
        sourceServerId: real.source_server_id,
        operationId: real.operation_id,
        keyId: real.key_id,
        objectKeys: (id) => ({ data: `seeded/${id}.data`, manifest: `seeded/${id}.manifest` }),
      });
      await markComplete(cp.db, row.id, {
        sizeBytes: 1024,
        tarBytes: 2048,
        entries: 1,
        dataSha256: '0'.repeat(64),
        manifestSha256: '0'.repeat(64),
        frozenMs: 10,
        captureMs: 20,
      });
    }
    await page.goto(`${cp.apiUrl}/app/environments/${envId}`);
    const rows = page
      .getByRole('table')
      .filter({ has: page.getByRole('columnheader', { name: 'Held still' }) })
      .locator('tbody tr');
    await rows.nth(49).waitFor();
    assert.equal(await rows.count(), 50, 'one page of the API');
    const more = page.getByRole('button', { name: 'Show more snapshots' });
    await more.click();
    await rows.nth(50).waitFor();
    assert.equal(await rows.count(), 51);
    assert.equal(await more.count(), 0, 'the last page: nothing more to show');
    const focused = 'document.activeElement?.textContent';
    assert.equal(await page.evaluate(focused), 'All 51 snapshots shown.', 'the keyboard goes on from there');
    // The oldest, the real backup, pinned: the list is loaded again as far as it was shown.
    await rows.nth(50).getByRole('button', { name: /^Pin/ }).click();
    await rows
      .nth(50)
      .getByRole('button', { name: /^Unpin/ })
      .waitFor();
    assert.equal(await rows.count(), 51);

    // The team's operations likewise: 50 more, finished, beside the deploy and the backup.
    for (let i = 0; i < 50; i++) {
      const op = await createOperation(cp.db, {
        teamId: real.team_id,
        environmentId: envId,
        serverId: server.id,
        kind: 'verify',
        workflowId: `seeded-verify-${i}`,
      });
      await recordProgress(cp.db, op.id, { status: 'succeeded', steps: [] });
    }
    await page.getByRole('navigation').getByRole('link', { name: 'Operations' }).click();
    const ops = page.locator('tbody tr');
    await ops.nth(49).waitFor();
    assert.equal(await ops.count(), 50);
    await page.getByRole('button', { name: 'Show more operations' }).click();
    await ops.nth(51).waitFor();
    assert.equal(await ops.count(), 52);
    assert.match(await ops.nth(51).innerText(), /deploy/, 'the oldest, last');
    assert.equal(await page.getByRole('button', { name: 'Show more operations' }).count(), 0);
    assert.equal(await page.evaluate(focused), 'All 52 operations shown.');
  });

  it('deletes a destination: refused with the reason while it holds snapshots, gone once unused', async () => {
    const spare = await cp.addDestination(token);
    await page.getByRole('navigation').getByRole('link', { name: 'Destinations' }).click();
    const card = (name: string) =>
      page.getByRole('listitem').filter({ has: page.getByRole('heading', { name, exact: true }) });
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    await card(destinationName)
      .getByRole('button', { name: `Delete ${destinationName}` })
      .click();
    await card(destinationName).getByRole('alert').filter({ hasText: 'cannot be removed' }).waitFor();
    await card(spare.bucket)
      .getByRole('button', { name: `Delete ${spare.bucket}` })
      .click();
    await card(spare.bucket).waitFor({ state: 'detached' });
    assert.deepEqual(dialogs, [
      `Delete the destination ${destinationName}? strackt forgets its credentials.`,
      `Delete the destination ${spare.bucket}? strackt forgets its credentials.`,
    ]);
    const listed = await cp.request<{ destinations: { name: string }[] }>('GET', '/destinations', token);
    assert.deepEqual(
      listed.body.destinations.map((d) => d.name),
      [destinationName],
    );
  });

  it('made no script error, and the CSP blocked nothing', () => {
    assert.deepEqual(pageErrors, []);
  });
});
