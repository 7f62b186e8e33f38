// A private OpenSSH server on loopback for the restic-over-SFTP baseline: its own host key, one client
// key, nothing of the machine's sshd configuration.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { userInfo } from 'node:os';

export interface SftpServer {
  /** restic's -o sftp.command for this server. */
  sftpCommand: string;
  repository: (path: string) => string;
  stop: () => void;
}

export async function startSftpServer(dir: string, port: number): Promise<SftpServer> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync('/run/sshd', { recursive: true }); // privilege separation directory Debian's sshd wants
  const key = (name: string) =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)]);
  key('host');
  key('client');
  copyFileSync(join(dir, 'client.pub'), join(dir, 'authorized_keys'));
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100 || sshd.exitCode !== null) throw new Error('sshd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const user = userInfo().username;
  return {
    sftpCommand: `ssh -p ${port} -i ${join(dir, 'client')} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR ${user}@127.0.0.1 -s sftp`,
    repository: (path) => `sftp:${user}@127.0.0.1:${path}`,
    stop: () => sshd.kill(),
  };
}
