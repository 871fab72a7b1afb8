// A child process of bench/allreduce.ts (not a benchmark of its own): one rank of a loopback gang, or one
// end of the single-stream TCP baseline. The parent forks it with `--import tsx` and talks over IPC:
//   rank:   argv = ['rank', RANK, WORLD, JOBS_JSON]; for each job it joins a fresh group on job.port, runs
//           `warmup` + `iters` allReduceSum of job.bytes (each after a barrier, so all ranks start together)
//           and sends back {job, seconds[]}.
//   stream: argv = ['writer', BYTES, ROUNDS] listens and reports its port; ['reader', PORT, BYTES, ROUNDS]
//           connects, asks for BYTES per round through the one socket, reads them into one preallocated
//           buffer (net's onread, as the ring does) and reports each round's seconds.
//   duplex: argv = ['duplex', BYTES, ROUNDS]; two of them send and receive BYTES at once each round (the
//           ring's n = 2 traffic without the arithmetic and checksums).
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../lib/telemetry/logger.js';
import { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import type { Benchmark } from '../results.js';

export interface RankJob {
  id: string;
  port: number;
  bytes: number;
  warmup: number;
  iters: number;
  segmentBytes: number;
  checksums: boolean;
  compression: 'none' | 'float16';
}

export interface RankResult {
  id: string;
  rank: number;
  seconds: number[];
  /** CPU seconds (user + system) this rank used during the timed all-reduces. */
  cpuSeconds: number;
}

/** Messages from the parent, in order (one may arrive before anyone waits for it). */
const inbox: unknown[] = [];
const inboxWaiters: ((m: unknown) => void)[] = [];
process.on('message', (m: unknown) => {
  const waiter = inboxWaiters.shift();
  if (waiter) waiter(m);
  else inbox.push(m);
});
const receive = <T>(): Promise<T> => new Promise((resolve) => (inbox.length ? resolve(inbox.shift() as T) : inboxWaiters.push(resolve as (m: unknown) => void)));

const send = (m: unknown): Promise<void> => new Promise((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()));

async function runRank(rank: number, worldSize: number, jobs: RankJob[]): Promise<void> {
  const log = createLogger({ bench: 'allreduce', rank });
  for (const job of jobs) {
    const group = await ProcessGroup.join({
      rank,
      worldSize,
      masterAddr: '127.0.0.1',
      masterPort: job.port,
      bindAddress: '127.0.0.1',
      runId: 'bench-allreduce',
      attempt: 0,
      rendezvousTimeoutMs: 60_000,
      collectiveTimeoutMs: () => 120_000,
      compression: job.compression,
      segmentBytes: job.segmentBytes,
      checksums: job.checksums,
      log,
    });
    const buf = new Float32Array(job.bytes / 4);
    for (let i = 0; i < buf.length; i++) buf[i] = ((i * 7 + rank) % 13) - 6;
    const seconds: number[] = [];
    let cpuSeconds = 0;
    for (let it = 0; it < job.warmup + job.iters; it++) {
      await group.barrier();
      const cpu = process.cpuUsage();
      const stats = await group.allReduceSum(buf);
      const used = process.cpuUsage(cpu);
      if (it >= job.warmup) {
        seconds.push(stats.seconds);
        cpuSeconds += (used.user + used.system) / 1e6;
      }
    }
    await group.barrier();
    await group.close();
    await send({ id: job.id, rank, seconds, cpuSeconds } satisfies RankResult);
  }
}

async function runWriter(bytes: number, rounds: number): Promise<void> {
  const src = Buffer.alloc(bytes, 1);
  const server = createServer({ noDelay: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await send({ port: (server.address() as { port: number }).port });
  const socket = await new Promise<Socket>((r) => server.once('connection', r));
  server.close();
  // The reader asks for each round with one byte, so rounds never overlap.
  let round = 0;
  socket.on('data', (d: Buffer) => {
    for (let i = 0; i < d.length && round < rounds; i++, round++) socket.write(src);
  });
  await new Promise((r) => socket.once('close', r));
}

/** The connecting side, like the ring's receiving side: reads into one preallocated buffer via onread. */
async function runReader(port: number, bytes: number, rounds: number): Promise<void> {
  const dest = new Uint8Array(Math.min(bytes, 64 << 20));
  let got = 0;
  let wanted = 0;
  let roundDone: (() => void) | undefined;
  const socket = connect({
    host: '127.0.0.1',
    port,
    noDelay: true,
    onread: {
      buffer: () => dest.subarray(got % dest.length),
      callback: (n: number): boolean => {
        got += n;
        if (got >= wanted && roundDone) {
          const done = roundDone;
          roundDone = undefined;
          done();
        }
        return true;
      },
    },
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const seconds: number[] = [];
  for (let r = 0; r < rounds; r++) {
    wanted += bytes;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      roundDone = resolve;
      socket.write('g');
    });
    seconds.push((performance.now() - t0) / 1000);
  }
  socket.end();
  await send({ seconds });
}

/**
 * The ring's traffic pattern at n = 2 without any computation: this process sends BYTES per round to its
 * peer on one connection while it receives BYTES on another (read into one preallocated buffer), as both
 * ranks of a two-rank ring do. The parent gives it the peer's port and then says when each round starts.
 */
async function runDuplex(bytes: number, rounds: number): Promise<void> {
  const src = Buffer.alloc(bytes, 2);
  const dest = new Uint8Array(Math.min(bytes, 64 << 20));
  const server = createServer({ noDelay: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  await send({ port: (server.address() as { port: number }).port });
  const peerPort = (await receive<{ port: number }>()).port;
  let got = 0;
  let wanted = 0;
  let received: (() => void) | undefined;
  const recv = connect({
    host: '127.0.0.1',
    port: peerPort,
    noDelay: true,
    onread: {
      buffer: () => dest.subarray(got % dest.length),
      callback: (n: number): boolean => {
        got += n;
        if (got >= wanted && received) {
          const done = received;
          received = undefined;
          done();
        }
        return true;
      },
    },
  });
  const out = await accepted;
  server.close();
  await send({ ready: true });
  const seconds: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await receive();
    wanted += bytes;
    const t0 = performance.now();
    await Promise.all([
      new Promise<void>((resolve) => (got >= wanted ? resolve() : (received = resolve))),
      new Promise<void>((resolve) => out.write(src, () => resolve())),
    ]);
    seconds.push((performance.now() - t0) / 1000);
    await send({ round: r });
  }
  recv.destroy();
  out.destroy();
  await send({ seconds });
}

// Not a benchmark: `npm run bench -- allreduce-rank` explains that.
const notABenchmark: Benchmark = async () => {
  throw new Error('bench/allreduce-rank.ts is a helper process of bench/allreduce.ts; run `npm run bench -- allreduce`');
};
export default notABenchmark;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'rank') await runRank(Number(rest[0]), Number(rest[1]), JSON.parse(rest[2] ?? '[]') as RankJob[]);
  else if (mode === 'writer') await runWriter(Number(rest[0]), Number(rest[1]));
  else if (mode === 'duplex') await runDuplex(Number(rest[0]), Number(rest[1]));
  else if (mode === 'reader') await runReader(Number(rest[0]), Number(rest[1]), Number(rest[2]));
  else throw new Error(`usage: allreduce-rank.ts rank|writer|reader|duplex ...`);
  process.disconnect?.();
}
