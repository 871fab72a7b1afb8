// A tiny in-memory training setup for the loop's tests: random stand-in features, a handful of captions,
// a CheckpointIO that keeps snapshots in memory, and process groups of 1 or N ranks in this process (real
// sockets on loopback), so the loop runs exactly as in the trainer without datasets or encoders.
import { freePort } from '../lib/free-port.js';
import { validateRun } from '../lib/api/validate.js';
import type { Logger } from '../lib/telemetry/logger.js';
import { Vocabulary } from '../trainer-image/data/tokenizer.js';
import { ProcessGroup } from '../trainer-image/distributed/process-group.js';
import type { CheckpointIO, LoadedState } from '../trainer-image/train/checkpoint-io.js';
import { trainConfig, type TrainConfig } from '../trainer-image/train/config.js';
import { tableSource, type FeatureTable } from '../trainer-image/train/features.js';
import type { TrainingData } from '../trainer-image/train/loop.js';
import { examplesOf } from '../trainer-image/train/prepare-data.js';
import { CounterRng } from '../trainer-image/util/rng.js';
import type { Snapshot } from '../trainer-image/train/snapshot.js';

// Resume exactness and data-parallel equivalence do not depend on what the features mean.
const captions = ['a red circle', 'a blue square left of a red circle', 'a small green triangle', 'a large white square above a red circle'];
export const vocabulary = Vocabulary.build(captions);
export const maxLen = 10;

function table(n: number, seed: number): FeatureTable {
  const rng = new CounterRng(seed, 77);
  return {
    encoder: 'random-stand-in',
    regions: 4,
    channels: 6,
    grid: { rows: 2, cols: 2 },
    ids: Array.from({ length: n }, (_, i) => `img-${i}`),
    features: Array.from({ length: n }, () => Float32Array.from({ length: 24 }, () => rng.uniform())),
  };
}

function items(n: number): { captions: string[] }[] {
  return Array.from({ length: n }, (_, i) => ({ captions: [captions[i % 4] as string, captions[(i + 1) % 4] as string] }));
}

/** `images` training images with 2 captions each, and 4 validation images. */
export function trainingData(images = 12): TrainingData {
  const trainTable = table(images, 1);
  const valTable = table(4, 2);
  return {
    vocabulary,
    train: { features: tableSource(trainTable), examples: examplesOf(items(images), vocabulary, maxLen) },
    val: { table: valTable, references: items(4).map((it) => it.captions), examples: examplesOf(items(4), vocabulary, maxLen) },
  };
}

/** A validated spec's TrainConfig with these training fields (a small LSTM + Luong decoder with dropout). */
export function loopConfig(training: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): TrainConfig {
  const r = validateRun({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'loop-test' },
    spec: {
      dataset: { format: 'synthetic' },
      model: { decoder: 'lstm', attention: 'luong', embeddingDim: 8, hiddenDim: 8, attentionDim: 8, dropout: 0.3 },
      training,
      checkpoint: { store: { local: { path: '/unused' } }, everySteps: 2 },
    },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return trainConfig(r.run, env);
}

/** An in-memory checkpoint store that remembers every snapshot: what the loop saves, what a resume loads. */
export function memoryIO(): Pick<CheckpointIO, 'save' | 'flush' | 'latest' | 'load'> & { saved: Snapshot[] } {
  const saved: Snapshot[] = [];
  const loaded = (s: Snapshot): LoadedState => ({
    name: `ckpt-${s.step}`,
    checkpoint: { name: `ckpt-${s.step}`, uri: `memory://ckpt-${s.step}`, step: s.step, epoch: s.epoch, digest: `digest-${s.step}`, time: new Date(0).toISOString(), metrics: s.metrics ?? {} },
    digest: `digest-${s.step}`,
    files: new Map(s.files.map((f) => [f.name, f.data])),
    state: JSON.parse(JSON.stringify(s.state)),
  });
  return {
    saved,
    async latest() {
      const s = saved[saved.length - 1];
      return s && loaded(s);
    },
    async load(name) {
      const s = saved.find((x) => `ckpt-${x.step}` === name);
      if (!s) throw new Error(`no ${name}`);
      return loaded(s);
    },
    async save(snapshot) {
      saved.push(snapshot);
      return true;
    },
    async flush() {},
  };
}

/** Ranks 0..n-1 of one gang, joined in this process over loopback TCP. */
export async function loopbackGang(n: number, log: Logger, runId = 'loop-test'): Promise<ProcessGroup[]> {
  const masterPort = await freePort();
  return Promise.all(
    Array.from({ length: n }, (_, rank) =>
      ProcessGroup.join({
        rank,
        worldSize: n,
        masterAddr: '127.0.0.1',
        masterPort,
        bindAddress: '127.0.0.1',
        runId,
        attempt: 0,
        rendezvousTimeoutMs: 20_000,
        collectiveTimeoutMs: () => 30_000,
        compression: 'none',
        log,
      }),
    ),
  );
}
