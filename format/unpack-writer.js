// The file-system thread of unpackArchive (archive-reader.ts): carries out, in archive order, what
// the main thread decided after checking each entry. Plain JavaScript so that it starts in ~30 ms:
// a TypeScript worker must load tsx first, measured at 150-250 ms and 30 MiB per thread (on Node 20,
// whose workers did not inherit the loader; Node 26's do, but the built agent has no tsx at all).
//
// workerData: { slots, asRoot }, slots being the shared tar buffers.
// In, from the main thread: { slot, ops, copies } where ops are, in order,
//   ['mkdir', entry, path]                               mkdir -p, mode 700
//   ['unlink', entry, path]                              remove what an interrupted unpack left there
//   ['symlink', entry, path, target, uid, gid, mtime]
//   ['link', entry, path, target]                        hard link
//   ['open', entry, path]                                a new file, refusing anything already there
//   ['write', start, end]                                slot bytes [start, end) to it (start < 0: copies[-start - 1])
//   ['close', entry, uid, gid, mode, mtime]
// or { t: 'sync', id, last } (last: close any file still open, the unpack is over).
// Out, to the main thread: { t: 'done', slot } once through with a slot (also after a failure: later
// ops are skipped), { t: 'error', entry, error } on the first failure, { t: 'synced', id }.
import { Buffer } from 'node:buffer';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { asRoot } = workerData;
const slots = workerData.slots.map((sab) => Buffer.from(sab));
const port = parentPort;
// O_EXCL and O_NOFOLLOW: never write through something that already stands at this path.
const createFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
let fd = -1;
let entry = -1;
let failed = false;

function closeOpen() {
  if (fd >= 0) closeSync(fd);
  fd = -1;
}

// Synchronous calls on purpose: page-cache writes take microseconds, and this thread has nothing
// else to do meanwhile.
function run(view, ops, copies) {
  for (const op of ops) {
    switch (op[0]) {
      case 'write': {
        const data = op[1] < 0 ? copies[-op[1] - 1] : view.subarray(op[1], op[2]);
        for (let done = 0; done < data.length;) done += writeSync(fd, data, done);
        break;
      }
      case 'unlink':
        entry = op[1];
        try {
          unlinkSync(op[2]);
        } catch (err) {
          if (err.code !== 'ENOENT') throw err;
        }
        break;
      case 'mkdir':
        entry = op[1];
        mkdirSync(op[2], { recursive: true, mode: 0o700 });
        break;
      case 'symlink':
        entry = op[1];
        symlinkSync(op[3], op[2]);
        if (asRoot) lchownSync(op[2], op[4], op[5]);
        lutimesSync(op[2], op[6], op[6]);
        break;
      case 'link':
        entry = op[1];
        linkSync(op[3], op[2]);
        break;
      case 'open':
        entry = op[1];
        fd = openSync(op[2], createFlags, 0o600);
        break;
      case 'close':
        try {
          if (asRoot) fchownSync(fd, op[2], op[3]);
          fchmodSync(fd, op[4]);
          futimesSync(fd, op[5], op[5]);
        } finally {
          closeOpen();
        }
        break;
    }
  }
}

port.on('message', (m) => {
  if (m.t === 'sync') {
    if (m.last) {
      try {
        closeOpen();
      } catch {
        // the unpack is being abandoned; the staging folder is removed next
      }
    }
    port.postMessage({ t: 'synced', id: m.id });
    return;
  }
  if (!failed) {
    try {
      run(slots[m.slot], m.ops, m.copies);
    } catch (err) {
      failed = true;
      try {
        closeOpen();
      } catch {
        // the first error is the one to report
      }
      const { name, message, code, errno, syscall, path } = err;
      port.postMessage({ t: 'error', entry, error: { name, message, code, errno, syscall, path } });
    }
  }
  port.postMessage({ t: 'done', slot: m.slot });
});
