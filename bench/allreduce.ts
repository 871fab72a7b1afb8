// `npm run bench -- allreduce [--sizes 4,16,64] [--ranks 2,4] [--iters 7] [--warmup 2] [--segment BYTES]
//  [--sweep 262144,1048576,4194304]`: the ring all-reduce of trainer-image/distributed between separate
// processes on loopback, next to the single-stream TCP throughput of the same machine, measured in the same
// run:
//  1. bus bandwidth by the nccl-tests definition, busbw = size / time x 2(n-1)/n, the median of `iters`
//     timed all-reduces after `warmup` (each starts after a barrier, and an iteration's time is the slowest
//     rank's), for every size and rank count; the baseline is one process writing a large buffer through
//     one socket to another that reads it into a preallocated buffer (as the ring reads); next to it, two
//     processes sending to each other at once, the ring's n = 2 traffic without arithmetic or checksums:
//     with one thread per rank that is the ceiling of any ring on this machine;
//  2. what the CRC-32 frame checksums cost: the same all-reduce with checksums off;
//  3. float16 wire compression at n = 2;
//  4. with --sweep: n = 2, 16 MB at several segment sizes (how DEFAULT_SEGMENT_BYTES was chosen).
// Progress goes to stderr. On a loaded machine (the ranks share its cores with whatever else runs) the
// ratios, measured side by side, are the figures to read.
import { fork, type ChildProcess } from 'node:child_process';
import { freePort } from '../lib/free-port.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_SEGMENT_BYTES } from '../trainer-image/distributed/process-group.js';
import type { RankJob, RankResult } from './support/allreduce-rank.js';
import { figure, median, type Benchmark, type Figure } from './results.js';

const MB = 1 << 20;
const helper = fileURLToPath(new URL('./support/allreduce-rank.ts', import.meta.url));
const say = (line: string): boolean => process.stderr.write(`allreduce bench: ${line}\n`);

const bench: Benchmark = async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '4,16,64' },
      ranks: { type: 'string', default: '2,4' },
      iters: { type: 'string', default: '7' },
      warmup: { type: 'string', default: '2' },
      segment: { type: 'string', default: String(DEFAULT_SEGMENT_BYTES) },
      sweep: { type: 'string', default: '' },
    },
  });
  process.env.CAPTIONRUN_LOG_LEVEL ??= 'warn';
  const sizes = values.sizes.split(',').map(Number);
  const ranks = values.ranks.split(',').map(Number);
  const iters = Number(values.iters);
  const warmup = Number(values.warmup);
  const segmentBytes = Number(values.segment);
  const figures: Figure[] = [];
  const f16Size = sizes.includes(16) ? 16 : (sizes[sizes.length - 1] as number);

  const loopback = await streamBaseline(64 * MB, warmup + iters, warmup);
  say(`single-stream loopback TCP: ${gb(loopback)} GB/s (median of ${iters} rounds of 64 MB)`);
  const duplex = await duplexBaseline(64 * MB, warmup + iters, warmup);
  say(`two processes each sending and receiving at once: ${gb(duplex)} GB/s per direction = ${(duplex / loopback).toFixed(2)} of one stream`);
  figures.push(figure('loopback TCP, both directions at once (the n=2 ring\'s traffic, no arithmetic), per direction', duplex / 1e9, 'GB/s', loopback / 1e9, 'informational: the ceiling of a one-thread-per-rank ring at n=2'));

  const job = (id: string, bytes: number, extra: Partial<RankJob> = {}): Omit<RankJob, 'port'> => ({
    id, bytes, warmup, iters, segmentBytes, checksums: true, compression: 'none', ...extra,
  });
  for (const n of ranks) {
    const jobs = sizes.map((mb) => job(`${mb}`, mb * MB));
    if (n === 2) {
      for (const mb of sizes.filter((s) => s >= 16)) jobs.push(job(`${mb} nocrc`, mb * MB, { checksums: false }));
      jobs.push(job(`${f16Size} f16`, f16Size * MB, { compression: 'float16' }));
      for (const seg of values.sweep ? values.sweep.split(',').map(Number) : []) jobs.push(job(`16 seg${seg}`, 16 * MB, { segmentBytes: seg }));
    }
    const results = await runGang(n, jobs);
    const busbw = (id: string): number => {
      const r = results.get(id) as { bytes: number; seconds: number };
      return (r.bytes / r.seconds) * ((2 * (n - 1)) / n);
    };
    for (const mb of sizes) {
      const value = busbw(`${mb}`);
      say(`n=${n} ${mb} MB: busbw ${gb(value)} GB/s = ${(value / loopback).toFixed(2)} of loopback`);
      figures.push(figure(`all-reduce bus bandwidth, n=${n}, ${mb} MB`, value / 1e9, 'GB/s', loopback / 1e9, n === 2 && mb >= 16 ? '>= 0.5 of loopback' : 'informational'));
    }
    if (n !== 2) continue;
    for (const mb of sizes.filter((s) => s >= 16)) {
      const withCrc = busbw(`${mb}`);
      const without = busbw(`${mb} nocrc`);
      say(`n=2 ${mb} MB without checksums: busbw ${gb(without)} GB/s; CRC-32 costs ${((1 - withCrc / without) * 100).toFixed(0)} % of the bandwidth`);
      figures.push(figure(`all-reduce bus bandwidth with CRC-32 vs without, n=2, ${mb} MB`, withCrc / 1e9, 'GB/s', without / 1e9, 'informational (the cost of checksums)'));
    }
    const f16 = busbw(`${f16Size} f16`);
    say(`n=2 ${f16Size} MB float16: busbw ${gb(f16)} GB/s (in float32 bytes)`);
    figures.push(figure(`all-reduce bus bandwidth float16 wire vs float32, n=2, ${f16Size} MB (float32 bytes)`, f16 / 1e9, 'GB/s', busbw(`${f16Size}`) / 1e9, 'informational'));
    for (const seg of values.sweep ? values.sweep.split(',').map(Number) : []) {
      const v = busbw(`16 seg${seg}`);
      say(`n=2 16 MB segment ${seg} B: busbw ${gb(v)} GB/s`);
      figures.push(figure(`all-reduce bus bandwidth, n=2, 16 MB, segments of ${seg} B`, v / 1e9, 'GB/s', loopback / 1e9, 'informational'));
    }
  }
  return figures;
};
export default bench;

