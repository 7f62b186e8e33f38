import { createHash, randomBytes } from 'node:crypto';
import { DomainError } from '../common/errors.ts';
import { CertificateMismatchError, type TlsPin } from './pinned-client.ts';
import { receiverUrl } from './receiver-urls.ts';
import { storageUnreachable } from './probe-errors.ts';
import { receiverError, receiverRequest, ReceiverError, type ReceiverAnswer } from './receiver-client.ts';
import { ReceiverStore, type ReceiverAccess } from './receiver-store.ts';

const timeoutMs = 10_000;

// A failure names the destination's field to change when one is the fix (the page shows it there).
const fail = (code: string, message: string, field?: string) =>
  new DomainError('invalid', code, message, field);

/** What went wrong talking to a receiver, said so the customer can fix it: a 422 naming the cause. */
function classify(err: unknown, url: string, step: string): DomainError {
  if (err instanceof DomainError) return err;
  if (err instanceof CertificateMismatchError)
    return fail('certificate_mismatch', err.message, 'fingerprint');
  if (err instanceof ReceiverError)
    return fail(
      err.status === 401 ? 'bad_credentials' : 'check_failed',
      `the receiver at ${new URL(url).host} refused to ${step}: ${err.code}`,
    );
  const unreachable = storageUnreachable(err);
  if (unreachable)
    return fail(
      'endpoint_unreachable',
      unreachable.message.replace('the storage', `the receiver at ${new URL(url).host}`),
      'url',
    );
  return fail(
    'check_failed',
    `could not ${step} at the receiver ${new URL(url).host}: ${(err as Error).message}`,
  );
}

/**
 * Gives a receiver its credentials, with the one-time code it printed at first start. Only over a
 * connection showing the trusted certificate: the code and keys go to no one else.
 */
export async function enrolReceiver(
  url: string,
  pin: TlsPin,
  code: string,
  credentials: { writerKey: Buffer; pruneToken: string },
): Promise<void> {
  let answer: ReceiverAnswer;
  try {
    answer = await receiverRequest(receiverUrl(url, 'enrol'), pin, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code,
        writerKey: credentials.writerKey.toString('base64'),
        pruneToken: credentials.pruneToken,
      }),
      timeoutMs,
    });
  } catch (err) {
    throw classify(err, url, 'enrol');
  }
  if (answer.status === 204) return;
  if (answer.status === 401)
    throw fail(
      'bad_enrolment_code',
      'enrolmentCode: the receiver did not accept this enrolment code',
      'enrolmentCode',
    );
  if (answer.status === 409)
    throw fail(
      'already_enrolled',
      'the receiver is already enrolled (with strackt or another account): to enrol it again, stop it, ' +
        'delete credentials.json from its data directory and start it; it prints a new code',
    );
  throw classify(receiverError(answer, 'enrol'), url, 'enrol');
}

/**
 * Proves a receiver works for what backups and retention do with it: writes a small object with a
 * writer URL, reads it back, and deletes it with the prune token.
 */
export async function checkReceiver(access: ReceiverAccess): Promise<void> {
  const store = new ReceiverStore(access);
  const key = `strackt-probe/${randomBytes(8).toString('hex')}`;
  const written = randomBytes(64);
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw classify(err, access.url, name);
    }
  };
  await step('write a probe object', async () => {
    const answer = await receiverRequest(new URL(await store.putUrl(key, written.length)), access.pin, {
      method: 'PUT',
      headers: { 'x-strackt-sha256': createHash('sha256').update(written).digest('hex') },
      body: written,
      timeoutMs,
    });
    if (answer.status !== 201) throw receiverError(answer, 'write');
  });
  // Once the object exists it is deleted whatever the read found, so a failed check leaves nothing.
  const read = await step('read the probe object back', () => store.readStart(key, 128)).finally(() =>
    step('delete the probe object with the prune token', () => store.remove(key)),
  );
  if (!read?.equals(written))
    throw fail(
      'readback_mismatch',
      `the receiver at ${new URL(access.url).host} did not return what it stored`,
      'url',
    );
  // The prune token must also list: retention checks what is stored by listing.
  await step('list objects with the prune token', () => store.list('strackt-probe/'));
}
