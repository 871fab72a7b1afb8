// The training loop. Every step is a pure function of (checkpointed state, step number): the batch comes
// from the epoch's seeded order at the data cursor, the dropout masks and sampling coins from the RNG
// keyed by the step, the rate from the schedule state. So a run resumed from any checkpoint continues
// the exact trajectory of an uninterrupted one.
import type { Logger } from '../../lib/telemetry/logger.js';
import type { Vocabulary } from '../data/tokenizer.js';
import type { Decoder } from '../model/decoder.js';
import type { Adam } from './adam.js';
import { batchesPerEpoch, disposeBatch, epochOrder, makeBatch, type Example } from './batches.js';
import type { LossOptions } from './caption-loss.js';
import type { CheckpointIO } from './checkpoint-io.js';
import type { TrainConfig } from './config.js';
import type { FeatureTable } from './features.js';
import type { Hyperparameters } from './hyperparameters.js';
import { afterValidation, initialLrState, learningRateAt, type LrScheduleOptions } from './lr-schedule.js';
import { disposeNoise, stepNoise } from './noise.js';
import { captureSnapshot, type EpochRecord, type TrainerState } from './snapshot.js';
import { trainStep } from './train-step.js';
import { validationBleu4, validationLoss, type ValidationSet } from './validation.js';

export interface TrainingData {
  vocabulary: Vocabulary;
  train: { table: FeatureTable; examples: Example[] };
  val: ValidationSet;
}

export interface LoopContext {
  config: TrainConfig;
  hyper: Hyperparameters;
  decoder: Decoder;
  adam: Adam;
  data: TrainingData;
  checkpoints: CheckpointIO;
  log: Logger;
  /** True once SIGTERM arrived: finish the step, checkpoint, return. */
  stopRequested: () => boolean;
  /** Called after every optimizer step (the health monitor counts them). */
  onStep?: () => void;
}

export type LoopOutcome = { kind: 'finished' | 'stopped'; state: TrainerState };

export function lossOptions(config: TrainConfig): LossOptions {
  const gc = config.training.gradientCheckpointing;
  return { attentionRegularization: config.training.attentionRegularization, blockSteps: gc.enabled ? gc.blockSteps : 1 << 30, checkpointing: gc.enabled };
}

