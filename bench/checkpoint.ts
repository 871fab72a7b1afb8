// `npm run bench -- checkpoint [--sizes 50,500] [--rounds 2] [--saves 2] [--slack 4]`: the async checkpoint writer against MinIO,
// each figure next to its baseline from the same run:
//  1. step-time overhead of saving every N steps in a loop doing real work (matrix products) vs the same
//     loop without saves, rounds interleaved so both see the same machine load;
//  2. how long the loop is blocked per save (snapshot copy + save()) vs the save's full background duration;
//  3. upload throughput of a save (digest + multipart with per-part checksums) vs raw PutObject of the same bytes;
//  4. hash-wasm digest throughput (SHA-256, BLAKE3) vs node:crypto SHA-256, which checkpoints now use for
//     sha256 because it is the faster of the two.
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { CheckpointWriter, openStore, type CheckpointStore, type HashAlgorithm, type Snapshot } from '../lib/checkpoint/index.js';
import { createDigest } from '../lib/checkpoint/digest.js';
import { createBLAKE3, createSHA256 } from 'hash-wasm';
import { startMinio, type MinioServer } from '../test/env/minio.js';
import { figure, median, type Benchmark, type Figure } from './results.js';

const MB = 1e6;
const SHARD_BYTES = 64 << 20;
const MATRIX = 160;

const bench: Benchmark = async (argv) => {
  const { values } = parseArgs({ args: argv, options: {
      sizes: { type: 'string', default: '50,500' },
      rounds: { type: 'string', default: '2' },
      /** Saves per timed loop. */
      saves: { type: 'string', default: '2' },
      /** Steps between saves, as a multiple of one save's measured duration. */
      slack: { type: 'string', default: '4' },
    },
  });
  // A log line per commit would be printed from the timed loop's thread.
  process.env.CAPTIONRUN_LOG_LEVEL ??= 'warn';
  const sizes = values.sizes.split(',').map(Number);
  const loop = { rounds: Number(values.rounds), saves: Number(values.saves), slack: Number(values.slack) };
  const figures: Figure[] = [...(await digestThroughput())];
  const minio = await startMinio();
  try {
    await minio.createBucket('bench');
    // In production the store is another machine; here MinIO shares our 2 cores, so it runs at the same
    // background priority as the writer thread instead of competing with the training loop as an equal.
    setPriority(minio.pid, 10);
    for (const mb of sizes) figures.push(...(await benchSize(minio, mb, loop)));
  } finally {
    await minio.stop();
  }
  return figures;
};
export default bench;

