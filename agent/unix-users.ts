import { readFile } from 'node:fs/promises';

export interface UnixUser {
  uid: number;
  gid: number;
  home: string;
}

/** Node has no getpwnam: read the passwd database, which is what getpwnam reads on these hosts. */
export async function lookupUser(name: string): Promise<UnixUser | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid, , home] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) {
      return { uid: Number(uid), gid: Number(gid), home: home ?? '/' };
    }
  }
  return undefined;
}
