// Seeded random corruptions of committed checkpoints, shared by the filesystem bulk run and the MinIO sample.
// Each trial damages one or two checkpoints through raw store access (as a bad disk, a partial copy or an
// operator's mistake would), then checks that the reader reports each damaged one with a reason and loads
// the newest undamaged one bit for bit. Every trial is undone before the next.
import assert from 'node:assert/strict';
import { CheckpointReader, INVALID_REASONS, MANIFEST_FILE, type CheckpointStore } from '../../lib/checkpoint/index.js';
import { canonicalJson } from '../../lib/checkpoint/manifest.js';
import { digestOf } from '../../lib/checkpoint/digest.js';
import { writeCheckpoint } from '../../lib/checkpoint/save-job.js';
import { CounterRng } from '../../trainer-image/util/rng.js';

export interface RawAccess {
  read(path: string): Promise<Uint8Array>;
  write(path: string, data: Uint8Array): Promise<void>;
  remove(path: string): Promise<void>;
}

export function rng(seed: number): () => number {
  const r = new CounterRng(seed, 0);
  return () => r.uniform();
}

export const STEPS = [10, 20, 30];
const name = (step: number): string => `ckpt-${step.toString().padStart(12, '0')}`;
const SHARDS = ['weights-0.bin', 'weights-1.bin', 'optimizer.bin'];

/** Writes three small checkpoints through the real protocol; returns every file's bytes by path. */
export async function writePristine(store: CheckpointStore, raw: RawAccess, seed: number): Promise<Map<string, Uint8Array>> {
  const random = rng(seed);
  for (const step of STEPS) {
    const files = SHARDS.map((n) => {
      const data = new Uint8Array(1000 + Math.floor(random() * 6000));
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
      return { name: n, data };
    });
    await writeCheckpoint(
      store,
      { step, epoch: step / 10, files, state: { step, rng: [random(), random()] }, metrics: { bleu4: random() }, parent: null, createdAt: new Date().toISOString() },
      { hashAlgorithm: step === 20 ? 'blake3' : 'sha256', producer: { test: '1' } },
    );
  }
  const pristine = new Map<string, Uint8Array>();
  for (const step of STEPS) {
    for (const f of [...SHARDS, 'state.json', MANIFEST_FILE]) pristine.set(`${name(step)}/${f}`, await raw.read(`${name(step)}/${f}`));
  }
  return pristine;
}

interface Damage {
  kind: string;
  damaged: number[];
  /** path -> bytes to restore, or undefined when the file did not exist before. */
  undo: Map<string, Uint8Array>;
}

const KINDS = ['flip-shard', 'flip-manifest', 'flip-burst', 'truncate', 'extend', 'delete', 'swap-file', 'swap-manifest', 'resigned-wrong-step', 'resigned-format'] as const;

