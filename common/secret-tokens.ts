import { createHash, randomBytes } from 'node:crypto';

/** stt_ = team API token, sta_ = agent token; the prefix lets secret scanners and humans tell them apart. */
export type TokenPrefix = 'stt' | 'sta';

export function newSecretToken(prefix: TokenPrefix): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
