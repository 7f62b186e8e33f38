import { DomainError } from '../common/errors.ts';

export type ProbeStep = 'write' | 'read' | 'delete';

export interface ProbeContext {
  /** host:port as configured (endpointHost), never a URL: nothing else of the request goes into messages. */
  host: string;
  bucket: string;
  prefix: string;
  key: string;
  region: string;
  pathStyle: boolean;
  timeoutMs: number;
}

/** The parts of an SDK or Node error the classifier reads; everything else (messages included) is ignored. */
interface ErrorShape {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  cause?: unknown;
  errors?: unknown;
}

// Provider codes meaning "who you say you are does not check out", across AWS, MinIO, B2, R2 and versitygw.
const credentialCodes = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'InvalidSecurity',
  'Unauthorized',
  'XAdminUserNotFound',
]);
// Which of the two a provider's code blames: an unknown key id, or a signature the secret did not make.
const credentialField: Record<string, string> = {
  InvalidAccessKeyId: 'accessKeyId',
  XAdminUserNotFound: 'accessKeyId',
  SignatureDoesNotMatch: 'secretAccessKey',
};
const deniedCodes = new Set(['AccessDenied', 'AllAccessDisabled']);
const regionCodes = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IncorrectRegion']);

const unreachableReasons: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused (nothing listens on that port)',
  ENOTFOUND: 'its host name does not resolve',
  EAI_AGAIN: 'its host name could not be resolved (DNS did not answer)',
  ETIMEDOUT: 'it did not answer in time',
  EHOSTUNREACH: 'there is no route to the host',
  ENETUNREACH: 'the network is unreachable',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed while sending',
};

const selfSigned = 'its certificate is self-signed, and only certificates from a trusted CA are accepted';
const untrusted = 'its certificate is not issued by a trusted CA, or the server does not send the full chain';
const tlsReasons: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: selfSigned,
  SELF_SIGNED_CERT_IN_CHAIN: selfSigned,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrusted,
  UNABLE_TO_GET_ISSUER_CERT: untrusted,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrusted,
  CERT_HAS_EXPIRED: 'its certificate has expired',
  CERT_NOT_YET_VALID: 'its certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is not issued for this host name',
  EPROTO: 'it does not speak TLS (should the endpoint be http://?)',
  ERR_SSL_WRONG_VERSION_NUMBER: 'it does not speak TLS (should the endpoint be http://?)',
};

const isTlsCode = (code: string) =>
  code in tlsReasons || /^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_)/.test(code) || code.endsWith('_CERT');

/** An error's own code, or that of what it wraps (fetch-style causes, happy-eyeballs AggregateErrors). */
function networkCode(err: ErrorShape, depth = 0): string | undefined {
  if (typeof err?.code === 'string') return err.code;
  if (depth > 3) return undefined;
  for (const inner of [err?.cause, ...(Array.isArray(err?.errors) ? err.errors : [])]) {
    const code = inner && networkCode(inner as ErrorShape, depth + 1);
    if (code) return code;
  }
  return undefined;
}

/** An SDK error's name, which for S3 errors is the provider's code (NoSuchUpload, NotFound...). */
export function s3ErrorName(err: unknown): string {
  const name = (err as ErrorShape)?.name;
  return typeof name === 'string' ? name : '';
}

/**
 * The provider's code when an S3 call failed because the credentials were refused or lack the
 * right (revoked keys, a removed policy): no retry will help until someone changes them.
 */
/**
 * Whether an S3 call was denied by the policy rather than refused for its credentials: a GET of a
 * missing key without s3:ListBucket, which a bucket's writer need not have, is answered so too.
 */
export function accessDenied(err: unknown): boolean {
  const name = (err as ErrorShape)?.name;
  return typeof name === 'string' && deniedCodes.has(name);
}

export function refusedCredentialsCode(err: unknown): string | undefined {
  const name = (err as ErrorShape)?.name;
  return typeof name === 'string' && (credentialCodes.has(name) || deniedCodes.has(name)) ? name : undefined;
}

/** A storage that cannot be reached right now, as a 503 worth retrying; undefined for any other error. */
export function storageUnreachable(err: unknown): DomainError | undefined {
  const e = (err ?? {}) as ErrorShape;
  if (e.$metadata?.httpStatusCode !== undefined) return undefined;
  const code = networkCode(e);
  if (!code || !(code in unreachableReasons)) return undefined;
  return new DomainError(
    'unavailable',
    'storage_unreachable',
    `could not reach the storage: ${unreachableReasons[code]} (${code})`,
  );
}

/** A provider's error code is shown to help; anything not shaped like one is not repeated. */
const shown = (name: unknown) =>
  typeof name === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(name) ? name : 'an unrecognised error';

