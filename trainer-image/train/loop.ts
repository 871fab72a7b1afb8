// The training loop. Every step is a pure function of (checkpointed state, step number): the batch comes
// from the epoch's seeded order at the data cursor, the dropout masks and sampling coins from the RNG
// keyed by the step, the rate from the schedule state. So a run resumed from any checkpoint continues
// the exact trajectory of an uninterrupted one. In a gang every rank runs this same loop on its slice of
// each global batch, the gradients are summed between ranks before each update, and rank 0 alone writes
// checkpoints; everything that decides the loop's course (losses, validation, stop requests) comes out
// of a collective, so the ranks never disagree on it.
import type { Logger } from '../../lib/telemetry/logger.js';
import type { Vocabulary } from '../data/tokenizer.js';
import { parameterShapes, type Decoder } from '../model/decoder.js';
import { packParameters } from '../model/packed-tensors.js';
import type { Adam } from './adam.js';
import type { CollectiveStats, ProcessGroup } from '../distributed/process-group.js';
import { batchesPerEpoch, disposeBatch, epochHasBatch, epochOrder, makeBatch, rankSlice, targetWords, type Examples } from './batches.js';
import type { LossOptions } from '../model/caption-loss.js';
import type { CheckpointIO } from './checkpoint-io.js';
import type { TrainConfig } from './config.js';
import type { FeatureSource } from './features.js';
import type { Hyperparameters } from './hyperparameters.js';
import { afterValidation, initialLrState, learningRateAt, type LrScheduleOptions } from './lr-schedule.js';
import { disposeNoise, stepNoise } from './noise.js';
import { Prefetcher } from './prefetch.js';
import type { TrainingProgress } from './progress.js';
import { quantile } from './resource-log.js';
import { captureSnapshot, type EpochRecord, type TrainerState } from './snapshot.js';
import { GradientSync } from './gradient-sync.js';
import { teacherForcingAt, teacherForcingSchedule } from './teacher-forcing.js';
import { trainStep } from './train-step.js';
import { metricValue, validationLoss, validationScores, type ValidationSet } from './validation.js';

export interface TrainingData {
  vocabulary: Vocabulary;
  /** Read per batch: memory follows the batch, not the dataset. */
  train: { features: FeatureSource; examples: Examples };
  val: ValidationSet;
}

/**
 * Global batches read ahead of the one training: enough to cover S3 latency spikes of a few steps, and small
 * enough that the features in memory stay a few batches.
 */
const PREFETCH_BATCHES = 4;

export interface LoopContext {
  config: TrainConfig;
  hyper: Hyperparameters;
  decoder: Decoder;
  adam: Adam;
  data: TrainingData;
  /** Rank 0's checkpoint store (only its saves); other ranks never write. */
  checkpoints: Pick<CheckpointIO, 'save' | 'flush'>;
  group: ProcessGroup;
  log: Logger;
  /** True once SIGTERM arrived: finish the step, checkpoint, return. */
  stopRequested: () => boolean;
  /** Called after every optimizer step with its duration (the health monitor and the resource log count them). */
  onStep?: (seconds: number, allReduce?: CollectiveStats) => void;
  /** What /progress reports: told every step and around validation. */
  progress?: TrainingProgress;
}

/**
 * `best`: the decoder weights (packed as in a checkpoint) of the epoch the validation metric ranked best so
 * far, which the final outputs hold; absent when the spec has no validation metric.
 */
export type LoopOutcome = { kind: 'finished' | 'stopped'; state: TrainerState; best?: Uint8Array };

export function lossOptions(config: TrainConfig): LossOptions {
  const gc = config.training.gradientCheckpointing;
  return { attentionRegularization: config.training.attentionRegularization, labelSmoothing: config.training.labelSmoothing, blockSteps: gc.enabled ? gc.blockSteps : 1 << 30, checkpointing: gc.enabled };
}

export function freshState(config: TrainConfig, hyper: Hyperparameters, decoder: Decoder): TrainerState {
  return {
    formatVersion: 2,
    step: 0,
    cursor: { epoch: 0, sample: 0 },
    worldSize: config.distributed.worldSize,
    rng: { seed: config.training.seed, keyedBy: 'step' },
    lrSchedule: initialLrState(config.training.lrSchedule.type, hyper.learningRate),
    adamSteps: 0,
    early: { best: null, epochsWithoutImprovement: 0 },
    epochLoss: { sum: 0, steps: 0 },
    hyperparameters: hyper,
    decoder: decoder.cfg,
    config,
    history: [],
    finished: false,
  };
}

