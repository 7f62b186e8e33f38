import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * The receiver's certificate: the one given, or a self-signed one made at first start (openssl,
 * P-256, ten years) and kept in the data directory. The control plane pins its SHA-256 fingerprint,
 * so no CA is needed; a CA-issued certificate works the same.
 */
export async function receiverCertificate(
  dataDir: string,
  given?: { certFile: string; keyFile: string },
): Promise<{ cert: string; key: string; fingerprint: string }> {
  let certFile = given?.certFile;
  let keyFile = given?.keyFile;
  if (!certFile || !keyFile) {
    const dir = join(dataDir, 'tls');
    certFile = join(dir, 'cert.pem');
    keyFile = join(dir, 'key.pem');
    if (!(await readFile(certFile).catch(() => undefined))) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await promisify(execFile)('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        '/CN=strackt-receiver',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ]);
    }
  }
  const cert = await readFile(certFile, 'utf8');
  return {
    cert,
    key: await readFile(keyFile, 'utf8'),
    fingerprint: new X509Certificate(cert).fingerprint256,
  };
}
