// The tar-reading thread of writeArchive (archive-writer.ts): runs GNU tar and gathers its output
// into shared 1 MiB buffers, which the main thread parses and compresses and the hashing thread
// hashes. Its own thread so that tar never waits on the main thread: read there, tar stalled each
// time the main thread blocked handing zstd's workers their next job (tar's pipe holds only ~200
// KiB), then the main thread waited for tar: measured 1.2-1.5 s of waiting for tar per GB, of a
// 3.5 s run. Plain JavaScript for the reason given in unpack-writer.js.
//
// workerData: { slots, args }. In: { t: 'free', slot } a buffer to fill again, { t: 'kill' }.
// Out: { t: 'data', slot, length }, { t: 'end' } after the last of them, { t: 'exit', code, stderr }
// once tar has exited and closed its output, { t: 'reaped' } once it has exited (also when killed),
// { t: 'error', message } if tar could not be started.
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { parentPort, workerData } from 'node:worker_threads';

const port = parentPort;
const slots = workerData.slots.map((sab) => Buffer.from(sab));
const free = slots.map((_, i) => i);
let slot = -1;
let fill = 0;
let stderr = '';

const tar = spawn('tar', workerData.args, { stdio: ['ignore', 'pipe', 'pipe'] });
tar.on('error', (err) => port.postMessage({ t: 'error', message: `could not run tar: ${err.message}` }));
tar.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-4000)));
tar.on('close', (code) => port.postMessage({ t: 'exit', code, stderr }));
tar.on('exit', () => port.postMessage({ t: 'reaped' }));

// Tar output not yet in a buffer: at most what arrived while every buffer was downstream.
const queue = [];
let queued = 0;
let outputEnded = false;
let endSent = false;

function send() {
  port.postMessage({ t: 'data', slot, length: fill });
  slot = -1;
}

function drain() {
  while (queue.length) {
    if (slot < 0) {
      if (free.length === 0) return;
      slot = free.pop();
      fill = 0;
    }
    const data = queue[0];
    const n = data.copy(slots[slot], fill, queued);
    fill += n;
    queued += n;
    if (queued === data.length) {
      queue.shift();
      queued = 0;
    }
    if (fill === slots[slot].length) send();
  }
  if (outputEnded && !endSent) {
    if (slot >= 0 && fill > 0) send();
    endSent = true;
    port.postMessage({ t: 'end' });
  }
}

tar.stdout.on('data', (data) => {
  queue.push(data);
  drain();
  // Every buffer is with the main thread: stop reading, so tar waits.
  if (queue.length) tar.stdout.pause();
});
tar.stdout.on('end', () => {
  outputEnded = true;
  drain();
});

port.on('message', (m) => {
  if (m.t === 'kill') {
    tar.kill('SIGKILL');
    return;
  }
  free.push(m.slot);
  drain();
  if (!queue.length && tar.stdout.isPaused()) tar.stdout.resume();
});
