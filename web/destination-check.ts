import type { ApiError } from './api.ts';

// The connectivity check answers with its first failure: a code, a message, and for a refused body the
// field. The check runs in a fixed order (reach the endpoint, sign in, find the bucket, write, read
// back, delete), so the code also tells which fields it had already shown to work: that is what the
// form shows beside each field.

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

/** Which fields the check's failure is about, and which it had passed, by the answer's code. */
function failedAt(kind: 's3' | 'receiver', err: ApiError): Verdicts {
  const bad = { ok: false, message: err.message } as const;
  if (err.field) return { [err.field.split('.')[0]!]: bad };
  if (err.code === 'name_taken') return { name: bad };
  if (kind === 'receiver')
    switch (err.code) {
      case 'endpoint_unreachable':
      case 'readback_mismatch':
        return { url: bad };
      case 'certificate_mismatch':
        return { url: reached, fingerprint: bad };
      case 'bad_enrolment_code':
      case 'already_enrolled':
        return {
          url: reached,
          fingerprint: { ok: true, message: 'certificate matches' },
          enrolmentCode: bad,
        };
      default:
        return {};
    }
  const signedIn = { ok: true, message: 'accepted' } as const;
  switch (err.code) {
    case 'endpoint_unreachable':
    case 'tls_failure':
    case 'readback_mismatch':
      return { endpoint: bad };
    case 'bad_credentials':
      return { endpoint: reached, accessKeyId: bad, secretAccessKey: bad };
    case 'wrong_region':
      return { endpoint: reached, region: bad };
    case 'no_such_bucket':
      return { endpoint: reached, bucket: bad };
    case 'access_denied':
      return {
        endpoint: reached,
        accessKeyId: signedIn,
        secretAccessKey: signedIn,
        bucket: { ok: true, message: 'found' },
        prefix: bad,
      };
    default:
      return {};
  }
}

/** Every field's verdict after a check: all passed, or as far as the failure tells. */
export function verdicts(kind: 's3' | 'receiver', err?: ApiError): Verdicts {
  const fields = kind === 's3' ? bucketFields : receiverFields;
  if (!err) return Object.fromEntries(fields.map((f) => [f, { ok: true, message: 'checked' }]));
  return failedAt(kind, err);
}