export function higherIsBetter(config: TrainConfig): boolean {
  return config.training.validationMetric !== 'loss';
}

/** `best`: the restored checkpoint's best weights, when it has them. */
export async function runTraining(ctx: LoopContext, initial: TrainerState, best?: Uint8Array): Promise<LoopOutcome> {
  const { config, hyper, decoder, adam, data, log, group } = ctx;
  const t = config.training;
  const state: TrainerState = structuredClone(initial);
  const examples = data.train.examples;
  const { rank, worldSize } = group;
  const writer = rank === 0;
  const globalBatch = hyper.batchSize * worldSize;
  if (state.worldSize !== worldSize && writer) {
    log.warn(
      { checkpointWorldSize: state.worldSize, worldSize, globalBatch, learningRate: hyper.learningRate },
      `resuming a ${state.worldSize}-process checkpoint on ${worldSize} processes: the global batch becomes ${globalBatch} (batchSize ${hyper.batchSize} per process); the data cursor continues at example ${state.cursor.sample} of epoch ${state.cursor.epoch + 1}, the learning rate stays ${hyper.learningRate}`,
    );
  }
  state.worldSize = worldSize;
  const perEpoch = batchesPerEpoch(examples.length, globalBatch);
  // Counted from the cursor, so a resume on another world size still ends the schedule at the last step.
  const totalSteps = state.step + Math.floor((examples.length - state.cursor.sample) / globalBatch) + perEpoch * Math.max(0, t.epochs - state.cursor.epoch - 1);
  const schedule: LrScheduleOptions = { spec: t.lrSchedule, higherIsBetter: higherIsBetter(config), totalSteps };
  const opts = lossOptions(config);
  const teacherForcingPlan = teacherForcingSchedule(t);
  if (writer && teacherForcingPlan.schedule !== 'constant') log.info({ teacherForcing: teacherForcingPlan, step: state.step, now: teacherForcingAt(teacherForcingPlan, state.step) }, `scheduled sampling: ${teacherForcingPlan.schedule} teacher forcing, ${round(teacherForcingAt(teacherForcingPlan, state.step))} at step ${state.step}`);
  const steps = hyper.maxCaptionLength - 1;
  const sync = worldSize > 1 ? new GradientSync(group, parameterShapes(decoder.cfg)) : undefined;
  const deadlines = new CollectiveDeadlines(config);
  let lastSaved = state.step;
  const started = Date.now();
  const startStep = state.step;
  let lastInfoLog = 0;

  let bestWeights = best;
  const save = async (must: boolean, metrics?: Record<string, number>): Promise<void> => {
    state.adamSteps = adam.t;
    if (!writer) return;
    if (await ctx.checkpoints.save(captureSnapshot(decoder, adam, data.vocabulary, state, metrics, bestWeights), must)) lastSaved = state.step;
  };
  const stop = async (): Promise<LoopOutcome> => {
    if (writer) {
      if (lastSaved !== state.step) await save(true);
      await ctx.checkpoints.flush();
    }
    // Nobody leaves before rank 0 has committed the final checkpoint: the gang exits 75 together.
    await group.barrier({ timeoutMs: deadlines.slowMs });
    log.info({ step: state.step, epoch: state.cursor.epoch }, `stopped on request at step ${state.step}; final checkpoint written`);
    return { kind: 'stopped', state, ...(bestWeights ? { best: bestWeights } : {}) };
  };

  while (!state.finished && state.cursor.epoch < t.epochs) {
    const epoch = state.cursor.epoch;
    const order = epochOrder(examples.length, t.seed, epoch);
    // This rank's rows of each global batch left in the epoch, read while the steps before them train.
    const epochStart = state.cursor.sample;
    const imagesAt = (sample: number): number[] => {
      const slice = rankSlice(sample, hyper.batchSize, rank);
      return order.slice(slice.start, slice.end).map((i) => examples.at(i).image);
    };
    const reader = new Prefetcher((k) => data.train.features.read(imagesAt(epochStart + k * globalBatch)), batchesPerEpoch(examples.length - epochStart, globalBatch), PREFETCH_BATCHES);
    while (epochHasBatch(examples.length, state.cursor.sample, globalBatch)) {
      // A step is synchronous tfjs work: yield once so a pending SIGTERM handler gets to run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      // One process stops before the step; a gang agrees through the step's all-reduce and stops after it.
      if (!sync && ctx.stopRequested()) return stop();
      const sample = state.cursor.sample;
      const slice = rankSlice(sample, hyper.batchSize, rank);
      const picked = order.slice(slice.start, slice.end).map((i) => examples.at(i));
      const batch = makeBatch(data.train.features, await reader.get((sample - epochStart) / globalBatch), picked);
      const teacherForcing = teacherForcingAt(teacherForcingPlan, state.step);
      const noise = stepNoise(t.seed, state.step, { steps, batch: hyper.batchSize, hidden: decoder.cfg.hiddenDim, offset: rank * hyper.batchSize, globalBatch }, decoder.cfg.dropout, teacherForcing);
      const lr = learningRateAt(state.lrSchedule, schedule, state.step);
      const stepStarted = performance.now();
      const r = await trainStep(decoder, adam, batch, noise, lr, opts, sync && {
        scale: { words: targetWords(order.slice(sample, sample + globalBatch).map((i) => examples.at(i))), captions: globalBatch },
        gradients: sync,
        stopRequested: ctx.stopRequested(),
        timeoutMs: deadlines.stepMs(),
      });
      const stepMs = performance.now() - stepStarted;
      deadlines.recordStep(stepMs);
      ctx.onStep?.(stepMs / 1000, r.allReduce);
      disposeBatch(batch);
      disposeNoise(noise);
      if (!Number.isFinite(r.loss)) throw new Error(`loss is ${r.loss} at step ${state.step}: training diverged (lower spec.training.learningRate)`);
      state.step += 1;
      state.cursor = { epoch, sample: sample + globalBatch };
      state.epochLoss = { sum: state.epochLoss.sum + r.loss, steps: state.epochLoss.steps + 1 };
      ctx.progress?.trained(state.step, totalSteps, epoch, state.epochLoss.sum / state.epochLoss.steps);
      const elapsed = (Date.now() - started) / 1000;
      const stepsPerSecond = (state.step - startStep) / Math.max(elapsed, 1e-3);
      const progress = { step: state.step, epoch, loss: round(r.loss), gradNorm: round(r.gradNorm), lr, teacherForcing: round(teacherForcing), stepsPerSecond: round(stepsPerSecond), etaSeconds: Math.round((totalSteps - state.step) / stepsPerSecond), ...(r.allReduce ? { allReduceSeconds: round(r.allReduce.seconds) } : {}) };
      log.debug(progress, 'step');
      const lastOfEpoch = !epochHasBatch(examples.length, state.cursor.sample, globalBatch);
      if (writer && (Date.now() - lastInfoLog > 5000 || lastOfEpoch)) {
        lastInfoLog = Date.now();
        log.info(progress, `step ${state.step}/${totalSteps} loss ${progress.loss} (${progress.stepsPerSecond} steps/s, ETA ${progress.etaSeconds} s)`);
      }
      if (r.stop) return stop();
      const epochEndSave = config.checkpoint.everyEpoch && lastOfEpoch;
      if (config.checkpoint.everySteps && state.step % config.checkpoint.everySteps === 0 && !epochEndSave) {
        await save(false, { loss: r.loss });
        // Rank 0 may wait for the previous save before the next all-reduce: give the others that long.
        deadlines.expectSlowStep();
      }
    }
    const trainLoss = state.epochLoss.steps > 0 ? state.epochLoss.sum / state.epochLoss.steps : Number.NaN;
    const { record, improved } = await endOfEpoch(ctx, state, schedule, opts, trainLoss, learningRateAt(state.lrSchedule, schedule, Math.max(0, state.step - 1)), deadlines.slowMs);
    if (improved) bestWeights = packParameters(decoder);
    state.epochLoss = { sum: 0, steps: 0 };
    state.cursor = { epoch: epoch + 1, sample: 0 };
    const stopEarly = t.earlyStoppingPatience > 0 && t.validationMetric !== 'none' && state.early.epochsWithoutImprovement >= t.earlyStoppingPatience;
    if (stopEarly) log.info({ epoch, patience: t.earlyStoppingPatience }, `early stopping: no improvement for ${t.earlyStoppingPatience} epochs`);
    state.finished = stopEarly || state.cursor.epoch >= t.epochs;
    const metrics: Record<string, number> = { ...(Number.isFinite(record.trainLoss) ? { loss: record.trainLoss } : {}) };
    if (record.valBleu4 !== undefined) metrics.valBleu4 = record.valBleu4;
    if (record.valCider !== undefined) metrics.valCider = record.valCider;
    if (record.valLoss !== undefined) metrics.valLoss = record.valLoss;
    if (config.checkpoint.everyEpoch || state.finished) await save(true, metrics);
    deadlines.expectSlowStep();
  }
  if (writer) await ctx.checkpoints.flush();
  return { kind: 'finished', state, ...(bestWeights ? { best: bestWeights } : {}) };
}

