// A child process of bench/scale.ts (not a benchmark of its own): one trainer on a synthetic dataset of
// IMAGES images whose features are already in the cache named by $CAPTIONRUN_FEATURE_CACHE (a directory or
// s3://, with the AWS_* variables). It runs the trainer's own data preparation and training loop for STEPS
// steps, then prints one JSON line: peak RSS, steps per second after a warm-up, and the seconds from start to
// the first step. A process per size, so each peak RSS is that size's alone.
import { fileURLToPath } from 'node:url';
import { validateRun } from '../../lib/api/validate.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { initBackend } from '../../trainer-image/backend.js';
import { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import { createDecoder, initialValues } from '../../trainer-image/model/decoder.js';
import { Adam, DEFAULT_ADAM } from '../../trainer-image/train/adam.js';
import { trainConfig } from '../../trainer-image/train/config.js';
import { freshState, runTraining } from '../../trainer-image/train/loop.js';
import { prepareData } from '../../trainer-image/train/prepare-data.js';

export const SCALE_SEED = 11;
export const SCALE_IMAGE_SIZE = 32;
const BATCH = 32;
const WARMUP_STEPS = 10;

/** The run every size trains: only the number of images differs. */
export function scaleSpec(images: number): unknown {
  return {
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: `bench-scale-${images}` },
    spec: {
      dataset: { format: 'synthetic', synthetic: { images, seed: SCALE_SEED, imageSize: SCALE_IMAGE_SIZE, maxObjects: 2 } },
      model: { encoder: 'inceptionv3', decoder: 'gru', attention: 'bahdanau', embeddingDim: 32, hiddenDim: 64, attentionDim: 32, dropout: 0.1 },
      // Epochs are cut by the step count; no validation, so every timed step is a training step.
      training: { epochs: 1000, batchSize: BATCH, learningRate: 0.001, maxCaptionLength: 12, vocabularySize: 'auto', lrSchedule: { type: 'constant' }, validationMetric: 'none', validationImages: 100, seed: 1 },
      checkpoint: { store: { local: { path: '/unused' } }, keepBest: 0 },
    },
  };
}

async function main(): Promise<void> {
  const [images, steps] = process.argv.slice(2).map(Number) as [number, number];
  const started = performance.now();
  const log = createLogger({ component: 'bench-scale' });
  const backend = await initBackend(undefined, log);
  const r = validateRun(scaleSpec(images));
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  const config = trainConfig(r.run, {});
  const { data, maxCaptionLength } = await prepareData(config, undefined, log);
  const decoderCfg = { ...config.decoder, vocabSize: data.vocabulary.size, featureDim: data.train.features.channels };
  const decoder = createDecoder(decoderCfg, initialValues(decoderCfg, 1));
  const hyper = { batchSize: BATCH, learningRate: 0.001, maxCaptionLength, vocabularySize: data.vocabulary.size, auto: [] };
  const group = await ProcessGroup.join({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: 0, runId: 'bench', attempt: 0, rendezvousTimeoutMs: 1000, collectiveTimeoutMs: () => 1000, compression: 'none', log });
  const stepTimes: number[] = [];
  let firstStepSeconds = 0;
  await runTraining(
    {
      config, hyper, decoder, data, group, log,
      adam: new Adam(decoder.params, DEFAULT_ADAM),
      checkpoints: { save: async () => true, flush: async () => {} },
      stopRequested: () => stepTimes.length >= steps,
      onStep: () => {
        if (stepTimes.length === 0) firstStepSeconds = (performance.now() - started) / 1000;
        stepTimes.push(performance.now());
      },
    },
    freshState(config, hyper, decoder),
  );
  await group.close();
  const timed = stepTimes.slice(WARMUP_STEPS);
  const stepsPerSecond = (timed.length - 1) / (((timed.at(-1) as number) - (timed[0] as number)) / 1000);
  process.stdout.write(`${JSON.stringify({ images, backend, trainImages: data.train.examples.length, peakRssBytes: process.resourceUsage().maxRSS * 1024, stepsPerSecond, firstStepSeconds })}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
