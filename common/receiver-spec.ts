import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { outboundAllowed, outboundRefusedMessage } from './outbound-guard.ts';

/** A receiver's base URL: https only (the credentials and snapshots cross it), nothing but host, port and path. */
export const receiverUrlSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'https:' && !url.username && !url.password && !url.search && !url.hash;
    } catch {
      return false;
    }
  }, 'must be an https:// URL without user, password, query or fragment')
  .refine(outboundAllowed, outboundRefusedMessage)
  .transform((value) => value.replace(/\/+$/, ''));

/** As `openssl x509 -fingerprint -sha256` and the receiver print it; stored in capitals. */
export const fingerprintSchema = z
  .string()
  .regex(
    /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/,
    'must be a SHA-256 fingerprint: 32 hex bytes separated by colons',
  )
  .transform((value) => value.toUpperCase());

export const caCertificateSchema = z
  .string()
  .max(65_536)
  .refine((pem) => {
    try {
      return new X509Certificate(pem).ca;
    } catch {
      return false;
    }
  }, 'must be a CA certificate in PEM');
