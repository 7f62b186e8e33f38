import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createWebhookActivities } from '../../activities/webhook.activities.ts';
import {
  allowOutbound,
  checkOutboundUrl,
  OutboundRefused,
  parseOutboundAllow,
} from '../../common/outbound-guard.ts';
import { createTeam } from '../../db/teams.data.ts';
import { enqueueDeliveries } from '../../db/webhooks.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { stack, stackOutboundAllow } from '../helpers/stack.ts';
import { startWebhookReceiver } from '../helpers/webhook-receiver.ts';

describe('the outbound guard: what a team gives is reached only at public addresses', () => {
  let cp: ControlPlane;
  let token: string;
  let teamId: string;
  let webhooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const s3Port = new URL(stack.s3.endpoint).port;

  before(async () => {
    cp = await startControlPlane();
    ({
      token,
      team: { id: teamId },
    } = await createTeam(cp.db, 'reachers'));
    webhooks = await startWebhookReceiver();
    // As a production control plane is configured: only the local bucket stand-in is allowed.
    allowOutbound(parseOutboundAllow(`127.0.0.1:${s3Port}`));
  });

  after(async () => {
    allowOutbound(parseOutboundAllow(stackOutboundAllow));
    await webhooks?.close();
    await cp?.stop();
  });

  it('refuses private, loopback, link-local, metadata, CGNAT, unique-local and mapped addresses', () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://127.0.0.1:8080/',
      'http://10.1.2.3/',
      'http://172.20.0.1/',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
      'http://[::1]/',
      'http://[fd00:ec2::254]/',
      'http://[fe80::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[64:ff9b::a9fe:a9fe]/',
    ])
      assert.throws(() => checkOutboundUrl(new URL(url)), OutboundRefused, url);
    for (const url of ['https://93.184.215.14/', 'https://[2606:4700::1111]/', `http://127.0.0.1:${s3Port}/`])
      assert.doesNotThrow(() => checkOutboundUrl(new URL(url)), url);
  });

  it('reads the operator’s allowances, and refuses ones it cannot read', () => {
    const allowed = parseOutboundAllow(' 10.0.0.0/8 , 127.0.0.1:7070,[::1]:9000, 192.168.1.5 ');
    assert.equal(allowed.length, 4);
    assert.equal(allowed[1]!.port, 7070);
    for (const bad of ['localhost', '10.0.0.0/33', '127.0.0.1:0', '::1:9000', '1.2.3'])
      assert.throws(() => parseOutboundAllow(bad), /is not an address|out of range/, bad);
  });

  it('refuses a webhook or a bucket at such an address when it is given, naming the field', async () => {
    for (const url of [
      'http://169.254.169.254/hook',
      'http://[::ffff:169.254.169.254]/hook',
      'https://10.0.0.8/x',
    ]) {
      const res = await cp.request<{ error: { field: string; message: string } }>(
        'POST',
        '/webhooks',
        token,
        { url },
      );
      assert.equal(res.status, 422, url);
      assert.equal(res.body.error.field, 'url');
      assert.match(res.body.error.message, /private, loopback, link-local or reserved/);
    }
    const bucket = await cp.request<{ error: { field: string } }>('POST', '/destinations', token, {
      name: 'metadata',
      endpoint: 'http://169.254.169.254',
      bucket: 'b',
      region: 'us-east-1',
      accessKeyId: 'AKIAXXXXXXXXXXXXXXXX',
      secretAccessKey: 'x'.repeat(40),
    });
    assert.equal(bucket.status, 422, JSON.stringify(bucket.body));
    assert.equal(bucket.body.error.field, 'endpoint');
  });

  it('never connects to a name that resolves to a refused address, and logs only that it was refused', async () => {
    // The name passes when given (names are checked as they are resolved), then resolves to loopback.
    const url = `http://localhost:${new URL(webhooks.url).port}/hook`;
    const made = await cp.request<{ webhook: { id: string } }>('POST', '/webhooks', token, { url });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const [deliveryId] = await enqueueDeliveries(cp.db, teamId, 'backup.failed', 'op_probe', { probe: true });
    // The activity as the worker runs it, in an activity context of Temporal's own test kit.
    const { sendWebhook } = createWebhookActivities({ db: cp.db, vault: cp.vault });
    const send = () => new MockActivityEnvironment().run(sendWebhook, { deliveryId: deliveryId! });
    await assert.rejects(send(), /not one strackt connects to/);
    assert.equal(webhooks.received.length, 0, 'nothing reached the address');
    const row = await cp.db
      .selectFrom('webhook_deliveries')
      .select(['last_error', 'status'])
      .where('id', '=', deliveryId!)
      .executeTakeFirstOrThrow();
    assert.equal(
      row.last_error,
      `could not reach localhost:${new URL(webhooks.url).port}: the address is not one strackt connects to`,
    );

    // The control: the same delivery once the operator allows the address goes through.
    allowOutbound(
      parseOutboundAllow(
        `127.0.0.1:${s3Port},127.0.0.1:${new URL(webhooks.url).port},[::1]:${new URL(webhooks.url).port}`,
      ),
    );
    try {
      await send();
      assert.equal(webhooks.received.length, 1);
    } finally {
      allowOutbound(parseOutboundAllow(`127.0.0.1:${s3Port}`));
    }
  });
});
