import type { TLSConfig } from '@temporalio/client';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './config.ts';

/** A PEM file named by a variable, read at start so a missing file names its variable, not a handshake. */
const pemFile = z.string().transform((path, ctx) => {
  try {
    return readFileSync(path);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code}` });
    return z.NEVER;
  }
});
const pemText = z.string().transform((text) => Buffer.from(text));

/**
 * How the control plane reaches Temporal, under the names the `temporal` CLI reads (its current
 * names and the older TEMPORAL_TLS_CERT/KEY/CA), so one environment file serves both.
 */
export const temporalConfig = {
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'must be host:port')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('strackt'),
  // It becomes an HTTP header: a stray space or newline would fail every call, far from its cause.
  TEMPORAL_API_KEY: z
    .string()
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  TEMPORAL_TLS: z.stringbool().optional(),
  TEMPORAL_TLS_CLIENT_CERT_PATH: pemFile.optional(),
  TEMPORAL_TLS_CLIENT_CERT_DATA: pemText.optional(),
  TEMPORAL_TLS_CERT: pemFile.optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: pemFile.optional(),
  TEMPORAL_TLS_CLIENT_KEY_DATA: pemText.optional(),
  TEMPORAL_TLS_KEY: pemFile.optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: pemFile.optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: pemText.optional(),
  TEMPORAL_TLS_CA: pemFile.optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: z.stringbool().optional(),
};

export type TemporalConfig = z.infer<z.ZodObject<typeof temporalConfig>>;

/** What Connection.connect and NativeConnection.connect take, and where to look. */
export interface TemporalTarget {
  address: string;
  namespace: string;
  /** false is plain text; explicit, since the SDK would turn TLS on by itself for an API key. */
  tls: TLSConfig | false;
  apiKey?: string;
}

type PemVariable = {
  [K in keyof TemporalConfig]-?: TemporalConfig[K] extends Buffer | undefined ? K : never;
}[keyof TemporalConfig];

/** The one variable of `names` that is set, if any: two would leave it unclear which one is meant. */
function oneOf(config: TemporalConfig, names: PemVariable[]): { name: PemVariable; pem: Buffer } | undefined {
  const set = names.filter((name) => config[name] !== undefined);
  if (set.length > 1) throw new ConfigError(`${set.join(' and ')} are both set: keep one`);
  return set[0] === undefined ? undefined : { name: set[0], pem: config[set[0]]! };
}

function certificate(name: string, pem: Buffer): X509Certificate {
  // X509Certificate also takes DER, which the SDK's TLS stacks do not.
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`${name} holds no PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch {
    throw new ConfigError(`${name} holds no valid PEM certificate`);
  }
}

function privateKey(name: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    // Fixed text: nothing of the key may reach a log.
    throw new ConfigError(`${name} holds no unencrypted PEM private key`);
  }
}

/**
 * Turns the variables into connection options, checked now so that a mistake stops the program with
 * the variable's name rather than as an opaque handshake failure. Any TLS variable or an API key
 * turns TLS on (the CLI does the same); TEMPORAL_TLS=true alone means TLS with the system's CAs.
 */
export function temporalTarget(config: TemporalConfig, now = new Date()): TemporalTarget {
  if (config.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION)
    // The worker's native connection cannot skip the check, and a half-applied setting is worse than none.
    throw new ConfigError(
      "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported: set TEMPORAL_TLS_SERVER_NAME to a name the server's certificate carries",
    );
  const crt = oneOf(config, [
    'TEMPORAL_TLS_CLIENT_CERT_PATH',
    'TEMPORAL_TLS_CLIENT_CERT_DATA',
    'TEMPORAL_TLS_CERT',
  ]);
  const key = oneOf(config, [
    'TEMPORAL_TLS_CLIENT_KEY_PATH',
    'TEMPORAL_TLS_CLIENT_KEY_DATA',
    'TEMPORAL_TLS_KEY',
  ]);
  const ca = oneOf(config, [
    'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
    'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
    'TEMPORAL_TLS_CA',
  ]);
  if (crt && !key)
    throw new ConfigError(`${crt.name} is set without a client key: set TEMPORAL_TLS_CLIENT_KEY_PATH too`);
  if (key && !crt)
    throw new ConfigError(
      `${key.name} is set without a client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH too`,
    );

  const tls: TLSConfig = {};
  if (crt && key) {
    const cert = certificate(crt.name, crt.pem);
    if (!cert.checkPrivateKey(privateKey(key.name, key.pem)))
      throw new ConfigError(`${key.name} is not the key of the certificate in ${crt.name}`);
    // Temporal would only say the handshake failed.
    if (new Date(cert.validTo) < now)
      throw new ConfigError(`the certificate in ${crt.name} expired on ${cert.validTo}`);
    tls.clientCertPair = { crt: crt.pem, key: key.pem };
  }
  if (ca) {
    certificate(ca.name, ca.pem);
    tls.serverRootCACertificate = ca.pem;
  }
  if (config.TEMPORAL_TLS_SERVER_NAME !== undefined) tls.serverNameOverride = config.TEMPORAL_TLS_SERVER_NAME;

  const tlsVariables: string[] = [crt, key, ca].flatMap((source) => (source ? [source.name] : []));
  if (config.TEMPORAL_TLS_SERVER_NAME !== undefined) tlsVariables.push('TEMPORAL_TLS_SERVER_NAME');
  if (config.TEMPORAL_TLS === false && tlsVariables.length > 0)
    throw new ConfigError(
      `TEMPORAL_TLS is false but ${tlsVariables.join(', ')} asks for TLS: unset one side`,
    );
  const useTls = config.TEMPORAL_TLS ?? (tlsVariables.length > 0 || config.TEMPORAL_API_KEY !== undefined);
  return {
    address: config.TEMPORAL_ADDRESS,
    namespace: config.TEMPORAL_NAMESPACE,
    tls: useTls ? tls : false,
    ...(config.TEMPORAL_API_KEY !== undefined && { apiKey: config.TEMPORAL_API_KEY }),
  };
}