const permissionOf: Record<ProbeStep, { verb: string; action: string }> = {
  write: { verb: 'write objects', action: 's3:PutObject' },
  read: { verb: 'read objects', action: 's3:GetObject' },
  delete: { verb: 'delete objects', action: 's3:DeleteObject' },
};

const fail = (code: string, message: string, field?: string) =>
  new DomainError('invalid', code, message, field);

/**
 * Turns whatever the S3 client threw at one step of the check into a 422 the team can act on. Only
 * the error's code, name and HTTP status are read, never its message or its other fields: a provider's
 * SignatureDoesNotMatch, for one, carries the whole string-to-sign.
 *
 * The answer names the destination's field to change when one is the fix (the page shows it there).
 * A denied step names none: the fix is a permission on the provider's side. Refused credentials name
 * the key id or the secret only when the provider's code tells which.
 */
export function classifyProbeError(err: unknown, step: ProbeStep, ctx: ProbeContext): DomainError {
  if (err instanceof DomainError) return err;
  const e = (err ?? {}) as ErrorShape;
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const name = typeof e.name === 'string' ? e.name : undefined;
  const where = ctx.prefix ? `bucket "${ctx.bucket}" under "${ctx.prefix}/"` : `bucket "${ctx.bucket}"`;

  if (status === undefined) {
    const code = networkCode(e);
    if (code && isTlsCode(code)) {
      const hint =
        !ctx.pathStyle && ctx.bucket.includes('.') && code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? '; a bucket name with dots needs path-style addressing'
          : '';
      const reason = tlsReasons[code] ?? 'the TLS handshake failed';
      return fail(
        'tls_failure',
        `TLS with the storage endpoint ${ctx.host} failed (${code}): ${reason}${hint}`,
        'endpoint',
      );
    }
    if (code && code in unreachableReasons)
      return fail(
        'endpoint_unreachable',
        `cannot reach the storage endpoint ${ctx.host}: ${unreachableReasons[code]} (${code})`,
        'endpoint',
      );
    if (name === 'TimeoutError')
      return fail(
        'endpoint_unreachable',
        `cannot reach the storage endpoint ${ctx.host}: the connection or a request timed out`,
        'endpoint',
      );
    if (name === 'AbortError')
      return fail(
        'endpoint_unreachable',
        `cannot reach the storage endpoint ${ctx.host}: the check did not finish within ${ctx.timeoutMs / 1000} s`,
        'endpoint',
      );
    if (code && /^E[A-Z0-9_]+$/.test(code))
      return fail(
        'endpoint_unreachable',
        `cannot reach the storage endpoint ${ctx.host}: ${shown(code)}`,
        'endpoint',
      );
  }

  if ((name && credentialCodes.has(name)) || status === 401)
    return fail(
      'bad_credentials',
      `the storage at ${ctx.host} refused the credentials (${shown(name)}): check the access key id and the secret access key`,
      name ? credentialField[name] : undefined,
    );
  if (name === 'NoSuchBucket' || (step === 'write' && status === 404))
    return fail(
      'no_such_bucket',
      `bucket "${ctx.bucket}" does not exist at ${ctx.host}: create it first, or check the bucket name, region and endpoint`,
      'bucket',
    );
  if ((name && regionCodes.has(name)) || status === 301)
    return fail(
      'wrong_region',
      `bucket "${ctx.bucket}" is not served in region "${ctx.region}" at ${ctx.host} (${shown(name)}): set the bucket's region`,
      'region',
    );
  // A bare 403 before anything has worked is how gateways refuse a signature; after a write went through
  // the credentials are fine, and a 403 is about the permission for that one step.
  if ((name && deniedCodes.has(name)) || (status === 403 && step !== 'write')) {
    const { verb, action } = permissionOf[step];
    const left = step === 'delete' ? `; the probe object ${ctx.key} is left behind` : '';
    return fail(
      'access_denied',
      `the credentials may not ${verb} in ${where}: the ${step} step of the check was denied ` +
        `(${shown(name)}); grant ${action} there${left}`,
    );
  }
  if (status === 403)
    return fail(
      'bad_credentials',
      `the storage at ${ctx.host} refused the credentials (HTTP 403, ${shown(name)}): check the access key id and the secret access key`,
    );
  if (step === 'read' && (name === 'NoSuchKey' || status === 404))
    return fail(
      'readback_mismatch',
      `the probe object was written to ${where} at ${ctx.host} but reading it back found nothing: the endpoint does not keep what it accepts`,
      'endpoint',
    );
  return fail(
    'check_failed',
    `the ${step} step of the check failed at ${ctx.host}: ${shown(name)}${status ? ` (HTTP ${status})` : ''}`,
  );
}
