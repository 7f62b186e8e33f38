import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../common/config.ts';
import { loadControlPlaneConfig } from '../../common/control-plane-config.ts';
import { temporalConfig, temporalTarget } from '../../common/temporal-config.ts';
import { makeTestPki, type TestPki } from '../helpers/test-pki.ts';

const target = (env: NodeJS.ProcessEnv, now?: Date) => temporalTarget(loadConfig(temporalConfig, env), now);

function assertConfigError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof ConfigError, `${err.name}: ${err.message}`);
    assert.match(err.message, message);
    return true;
  });
}

describe('Temporal connection variables', () => {
  let pki: TestPki;
  let mtls: NodeJS.ProcessEnv;
  before(() => {
    pki = makeTestPki();
    mtls = {
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
    };
  });

  it('connects in plain text to the local default unless told otherwise', () => {
    assert.deepEqual(target({}), { address: '127.0.0.1:7233', namespace: 'strackt', tls: false });
  });

  it('TEMPORAL_TLS=true is TLS with the system CAs', () => {
    assert.deepEqual(target({ TEMPORAL_TLS: 'true', TEMPORAL_ADDRESS: 'x.tmprl.cloud:7233' }).tls, {});
    assertConfigError(() => target({ TEMPORAL_TLS: 'maybe' }), /^TEMPORAL_TLS is invalid: /);
  });

  it('an API key implies TLS, unless TEMPORAL_TLS=false says otherwise', () => {
    const withKey = target({ TEMPORAL_API_KEY: 'key-123', TEMPORAL_NAMESPACE: 'prod.acct' });
    assert.deepEqual(withKey, {
      address: '127.0.0.1:7233',
      namespace: 'prod.acct',
      tls: {},
      apiKey: 'key-123',
    });
    assert.equal(target({ TEMPORAL_API_KEY: 'key-123', TEMPORAL_TLS: 'false' }).tls, false);
  });

  it('reads the API key from TEMPORAL_API_KEY_FILE, and never repeats a malformed one', () => {
    const file = join(pki.dir, 'api-key');
    writeFileSync(file, 'key-from-file\n');
    assert.equal(target({ TEMPORAL_API_KEY_FILE: file }).apiKey, 'key-from-file');
    assert.throws(
      () => target({ TEMPORAL_API_KEY: 'secret with-space' }),
      (err: Error) =>
        err.message.startsWith('TEMPORAL_API_KEY is invalid') && !err.message.includes('secret'),
    );
  });

  it('mTLS: the client pair, the CA and the server name go to the SDK as read from the files', () => {
    const { tls } = target({ ...mtls, TEMPORAL_TLS_SERVER_NAME: 'temporal.test' });
    assert.deepEqual(tls, {
      clientCertPair: { crt: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) },
      serverRootCACertificate: readFileSync(pki.ca),
      serverNameOverride: 'temporal.test',
    });
  });

  it("takes the PEM text itself (_DATA) and the CLI's older names alike", () => {
    const expected = target(mtls).tls;
    const data = {
      TEMPORAL_TLS_CLIENT_CERT_DATA: readFileSync(pki.clientCert, 'utf8'),
      TEMPORAL_TLS_CLIENT_KEY_DATA: readFileSync(pki.clientKey, 'utf8'),
      TEMPORAL_TLS_SERVER_CA_CERT_DATA: readFileSync(pki.ca, 'utf8'),
    };
    assert.deepEqual(target(data).tls, expected);
    const legacy = {
      TEMPORAL_TLS_CERT: pki.clientCert,
      TEMPORAL_TLS_KEY: pki.clientKey,
      TEMPORAL_TLS_CA: pki.ca,
    };
    assert.deepEqual(target(legacy).tls, expected);
    assertConfigError(
      () => target({ ...mtls, TEMPORAL_TLS_CA: pki.otherCa }),
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_CA are both set: keep one$/,
    );
  });

  it('a CA alone, or a server name alone, turns TLS on', () => {
    assert.deepEqual(target({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca }).tls, {
      serverRootCACertificate: readFileSync(pki.ca),
    });
    assert.deepEqual(target({ TEMPORAL_TLS_SERVER_NAME: 'a.test' }).tls, { serverNameOverride: 'a.test' });
  });

  it('a certificate without its key, or a key without its certificate, names the variable set', () => {
    assertConfigError(
      () => target({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert }),
      /^TEMPORAL_TLS_CLIENT_CERT_PATH is set without a client key: set TEMPORAL_TLS_CLIENT_KEY_PATH too$/,
    );
    assertConfigError(
      () => target({ TEMPORAL_TLS_KEY: pki.clientKey }),
      /^TEMPORAL_TLS_KEY is set without a client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH too$/,
    );
  });

  it('an unreadable file names its variable and path', () => {
    assertConfigError(
      () => target({ ...mtls, TEMPORAL_TLS_CLIENT_KEY_PATH: join(pki.dir, 'missing.key') }),
      /^TEMPORAL_TLS_CLIENT_KEY_PATH is invalid: cannot read .*missing\.key: ENOENT$/,
    );
    assertConfigError(
      () => target({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.dir }),
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH is invalid: cannot read .*: EISDIR$/,
    );
  });

  it('files swapped, mismatched or expired are named now, without their contents', () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [
        { ...mtls, TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientKey },
        /^TEMPORAL_TLS_CLIENT_CERT_PATH holds no PEM/,
      ],
      [
        { ...mtls, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientCert },
        /^TEMPORAL_TLS_CLIENT_KEY_PATH holds no unencr/,
      ],
      [
        { ...mtls, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.serverKey },
        /^TEMPORAL_TLS_CLIENT_KEY_PATH is not the key of the certificate in TEMPORAL_TLS_CLIENT_CERT_PATH$/,
      ],
      [
        { ...mtls, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.clientKey },
        /^TEMPORAL_TLS_SERVER_CA_CERT_PATH holds no/,
      ],
    ];
    for (const [env, message] of cases) {
      assertConfigError(() => target(env), message);
      assert.throws(
        () => target(env),
        (err: Error) => !err.message.includes('-----'),
      );
    }
    const inAWeek = new Date(Date.now() + 7 * 86_400_000);
    assertConfigError(
      () => target(mtls, inAWeek),
      /^the certificate in TEMPORAL_TLS_CLIENT_CERT_PATH expired on /,
    );
  });

  it('refuses contradictions instead of picking a side', () => {
    assertConfigError(
      () => target({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca }),
      /^TEMPORAL_TLS is false but TEMPORAL_TLS_SERVER_CA_CERT_PATH asks for TLS/,
    );
    assertConfigError(
      () => target({ TEMPORAL_TLS: 'true', TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' }),
      /^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported: set TEMPORAL_TLS_SERVER_NAME/,
    );
    assert.deepEqual(
      target({ TEMPORAL_TLS: 'true', TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'false' }).tls,
      {},
    );
  });

  it('the API and the worker get the connection with the rest of their configuration', () => {
    const config = loadControlPlaneConfig({
      DATABASE_URL: 'postgres://u@h:5432/db',
      VAULT_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'backups',
      ...mtls,
    });
    assert.equal(config.temporal.address, 'temporal.internal:7233');
    assert.equal(config.temporal.namespace, 'backups');
    assert.ok(config.temporal.tls && config.temporal.tls.clientCertPair);
    assertConfigError(
      () =>
        loadControlPlaneConfig({ DATABASE_URL: 'postgres://u@h:5432/db', TEMPORAL_TLS_CERT: pki.clientCert }),
      /^VAULT_MASTER_KEY is required/,
    );
  });
});
