// What a checkpoint holds and how it maps onto the trainer: decoder weights and Adam moments as raw
// little-endian float32 (never float16: resuming must reproduce the uninterrupted run bit for bit), the
// vocabulary, and one JSON state with everything else (data cursor, RNG, LR schedule, resolved
// hyperparameters, config, metrics history). Capturing copies tensors to host buffers; that is all the
// training loop pays — serialising, hashing and upload happen in the checkpoint writer.
import { tf } from '../backend.js';
import { Vocabulary, type VocabularyJSON } from '../data/tokenizer.js';
import { parameterShapes, type Decoder, type DecoderConfig } from '../model/decoder.js';
import { packParameters, packTensors, unpackTensors } from '../model/packed-tensors.js';
import type { Adam } from './adam.js';
import type { DataCursor } from './batches.js';
import type { TrainConfig } from './config.js';
import type { Hyperparameters } from './hyperparameters.js';
import type { LrScheduleState } from './lr-schedule.js';

export const WEIGHTS_FILE = 'decoder.f32';
export const ADAM_M_FILE = 'adam-m.f32';
export const ADAM_V_FILE = 'adam-v.f32';
export const VOCABULARY_FILE = 'vocabulary.json';
/** The decoder weights of the best-validated epoch so far: what the final outputs hold. */
export const BEST_WEIGHTS_FILE = 'best-decoder.f32';

export interface EpochRecord {
  epoch: number;
  step: number;
  trainLoss: number;
  valBleu4?: number;
  valCider?: number;
  valLoss?: number;
  learningRate: number;
}

/** The JSON half of a checkpoint. */
export interface TrainerState {
  formatVersion: 2;
  /** Optimizer steps completed. */
  step: number;
  cursor: DataCursor;
  /** Processes of the gang that wrote it; a resume on another world size continues from the same cursor. */
  worldSize: number;
  /** The counter RNG needs only its seed: every draw is keyed by the step or epoch it belongs to. */
  rng: { seed: number; keyedBy: 'step' };
  lrSchedule: LrScheduleState;
  adamSteps: number;
  early: { best: number | null; epochsWithoutImprovement: number };
  /** Training loss summed over the current epoch so far, so a resumed epoch reports the same mean. */
  epochLoss: { sum: number; steps: number };
  hyperparameters: Hyperparameters;
  decoder: DecoderConfig;
  config: TrainConfig;
  history: EpochRecord[];
  /** Set by the last checkpoint of a run that ran to completion (or stopped early). */
  finished: boolean;
}

export interface SnapshotFile {
  name: string;
  data: Uint8Array;
}

export interface Snapshot {
  step: number;
  epoch: number;
  files: SnapshotFile[];
  state: TrainerState;
  metrics?: Record<string, number>;
}

/** `best`: the packed weights of the best-validated epoch, kept so that a resumed run still ends on them. */
export function captureSnapshot(decoder: Decoder, adam: Adam, vocabulary: Vocabulary, state: TrainerState, metrics?: Record<string, number>, best?: Uint8Array): Snapshot {
  const names = parameterShapes(decoder.cfg).map(([n]) => n);
  const files: SnapshotFile[] = [
    { name: WEIGHTS_FILE, data: packParameters(decoder) },
    { name: ADAM_M_FILE, data: packTensors(names.map((n) => adam.m.get(n) as tf.Tensor)) },
    { name: ADAM_V_FILE, data: packTensors(names.map((n) => adam.v.get(n) as tf.Tensor)) },
    { name: VOCABULARY_FILE, data: new TextEncoder().encode(JSON.stringify(vocabulary.toJSON())) },
    // A copy: the checkpoint writer takes ownership of (detaches) each file's buffer, and the loop keeps
    // the best weights across many saves.
    ...(best ? [{ name: BEST_WEIGHTS_FILE, data: best.slice() }] : []),
  ];
  return { step: state.step, epoch: state.cursor.epoch, files, state: structuredClone(state), metrics };
}

export interface RestoredParts {
  state: TrainerState;
  vocabulary: Vocabulary;
  weights: Map<string, Float32Array>;
  adamM: Map<string, Float32Array>;
  adamV: Map<string, Float32Array>;
  /** Packed weights of the best-validated epoch; absent in checkpoints of runs without a validation metric. */
  best?: Uint8Array;
}

/** Splits a loaded checkpoint back into its parts; throws when a file is missing or the wrong size. */
export function readSnapshot(files: Map<string, Uint8Array>, state: unknown): RestoredParts {
  const s = upgradeState(state);
  const file = (name: string): Uint8Array => {
    const data = files.get(name);
    if (!data) throw new Error(`checkpoint has no ${name}`);
    return data;
  };
  const shapes = parameterShapes(s.decoder);
  const vocabulary = Vocabulary.fromJSON(JSON.parse(new TextDecoder().decode(file(VOCABULARY_FILE))) as VocabularyJSON);
  return {
    state: s,
    vocabulary,
    weights: unpackTensors(file(WEIGHTS_FILE), shapes),
    adamM: unpackTensors(file(ADAM_M_FILE), shapes),
    adamV: unpackTensors(file(ADAM_V_FILE), shapes),
    ...bestWeights(files, shapes),
  };
}

function bestWeights(files: Map<string, Uint8Array>, shapes: [string, number[]][]): { best?: Uint8Array } {
  const best = files.get(BEST_WEIGHTS_FILE);
  if (!best) return {};
  // Unpacking checks the size against the decoder's shapes, so a truncated file fails here, not at the end of the run.
  unpackTensors(best, shapes);
  return { best };
}

/**
 * Version 1 states (before data parallelism) counted the cursor in batches of one process; version 2 counts
 * examples of the global order, so that a checkpoint resumes on any number of processes.
 */
function upgradeState(state: unknown): TrainerState {
  const s = state as Omit<TrainerState, 'formatVersion' | 'cursor' | 'worldSize'> & { formatVersion: number; cursor: { epoch: number; sample?: number; batch?: number }; worldSize?: number };
  if (s.formatVersion === 2) return s as TrainerState;
  if (s.formatVersion !== 1) throw new Error(`trainer state formatVersion ${String(s.formatVersion)} is neither 1 nor 2`);
  return { ...s, formatVersion: 2, worldSize: 1, cursor: { epoch: s.cursor.epoch, sample: (s.cursor.batch ?? 0) * s.hyperparameters.batchSize } };
}

/** Overwrites Adam's moments and step count with restored values. */
export function restoreAdam(adam: Adam, m: Map<string, Float32Array>, v: Map<string, Float32Array>, steps: number): void {
  for (const [name, variable] of adam.m) variable.assign(tf.tensor(m.get(name) as Float32Array, variable.shape));
  for (const [name, variable] of adam.v) variable.assign(tf.tensor(v.get(name) as Float32Array, variable.shape));
  adam.t = steps;
}