async function damage(raw: RawAccess, pristine: Map<string, Uint8Array>, random: () => number): Promise<Damage> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const kind = pick(KINDS);
  const step = pick(STEPS);
  const dir = name(step);
  const allFiles = [...SHARDS, 'state.json', MANIFEST_FILE];
  const undo = new Map<string, Uint8Array>();
  const save = (path: string): Uint8Array => {
    const orig = pristine.get(path);
    assert.ok(orig, path);
    undo.set(path, orig);
    return orig.slice();
  };
  const flip = async (path: string, flips: number): Promise<void> => {
    const bytes = save(path);
    for (let i = 0; i < flips; i++) {
      const at = Math.floor(random() * bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(random() * 8));
    }
    if (Buffer.from(bytes).equals(pristine.get(path) ?? new Uint8Array())) bytes[0] = (bytes[0] ?? 0) ^ 1;
    await raw.write(path, bytes);
  };
  const resign = async (mutate: (m: Record<string, unknown>) => void): Promise<void> => {
    const path = `${dir}/${MANIFEST_FILE}`;
    const m = JSON.parse(new TextDecoder().decode(save(path))) as Record<string, unknown>;
    mutate(m);
    delete m.manifestDigest;
    m.manifestDigest = await digestOf(m.hashAlgorithm as 'sha256', canonicalJson(m));
    await raw.write(path, new TextEncoder().encode(JSON.stringify(m)));
  };
  let damaged = [step];
  switch (kind) {
    case 'flip-shard':
      await flip(`${dir}/${pick([...SHARDS, 'state.json'])}`, 1);
      break;
    case 'flip-manifest':
      await flip(`${dir}/${MANIFEST_FILE}`, 1);
      break;
    case 'flip-burst':
      await flip(`${dir}/${pick(allFiles)}`, 1 + Math.floor(random() * 16));
      break;
    case 'truncate': {
      const path = `${dir}/${pick(allFiles)}`;
      const bytes = save(path);
      await raw.write(path, bytes.subarray(0, Math.floor(random() * bytes.length)));
      break;
    }
    case 'extend': {
      const path = `${dir}/${pick(allFiles)}`;
      const bytes = save(path);
      const extra = new Uint8Array(1 + Math.floor(random() * 64)).map(() => Math.floor(random() * 256));
      await raw.write(path, Buffer.concat([bytes, extra]));
      break;
    }
    case 'delete': {
      const path = `${dir}/${pick(allFiles)}`;
      save(path);
      await raw.remove(path);
      break;
    }
    case 'swap-file':
    case 'swap-manifest': {
      const other = pick(STEPS.filter((s) => s !== step));
      const file = kind === 'swap-manifest' ? MANIFEST_FILE : pick([...SHARDS, 'state.json']);
      const a = save(`${dir}/${file}`);
      const b = save(`${name(other)}/${file}`);
      await raw.write(`${dir}/${file}`, b);
      await raw.write(`${name(other)}/${file}`, a);
      damaged = [step, other];
      break;
    }
    case 'resigned-wrong-step':
      await resign((m) => (m.step = (m.step as number) + 1 + Math.floor(random() * 5)));
      break;
    case 'resigned-format':
      await resign((m) => (m.formatVersion = 2));
      break;
  }
  return { kind, damaged, undo };
}

export interface TrialStats {
  trials: number;
  corruptLoaded: number;
  byKind: Record<string, number>;
  byReason: Record<string, number>;
}

export async function runCorruptionTrials(store: CheckpointStore, raw: RawAccess, pristine: Map<string, Uint8Array>, trials: number, seed: number): Promise<TrialStats> {
  const random = rng(seed);
  const reader = new CheckpointReader(store, { logger: null });
  const stats: TrialStats = { trials: 0, corruptLoaded: 0, byKind: {}, byReason: {} };
  for (let t = 0; t < trials; t++) {
    const d = await damage(raw, pristine, random);
    const context = `trial ${t} (${d.kind} on ${d.damaged.map(name).join(', ')})`;
    const { checkpoint, invalid } = await reader.loadLatest();
    const expectedStep = Math.max(-1, ...STEPS.filter((s) => !d.damaged.includes(s)));
    if (checkpoint && d.damaged.includes(checkpoint.manifest.step)) stats.corruptLoaded++;
    assert.ok(checkpoint, `${context}: nothing loaded`);
    assert.equal(checkpoint.manifest.step, expectedStep, `${context}: loaded the wrong checkpoint`);
    for (const [file, data] of checkpoint.files) assert.ok(Buffer.from(data).equals(pristine.get(`${checkpoint.name}/${file}`) ?? new Uint8Array()), `${context}: ${file} differs`);
    assert.deepEqual(checkpoint.state, JSON.parse(new TextDecoder().decode(pristine.get(`${checkpoint.name}/state.json`))));
    for (const step of d.damaged) {
      const info = step > expectedStep ? invalid.find((i) => i.step === step) : await reader.verify(name(step));
      assert.ok(info && !info.valid, `${context}: ${name(step)} not reported invalid`);
      assert.ok(info.reason && INVALID_REASONS.includes(info.reason) && info.detail, `${context}: no reason`);
      stats.byReason[info.reason] = (stats.byReason[info.reason] ?? 0) + 1;
    }
    stats.byKind[d.kind] = (stats.byKind[d.kind] ?? 0) + 1;
    for (const [path, data] of d.undo) await raw.write(path, data);
    stats.trials++;
  }
  return stats;
}
