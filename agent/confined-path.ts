import { isAbsolute, relative, resolve } from 'node:path';
import { permanent } from './task-failure.ts';

const plainName = (name: unknown) =>
  typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !/[/\0]/.test(name);

const refused = (root: string, names: unknown[]) =>
  permanent(
    `refused path: ${names.map((n) => JSON.stringify(n)).join(', ')} must be plain names under ${root}`,
    'PathEscapesDataRoot',
  );

/**
 * `root` joined with names, each one plain path component. Ids and service or volume names reach the
 * agent from the control plane (a task's input, the environment spec), and the agent acts as root on
 * a server whose owner is not the control plane: no such value may lead out of the agent's data
 * root, whatever the API checked (a restore discarded for environment `../../..` would remove the
 * folder that names). A refused path is a permanent failure: no retry would make it acceptable.
 */
export function confined(root: string, ...names: string[]): string {
  if (!names.every(plainName)) throw refused(root, names);
  const path = resolve(root, ...names);
  // Belt and braces: plain names cannot climb out, but the resolved path is what gets touched.
  const rel = relative(resolve(root), path);
  if (rel === '' || rel === '..' || rel.startsWith('../') || isAbsolute(rel)) throw refused(root, names);
  return path;
}
