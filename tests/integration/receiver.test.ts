import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../common/log.ts';
import { CertificateMismatchError, pinnedRequest } from '../../storage/pinned-client.ts';
import { Receiver } from '../../receiver/receiver-server.ts';
import {
  maxPartBytes,
  signedObjectUrl,
  signObjectUrl,
  type WriterAction,
} from '../../storage/receiver-urls.ts';
import { receiverCertificate } from '../../receiver/tls.ts';
import { runProgram } from '../helpers/processes.ts';
import { freePort, stack, uniqueName, waitFor } from '../helpers/stack.ts';

const log = createLogger('receiver', { level: 'warn' });

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

describe('the receiver', () => {
  const dataDir = join(stack.runDir, uniqueName('receiver'));
  let receiver: Receiver;
  let base: URL;
  let fingerprint: string;
  let enrolmentCode: string;
  const writerKey = randomBytes(32);
  const pruneToken = randomBytes(32).toString('base64url');

  before(async () => {
    const tls = await receiverCertificate(dataDir);
    fingerprint = tls.fingerprint;
    receiver = new Receiver({ dataDir, cert: tls.cert, key: tls.key, log });
    enrolmentCode = (await receiver.prepare()).enrolmentCode!;
    const port = await receiver.listen('127.0.0.1', 0);
    base = new URL(`https://127.0.0.1:${port}`);
  });

  after(async () => {
    await receiver?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function send(
    path: string,
    options: {
      method?: string;
      headers?: Record<string, string>;
      body?: Buffer;
      cut?: number;
      pin?: string;
    } = {},
  ): Promise<Answer> {
    const req = await pinnedRequest(
      new URL(path, base),
      { fingerprint: options.pin ?? fingerprint },
      {
        method: options.method ?? 'GET',
        headers: options.headers,
      },
    );
    return new Promise((resolve, reject) => {
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      });
      if (options.cut !== undefined) {
        // A broken connection: part of the body, then the socket dies.
        req.once('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0) }));
        req.write(options.body!.subarray(0, options.cut), () => setTimeout(() => req.destroy(), 200));
      } else {
        req.once('error', reject);
        req.end(options.body);
      }
    });
  }

  // Writes carry their signed bound, as the control plane signs them; reads none (null: none at all).
  const signed = (
    method: WriterAction,
    key: string,
    {
      expires = Math.floor(Date.now() / 1000) + 600,
      signKey = writerKey,
      max = method === 'PUT' ? 64 << 20 : null,
    }: { expires?: number; signKey?: Buffer; max?: number | null } = {},
  ) =>
    `/objects/${key}?expires=${expires}${max === null ? '' : `&max=${max}`}&signature=${signObjectUrl(signKey, method, key, expires, max ?? undefined)}`;
  const upload = (key: string, data: Buffer, offset = 0, extra: Parameters<typeof send>[1] = {}) =>
    send(signed('PUT', key), {
      method: 'PUT',
      body: data.subarray(offset),
      ...extra,
      headers: {
        'x-strackt-total': String(data.length),
        'x-strackt-offset': String(offset),
        'x-strackt-sha256': createHash('sha256').update(data).digest('hex'),
        'content-length': String(data.length - offset),
      },
    });
  const prune = { authorization: `Bearer ${pruneToken}` };

  it('is enrolled once, with the code it printed', async () => {
    const before = await send('/objects?prefix=', { headers: prune });
    assert.equal(before.status, 503, 'nothing is served before enrolment');
    const body = (code: string) =>
      Buffer.from(JSON.stringify({ code, writerKey: writerKey.toString('base64'), pruneToken }));
    assert.equal((await send('/enrol', { method: 'POST', body: body('not-the-code') })).status, 401);
    assert.equal((await send('/enrol', { method: 'POST', body: body(enrolmentCode) })).status, 204);
    assert.equal((await send('/enrol', { method: 'POST', body: body(enrolmentCode) })).status, 409);
  });

  it('refuses to talk to a certificate that is not the pinned one, before sending anything', async () => {
    const other = 'AA:' + fingerprint.slice(3);
    await assert.rejects(send('/objects?prefix=', { headers: prune, pin: other }), CertificateMismatchError);
  });

  it('trusts a certificate issued by a CA the customer gives, for the URL’s host, and no other', async () => {
    const dir = join(stack.runDir, uniqueName('receiver-ca'));
    await mkdir(dir, { recursive: true });
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const makeCa = (name: string) =>
      openssl(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
      );
    makeCa('customer-ca');
    makeCa('other-ca');
    await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=receiver',
      '-keyout',
      'receiver.key',
      '-out',
      'receiver.csr',
    );
    openssl(
      'x509',
      '-req',
      '-in',
      'receiver.csr',
      '-CA',
      'customer-ca.pem',
      '-CAkey',
      'customer-ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'san.ext',
      '-out',
      'receiver.pem',
    );
    const tls = await receiverCertificate(join(dir, 'data'), {
      certFile: join(dir, 'receiver.pem'),
      keyFile: join(dir, 'receiver.key'),
    });
    const issued = new Receiver({ dataDir: join(dir, 'data'), cert: tls.cert, key: tls.key, log });
    await issued.prepare();
    const port = await issued.listen('127.0.0.1', 0);
    try {
      const url = new URL(`https://127.0.0.1:${port}/objects?prefix=`);
      const ask = async (pin: { ca: string }) => {
        const req = await pinnedRequest(url, pin, { method: 'GET' });
        return new Promise<number>((resolve, reject) => {
          req.once('response', (res) => (res.resume(), resolve(res.statusCode!)));
          req.once('error', reject);
          req.end();
        });
      };
      const ca = async (name: string) => await readFile(join(dir, `${name}.pem`), 'utf8');
      assert.equal(await ask({ ca: await ca('customer-ca') }), 503, 'talked to (not enrolled yet)');
      await assert.rejects(ask({ ca: await ca('other-ca') }), CertificateMismatchError);
    } finally {
      await issued.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes an object from a writer URL, serves it whole and by range, and never lets a writer overwrite or delete it', async () => {
    const data = randomBytes(300_000);
    const key = 'team_a/env_a/snap_a/data';
    const put = await upload(key, data);
    assert.equal(put.status, 201, put.body.toString());
    const got = await send(signed('GET', key));
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
    const head = await send(signed('GET', key), { method: 'HEAD' });
    assert.equal(head.headers['content-length'], String(data.length));
    const ranged = await send(signed('GET', key), { headers: { range: 'bytes=0-135' } });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.body.equals(data.subarray(0, 136)));

    const same = await send(signed('PUT', key), {
      method: 'PUT',
      body: data,
      headers: {
        'x-strackt-sha256': createHash('sha256').update(data).digest('hex'),
        'content-length': String(data.length),
      },
    });
    assert.equal(same.status, 201, 'the same whole object again (a retry) is taken as done');
    const again = await upload(key, randomBytes(10));
    assert.equal(again.status, 409);
    assert.match(again.body.toString(), /never overwritten/);
    const deleted = await send(signed('DELETE' as WriterAction, key), { method: 'DELETE' });
    assert.equal(deleted.status, 403);
    assert.match(deleted.body.toString(), /append-only/);
    assert.ok((await send(signed('GET', key))).body.equals(data), 'still the same bytes');
  });

  it('refuses wrong, expired and missing credentials, and a writer listing', async () => {
    const key = 'team_a/env_a/snap_b/data';
    const wrong = await upload(key, randomBytes(10), 0, {});
    assert.equal(wrong.status, 201, 'the control: a right signature passes');
    const forged = `/objects/${key}?expires=${Math.floor(Date.now() / 1000) + 600}&signature=${signObjectUrl(randomBytes(32), 'GET', key, Math.floor(Date.now() / 1000) + 600)}`;
    assert.equal((await send(forged)).status, 401);
    assert.equal(
      (await send(signed('GET', key, { expires: Math.floor(Date.now() / 1000) - 1 }))).status,
      401,
    );
    assert.equal((await send(`/objects/${key}`)).status, 401);
    assert.equal(
      (await send(signed('PUT', key).replace('/snap_b/', '/snap_c/'))).status,
      401,
      'a URL is for its own object',
    );
    assert.equal((await send('/objects?prefix=', { headers: { authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await send('/objects?prefix=')).status, 401);
  });

  it('refuses names that would leave the data directory', async () => {
    for (const key of ['..%2Fescape', 'team_a/..%2F..%2Fescape', '.hidden', 'a//b', 'a%00b'])
      assert.equal((await send(`/objects/${key}?expires=9999999999&signature=x`)).status, 400, key);
    assert.deepEqual(
      (await readdir(dataDir)).sort(),
      ['credentials.json', 'objects', 'partial', 'tls'].sort(),
    );
  });

  it('resumes an upload cut off half-way, and lists only complete objects', async () => {
    const data = randomBytes(2_000_000);
    const key = 'team_a/env_a/snap_d/data';
    await upload(key, data, 0, { cut: 700_000 });
    const state = await send(signed('GET', key), { method: 'HEAD' });
    assert.equal(state.status, 404, 'a partial upload is not an object');
    const stored = Number(state.headers['x-strackt-uploaded']);
    assert.ok(stored > 0 && stored < data.length, `${stored} bytes kept`);
    const listed = await send('/objects?prefix=team_a/env_a/snap_d', { headers: prune });
    assert.deepEqual(JSON.parse(listed.body.toString()).objects, []);
    // The cut connection's request ends on the receiver a moment after the client sees it die: until
    // then its upload holds the object, and another is told it is busy, as a retrying agent would be.
    let wrongOffset = await upload(key, data, 0);
    for (let tries = 0; /"busy"/.test(wrongOffset.body.toString()) && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      wrongOffset = await upload(key, data, 0);
    }
    assert.equal(wrongOffset.status, 409);
    assert.match(wrongOffset.body.toString(), new RegExp(`stands at ${stored} bytes`));
    const rest = await upload(key, data, stored);
    assert.equal(rest.status, 201, rest.body.toString());
    assert.ok((await send(signed('GET', key))).body.equals(data));
  });

  it('discards an upload whose bytes do not hash as announced, or that is longer than announced', async () => {
    const key = 'team_a/env_a/snap_e/data';
    const data = randomBytes(50_000);
    const lie = await send(signed('PUT', key), {
      method: 'PUT',
      body: data,
      headers: {
        'x-strackt-total': String(data.length),
        'x-strackt-sha256': 'ab'.repeat(32),
        'content-length': String(data.length),
      },
    });
    assert.equal(lie.status, 422);
    const longer = await send(signed('PUT', key), {
      method: 'PUT',
      body: data,
      headers: {
        'x-strackt-total': '1000',
        'x-strackt-sha256': 'ab'.repeat(32),
        'content-length': String(data.length),
      },
    });
    assert.equal(longer.status, 413);
    assert.equal((await send(signed('GET', key), { method: 'HEAD' })).headers['x-strackt-uploaded'], '0');
  });

  it('lets one of two concurrent uploads of an object through', async () => {
    const key = 'team_a/env_a/snap_f/data';
    const data = randomBytes(3_000_000);
    const [a, b] = await Promise.all([upload(key, data), upload(key, data)]);
    assert.deepEqual([a.status, b.status].sort(), [201, 409]);
    assert.ok((await send(signed('GET', key))).body.equals(data));
  });

  it('takes a multipart upload part by part, joins it only when size and hash match, and never shows it before', async () => {
    const key = 'team_m/env_m/snap_m/data';
    const parts = [randomBytes(1_000_000), randomBytes(1_000_000), randomBytes(300_000)];
    const whole = Buffer.concat(parts);
    const url = (action: WriterAction) => {
      const max = action.startsWith('PUT')
        ? maxPartBytes
        : action === 'POST complete'
          ? whole.length
          : undefined;
      const u = new URL(signedObjectUrl(base.toString(), writerKey, action, key, 600, max));
      return u.pathname + u.search;
    };
    const etags: string[] = [];
    for (const [i, part] of parts.entries()) {
      const put = await send(url(`PUT part=${i + 1}`), { method: 'PUT', body: part });
      assert.equal(put.status, 200, put.body.toString());
      etags.push(String(put.headers.etag));
    }
    // A URL signed for part 1 is no good for part 2, nor for completing.
    const forged = url('PUT part=1').replace('part=1', 'part=2');
    assert.equal((await send(forged, { method: 'PUT', body: parts[1] })).status, 401);
    // A part cut short is not kept; the one stored before it stays.
    const cut = await send(url('PUT part=2'), {
      method: 'PUT',
      body: randomBytes(500_000),
      headers: { 'content-length': '500000' },
      cut: 100_000,
    });
    assert.equal(cut.status, 0);
    const listed = JSON.parse((await send(url('GET parts'))).body.toString()) as {
      parts: { partNumber: number; etag: string; size: number }[];
    };
    assert.deepEqual(
      listed.parts.map((p) => [p.partNumber, `"${p.etag}"`, p.size]),
      parts.map((p, i) => [i + 1, etags[i], p.length]),
    );
    assert.equal((await send(signed('GET', key))).status, 404, 'no object before completion');
    assert.deepEqual(
      (
        JSON.parse((await send('/objects?prefix=team_m', { headers: prune })).body.toString()) as {
          objects: [];
        }
      ).objects,
      [],
    );
    const complete = (sha256: string) =>
      send(url('POST complete'), {
        method: 'POST',
        body: Buffer.from(
          JSON.stringify({
            parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })),
            size: whole.length,
            sha256,
          }),
        ),
      });
    const wrong = await complete(createHash('sha256').update('other').digest('hex'));
    assert.equal(wrong.status, 422);
    assert.equal((await send(signed('GET', key))).status, 404, 'a mismatch leaves no object');
    const done = await complete(createHash('sha256').update(whole).digest('hex'));
    assert.equal(done.status, 201, done.body.toString());
    assert.ok((await send(signed('GET', key))).body.equals(whole));
    assert.equal(
      (await complete(createHash('sha256').update(whole).digest('hex'))).status,
      201,
      'done again: same answer',
    );
    const late = await send(url('PUT part=1'), { method: 'PUT', body: parts[0] });
    assert.equal(late.status, 409, 'no part is taken for an object that exists');
    assert.equal((await send(url('DELETE upload'), { method: 'DELETE' })).status, 204);
    assert.ok((await send(signed('GET', key))).body.equals(whole), 'aborting never touches an object');
  });

  it('completes only parts in order, each once, adding up to the signed size, and writes nothing otherwise', async () => {
    const key = 'team_h/env_h/snap_h/data';
    const parts = [randomBytes(200_000), randomBytes(100_000)];
    const whole = Buffer.concat(parts);
    const sha256 = createHash('sha256').update(whole).digest('hex');
    const url = (action: WriterAction, max?: number) => {
      const u = new URL(signedObjectUrl(base.toString(), writerKey, action, key, 600, max));
      return u.pathname + u.search;
    };
    const etags: string[] = [];
    for (const [i, part] of parts.entries()) {
      const put = await send(url(`PUT part=${i + 1}`, maxPartBytes), { method: 'PUT', body: part });
      assert.equal(put.status, 200);
      etags.push(String(put.headers.etag).replace(/"/g, ''));
    }
    const complete = (list: number[], size: number, signedSize: number) =>
      send(url('POST complete', signedSize), {
        method: 'POST',
        body: Buffer.from(
          JSON.stringify({ parts: list.map((n) => ({ partNumber: n, etag: etags[n - 1] })), size, sha256 }),
        ),
      });
    // The first part ten times over would have made an object ten times its size from one stored part.
    const forgedSize = parts[0]!.length * 10;
    const cases: [string, number[], number, number, string][] = [
      ['a part twice', [1, 1], parts[0]!.length * 2, parts[0]!.length * 2, 'bad_parts'],
      ['ten times one part', Array(10).fill(1) as number[], forgedSize, forgedSize, 'bad_parts'],
      ['out of order', [2, 1], whole.length, whole.length, 'bad_parts'],
      ['not adding up to the size', [1], whole.length, whole.length, 'size_mismatch'],
      ['a size other than the signed one', [1, 2], whole.length, whole.length + 1, 'size_mismatch'],
      [
        'too many parts',
        Array.from({ length: 10_001 }, (_, i) => i + 1),
        whole.length,
        whole.length,
        'bad_complete',
      ],
    ];
    for (const [what, list, size, signedSize, code] of cases) {
      const refused = await complete(list, size, signedSize);
      assert.equal(refused.status, 400, `${what}: ${refused.body.toString()}`);
      assert.equal(JSON.parse(refused.body.toString()).error.code, code, what);
      assert.equal(
        (await send(signed('GET', key), { method: 'HEAD' })).headers['x-strackt-uploaded'],
        '0',
        what,
      );
    }
    const unbound = url('POST complete');
    assert.equal(
      (await send(unbound, { method: 'POST', body: Buffer.from('{}') })).status,
      401,
      'a completion URL names its size',
    );
    const done = await complete([1, 2], whole.length, whole.length);
    assert.equal(done.status, 201, done.body.toString());
    assert.ok((await send(signed('GET', key))).body.equals(whole));
  });

  it('bounds every write by the maximum its URL was signed with', async () => {
    const key = 'team_h/env_h/snap_i/manifest';
    const data = randomBytes(5_000);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const put = (path: string, body = data) =>
      send(path, {
        method: 'PUT',
        body,
        headers: { 'x-strackt-sha256': sha256, 'content-length': String(body.length) },
      });
    const over = await put(signed('PUT', key, { max: data.length - 1 }));
    assert.equal(over.status, 413, over.body.toString());
    const announced = await send(signed('PUT', key, { max: 1_000 }), {
      method: 'PUT',
      body: data.subarray(0, 1_000),
      headers: {
        'x-strackt-sha256': sha256,
        'x-strackt-total': '500000000000',
        'x-strackt-offset': '0',
        'content-length': '1000',
      },
    });
    assert.equal(
      announced.status,
      413,
      'a total announced beyond the bound is refused before a byte is kept',
    );
    assert.equal((await send(signed('GET', key), { method: 'HEAD' })).headers['x-strackt-uploaded'], '0');
    const raised = signed('PUT', key, { max: 1_000 }).replace('max=1000', 'max=100000');
    assert.equal((await put(raised)).status, 401, 'the bound is signed: raising it breaks the signature');
    const unbound = signed('PUT', key, { max: null });
    assert.equal((await put(unbound)).status, 401, 'a write URL without a bound is no writer URL');
    const partUrl = (max: number) => {
      const u = new URL(signedObjectUrl(base.toString(), writerKey, 'PUT part=1', `${key}-parts`, 600, max));
      return u.pathname + u.search;
    };
    assert.equal((await send(partUrl(1_000), { method: 'PUT', body: data })).status, 413);
    assert.equal(
      (await put(signed('PUT', key, { max: data.length }))).status,
      201,
      'within its bound: taken',
    );
  });

  it('drops what abandoned uploads left after three days, never a complete object', async () => {
    const old = new Date(Date.now() - 4 * 24 * 3600 * 1000);
    const parts = join(dataDir, 'uploads', 'team_s', 'env_s', 'snap_s', 'data');
    await mkdir(parts, { recursive: true });
    await writeFile(join(parts, `1.${'a'.repeat(64)}`), 'abandoned');
    await utimes(join(parts, `1.${'a'.repeat(64)}`), old, old);
    await writeFile(join(parts, `2.${'b'.repeat(64)}`), 'recent');
    const objects = await receiver.store.list('');
    for (const o of objects) await utimes(join(dataDir, 'objects', o.key), old, old);
    assert.equal(await receiver.store.sweep(3 * 24 * 3600 * 1000), 1);
    assert.deepEqual(await readdir(parts), [`2.${'b'.repeat(64)}`]);
    assert.deepEqual(await receiver.store.list(''), objects, 'complete objects are all there');
  });

  it('prunes with the prune token', async () => {
    const key = 'team_a/env_a/snap_a/data';
    const listed = await send('/objects?prefix=team_a/', { headers: prune });
    assert.ok(JSON.parse(listed.body.toString()).objects.some((o: { key: string }) => o.key === key));
    assert.equal((await send(`/objects/${key}`, { method: 'DELETE', headers: prune })).status, 204);
    assert.equal((await send(signed('GET', key))).status, 404);
  });

  it('answers 507 when its disk is full, and keeps what it had', async (t) => {
    const small = join(stack.runDir, uniqueName('small-receiver'));
    await mkdir(small, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    } catch {
      t.skip('this machine cannot mount a tmpfs');
      return;
    }
    const tls = await receiverCertificate(dataDir);
    const full = new Receiver({ dataDir: small, cert: tls.cert, key: tls.key, log });
    const code = (await full.prepare()).enrolmentCode!;
    const port = await full.listen('127.0.0.1', 0);
    const at = new URL(`https://127.0.0.1:${port}`);
    const call = async (path: string, options: Parameters<typeof send>[1]) => {
      const saved = base;
      base = at;
      try {
        return await send(path, options);
      } finally {
        base = saved;
      }
    };
    try {
      const enrol = Buffer.from(
        JSON.stringify({ code, writerKey: writerKey.toString('base64'), pruneToken }),
      );
      assert.equal((await call('/enrol', { method: 'POST', body: enrol })).status, 204);
      const kept = randomBytes(200_000);
      const put = (key: string, data: Buffer) =>
        call(signed('PUT', key), {
          method: 'PUT',
          body: data,
          headers: {
            'x-strackt-total': String(data.length),
            'x-strackt-sha256': createHash('sha256').update(data).digest('hex'),
            'content-length': String(data.length),
          },
        });
      assert.equal((await put('t/e/s1/data', kept)).status, 201);
      const tooBig = await put('t/e/s2/data', randomBytes(2_000_000));
      assert.equal(tooBig.status, 507, tooBig.body.toString());
      assert.match(tooBig.body.toString(), /disk is full/);
      assert.ok(
        (await call(signed('GET', 't/e/s1/data'), {})).body.equals(kept),
        'the earlier object is intact',
      );
    } finally {
      await full.close();
      // Lazily: the server's last sockets may still hold the mount for a moment.
      execFileSync('umount', ['-l', small]);
      await rm(small, { recursive: true, force: true });
    }
  });

  it('as a program: prints its fingerprint and code, and an upload cut by killing it resumes after a restart', async () => {
    const dir = join(stack.runDir, uniqueName('receiver-program'));
    const port = await freePort();
    const env = { STRACKT_RECEIVER_DATA: dir, STRACKT_RECEIVER_LISTEN: `127.0.0.1:${port}` };
    let program = runProgram('receiver/main.ts', env);
    try {
      const banner = await waitFor('the receiver to start', async () =>
        /enrolment code.*: (\S+)/.test(program.output()) ? program.output() : undefined,
      );
      const pin = /fingerprint: (\S+)/.exec(banner)![1]!;
      const code = /enrolment code.*: (\S+)/.exec(banner)![1]!;
      const saved = { base, fingerprint };
      base = new URL(`https://127.0.0.1:${port}`);
      fingerprint = pin;
      try {
        const enrol = Buffer.from(
          JSON.stringify({ code, writerKey: writerKey.toString('base64'), pruneToken }),
        );
        assert.equal((await send('/enrol', { method: 'POST', body: enrol })).status, 204);
        const data = randomBytes(8_000_000);
        const key = 't/e/s/data';
        // Most of the body on its way, then the receiver is killed.
        const cut = upload(key, data, 0, { cut: 6_000_000 });
        await waitFor('part of the upload to be on disk', async () =>
          ((await stat(join(dir, 'partial', 't', 'e', 's', 'data')).catch(() => undefined))?.size ?? 0) >
          1_000_000
            ? true
            : undefined,
        );
        await program.kill('SIGKILL');
        await cut;
        program = runProgram('receiver/main.ts', env);
        await waitFor('the receiver to listen again', async () =>
          /listening/.test(program.output()) ? true : undefined,
        );
        assert.doesNotMatch(program.output(), /enrolment code/, 'enrolled once and for all');
        const head = await send(signed('GET', key), { method: 'HEAD' });
        assert.equal(head.status, 404, 'no partial object is ever listed as one');
        const stored = Number(head.headers['x-strackt-uploaded']);
        assert.ok(stored > 0 && stored < data.length, `${stored} bytes survived the kill`);
        assert.equal((await upload(key, data, stored)).status, 201);
        assert.ok((await send(signed('GET', key))).body.equals(data));
      } finally {
        ({ base, fingerprint } = saved);
      }
    } finally {
      await program.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
