// What the receiver accepts as an object key, and how it refuses: the HTTP layer turns a StoreError
// into its status, and nothing stored is touched.

/** A refusal the HTTP layer turns into its status; nothing stored was touched. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// team/environment/snapshot names and file names: letters, digits, dot, dash and underscore, never
// starting with a dot, so no segment can be "..", hidden, or reach outside the data directory.
const segment = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const maxKeyLength = 512;

export function checkKey(key: string): string {
  const parts = key.split('/');
  if (key.length > maxKeyLength || !parts.every((p) => segment.test(p)))
    throw new StoreError(
      400,
      'bad_key',
      `object names are up to ${maxKeyLength} characters of /-separated segments of letters, digits, ".", "-" and "_", not starting with "."`,
    );
  return key;
}