async function benchSize(minio: MinioServer, mb: number, { rounds, saves, slack }: { rounds: number; saves: number; slack: number }): Promise<Figure[]> {
  const state = makeState(mb * MB);
  const s3 = { endpoint: minio.endpoint, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey };
  const label = `${mb} MB state`;
  const figures: Figure[] = [];

  // Throughput: saves through the writer (its thread at normal priority, like the baseline's) vs raw
  // PutObject of the same shards from this thread, interleaved round by round.
  const client = minio.client();
  let saveSeconds = 0;
  for (const hash of ['sha256', 'blake3'] as const) {
    const store = openStore(`s3://bench/ns/put-${mb}mb`, { s3 });
    const writer = await warmWriter(store, new Registry(), 0, hash);
    const ours: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const snap = snapshot(1, state);
      let t = performance.now();
      const res = await writer.save(snap);
      if (res.accepted) await res.committed;
      ours.push(mb / ((performance.now() - t) / 1000));
      t = performance.now();
      for (const [i, shard] of state.entries()) {
        await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `raw/run-${mb}mb/shard-${i}.bin`, Body: new Uint8Array(shard.buffer) }));
      }
      raw.push(mb / ((performance.now() - t) / 1000));
    }
    await writer.close();
    await store.close();
    if (hash === 'sha256') saveSeconds = mb / median(ours);
    figures.push(figure(`${label}: checkpoint upload throughput, ${hash} (baseline: raw PutObject, same bytes, same MinIO)`, median(ours), 'MB/s', median(raw), '>= 90 %'));
  }
  client.destroy();

  // Overhead: the same loop with and without a save every N steps, N chosen so that each save has `slack`
  // times its measured duration to finish in the background; rounds alternate so both see the same load.
  const registry = new Registry();
  const store = openStore(`s3://bench/ns/loop-${mb}mb`, { s3 });
  const writer = await warmWriter(store, registry, undefined, 'sha256');
  const stepMs = runLoop(20, state).wallMs / 20;
  const every = Math.max(10, Math.ceil((slack * saveSeconds * 1000) / stepMs));
  const steps = every * saves;
  const plain: LoopTimes[] = [];
  const saving: LoopTimes[] = [];
  const blocked: number[] = [];
  const copies: number[] = [];
  let skipped = 0;
  for (let r = 0; r < rounds; r++) {
    plain.push(runLoop(steps, state));
    saving.push(
      await runLoopAsync(steps, state, every, async (i) => {
        const c = performance.now();
        const snap = snapshot(i, state);
        const s = performance.now();
        const res = await writer.save(snap);
        blocked.push(performance.now() - s);
        copies.push(s - c);
        if (!res.accepted) skipped++;
      }),
    );
    await writer.flush();
  }
  await writer.close();
  await store.close();
  const durations = await registry.getSingleMetric('captionrun_checkpoint_save_duration_seconds')?.get();
  const series = (suffix: string): number => durations?.values.find((v) => (v as { metricName?: string }).metricName?.endsWith(suffix))?.value ?? 0;
  const saveMs = (series('_sum') / Math.max(1, series('_count'))) * 1000;
  const wall = { plain: median(plain.map((x) => x.wallMs)), saving: median(saving.map((x) => x.wallMs)) };
  const cpu = { plain: median(plain.map((x) => x.cpuMs)), saving: median(saving.map((x) => x.cpuMs)) };
  console.error(
    `${label}: step ${stepMs.toFixed(1)} ms, save every ${every} steps, ${steps} steps per round, ${skipped} saves skipped; ` +
      `wall ms plain ${plain.map((x) => Math.round(x.wallMs)).join('/')} saving ${saving.map((x) => Math.round(x.wallMs)).join('/')}; ` +
      `loop-thread cpu ms plain ${plain.map((x) => Math.round(x.cpuMs)).join('/')} saving ${saving.map((x) => Math.round(x.cpuMs)).join('/')}`,
  );
  figures.push(
    figure(`${label}: step-time overhead, wall clock, save every ${every} steps`, ((wall.saving - wall.plain) / wall.plain) * 100, '%', null, '<= 1 %'),
    figure(`${label}: loop wall time per step with saves (baseline: without)`, wall.saving / steps, 'ms', wall.plain / steps, '<= 1.01 x'),
    figure(`${label}: loop-thread CPU per step with saves (baseline: without)`, cpu.saving / steps, 'ms', cpu.plain / steps, '<= 1.01 x'),
    figure(`${label}: loop blocked in save() per save (baseline: full background save)`, median(blocked), 'ms', saveMs, 'small'),
    figure(`${label}: trainer's snapshot copy to host buffers per save (baseline: full background save)`, median(copies), 'ms', saveMs, 'small'),
    figure(`${label}: saves skipped as busy`, skipped, 'saves', null, '0'),
  );
  return figures;
}

async function warmWriter(store: CheckpointStore, registry: Registry, workerNice: number | undefined, hashAlgorithm: HashAlgorithm): Promise<CheckpointWriter> {
  const writer = new CheckpointWriter({ store, registry, whenBusy: 'skip', workerNice, hashAlgorithm });
  // Start the worker thread (and compile it, under tsx) before anything is timed.
  const warm = await writer.save({ step: 0, epoch: 0, files: [], state: {} });
  if (warm.accepted) await warm.committed;
  return writer;
}

interface LoopTimes {
  wallMs: number;
  /** CPU time of this (the loop's) thread only, from /proc: what the loop itself spent, contention aside. */
  cpuMs: number;
}

function threadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function runLoop(steps: number, state: Float32Array[]): LoopTimes {
  const m = new Float32Array(MATRIX * MATRIX).fill(1);
  const [t, c] = [performance.now(), threadCpuMs()];
  for (let i = 0; i < steps; i++) step(m, state, i);
  return { wallMs: performance.now() - t, cpuMs: threadCpuMs() - c };
}

async function runLoopAsync(steps: number, state: Float32Array[], every: number, save: (i: number) => Promise<void>): Promise<LoopTimes> {
  const m = new Float32Array(MATRIX * MATRIX).fill(1);
  const [t, c] = [performance.now(), threadCpuMs()];
  for (let i = 0; i < steps; i++) {
    step(m, state, i);
    if (i % every === Math.floor(every / 4)) await save(i);
  }
  return { wallMs: performance.now() - t, cpuMs: threadCpuMs() - c };
}

async function digestThroughput(): Promise<Figure[]> {
  const data = new Uint8Array(64 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const chunk = 1 << 20;
  const run = (update: (c: Uint8Array) => void, finish: () => void): number => {
    const t = performance.now();
    for (let off = 0; off < data.length; off += chunk) update(data.subarray(off, off + chunk));
    finish();
    return data.length / MB / ((performance.now() - t) / 1000);
  };
  const best = async (make: () => Promise<{ update(c: Uint8Array): void; finish(): void }>): Promise<number> => {
    let top = 0;
    for (let i = 0; i < 3; i++) {
      const h = await make();
      top = Math.max(top, run(h.update, h.finish));
    }
    return top;
  };
  const wasm = (algo: 'sha256' | 'blake3') => async () => {
    const h = algo === 'sha256' ? await createSHA256() : await createBLAKE3(256);
    return { update: (c: Uint8Array) => void h.update(c), finish: () => void h.digest('hex') };
  };
  const ours = async () => {
    const d = await createDigest('sha256');
    return { update: (c: Uint8Array) => d.update(c), finish: () => void d.hex() };
  };
  const nodeSha = await best(ours);
  return [
    figure('hash-wasm SHA-256 throughput (baseline: node:crypto SHA-256, what checkpoints use for sha256)', await best(wasm('sha256')), 'MB/s', nodeSha, 'informational'),
    figure('hash-wasm BLAKE3 throughput, what checkpoints use for blake3 (baseline: node:crypto SHA-256)', await best(wasm('blake3')), 'MB/s', nodeSha, 'informational'),
  ];
}

/** Model state as 64 MiB float shards (each its own ArrayBuffer, as tensors copied to host would be). */
function makeState(bytes: number): Float32Array[] {
  const shards: Float32Array[] = [];
  for (let left = bytes; left > 0; left -= SHARD_BYTES) {
    const a = new Float32Array(Math.min(SHARD_BYTES, left) / 4);
    for (let i = 0; i < a.length; i += 1024) a[i] = Math.random();
    shards.push(a);
  }
  return shards;
}

/** What the trainer pays: copying its state into fresh host buffers that the writer then owns. */
function snapshot(stepNo: number, state: Float32Array[]): Snapshot {
  return {
    step: stepNo,
    epoch: 0,
    files: state.map((s, i) => ({ name: `shard-${i}.bin`, data: new Uint8Array(s.slice().buffer) })),
    state: { step: stepNo },
    metrics: { loss: 1 / (stepNo + 1) },
  };
}

/** One training step's worth of CPU work: a dense matrix product, and a state update. */
function step(m: Float32Array, state: Float32Array[], i: number): void {
  const n = MATRIX;
  const out = new Float32Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < n; k++) {
      const a = m[r * n + k] ?? 0;
      for (let c = 0; c < n; c++) out[r * n + c] = (out[r * n + c] ?? 0) + a * (m[k * n + c] ?? 0);
    }
  }
  m[i % m.length] = (out[i % out.length] ?? 0) * 1e-9 + 1;
  const s = state[i % state.length];
  if (s) s[(i * 4099) % s.length] = i;
}