/**
 * How long a rank waits for its peers in one collective before it calls a peer hung: the spec's
 * collectiveTimeoutSeconds, else max(60 s, 10 x the median of the recent steps). A step that follows an
 * epoch end (validation, a must-commit checkpoint) or a checkpoint save of rank 0 may legitimately take
 * much longer than a step, so the next collective gets rendezvousTimeoutSeconds instead.
 */
class CollectiveDeadlines {
  readonly slowMs: number;
  private readonly fixedMs?: number;
  private readonly recent: number[] = [];
  private slowNext = false;

  constructor(config: TrainConfig) {
    const d = config.distributed;
    this.slowMs = d.rendezvousTimeoutSeconds * 1000;
    this.fixedMs = d.collectiveTimeoutSeconds === undefined ? undefined : d.collectiveTimeoutSeconds * 1000;
  }

  stepMs(): number {
    const usual = this.fixedMs ?? Math.max(60_000, 10 * (this.recent.length > 0 ? quantile(this.recent, 0.5) : 0));
    if (!this.slowNext) return usual;
    this.slowNext = false;
    return Math.max(usual, this.slowMs);
  }

  recordStep(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > 50) this.recent.shift();
  }

  expectSlowStep(): void {
    this.slowNext = true;
  }
}

async function endOfEpoch(ctx: LoopContext, state: TrainerState, schedule: LrScheduleOptions, opts: LossOptions, trainLoss: number, learningRate: number, timeoutMs: number): Promise<{ record: EpochRecord; improved: boolean }> {
  const { config, decoder, data, hyper, log, group } = ctx;
  const epoch = state.cursor.epoch;
  const record: EpochRecord = { epoch, step: state.step, trainLoss, learningRate };
  const metric = config.training.validationMetric;
  let improved = false;
  if (data.val.table.features.length > 0 && metric !== 'none') {
    ctx.progress?.enter('Validating');
    const greedy = { maxWords: hyper.maxCaptionLength - 2, noRepeatNgramSize: config.evaluation.noRepeatNgramSize };
    const scores = await validationScores(decoder, data.val, data.vocabulary, greedy, group, timeoutMs);
    record.valBleu4 = scores.bleu4;
    record.valCider = scores.ciderD;
    if (metric === 'loss') record.valLoss = await validationLoss(decoder, data.val, opts, group, timeoutMs);
    const value = metricValue(metric, record) as number;
    state.lrSchedule = afterValidation(state.lrSchedule, schedule, value);
    improved = state.early.best === null || (higherIsBetter(config) ? value > state.early.best : value < state.early.best);
    state.early = improved ? { best: value, epochsWithoutImprovement: 0 } : { best: state.early.best, epochsWithoutImprovement: state.early.epochsWithoutImprovement + 1 };
  }
  state.history.push(record);
  ctx.progress?.validated(record.valBleu4);
  if (group.rank === 0) log.info({ ...record, lrNext: state.lrSchedule.current, improved }, `epoch ${epoch + 1}/${config.training.epochs}: train loss ${round(trainLoss)}${record.valBleu4 !== undefined ? `, val BLEU-4 ${round(record.valBleu4)}` : ''}${record.valCider !== undefined ? `, CIDEr-D ${round(record.valCider)}` : ''}${improved ? ' (best so far)' : ''}`);
  return { record, improved };
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
