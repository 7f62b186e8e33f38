import type { ClientRequest, RequestOptions } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';

export class CertificateMismatchError extends Error {
  override name = 'CertificateMismatchError';
}

/**
 * A TLS connection to a receiver that is used only if the receiver shows the pinned certificate
 * (SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it). Checked before a byte of
 * the request is written: a host that is not the customer's receiver gets nothing.
 */
export function pinnedConnection(url: URL, fingerprint: string): Promise<tls.TLSSocket> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  return new Promise((resolve, reject) => {
    // The pin replaces CA checks: a self-signed certificate is what most receivers have.
    const socket = tls.connect({
      host,
      port,
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      const shown = socket.getPeerX509Certificate()?.fingerprint256;
      if (shown?.toUpperCase() !== fingerprint.toUpperCase()) {
        socket.destroy();
        reject(
          new CertificateMismatchError(
            `the receiver at ${host}:${port} shows certificate ${shown ?? 'none'}, not the pinned ${fingerprint}: nothing was sent`,
          ),
        );
      } else resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** An HTTPS request over a pinned connection (one connection per request). */
export async function pinnedRequest(
  url: URL,
  fingerprint: string,
  options: RequestOptions,
): Promise<ClientRequest> {
  const socket = await pinnedConnection(url, fingerprint);
  return https.request(url, { ...options, createConnection: () => socket });
}
