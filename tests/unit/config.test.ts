import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError, loadConfig, port, withHelp } from '../../common/config.ts';
import { controlPlaneConfig } from '../../common/control-plane-config.ts';

describe('loadConfig', () => {
  it('names a missing variable', () => {
    assert.throws(
      () => loadConfig(controlPlaneConfig, {}),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.message, 'DATABASE_URL is required but not set');
        return true;
      },
    );
  });

  it('names a malformed variable and says what is wrong', () => {
    assert.throws(
      () => loadConfig(controlPlaneConfig, { DATABASE_URL: 'postgres://u@h:5432/db', API_PORT: 'eighty' }),
      /^ConfigError: API_PORT is invalid: /,
    );
    assert.throws(
      () => loadConfig(controlPlaneConfig, { DATABASE_URL: 'mysql://x/y' }),
      /DATABASE_URL is invalid/,
    );
  });

  it('applies defaults and coerces numbers', () => {
    const config = loadConfig(controlPlaneConfig, {
      DATABASE_URL: 'postgres://u@h:5432/db',
      API_PORT: '9000',
      VAULT_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    assert.equal(config.API_PORT, 9000);
    assert.deepEqual(config.VAULT_MASTER_KEY, Buffer.alloc(32, 7));
    assert.equal(config.TEMPORAL_NAMESPACE, 'strackt');
    assert.equal(config.AGENT_STALE_AFTER_SECONDS, 75);
  });

  it('reads KEY_FILE for secrets, without the trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'token'), 'sta_secret\n');
    const config = loadConfig({ TOKEN: z.string() }, { TOKEN_FILE: join(dir, 'token') });
    assert.equal(config.TOKEN, 'sta_secret');
    assert.throws(
      () => loadConfig({ TOKEN: z.string() }, { TOKEN_FILE: join(dir, 'missing') }),
      /TOKEN_FILE: cannot read .*ENOENT/,
    );
  });

  it("adds a variable's help to the message when it is missing or malformed", () => {
    const shape = {
      KEY: withHelp(z.string().length(4, 'must be 4 characters'), 'Make one with `mkkey`'),
      P: port,
    };
    assert.throws(
      () => loadConfig(shape, { P: '1' }),
      /^ConfigError: KEY is required but not set\. Make one with `mkkey`$/,
    );
    assert.throws(
      () => loadConfig(shape, { KEY: 'abc', P: '1' }),
      /^ConfigError: KEY is invalid: must be 4 characters\. Make one with `mkkey`$/,
    );
    assert.throws(() => loadConfig(shape, { KEY: 'abcd', P: 'x' }), /^ConfigError: P is invalid: [^.]*$/);
  });

  it('takes the Temporal UI address without its trailing slash, and refuses anything but http(s)', () => {
    const base = {
      DATABASE_URL: 'postgres://u@h:5432/db',
      VAULT_MASTER_KEY: Buffer.alloc(32).toString('base64'),
    };
    assert.equal(loadConfig(controlPlaneConfig, base).STRACKT_TEMPORAL_UI_URL, undefined);
    const config = loadConfig(controlPlaneConfig, {
      ...base,
      STRACKT_TEMPORAL_UI_URL: 'https://tui.example.com/',
    });
    assert.equal(config.STRACKT_TEMPORAL_UI_URL, 'https://tui.example.com');
    assert.throws(
      () => loadConfig(controlPlaneConfig, { ...base, STRACKT_TEMPORAL_UI_URL: 'javascript:alert(1)' }),
      /STRACKT_TEMPORAL_UI_URL is invalid: must be an http:\/\/ or https:\/\/ URL/,
    );
  });

  it('treats an empty variable as unset', () => {
    assert.throws(() => loadConfig({ P: port }, { P: '' }), /P is required but not set/);
  });
});
