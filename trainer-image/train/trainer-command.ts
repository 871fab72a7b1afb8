// `captionrun trainer SPEC`: the training process itself — what a worker pod runs and what the local
// supervisor (`captionrun train`) launches and relaunches. It resumes from the latest valid checkpoint,
// trains, and on SIGTERM finishes the current step, writes a final checkpoint and exits 75.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { CaptionTrainingRun } from '../../lib/api/types.js';
import { KIND } from '../../lib/api/schema.js';
import { validateRun } from '../../lib/api/validate.js';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { InvalidInputError, UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import { initBackend, tf } from '../backend.js';
import type { HealthMonitor } from '../health/monitor.js';
import { startHealth, type RunningHealth } from '../health/start-health.js';
import { createDecoder, initialValues, type DecoderConfig } from '../model/decoder.js';
import { FeatureCache, isS3Location } from '../model/feature-cache.js';
import { Adam, DEFAULT_ADAM } from './adam.js';
import { makeBatch } from './batches.js';
import { openCheckpointIO } from './checkpoint-io.js';
import { featureCacheDir, workDir } from './features.js';
import { trainConfig, type TrainConfig } from './config.js';
import { finalEvaluation } from './final-evaluation.js';
import { chooseHyperparameters } from './hyperparameters.js';
import { freshState, higherIsBetter, lossOptions, runTraining } from './loop.js';
import { stepNoise } from './noise.js';
import { prepareData } from './prepare-data.js';
import { readSnapshot, restoreAdam, type RestoredParts } from './snapshot.js';
import { measureBytesPerSample } from './train-step.js';

export const trainerCommand: Command = {
  name: 'trainer',
  summary: 'run the training process for one CaptionTrainingRun (what pods and `captionrun train` launch)',
  usage: `Usage: captionrun trainer [--resume auto|never] [--output DIR] SPEC

Trains the CaptionTrainingRun in SPEC (a YAML file, e.g. a mounted ConfigMap). With --resume auto (the
default) it continues from the latest valid checkpoint in spec.checkpoint.store, restoring weights,
optimizer, data cursor, RNG and learning-rate state, so the run follows the trajectory of an
uninterrupted one. On SIGTERM it finishes the current step, writes a final checkpoint and exits 75.

Options:
  --resume auto|never  continue from the latest valid checkpoint (auto) or start fresh (never)
  --output DIR         where the final weights, captions and metrics go (default $CAPTIONRUN_CACHE/outputs/<run>,
                       or .captionrun/outputs/<run> without it)
  -h, --help           show this help

Exit codes: 0 trained, 1 failed (worth a relaunch), 2 usage, 3 invalid spec or data, 75 stopped by SIGTERM
after a final checkpoint.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, { resume: { type: 'string', default: 'auto' }, output: { type: 'string' } });
    if (!args) return ExitCode.Ok;
    const resume = args.values.resume;
    if (resume !== 'auto' && resume !== 'never') throw new UsageError(`--resume must be auto or never, got "${resume}"`);
    const [file, ...extra] = args.positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('give exactly one SPEC file', { hint: 'see `captionrun trainer --help`' });
    const run = await loadRun(file);
    const config = trainConfig(run);
    const log = createLogger({ component: 'trainer', run: config.run.name });
    const health = await startTrainerHealth(run, config, log);
    try {
      return await train(config, { resume: resume === 'auto', outputDir: args.values.output ?? join(workDir(), 'outputs', config.run.name), log, health: health.monitor });
    } finally {
      await health.stop();
    }
  },
};

/** Reads the first CaptionTrainingRun in a YAML file and validates it as admission would. */
export async function loadRun(file: string): Promise<CaptionTrainingRun> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read the spec: ${(err as Error).message}`, { file });
  }
  const doc = parseAllDocuments(text)
    .map((d) => ('errors' in d && d.errors.length > 0 ? undefined : (d.toJS() as unknown)))
    .find((v) => typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === KIND);
  if (doc === undefined) throw new InvalidInputError(`no valid ${KIND} document`, { file, hint: `run \`captionrun validate ${file}\`` });
  const result = validateRun(doc);
  if (!result.ok) {
    const issues = result.issues.map((i) => `${i.path}: ${i.message}${i.hint ? ` (${i.hint})` : ''}`).join('; ');
    throw new InvalidInputError(`invalid spec: ${issues}`, { file });
  }
  return result.run;
}

export interface TrainOptions {
  resume: boolean;
  outputDir: string;
  log: Logger;
  /** Counts steps and checkpoint commits, and exports the checkpoint metrics on its registry. */
  health?: HealthMonitor;
}

/** Watches the volumes this trainer writes to and serves /metrics (CAPTIONRUN_METRICS_PORT; 0 = any free port). */
async function startTrainerHealth(run: CaptionTrainingRun, config: TrainConfig, log: Logger): Promise<RunningHealth> {
  const cacheDir = featureCacheDir();
  // A feature cache in S3 takes no room on the cache volume, which then holds only the work directory:
  // pruning those shared entries would free nothing there.
  const s3Cache = isS3Location(cacheDir);
  const cachePath = s3Cache ? workDir() : cacheDir;
  await mkdir(cachePath, { recursive: true });
  const volumes = [{ volume: 'cache', path: cachePath }];
  const local = config.checkpoint.store.local?.path;
  // A checkpoint directory that cannot be created is not watched: the store's own write check reports it
  // (exit 3, not retried); the health monitor never decides the trainer's fate.
  if (local && (await mkdir(local, { recursive: true }).then(() => true, () => false))) {
    volumes.push({ volume: 'checkpoint', path: local });
  }
  // Features live in memory once extracted, so the on-disk cache can go when the volume runs low.
  const lowDiskActions = s3Cache ? [] : [{ name: 'prune-feature-cache', volume: 'cache', run: () => new FeatureCache(cacheDir).prune() }];
  return startHealth(run, { rank: config.distributed.rank, volumes, logger: log, lowDiskActions });
}