function gb(bytesPerSecond: number): string {
  return (bytesPerSecond / 1e9).toFixed(2);
}

function forkHelper(args: string[]): ChildProcess {
  return fork(helper, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}


function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) =>
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`bench helper exited with ${signal ?? `code ${code}`}`)))),
  );
}

/** Runs the jobs on a gang of n processes; per job, the median over iterations of the slowest rank's time. */
async function runGang(n: number, jobs: Omit<RankJob, 'port'>[]): Promise<Map<string, { bytes: number; seconds: number }>> {
  const withPorts: RankJob[] = [];
  for (const j of jobs) withPorts.push({ ...j, port: await freePort() });
  say(`n=${n}: ${jobs.length} configurations, ${jobs[0]?.warmup} warm-up + ${jobs[0]?.iters} timed all-reduces each`);
  const results = new Map<string, RankResult[]>();
  const children = Array.from({ length: n }, (_, rank) => forkHelper(['rank', String(rank), String(n), JSON.stringify(withPorts)]));
  for (const c of children) {
    c.on('message', (m: RankResult) => {
      const list = results.get(m.id) ?? [];
      list.push(m);
      results.set(m.id, list);
      if (list.length === n) say(`n=${n} ${m.id}: done`);
    });
  }
  await Promise.all(children.map(exited));
  const out = new Map<string, { bytes: number; seconds: number }>();
  for (const j of withPorts) {
    const per = results.get(j.id) ?? [];
    if (per.length !== n) throw new Error(`job ${j.id}: ${per.length} of ${n} ranks reported`);
    const slowest = Array.from({ length: j.iters }, (_, i) => Math.max(...per.map((r) => r.seconds[i] ?? Infinity)));
    out.set(j.id, { bytes: j.bytes, seconds: median(slowest) });
  }
  return out;
}

/** A child's messages in order: one that arrives before anyone waits for it is kept, not lost. */
function inbox(child: ChildProcess): () => Promise<Record<string, unknown>> {
  const queued: Record<string, unknown>[] = [];
  const waiting: ((m: Record<string, unknown>) => void)[] = [];
  child.on('message', (m: Record<string, unknown>) => {
    const w = waiting.shift();
    if (w) w(m);
    else queued.push(m);
  });
  return () => new Promise((resolve) => (queued.length ? resolve(queued.shift() as Record<string, unknown>) : waiting.push(resolve)));
}

/** Two processes sending `bytes` to each other at once (one connection per direction): bytes per second per direction. */
async function duplexBaseline(bytes: number, rounds: number, warmup: number): Promise<number> {
  const pair = [0, 1].map(() => forkHelper(['duplex', String(bytes), String(rounds)]));
  const done = Promise.all(pair.map(exited));
  const [a, b] = pair.map(inbox) as [() => Promise<Record<string, unknown>>, () => Promise<Record<string, unknown>>];
  const [pa, pb] = (await Promise.all([a(), b()])) as { port: number }[];
  pair[0]?.send({ port: pb?.port });
  pair[1]?.send({ port: pa?.port });
  await Promise.all([a(), b()]);
  for (let r = 0; r < rounds; r++) {
    for (const c of pair) c.send({ go: r });
    await Promise.all([a(), b()]);
  }
  const reports = (await Promise.all([a(), b()])) as { seconds: number[] }[];
  await done;
  const slowest = (reports[0]?.seconds ?? []).map((s, i) => Math.max(s, reports[1]?.seconds[i] ?? Infinity));
  return bytes / median(slowest.slice(warmup));
}

/** Single-stream loopback TCP between two processes: bytes per second, median of the timed rounds. */
async function streamBaseline(bytes: number, rounds: number, warmup: number): Promise<number> {
  const writer = forkHelper(['writer', String(bytes), String(rounds)]);
  const writerDone = exited(writer);
  const { port } = (await inbox(writer)()) as { port: number };
  const reader = forkHelper(['reader', String(port), String(bytes), String(rounds)]);
  const readerDone = exited(reader);
  const { seconds } = (await inbox(reader)()) as { seconds: number[] };
  await Promise.all([writerDone, readerDone]);
  return bytes / median(seconds.slice(warmup));
}