export function freshState(config: TrainConfig, hyper: Hyperparameters, decoder: Decoder): TrainerState {
  return {
    formatVersion: 1,
    step: 0,
    cursor: { epoch: 0, batch: 0 },
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

export async function runTraining(ctx: LoopContext, initial: TrainerState): Promise<LoopOutcome> {
  const { config, hyper, decoder, adam, data, log } = ctx;
  const t = config.training;
  const state: TrainerState = structuredClone(initial);
  const examples = data.train.examples;
  const perEpoch = batchesPerEpoch(examples.length, hyper.batchSize);
  const totalSteps = perEpoch * t.epochs;
  const schedule: LrScheduleOptions = { spec: t.lrSchedule, higherIsBetter: higherIsBetter(config), totalSteps };
  const opts = lossOptions(config);
  const steps = hyper.maxCaptionLength - 1;
  let lastSaved = state.step;
  const started = Date.now();
  const startStep = state.step;
  let lastInfoLog = 0;

  const save = async (must: boolean, metrics?: Record<string, number>): Promise<void> => {
    state.adamSteps = adam.t;
    if (await ctx.checkpoints.save(captureSnapshot(decoder, adam, data.vocabulary, state, metrics), must)) lastSaved = state.step;
  };
  const stop = async (): Promise<LoopOutcome> => {
    if (lastSaved !== state.step) await save(true);
    await ctx.checkpoints.flush();
    log.info({ step: state.step, epoch: state.cursor.epoch }, `stopped on request at step ${state.step}; final checkpoint written`);
    return { kind: 'stopped', state };
  };

  while (!state.finished && state.cursor.epoch < t.epochs) {
    const epoch = state.cursor.epoch;
    const order = epochOrder(examples.length, t.seed, epoch, config.distributed.rank);
    for (let b = state.cursor.batch; b < perEpoch; b++) {
      // A step is synchronous tfjs work: yield once so a pending SIGTERM handler gets to run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (ctx.stopRequested()) return stop();
      const picked = order.slice(b * hyper.batchSize, (b + 1) * hyper.batchSize).map((i) => examples[i] as Example);
      const batch = makeBatch(data.train.table, picked);
      const noise = stepNoise(t.seed, state.step, { steps, batch: hyper.batchSize, hidden: decoder.cfg.hiddenDim }, decoder.cfg.dropout, t.teacherForcingRatio);
      const lr = learningRateAt(state.lrSchedule, schedule, state.step);
      const r = trainStep(decoder, adam, batch, noise, lr, opts);
      ctx.onStep?.();
      disposeBatch(batch);
      disposeNoise(noise);
      if (!Number.isFinite(r.loss)) throw new Error(`loss is ${r.loss} at step ${state.step}: training diverged (lower spec.training.learningRate)`);
      state.step += 1;
      state.cursor = { epoch, batch: b + 1 };
      state.epochLoss = { sum: state.epochLoss.sum + r.loss, steps: state.epochLoss.steps + 1 };
      const elapsed = (Date.now() - started) / 1000;
      const stepsPerSecond = (state.step - startStep) / Math.max(elapsed, 1e-3);
      const progress = { step: state.step, epoch, loss: round(r.loss), gradNorm: round(r.gradNorm), lr, stepsPerSecond: round(stepsPerSecond), etaSeconds: Math.round((totalSteps - state.step) / stepsPerSecond) };
      log.debug(progress, 'step');
      if (Date.now() - lastInfoLog > 5000 || b === perEpoch - 1) {
        lastInfoLog = Date.now();
        log.info(progress, `step ${state.step}/${totalSteps} loss ${progress.loss} (${progress.stepsPerSecond} steps/s, ETA ${progress.etaSeconds} s)`);
      }
      const epochEndSave = config.checkpoint.everyEpoch && b === perEpoch - 1;
      if (config.checkpoint.everySteps && state.step % config.checkpoint.everySteps === 0 && !epochEndSave) await save(false, { loss: r.loss });
    }
    const trainLoss = state.epochLoss.steps > 0 ? state.epochLoss.sum / state.epochLoss.steps : Number.NaN;
    const record = endOfEpoch(ctx, state, schedule, opts, trainLoss, learningRateAt(state.lrSchedule, schedule, Math.max(0, state.step - 1)));
    state.epochLoss = { sum: 0, steps: 0 };
    state.cursor = { epoch: epoch + 1, batch: 0 };
    const stopEarly = t.earlyStoppingPatience > 0 && t.validationMetric !== 'none' && state.early.epochsWithoutImprovement >= t.earlyStoppingPatience;
    if (stopEarly) log.info({ epoch, patience: t.earlyStoppingPatience }, `early stopping: no improvement for ${t.earlyStoppingPatience} epochs`);
    state.finished = stopEarly || state.cursor.epoch >= t.epochs;
    const metrics: Record<string, number> = { ...(Number.isFinite(record.trainLoss) ? { loss: record.trainLoss } : {}) };
    if (record.valBleu4 !== undefined) metrics.valBleu4 = record.valBleu4;
    if (record.valLoss !== undefined) metrics.valLoss = record.valLoss;
    if (config.checkpoint.everyEpoch || state.finished) await save(true, metrics);
  }
  await ctx.checkpoints.flush();
  return { kind: 'finished', state };
}

function endOfEpoch(ctx: LoopContext, state: TrainerState, schedule: LrScheduleOptions, opts: LossOptions, trainLoss: number, learningRate: number): EpochRecord {
  const { config, decoder, data, hyper, log } = ctx;
  const epoch = state.cursor.epoch;
  const record: EpochRecord = { epoch, step: state.step, trainLoss, learningRate };
  const metric = config.training.validationMetric;
  if (data.val.table.features.length > 0 && metric !== 'none') {
    record.valBleu4 = validationBleu4(decoder, data.val, data.vocabulary, hyper.maxCaptionLength - 2);
    if (metric === 'loss') record.valLoss = validationLoss(decoder, data.val, opts);
    const value = metric === 'loss' ? (record.valLoss as number) : record.valBleu4;
    state.lrSchedule = afterValidation(state.lrSchedule, schedule, value);
    const improved = state.early.best === null || (higherIsBetter(config) ? value > state.early.best : value < state.early.best);
    state.early = improved ? { best: value, epochsWithoutImprovement: 0 } : { best: state.early.best, epochsWithoutImprovement: state.early.epochsWithoutImprovement + 1 };
  }
  state.history.push(record);
  log.info({ ...record, lrNext: state.lrSchedule.current }, `epoch ${epoch + 1}/${config.training.epochs}: train loss ${round(trainLoss)}${record.valBleu4 !== undefined ? `, val BLEU-4 ${round(record.valBleu4)}` : ''}`);
  return record;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
