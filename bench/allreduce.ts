// `npm run bench -- allreduce [--sizes 4,16,64] [--ranks 2,4] [--iterations 5]`: ring all-reduce bus
// bandwidth between separate processes on loopback, by the nccl-tests definition (busbw = size / time x
// 2(n-1)/n: the bytes each link carries), against single-stream loopback TCP measured in the same run (one
// process writes 1 GiB through one socket, this one reads it into a preallocated buffer). Every process has
// its own thread, so on a 2-core machine 4 ranks share 2 cores.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../lib/package-info.js';
import { figure, median, type Figure } from './results.js';

const RANK = join(packageRoot(), 'bench/support/allreduce-rank.ts');

function child(args: string[]): { done: Promise<string> } {
  const p = spawn(process.execPath, ['--import', 'tsx', RANK, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return { done: new Promise((resolve, reject) => p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench rank exited ${code}`))))) };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Bytes per second of one socket from another process into a preallocated buffer. */
async function loopbackBaseline(total: number): Promise<number> {
  const target = Buffer.allocUnsafe(64 << 20);
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const measured = new Promise<number>((resolve) => {
    server.once('connection', (socket) => {
      let received = 0;
      let started = 0;
      socket.on('data', (chunk: Buffer) => {
        if (started === 0) started = performance.now();
        let at = 0;
        while (at < chunk.byteLength) {
          const offset = received % target.byteLength;
          const n = Math.min(chunk.byteLength - at, target.byteLength - offset);
          chunk.copy(target, offset, at, at + n);
          at += n;
          received += n;
        }
      });
      socket.once('end', () => resolve(received / ((performance.now() - started) / 1000)));
    });
  });
  const sender = child(['send', String(port), String(total)]);
  const rate = await measured;
  await sender.done;
  server.close();
  return rate;
}

export default async function allreduce(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({ args, options: { sizes: { type: 'string', default: '4,16,64' }, ranks: { type: 'string', default: '2,4' }, iterations: { type: 'string', default: '5' } } });
  const sizes = values.sizes.split(',').map((mb) => Number(mb) * 2 ** 20);
  const rates: number[] = [];
  // Before and after the gangs, so a machine that gets busier shows in the baseline too.
  rates.push(await loopbackBaseline(2 ** 30));
  const byRanks = new Map<number, { bytes: number; seconds: number[] }[]>();
  for (const n of values.ranks.split(',').map(Number)) {
    const port = await freePort();
    const ranks = Array.from({ length: n }, (_, r) => child(['rank', String(r), String(n), String(port), values.iterations, sizes.join(',')]));
    const outputs = await Promise.all(ranks.map((r) => r.done));
    byRanks.set(n, JSON.parse(outputs[0] as string) as { bytes: number; seconds: number[] }[]);
  }
  rates.push(await loopbackBaseline(2 ** 30));
  const loopback = median(rates) / 1e9;
  process.stderr.write(`allreduce bench: single-stream loopback ${rates.map((r) => (r / 1e9).toFixed(2)).join(', ')} GB/s\n`);
  const figures: Figure[] = [];
  for (const [n, results] of byRanks) {
    for (const r of results) {
      const busbw = (r.bytes / median(r.seconds)) * ((2 * (n - 1)) / n) / 1e9;
      const target = n === 2 && r.bytes >= 16 * 2 ** 20 ? '>= 0.5 of loopback' : 'none (reported)';
      figures.push(figure(`bus bandwidth, ${n} ranks, ${r.bytes / 2 ** 20} MB`, busbw, 'GB/s', loopback, target));
    }
  }
  return figures;
}
