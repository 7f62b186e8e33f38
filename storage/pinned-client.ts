import type { ClientRequest, RequestOptions } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction, type OnReadOpts } from 'node:net';
import tls from 'node:tls';

export class CertificateMismatchError extends Error {
  override name = 'CertificateMismatchError';
}

/**
 * How a receiver's certificate is trusted: pinned by its SHA-256 fingerprint (as `openssl x509
 * -fingerprint -sha256` prints it; what a self-signed receiver needs), or issued by a CA the
 * customer gives (PEM) for the URL's host name.
 */
export type TlsPin = { fingerprint: string } | { ca: string };

/** Where to connect for a URL, and the name to ask TLS for (none for an IP address). */
export function connectTarget(
  url: URL,
  defaultPort: number,
): { host: string; port: number; servername?: string } {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { host, port: Number(url.port || defaultPort), servername: isIP(host) ? undefined : host };
}

/**
 * A TLS connection to a receiver that is used only if the receiver shows the trusted certificate.
 * Checked before a byte of the request is written: a host that is not the customer's receiver gets
 * nothing. `onread` as net.connect takes it: reads into one buffer (agent/http-download.ts).
 */
export function pinnedConnection(
  url: URL,
  pin: TlsPin,
  onread?: OnReadOpts,
  /** How the host's name is resolved: the control plane's outbound guard; an agent's resolver by default. */
  lookup?: LookupFunction,
): Promise<tls.TLSSocket> {
  // A pin only means something over TLS: an http: URL with one is refused, never sent in clear.
  if (url.protocol !== 'https:')
    return Promise.reject(
      new CertificateMismatchError(
        `${url.protocol}//${url.host} is not https: a pinned certificate needs TLS`,
      ),
    );
  const { host, port, servername } = connectTarget(url, 443);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      servername,
      // A pin replaces CA checks: a self-signed certificate is what most receivers have.
      ...('ca' in pin ? { ca: pin.ca, rejectUnauthorized: true } : { rejectUnauthorized: false }),
      // Not in tls' typings, though tls.connect takes it as net.connect does.
      ...(onread && { onread }),
      ...(lookup && { lookup }),
    });
    // A host that swallows packets must not hold a backup for the kernel's two minutes.
    socket.setTimeout(10_000, () =>
      socket.destroy(new Error(`no TLS handshake with ${host}:${port} within 10 s`)),
    );
    socket.once('secureConnect', () => {
      socket.setTimeout(0);
      if ('ca' in pin) return resolve(socket);
      const shown = socket.getPeerX509Certificate()?.fingerprint256;
      if (shown?.toUpperCase() !== pin.fingerprint.toUpperCase()) {
        socket.destroy();
        reject(
          new CertificateMismatchError(
            `the receiver at ${host}:${port} shows certificate ${shown ?? 'none'}, not the pinned ${pin.fingerprint}: nothing was sent`,
          ),
        );
      } else resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        'ca' in pin && err.code && /CERT|SIGNATURE|ALTNAME|SELF_SIGNED/.test(err.code)
          ? new CertificateMismatchError(
              `the receiver at ${host}:${port} shows a certificate the given CA does not vouch for (${err.code}): nothing was sent`,
            )
          : err,
      ),
    );
  });
}

/** An HTTPS request over a pinned connection (one connection per request). */
export async function pinnedRequest(
  url: URL,
  pin: TlsPin,
  options: RequestOptions,
  lookup?: LookupFunction,
): Promise<ClientRequest> {
  const socket = await pinnedConnection(url, pin, undefined, lookup);
  return https.request(url, { ...options, createConnection: () => socket });
}
