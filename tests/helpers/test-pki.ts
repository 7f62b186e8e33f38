import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  /** PEM file paths. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here, for the "wrong CA" cases. */
  otherCa: string;
}

/**
 * A throw-away CA (made with openssl, as an operator would) with a server certificate for
 * `serverName` and 127.0.0.1, and a client certificate: the files a TLS Temporal deployment uses.
 */
export function makeTestPki(
  serverName = 'temporal.test',
  dir = mkdtempSync(join(tmpdir(), 'pki-')),
): TestPki {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const makeCa = (name: string) =>
    openssl(
      ...['req', '-x509', ...ecKey, '-days', '2', '-subj', `/CN=${name}`],
      ...['-keyout', `${name}.key`, '-out', `${name}.pem`],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    );
  const issue = (name: string, extensions: string) => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl('req', ...ecKey, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl(
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
      ...['-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    );
  };
  makeCa('ca');
  makeCa('other-ca');
  issue('server', `subjectAltName=DNS:${serverName},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n`);
  issue('client', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    otherCa: join(dir, 'other-ca.pem'),
  };
}
