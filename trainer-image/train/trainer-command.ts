// `captionrun trainer SPEC`: the training process itself — what a worker pod runs and what the local
// supervisor (`captionrun train`) launches and relaunches. It resumes from the latest valid checkpoint,
// trains, and on SIGTERM finishes the current step, writes a final checkpoint and exits 75.
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { CaptionTrainingRun } from '../../lib/api/types.js';
import { KIND } from '../../lib/api/schema.js';
import { validateRun } from '../../lib/api/validate.js';
import type { Command } from '../../lib/cli/command.js';
import { parseCommandArgs } from '../../lib/cli/command.js';
import { CaptionrunError, InvalidInputError, UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import { PROGRESS_PATH } from '../../lib/telemetry/progress-report.js';
import { initBackend, tf } from '../backend.js';
import type { HealthMonitor } from '../health/monitor.js';
import { startHealth, type RunningHealth } from '../health/start-health.js';
import { ProcessGroup } from '../distributed/process-group.js';
import { writeReport } from '../report/report-command.js';
import { parameterShapes, type Decoder } from '../model/decoder.js';
import { isS3Location } from '../features/feature-cache.js';
import { makeBatch } from './batches.js';
import { RESUME_FROM_ENV } from '../../lib/checkpoint/location.js';
import { openCheckpointIO, type CheckpointIO, type LoadedState } from './checkpoint-io.js';
import { encoderInputSize, featureCacheDir, workDir } from './features.js';
import { trainConfig, type TrainConfig } from './config.js';
import { finalEvaluation, finalWeights } from './final-evaluation.js';
import { LLM_CAPTIONS_FILE, llmEvaluation } from './llm-evaluation.js';
import { chooseHyperparameters, type Hyperparameters } from './hyperparameters.js';
import { higherIsBetter, lossOptions, runTraining } from './loop.js';
import { checkpointMetricName } from './validation.js';
import { stepNoise } from './noise.js';
import { teacherForcingAt, teacherForcingSchedule } from './teacher-forcing.js';
import { prepareData } from './prepare-data.js';
import { packParameters, unpackTensors } from '../model/packed-tensors.js';
import { TrainingProgress } from './progress.js';
import { ResourceLog } from './resource-log.js';
import { readSnapshot } from './snapshot.js';
import { startOrResume } from './resume.js';
import { measureBytesPerSample } from './train-step.js';

export const trainerCommand: Command = {
  name: 'trainer',
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

Exit codes: 0 trained, 1 failed (worth a relaunch), 2 usage, 3 invalid spec or data, or a backend named in
CAPTIONRUN_BACKEND that cannot load (GPU pods name tensorflow-gpu), 75 stopped by SIGTERM after a final
checkpoint. The reason of a failure also goes to $CAPTIONRUN_TERMINATION_LOG (default /dev/termination-log)
when that file exists, as Kubernetes mounts it, so the pod's termination message names it.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, { resume: { type: 'string', default: 'auto' }, output: { type: 'string' } });
    if (!args) return ExitCode.Ok;
    const resume = args.values.resume;
    if (resume !== 'auto' && resume !== 'never') throw new UsageError(`--resume must be auto or never, got "${resume}"`);
    const [file, ...extra] = args.positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('give exactly one SPEC file', { hint: 'see `captionrun trainer --help`' });
    try {
      return await trainSpec(file, resume === 'auto', args.values.output);
    } catch (err) {
      writeTerminationMessage(err);
      throw err;
    }
  },
};

async function trainSpec(file: string, resume: boolean, output: string | undefined): Promise<number> {
  const run = await loadRun(file);
  const config = trainConfig(run);
  const log = createLogger({ component: 'trainer', run: config.run.name, rank: config.distributed.rank });
  // A SIGTERM that arrives after training has ended, e.g. the operator deleting a gang whose peer failed
  // while this process is on its way out, must not turn its exit code into a death by signal (143): the
  // code says why the gang stopped. train() has its own handler while there is a step to finish.
  process.on('SIGTERM', () => log.info('SIGTERM while exiting: finishing the exit already under way'));
  const progress = new TrainingProgress(config.training.epochs);
  const health = await startTrainerHealth(run, config, log, progress);
  try {
    return await train(config, { resume, outputDir: output ?? join(workDir(), 'outputs', config.run.name), log, health: health.monitor, progress });
  } finally {
    await health.stop();
  }
}

export const TERMINATION_LOG_ENV = 'CAPTIONRUN_TERMINATION_LOG';

/**
 * Kubernetes makes what a container wrote to its terminationMessagePath the pod's termination message,
 * which the operator quotes in status.lastFailure and the Failed condition. The log tail would not do:
 * under `captionrun launch` the launcher's own lines come after the trainer's reason. The file exists only
 * where the kubelet mounted it; elsewhere (local runs) stderr alone says why.
 */