export async function train(config: TrainConfig, opts: TrainOptions): Promise<number> {
  const { log } = opts;
  let stopRequested = false;
  const onStop = (signal: NodeJS.Signals): void => {
    stopRequested = true;
    log.info({ signal }, `${signal}: finishing the current step, then writing a final checkpoint`);
  };
  // Ctrl-C in a terminal reaches the whole process group, this trainer included: treat it like SIGTERM.
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  try {
    const backend = await initBackend();
    const checkpoints = openCheckpointIO({
      spec: config.checkpoint,
      namespace: config.run.namespace,
      run: config.run.name,
      metric: config.training.validationMetric === 'loss' ? 'valLoss' : 'valBleu4',
      higherIsBetter: higherIsBetter(config),
      logger: log,
      registry: opts.health?.registry,
      onCommit: (at) => opts.health?.recordCheckpointCommit(at),
    });
    await checkpoints.checkWritable();
    const latest = opts.resume ? await checkpoints.latest() : undefined;
    let restored: RestoredParts | undefined;
    if (latest) {
      restored = readSnapshot(latest.files, latest.state);
      log.info({ checkpoint: latest.name, step: restored.state.step, epoch: restored.state.cursor.epoch }, `resuming from ${latest.name}`);
      warnOnDrift(config, restored.state.config, log);
    }
    const prepared = await prepareData(
      config,
      restored ? { vocabulary: restored.vocabulary, maxCaptionLength: restored.state.hyperparameters.maxCaptionLength } : undefined,
      log,
    );
    const { data } = prepared;
    const decoderCfg: DecoderConfig = restored?.state.decoder ?? {
      ...config.decoder,
      vocabSize: data.vocabulary.size,
      featureDim: data.train.table.channels,
    };
    const decoder = createDecoder(decoderCfg, restored?.weights ?? initialValues(decoderCfg, config.training.seed));
    const opt = lossOptions(config);
    const hyper =
      restored?.state.hyperparameters ??
      (await chooseHyperparameters(config.training, prepared.maxCaptionLength, data.vocabulary.size, config.distributed.worldSize, data.train.examples.length, backend, () =>
        measureBytesPerSample(
          decoder,
          (size) => makeBatch(data.train.table, data.train.examples.slice(0, size)),
          (size) => stepNoise(config.training.seed, 0, { steps: prepared.maxCaptionLength - 1, batch: size, hidden: decoderCfg.hiddenDim }, decoderCfg.dropout, config.training.teacherForcingRatio),
          opt,
        ),
      ));
    if (!restored) log.info({ hyperparameters: hyper }, `hyperparameters: batch ${hyper.batchSize}, learning rate ${hyper.learningRate}, max caption length ${hyper.maxCaptionLength}, vocabulary ${hyper.vocabularySize}`);
    if (data.train.examples.length < hyper.batchSize) {
      throw new InvalidInputError(`the training split has ${data.train.examples.length} captions, fewer than one batch of ${hyper.batchSize}`, { field: 'spec.training.batchSize' });
    }
    const adam = new Adam(decoder.params, { ...DEFAULT_ADAM, clipNorm: config.training.gradientClipNorm });
    if (restored) restoreAdam(adam, restored.adamM, restored.adamV, restored.state.adamSteps);
    const initial = restored?.state ?? freshState(config, hyper, decoder);
    const outcome = initial.finished
      ? { kind: 'finished' as const, state: initial }
      : await runTraining({ config, hyper, decoder, adam, data, checkpoints, log, stopRequested: () => stopRequested, onStep: () => opts.health?.recordStep() }, initial);
    await checkpoints.close();
    if (outcome.kind === 'stopped') return ExitCode.Checkpointed;
    const result = await finalEvaluation(decoder, data.val, prepared.valItems, data.vocabulary, outcome.state, config.evaluation.beamSize, opts.outputDir);
    log.info({ valBleu4: result.bleu4, beamSize: result.beamSize, outputDir: result.outputDir, step: outcome.state.step }, 'training finished');
    const sample = result.captions.slice(0, 3).map((c) => `  ${c.id}: "${c.caption}"  (reference: "${c.references[0] ?? ''}")`);
    process.stdout.write(
      `Validation BLEU-4 (beam ${result.beamSize}, ${result.captions.length} images): ${result.bleu4.toFixed(4)}\n${sample.join('\n')}\nOutputs: ${result.outputDir}\n`,
    );
    tf.disposeVariables();
    return ExitCode.Ok;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  }
}

/** A resumed run keeps the checkpoint's model and hyperparameters; say so when the spec changed since. */
function warnOnDrift(now: TrainConfig, saved: TrainConfig, log: Logger): void {
  if (JSON.stringify(now.decoder) !== JSON.stringify(saved.decoder) || JSON.stringify(now.encoder) !== JSON.stringify(saved.encoder)) {
    log.warn({ field: 'spec.model', spec: now.decoder, checkpoint: saved.decoder }, "spec.model differs from the checkpoint's model; the checkpoint's model and hyperparameters are kept for this run");
  }
}
