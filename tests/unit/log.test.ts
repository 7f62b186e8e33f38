import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../common/config.ts';
import { controlPlaneConfig } from '../../common/control-plane-config.ts';
import { capturedLogger } from '../helpers/log-lines.ts';

const required = {
  DATABASE_URL: 'postgres://u@h:5432/db',
  VAULT_MASTER_KEY: Buffer.alloc(32).toString('base64'),
};

describe('logs', () => {
  it('says only what its level lets through, trace to fatal, or nothing when silent', () => {
    const say = (log: ReturnType<typeof capturedLogger>['log']) => {
      log.trace('t');
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      log.fatal('f');
    };
    const levels = (level: Parameters<typeof capturedLogger>[1]) => {
      const captured = capturedLogger('api', level);
      say(captured.log);
      return captured.lines().map((l) => l.level);
    };
    assert.deepEqual(levels('trace'), ['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
    assert.deepEqual(levels('info'), ['info', 'warn', 'error', 'fatal']);
    assert.deepEqual(levels('warn'), ['warn', 'error', 'fatal']);
    assert.deepEqual(levels('silent'), []);
  });

  it('writes JSON lines with the time, the component, the bound ids and the message', () => {
    const { log, text, lines } = capturedLogger('agent');
    log.child({ task: 'task_1' }).info({ bytes: 12 }, 'uploaded');
    assert.ok(text().endsWith('}\n'));
    const [line] = lines();
    assert.equal(line!.component, 'agent');
    assert.equal(line!.task, 'task_1');
    assert.equal(line!.bytes, 12);
    assert.equal(line!.msg, 'uploaded');
    assert.ok(!Number.isNaN(Date.parse(line!.time)), line!.time);
  });

  it('logs an error with its type, message and stack', () => {
    const { log, lines } = capturedLogger('worker');
    log.error({ err: new TypeError('no such thing') }, 'failed');
    const err = lines()[0]!.err as { type: string; message: string; stack: string };
    assert.equal(err.type, 'TypeError');
    assert.equal(err.message, 'no such thing');
    assert.match(err.stack, /^TypeError: no such thing\n\s+at /);
  });

  it('takes LOG_LEVEL from the configuration, info by default, and names it when it is wrong', () => {
    assert.equal(loadConfig(controlPlaneConfig, required).LOG_LEVEL, 'info');
    assert.equal(loadConfig(controlPlaneConfig, { ...required, LOG_LEVEL: 'debug' }).LOG_LEVEL, 'debug');
    assert.throws(
      () => loadConfig(controlPlaneConfig, { ...required, LOG_LEVEL: 'verbose' }),
      (err: Error) => err instanceof ConfigError && /^LOG_LEVEL is invalid: .*"trace"/.test(err.message),
    );
  });
});
