import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from '../../common/errors.ts';
import { endpointHost, probeKey } from '../../storage/connectivity-check.ts';
import {
  classifyProbeError,
  storageUnreachable,
  type ProbeContext,
  type ProbeStep,
} from '../../storage/probe-errors.ts';

const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const ctx: ProbeContext = {
  host: 'fsn1.your-objectstorage.com:443',
  bucket: 'acme-backups',
  prefix: 'strackt',
  key: 'strackt/.strackt-probe/0011223344556677',
  region: 'fsn1',
  pathStyle: true,
  timeoutMs: 10_000,
};

/** Shaped as the SDK throws a service error: a name, the HTTP status, and provider fields we must not echo. */
function serviceError(name: string, status: number, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(`${name}: ${secret}`), {
    name,
    $fault: 'client',
    $metadata: { httpStatusCode: status, requestId: 'r1' },
    StringToSign: `AWS4-HMAC-SHA256 ${secret}`,
    ...extra,
  });
}

/** Shaped as Node's socket errors reach us through the SDK's HTTP handler. */
function socketError(code: string) {
  return Object.assign(new Error(`connect ${code} 10.0.0.1:443 ${secret}`), { code, $metadata: {} });
}

/** What the check answers; `field` is the destination's field it names as the fix, if any. */
function classified(err: unknown, step: ProbeStep = 'write', field?: string): DomainError {
  const out = classifyProbeError(err, step, ctx);
  assert.ok(out instanceof DomainError);
  assert.equal(out.kind, 'invalid', 'a failed check is a 422');
  assert.equal(out.field, field, `the field named for ${out.code}`);
  assert.ok(!out.message.includes(secret), `no secret in: ${out.message}`);
  assert.ok(!out.message.includes('AWS4-HMAC'), 'nothing of the request signature either');
  return out;
}

describe('classifying a failed destination check', () => {
  it('tells refused credentials apart from a denied action, naming the step and the permission', () => {
    // The provider's code tells which of the two is wrong: the key id, or the secret that signed.
    const blamed: Record<string, string> = {
      InvalidAccessKeyId: 'accessKeyId',
      SignatureDoesNotMatch: 'secretAccessKey',
      XAdminUserNotFound: 'accessKeyId',
    };
    for (const [name, field] of Object.entries(blamed)) {
      const out = classified(serviceError(name, name === 'XAdminUserNotFound' ? 404 : 403), 'write', field);
      assert.equal(out.code, 'bad_credentials', name);
      assert.match(out.message, new RegExp(`${ctx.host}.*${name}`));
    }
    assert.equal(classified(serviceError('Unauthorized', 401), 'read').code, 'bad_credentials');
    // A 403 without a code before anything worked is a refused signature; after a write, a permission.
    assert.equal(classified(serviceError('Forbidden', 403), 'write').code, 'bad_credentials');
    assert.equal(classified(serviceError('Forbidden', 403), 'read').code, 'access_denied');

    const expected: Record<ProbeStep, RegExp> = {
      write: /may not write objects in bucket "acme-backups" under "strackt\/".*write step.*s3:PutObject/,
      read: /may not read objects .*read step.*s3:GetObject/,
      delete:
        /may not delete objects .*delete step.*s3:DeleteObject.*strackt\/\.strackt-probe\/0011223344556677 is left behind/,
    };
    for (const step of ['write', 'read', 'delete'] as const) {
      const out = classified(serviceError('AccessDenied', 403), step);
      assert.equal(out.code, 'access_denied');
      assert.match(out.message, expected[step]);
    }
  });

  it('names a missing bucket, a wrong region and an object that does not read back', () => {
    const missing = classified(serviceError('NoSuchBucket', 404), 'write', 'bucket');
    assert.equal(missing.code, 'no_such_bucket');
    assert.match(
      missing.message,
      /bucket "acme-backups" does not exist at fsn1\.your-objectstorage\.com:443/,
    );
    assert.equal(classified(serviceError('NotFound', 404), 'write', 'bucket').code, 'no_such_bucket');
    assert.equal(classified(serviceError('NoSuchKey', 404), 'read', 'endpoint').code, 'readback_mismatch');
    const region = classified(serviceError('PermanentRedirect', 301), 'write', 'region');
    assert.equal(region.code, 'wrong_region');
    assert.match(region.message, /region "fsn1"/);
  });

  it('names host:port for every way an endpoint cannot be reached', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET']) {
      const out = classified(socketError(code), 'write', 'endpoint');
      assert.equal(out.code, 'endpoint_unreachable', code);
      assert.match(out.message, new RegExp(`${ctx.host}.*\\(${code}\\)$`));
    }
    // Happy eyeballs: each address family failed, and the code is on the inner errors.
    const both = new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')]);
    assert.equal(classified(both, 'write', 'endpoint').code, 'endpoint_unreachable');
    const fetchStyle = Object.assign(new TypeError('fetch failed'), { cause: socketError('ENOTFOUND') });
    assert.equal(classified(fetchStyle, 'write', 'endpoint').code, 'endpoint_unreachable');
    const timeout = Object.assign(new Error('socket hang'), { name: 'TimeoutError', $metadata: {} });
    assert.match(classified(timeout, 'write', 'endpoint').message, /timed out/);
    const aborted = Object.assign(new Error('aborted'), { name: 'AbortError', $metadata: {} });
    assert.match(classified(aborted, 'write', 'endpoint').message, /did not finish within 10 s/);
  });

  it('names what is wrong with TLS', () => {
    const reasons: Record<string, RegExp> = {
      DEPTH_ZERO_SELF_SIGNED_CERT: /self-signed/,
      SELF_SIGNED_CERT_IN_CHAIN: /self-signed/,
      UNABLE_TO_VERIFY_LEAF_SIGNATURE: /trusted CA/,
      CERT_HAS_EXPIRED: /expired/,
      ERR_TLS_CERT_ALTNAME_INVALID: /not issued for this host name/,
      EPROTO: /does not speak TLS/,
      ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: /handshake failed/,
    };
    for (const [code, reason] of Object.entries(reasons)) {
      const out = classified(socketError(code), 'write', 'endpoint');
      assert.equal(out.code, 'tls_failure', code);
      assert.match(out.message, new RegExp(`${ctx.host} failed \\(${code}\\)`));
      assert.match(out.message, reason);
    }
  });

  it('repeats no provider text it does not recognise, and passes its own errors through', () => {
    const odd = classified(serviceError(`Weird ${secret}`, 500));
    assert.equal(odd.code, 'check_failed');
    assert.equal(
      odd.message,
      'the write step of the check failed at fsn1.your-objectstorage.com:443: an unrecognised error (HTTP 500)',
    );
    const slow = classified(serviceError('SlowDown', 503), 'delete');
    assert.match(slow.message, /delete step .*SlowDown \(HTTP 503\)/);
    assert.equal(classified(new TypeError('x is not a function')).code, 'check_failed');
    const own = new DomainError('invalid', 'readback_mismatch', 'differs');
    assert.equal(classifyProbeError(own, 'read', ctx), own);
  });
});

