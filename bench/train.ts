// `npm run bench -- train [--backends tensorflow,wasm] [--steps N] [--timesteps T] [--keras PYTHON]`: decoder
// training cost per backend, the quantities that size a run: ms per optimizer step and peak tensor memory for
// GRU and LSTM with both attentions, each without gradient checkpointing and with it (blocks of 5 decoder
// steps). The native backend ("tensorflow": tfjs-node built by trainer-image/native/setup-native.sh, used
// when it is built) runs side by side with wasm in the same process.
// --keras PYTHON also times the same Bahdanau decoders in Keras on TensorFlow CPU, run by that Python
// (bench/train-keras-baseline.py), as the baseline the native backend is held to (<= 1.5x).
// Shape as in the issue: batch 32, 64 regions x 2048 channels (an 8x8 InceptionV3 map),
// vocabulary 5000, 20 decoder steps, the schema's default decoder sizes (embedding 256, hidden 512,
// attention 256). Inputs are random: cost does not depend on what the features mean.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BACKENDS, initBackend, tf, type BackendName } from '../trainer-image/backend.js';
import { createDecoder, disposeDecoder, initialValues, type DecoderConfig } from '../trainer-image/model/decoder.js';
import { Adam, DEFAULT_ADAM } from '../trainer-image/train/adam.js';
import type { CaptionBatch } from '../trainer-image/model/caption-loss.js';
import { disposeNoise, stepNoise } from '../trainer-image/train/noise.js';
import { CounterRng } from '../trainer-image/util/rng.js';
import { trainStep } from '../trainer-image/train/train-step.js';
import { backendLoads, figure, type Figure } from './results.js';

const BATCH = 32;
const REGIONS = 64;
const CHANNELS = 2048;
const VOCAB = 5000;
const BLOCK = 5;

function randomBatch(steps: number): CaptionBatch {
  const rng = new CounterRng(1, 999);
  const ids = (): number[] => Array.from({ length: BATCH * steps }, () => 4 + rng.below(VOCAB - 4));
  return {
    features: tf.tensor3d(Float32Array.from({ length: BATCH * REGIONS * CHANNELS }, () => rng.uniform()), [BATCH, REGIONS, CHANNELS]),
    inputs: tf.tensor2d(ids(), [BATCH, steps]),
    targets: tf.tensor2d(ids(), [BATCH, steps]),
    mask: tf.ones([BATCH, steps]) as tf.Tensor2D,
  };
}

async function measure(cfg: DecoderConfig, batch: CaptionBatch, steps: number, iterations: number, checkpointing: boolean): Promise<{ msPerStep: number; peakMB: number }> {
  const decoder = createDecoder(cfg, initialValues(cfg, 1));
  const adam = new Adam(decoder.params, DEFAULT_ADAM);
  const opts = { attentionRegularization: 1, labelSmoothing: 0, blockSteps: checkpointing ? BLOCK : 1 << 30, checkpointing };
  const run = async (i: number): Promise<void> => {
    const noise = stepNoise(1, i, { steps, batch: BATCH, hidden: cfg.hiddenDim }, cfg.dropout, 1);
    await trainStep(decoder, adam, batch, noise, 1e-3, opts);
    disposeNoise(noise);
  };
  await run(0);
  const profile = await tf.profile(() => run(1));
  const started = performance.now();
  for (let i = 0; i < iterations; i++) await run(2 + i);
  const msPerStep = (performance.now() - started) / iterations;
  adam.dispose();
  disposeDecoder(decoder);
  // peakBytes counts every tensor alive at the peak, parameters and Adam moments included.
  return { msPerStep, peakMB: profile.peakBytes / 2 ** 20 };
}

/** The Keras baseline's ms/step for one cell (its shape is fixed to this file's constants and 20 steps). */
function kerasMsPerStep(python: string, cell: string): number {
  const script = fileURLToPath(new URL('./train-keras-baseline.py', import.meta.url));
  const r = spawnSync(python, [script, cell], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`Keras baseline failed (pip install tensorflow-cpu?): ${r.stderr.slice(-500)}`);
  return (JSON.parse(last) as { ms_per_step: number }).ms_per_step;
}

export default async function bench(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({
    args,
    options: {
      backends: { type: 'string' },
      steps: { type: 'string', default: '2' },
      timesteps: { type: 'string', default: '20' },
      keras: { type: 'string' },
    },
  });
  const iterations = Number(values.steps);
  const steps = Number(values.timesteps);
  const backends = (values.backends ?? ((await backendLoads('tensorflow', 'train')) ? 'tensorflow,wasm' : 'wasm')).split(',') as BackendName[];
  for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`--backends: unknown backend "${b}"; expected some of ${BACKENDS.join(', ')}`);
  const figures: Figure[] = [];
  const plainMs = new Map<string, number>();
  const kerasMs = new Map<string, number>();
  for (const wanted of backends) {
    const backend = await initBackend(wanted);
    const batch = randomBatch(steps);
    for (const cell of ['gru', 'lstm'] as const) {
      for (const attention of ['bahdanau', 'luong'] as const) {
        const cfg: DecoderConfig = { cell, attention, vocabSize: VOCAB, embeddingDim: 256, hiddenDim: 512, attentionDim: 256, featureDim: CHANNELS, dropout: 0.3 };
        const plain = await measure(cfg, batch, steps, iterations, false);
        const ckpt = await measure(cfg, batch, steps, iterations, true);
        const model = `${cell}+${attention}`;
        const label = `${model}, ${backend}, batch ${BATCH}, ${REGIONS}x${CHANNELS}, vocab ${VOCAB}, ${steps} steps`;
        process.stderr.write(`${label}: plain ${plain.msPerStep.toFixed(0)} ms ${plain.peakMB.toFixed(0)} MB; checkpointed ${ckpt.msPerStep.toFixed(0)} ms ${ckpt.peakMB.toFixed(0)} MB\n`);
        figures.push(figure(`${label}: ms/step without gradient checkpointing`, plain.msPerStep, 'ms', null, 'measured'));
        figures.push(figure(`${label}: peak tensor memory without gradient checkpointing`, plain.peakMB, 'MB', null, 'measured'));
        figures.push(figure(`${label}: ms/step with gradient checkpointing every ${BLOCK} steps (baseline: without)`, ckpt.msPerStep, 'ms', plain.msPerStep, '<= 1.35 x'));
        figures.push(figure(`${label}: peak tensor memory with gradient checkpointing (baseline: without)`, ckpt.peakMB, 'MB', plain.peakMB, '<= 0.6 x'));
        const first = plainMs.get(model);
        if (first === undefined) plainMs.set(model, plain.msPerStep);
        else figures.push(figure(`${label}: ms/step (baseline: ${backends[0]}, same run)`, plain.msPerStep, 'ms', first, 'measured'));
        if (values.keras !== undefined && attention === 'bahdanau' && steps === 20) {
          const target = backend.startsWith('tensorflow') ? '<= 1.5 x' : 'measured';
          const keras = kerasMs.get(cell) ?? kerasMsPerStep(values.keras, cell);
          kerasMs.set(cell, keras);
          figures.push(figure(`${label}: ms/step, ours (baseline: Keras on TensorFlow CPU, all cores)`, plain.msPerStep, 'ms', keras, target));
        }
      }
    }
    tf.dispose(Object.values(batch));
  }
  return figures;
}
