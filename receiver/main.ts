import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { exitOnConfigError, loadConfig, logLevel } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import { Receiver } from './receiver-server.ts';
import { receiverCertificate } from './tls.ts';

const config = exitOnConfigError('strackt-receiver', () =>
  loadConfig({
    STRACKT_RECEIVER_DATA: z.string().refine(isAbsolute, 'must be an absolute path'),
    STRACKT_RECEIVER_LISTEN: z
      .string()
      .regex(/^[^\s:]+:\d+$/, 'must be host:port')
      .default('0.0.0.0:8443'),
    /** A certificate of your own (PEM); without it the receiver makes a self-signed one. */
    STRACKT_RECEIVER_CERT: z.string().optional(),
    STRACKT_RECEIVER_KEY: z.string().optional(),
    LOG_LEVEL: logLevel,
  }),
);

try {
  const tls = await receiverCertificate(
    config.STRACKT_RECEIVER_DATA,
    config.STRACKT_RECEIVER_CERT && config.STRACKT_RECEIVER_KEY
      ? { certFile: config.STRACKT_RECEIVER_CERT, keyFile: config.STRACKT_RECEIVER_KEY }
      : undefined,
  );
  const receiver = new Receiver({
    dataDir: config.STRACKT_RECEIVER_DATA,
    cert: tls.cert,
    key: tls.key,
    log: createLogger('receiver', { level: config.LOG_LEVEL }),
  });
  const { enrolmentCode } = await receiver.prepare();
  const [host, port] = config.STRACKT_RECEIVER_LISTEN.split(':') as [string, string];
  const listening = await receiver.listen(host, Number(port));
  console.log(`strackt-receiver listening on https://${host}:${listening}`);
  console.log(`certificate SHA-256 fingerprint: ${tls.fingerprint}`);
  if (enrolmentCode)
    console.log(`enrolment code (give it to strackt with the URL and fingerprint): ${enrolmentCode}`);
  const stop = () => void receiver.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  console.error(`strackt-receiver: cannot start: ${(err as Error).message}`);
  process.exit(1);
}
