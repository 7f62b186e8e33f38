// Values shorter than this ("on", a port) are too common to be secrets and too common to blank out.
const minSecretLength = 4;

/**
 * `text` with every occurrence of the given values (a service's variables: passwords, tokens) blanked,
 * longest first so a value containing another is blanked whole. For output that leaves the server: a
 * hook's, which goes into Temporal history, the API and webhook bodies.
 */
export function redactValues(text: string, values: Iterable<string | undefined>): string {
  const secrets = [...new Set(values)]
    .filter((v): v is string => !!v && v.length >= minSecretLength)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return out;
}