function writeTerminationMessage(err: unknown): void {
  const path = process.env[TERMINATION_LOG_ENV] || '/dev/termination-log';
  if (!existsSync(path)) return;
  const reason = err instanceof CaptionrunError ? err.describe() : ((err as Error).message ?? String(err));
  try {
    writeFileSync(path, `captionrun trainer: ${reason}\n`);
  } catch {
    // Best effort: the error still reaches stderr and the exit code, which the operator reads either way.
  }
}

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
  /** Where this process reports its stage, step and newest checkpoint (served on /progress). */
  progress?: TrainingProgress;
}

/** Watches the volumes this trainer writes to and serves /metrics and /progress (CAPTIONRUN_METRICS_PORT; 0 = any free port). */
async function startTrainerHealth(run: CaptionTrainingRun, config: TrainConfig, log: Logger, progress: TrainingProgress): Promise<RunningHealth> {
  const cacheDir = featureCacheDir(config.dataset);
  // With a feature cache in S3 the cache volume holds the work directory (and the cache's local mirror):
  // that is the directory whose disk the monitor watches.
  const s3Cache = isS3Location(cacheDir);
  const cachePath = s3Cache ? workDir() : cacheDir;
  await mkdir(cachePath, { recursive: true }).catch((err: unknown) => {
    if (s3Cache) throw err;
    throw new InvalidInputError(`cannot create the feature cache directory ${cachePath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      field: 'spec.dataset.featureCache',
      hint: 'in a pod, name an s3:// prefix (the root filesystem is read-only) or leave the field out for the cache volume',
      cause: err,
    });
  });
  const volumes = [{ volume: 'cache', path: cachePath }];
  const local = config.checkpoint.store.local?.path;
  // A checkpoint directory that cannot be created is not watched: the store's own write check reports it
  // (exit 3, not retried); the health monitor never decides the trainer's fate.
  if (local && (await mkdir(local, { recursive: true }).then(() => true, () => false))) {
    volumes.push({ volume: 'checkpoint', path: local });
  }
  // No low-disk remedy prunes the feature cache here: training reads its features from it every step.
  return startHealth(run, { rank: config.distributed.rank, worldSize: config.distributed.worldSize, volumes, logger: log, routes: { [PROGRESS_PATH]: () => progress.current() } });
}

export async function train(config: TrainConfig, opts: TrainOptions): Promise<number> {
  const { log } = opts;
  const progress = opts.progress ?? new TrainingProgress(config.training.epochs);
  const d = config.distributed;
  const writer = d.rank === 0;
  let stopRequested = false;
  const onStop = (signal: NodeJS.Signals): void => {
    stopRequested = true;
    log.info({ signal }, `${signal}: finishing the current step, then writing a final checkpoint`);
  };
  // Ctrl-C in a terminal reaches the whole process group, this trainer included: treat it like SIGTERM.
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  let group: ProcessGroup | undefined;
  const launched = performance.now();
  try {
    const backend = await initBackend();
    const resources = new ResourceLog(backend);
    const checkpoints = openCheckpointIO({
      spec: config.checkpoint,
      namespace: config.run.namespace,
      run: config.run.name,
      metric: checkpointMetricName(config.training.validationMetric),
      higherIsBetter: higherIsBetter(config),
      logger: log,
      registry: opts.health?.registry,
      onCommit: (checkpoint, seconds) => {
        opts.health?.recordCheckpointCommit(new Date());
        resources.recordCheckpointSave(seconds);
        progress.committed(checkpoint);
      },
      writer: { rank: d.rank, worldSize: d.worldSize },
    });
    if (writer) await checkpoints.checkWritable();
    const gang = await joinGang(config, log);
    group = gang;
    const slowMs = d.rendezvousTimeoutSeconds * 1000;
    const latest = await agreeOnCheckpoint(group, checkpoints, opts.resume, slowMs, log);
    // The checkpoint every rank agreed on, or none: start fresh.
    const restored = latest ? readSnapshot(latest.files, latest.state) : undefined;
    if (latest && restored && writer) log.info({ checkpoint: latest.name, step: restored.state.step, epoch: restored.state.cursor.epoch }, `resuming from ${latest.name}`);
    const prepared = await prepareData(
      config,
      restored ? { vocabulary: restored.vocabulary, maxCaptionLength: restored.state.hyperparameters.maxCaptionLength } : undefined,
      log,
      (p) => {
        progress.extractingFeatures(p.done, p.total);
        opts.health?.recordExtraction(p);
      },
      group,
    );
    const { data } = prepared;
    log.info({ seconds: Math.round(performance.now() - launched) / 1000, resumed: restored !== undefined }, `data ready ${((performance.now() - launched) / 1000).toFixed(1)} s after launch`);
    const opt = lossOptions(config);
    // Rank 0 decides what `auto` resolves to (its memory measurement) and every rank takes its answer.
    // Measured with the schedule's final teacher-forcing probability: sampling coins below 1 take the
    // heavier path through the loss. The probe's features (at most 4 examples, train-step.ts) are read only
    // here, when a fresh run measures an automatic batch size: never on a resume, never on the other ranks.
    const chooseHyper = (decoder: Decoder): Promise<Hyperparameters> =>
      broadcastJson(gang, slowMs, () =>
        chooseHyperparameters(config.training, prepared.maxCaptionLength, data.vocabulary.size, d.worldSize, data.train.examples.length, backend, async () => {
          const probe = data.train.examples.slice(0, 4);
          const probeFeatures = await data.train.features.read(probe.map((ex) => ex.image));
          return measureBytesPerSample(
            decoder,
            (size) => makeBatch(data.train.features, probeFeatures.subarray(0, size * data.train.features.regions * data.train.features.channels), probe.slice(0, size)),
            (size) => stepNoise(config.training.seed, 0, { steps: prepared.maxCaptionLength - 1, batch: size, hidden: decoder.cfg.hiddenDim }, decoder.cfg.dropout, teacherForcingAt(teacherForcingSchedule(config.training), Number.POSITIVE_INFINITY)),
            opt,
          );
        }),
      );
    const { decoder, adam, hyper, state: initial } = await startOrResume(config, restored, data, chooseHyper, log);
    if (!restored && writer) log.info({ hyperparameters: hyper, worldSize: d.worldSize }, `hyperparameters: batch ${hyper.batchSize} per process (global ${hyper.batchSize * d.worldSize}), learning rate ${hyper.learningRate}, max caption length ${hyper.maxCaptionLength}, vocabulary ${hyper.vocabularySize}`);
    if (data.train.examples.length < hyper.batchSize * d.worldSize) {
      throw new InvalidInputError(`the training split has ${data.train.examples.length} captions, fewer than one global batch of ${hyper.batchSize} x ${d.worldSize} processes`, { field: 'spec.training.batchSize' });
    }
    // A fresh gang starts from rank 0's weights, whatever each rank initialised; a resumed one loaded the same checkpoint.
    if (!restored) await broadcastWeights(group, decoder, slowMs);
    progress.started({
      backend,
      hyperparameters: hyper,
      step: initial.step,
      epoch: initial.cursor.epoch,
      ...(latest ? { resumedFrom: latest.checkpoint.uri, checkpoint: latest.checkpoint } : {}),
    });
    const outcome = initial.finished
      ? { kind: 'finished' as const, state: initial, ...(restored?.best ? { best: restored.best } : {}) }
      : await runTraining(
          {
            config, hyper, decoder, adam, data, checkpoints, group, log, progress,
            stopRequested: () => stopRequested,
            onStep: (seconds, allReduce) => {
              opts.health?.recordStep();
              resources.recordStep(seconds);
              if (allReduce) opts.health?.recordAllReduce(allReduce.seconds, allReduce.bytesSent);
            },
          },
          initial,
          restored?.best,
        );
    if (outcome.kind === 'stopped' || !writer) {
      await checkpoints.close();
      if (outcome.kind === 'stopped') return ExitCode.Checkpointed;
      log.info({ step: outcome.state.step }, 'training finished; rank 0 evaluates and writes the outputs');
      return ExitCode.Ok;
    }
    progress.enter('Evaluating');
    const encoder = { name: config.encoder.name, weights: config.encoder.weights, inputSize: encoderInputSize(config) ?? null };
    const final = finalWeights(decoder, outcome.state, outcome.best);
    const { beamSize, noRepeatNgramSize, lengthPenalty } = config.evaluation;
    log.info({ weights: final.selected }, final.selected.by === 'best' ? `final outputs from epoch ${final.selected.epoch}, the best by validation ${final.selected.metric} (${final.selected.value})` : `final outputs from the last epoch (${final.selected.epoch})`);
    const result = await finalEvaluation(final.decoder, data.val, prepared.valItems, data.vocabulary, outcome.state, { beamSize, noRepeatNgramSize, lengthPenalty }, final.selected, opts.outputDir, encoder, resources);
    // A report that cannot be built fails the run like any other output would: a relaunch resumes from the
    // finished checkpoint and tries the evaluation again, and backoffLimit ends it with the reason.
    // The LLM's captions are part of the evaluation stage (progress says Evaluating until the report).
    const llm = config.evaluation.llm ? await llmEvaluation(config.evaluation.llm, prepared.valItems, result.outputDir, log) : undefined;
    const compared = llm ? [result.outputDir, llm.file] : [result.outputDir];
    if (config.evaluation.report) progress.enter('WritingReport');
    const report = config.evaluation.report ? await writeReport(compared, join(result.outputDir, 'report.html'), { title: `${config.run.name}: captioning report`, similarity: true, log }) : undefined;
    progress.enter('Uploading');
    const published = await checkpoints.publishOutputs(result.outputDir);
    await checkpoints.close();
    progress.enter('Finished');
    log.info({ valBleu4: result.bleu4, beamSize: result.beamSize, outputDir: result.outputDir, outputURI: published ?? null, step: outcome.state.step }, 'training finished');
    const sample = result.captions.slice(0, 3).map((c) => `  ${c.id}: "${c.caption}"  (reference: "${c.references[0] ?? ''}")`);
    process.stdout.write(
      `Validation BLEU-4 (beam ${result.beamSize}, ${result.captions.length} images): ${result.bleu4.toFixed(4)}\n${sample.join('\n')}\n${llm ? `LLM captions: ${llm.stats.captioned} of ${llm.stats.images} images in ${LLM_CAPTIONS_FILE}\n` : ''}Outputs: ${published ?? result.outputDir}\n${report ? `Report: ${published ? `${published}/report.html` : report}\n` : ''}`,
    );
    tf.disposeVariables();
    return ExitCode.Ok;
  } finally {
    await group?.close();
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  }
}

/** Joins the gang described by the environment (one process: a group of one, no sockets). */
function joinGang(config: TrainConfig, log: Logger): Promise<ProcessGroup> {
  const d = config.distributed;
  if (d.worldSize > 1) log.info({ worldSize: d.worldSize, master: `${d.masterAddr}:${d.masterPort}`, attempt: d.attempt }, `rank ${d.rank} of ${d.worldSize}: joining the gang at ${d.masterAddr}:${d.masterPort}`);
  return ProcessGroup.join({
    rank: d.rank,
    worldSize: d.worldSize,
    masterAddr: d.masterAddr,
    masterPort: d.masterPort,
    bindAddress: d.bindAddress,
    runId: d.runId,
    attempt: d.attempt,
    rendezvousTimeoutMs: d.rendezvousTimeoutSeconds * 1000,
    // Every collective the trainer calls names its own deadline (the loop's step deadline, or the slow one);
    // this only bounds one that would not.
    collectiveTimeoutMs: () => d.rendezvousTimeoutSeconds * 1000,
    compression: d.compression,
    log,
  });
}

/**
 * Rank 0 picks the checkpoint to resume from (the latest valid one) and tells the others its name and
 * manifest digest; each loads that one and checks the digest, so no rank resumes from anything else.
 */
async function agreeOnCheckpoint(group: ProcessGroup, checkpoints: CheckpointIO, resume: boolean, timeoutMs: number, log: Logger): Promise<LoadedState | undefined> {
  const mine = group.rank === 0 && resume ? await checkpoints.latest(process.env[RESUME_FROM_ENV] || undefined) : undefined;
  const chosen = await broadcastJson(group, timeoutMs, async () => (mine ? { name: mine.name, digest: mine.digest } : null));
  if (group.rank === 0 || chosen === null) return mine;
  const loaded = await checkpoints.load(chosen.name);
  if (loaded.digest !== chosen.digest) {
    throw new CaptionrunError(`rank ${group.rank} loaded ${chosen.name} with manifest digest ${loaded.digest}, but rank 0 resumed from digest ${chosen.digest}`, { hint: 'the checkpoint changed while the gang started; the relaunch resumes from a consistent one' });
  }
  log.info({ checkpoint: chosen.name, digest: chosen.digest }, `loaded ${chosen.name}, the checkpoint rank 0 chose`);
  return loaded;
}

/** Rank 0 computes a JSON value; every rank returns it. */
async function broadcastJson<T>(group: ProcessGroup, timeoutMs: number, compute: () => Promise<T>): Promise<T> {
  if (group.worldSize === 1) return compute();
  const bytes = await group.broadcast(group.rank === 0 ? new TextEncoder().encode(JSON.stringify(await compute())) : undefined, { timeoutMs });
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

async function broadcastWeights(group: ProcessGroup, decoder: Decoder, timeoutMs: number): Promise<void> {
  if (group.worldSize === 1) return;
  const shapes = parameterShapes(decoder.cfg);
  const bytes = await group.broadcast(group.rank === 0 ? packParameters(decoder) : undefined, { timeoutMs });
  if (group.rank === 0) return;
  for (const [name, values] of unpackTensors(bytes, shapes)) {
    const variable = decoder.params.get(name) as tf.Variable;
    tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
  }
}