describe('a storage away during a backup', () => {
  it('is a 503 saying why, for a refused or reset connection and a happy-eyeballs AggregateError', () => {
    for (const err of [
      socketError('ECONNREFUSED'),
      socketError('ECONNRESET'),
      new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')]),
    ]) {
      const unreachable = storageUnreachable(err);
      assert.equal(unreachable?.kind, 'unavailable');
      assert.equal(unreachable?.code, 'storage_unreachable');
      assert.match(unreachable?.message ?? '', /^could not reach the storage: .+ \(ECONN(REFUSED|RESET)\)$/);
    }
  });

  it('is not claimed for an answer of the storage or an error of ours', () => {
    const answered = Object.assign(new Error('x'), {
      name: 'NoSuchUpload',
      $metadata: { httpStatusCode: 404 },
    });
    assert.equal(storageUnreachable(answered), undefined);
    assert.equal(storageUnreachable(new TypeError('a bug')), undefined);
  });
});

describe('where a check writes and what it names', () => {
  it('puts the probe under the prefix, in a folder of its own', () => {
    assert.match(probeKey('strackt'), /^strackt\/\.strackt-probe\/[0-9a-f]{16}$/);
    assert.match(probeKey(''), /^\.strackt-probe\/[0-9a-f]{16}$/);
    assert.notEqual(probeKey(''), probeKey(''));
  });

  it('names the host a request goes to, with its port', () => {
    const base = { region: 'eu-west-1', accessKeyId: 'k', secretAccessKey: secret };
    assert.equal(endpointHost({ ...base, forcePathStyle: true }, 'b1'), 's3.eu-west-1.amazonaws.com:443');
    assert.equal(endpointHost({ ...base, forcePathStyle: false }, 'b1'), 'b1.s3.eu-west-1.amazonaws.com:443');
    assert.equal(
      endpointHost({ ...base, endpoint: 'http://minio.lan:9000/', forcePathStyle: true }, 'b1'),
      'minio.lan:9000',
    );
    assert.equal(
      endpointHost({ ...base, endpoint: 'https://r2.example.com', forcePathStyle: false }, 'b1'),
      'b1.r2.example.com:443',
    );
    assert.equal(endpointHost({ ...base, endpoint: 'http://[::1]', forcePathStyle: true }, 'b1'), '[::1]:80');
  });
});
