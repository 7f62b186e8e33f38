import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError, loadConfig, port } from '../../common/config.ts';
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
    });
    assert.equal(config.API_PORT, 9000);
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

  it('treats an empty variable as unset', () => {
    assert.throws(() => loadConfig({ P: port }, { P: '' }), /P is required but not set/);
  });
});
