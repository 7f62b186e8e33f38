import type { ApiError } from './api.ts';

// The connectivity check answers with its first failure: a code, a message, and the field to change
// when one is the fix (the API names it: a wrong bucket, region, secret, certificate pin...). The check
// runs in a fixed order (reach the endpoint, sign in, find the bucket, write, read back, delete), so the
// code also tells which fields it had already shown to work: the form shows both beside each field.

export type Verdict = { ok: true; message: string } | { ok: false; message: string } | undefined;
export type Verdicts = Record<string, Verdict>;

export const bucketFields = [
  'name',
  'endpoint',
  'region',
  'bucket',
  'prefix',
  'accessKeyId',
  'secretAccessKey',
];
export const receiverFields = ['name', 'url', 'fingerprint', 'enrolmentCode'];

const reached = { ok: true, message: 'reached' } as const;
const signedIn = { ok: true, message: 'accepted' } as const;

/** The fields a failure with this code shows to work, by the order the check runs in. */
function passedBefore(kind: 's3' | 'receiver', err: ApiError): Verdicts {
  if (kind === 'receiver')
    switch (err.code) {
      case 'certificate_mismatch':
        return { url: reached };
      case 'bad_enrolment_code':
      case 'already_enrolled':
        return { url: reached, fingerprint: { ok: true, message: 'certificate matches' } };
      default:
        return {};
    }
  switch (err.code) {
    case 'bad_credentials':
      // A signature refused means the storage knows the key id: only the secret is wrong.
      return err.field === 'secretAccessKey'
        ? { endpoint: reached, accessKeyId: { ok: true, message: 'known to the storage' } }
        : { endpoint: reached };
    case 'wrong_region':
    case 'no_such_bucket':
      return { endpoint: reached };
    case 'access_denied':
      return {
        endpoint: reached,
        accessKeyId: signedIn,
        secretAccessKey: signedIn,
        bucket: { ok: true, message: 'found' },
      };
    default:
      return {};
  }
}

/** Where a failure that names no field is shown: where the fix is, as near as the code tells. */
function unnamedAt(kind: 's3' | 'receiver', code: string): string[] {
  if (code === 'name_taken') return ['name'];
  if (kind === 'receiver') return code === 'already_enrolled' ? ['enrolmentCode'] : [];
  // Either the key id or the secret (the provider did not say which); a denied step, under the prefix.
  if (code === 'bad_credentials') return ['accessKeyId', 'secretAccessKey'];
  if (code === 'access_denied') return ['prefix'];
  return [];
}

/** Every field's verdict after a check: all passed, or as far as the failure tells. */
export function verdicts(kind: 's3' | 'receiver', err?: ApiError): Verdicts {
  const fields = kind === 's3' ? bucketFields : receiverFields;
  if (!err) return Object.fromEntries(fields.map((f) => [f, { ok: true, message: 'checked' }]));
  const bad = { ok: false, message: err.message } as const;
  const at = err.field ? [err.field.split('.')[0]!] : unnamedAt(kind, err.code);
  return { ...passedBefore(kind, err), ...Object.fromEntries(at.map((f) => [f, bad])) };
}
