import { write, writeSync } from 'node:fs';

/** Lines queued beyond this while stdout's reader is stalled are dropped, and counted in a later line. */
const maxQueuedBytes = 8 * 1024 * 1024;
/** How long an exiting process waits for a stalled reader to take its last lines. */
const exitFlushMs = 10_000;
/** At most this much in one write, so little is in doubt if the process exits during one. */
const writeBytes = 64 * 1024;

let shared: { write(line: string): void } | undefined;

/**
 * stdout for log lines, written in the background (libuv's threads, as pino does by default): a
 * reader that stalls (a pipe nobody drains, a slow journal) must not stop the program, whose work
 * goes on and whose lines wait in memory, up to a bound. What is still queued when the process exits
 * is written then, synchronously. A closed stdout (EPIPE) drops lines: losing a log line must not fail
 * the work being logged. One queue per process, which every logger in it shares.
 */
export function stdoutLines(): { write(line: string): void } {
  return (shared ??= queuedStdout());
}

function queuedStdout(): { write(line: string): void } {
  let queue: string[] = [];
  let queuedBytes = 0;
  let dropped = 0;
  // Taken from the queue and not written yet; its first `inFlight` bytes are being written now.
  let rest: Buffer = Buffer.alloc(0);
  let inFlight = 0;
  let pumping = false;

  const take = (): Buffer => {
    if (dropped > 0)
      queue.push(
        `${JSON.stringify({ level: 'warn', msg: `${dropped} log lines dropped: stdout was not read` })}\n`,
      );
    const buffer = Buffer.from(queue.join(''));
    queue = [];
    queuedBytes = 0;
    dropped = 0;
    return buffer;
  };

  const pump = (): void => {
    if (rest.length === 0 && queue.length === 0) return void (pumping = false);
    if (rest.length === 0) rest = take();
    pumping = true;
    inFlight = Math.min(rest.length, writeBytes);
    write(1, rest, 0, inFlight, null, (err, written) => {
      inFlight = 0;
      if (err?.code === 'EAGAIN') return void setTimeout(pump, 10);
      rest = err ? Buffer.alloc(0) : rest.subarray(written);
      pump();
    });
  };

  // fd 1 is non-blocking once Node's own stdout stream has been made (a pipe): wait for the reader,
  // but not for ever: a program that exits must exit. A write still in flight may be lost, not doubled.
  process.once('exit', () => {
    let buffer = Buffer.concat([rest.subarray(inFlight), take()]);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (const deadline = Date.now() + exitFlushMs; buffer.length > 0 && Date.now() < deadline;) {
      try {
        buffer = buffer.subarray(writeSync(1, buffer));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        Atomics.wait(pause, 0, 0, 5);
      }
    }
  });

  return {
    write(line) {
      if (queuedBytes > maxQueuedBytes) {
        dropped += 1;
        return;
      }
      queue.push(line);
      queuedBytes += line.length;
      if (!pumping) pump();
    },
  };
}
