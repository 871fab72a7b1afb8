// Resolves the "auto" hyperparameters against the dataset and the machine, once, at the start of a fresh
// run; the values are logged and stored in every checkpoint so a resumed run never re-decides them.
//   vocabulary:        every training word seen >= minWordCount times (capped by vocabularySize when set)
//   maxCaptionLength:  95th percentile of tokenised training caption lengths, + <start> and <end>
//   batchSize:         largest power of two whose measured activation memory fits half the free memory,
//                      and small enough that an epoch still has 8 steps
//   learningRate:      1e-3 x global batch / 64 when the spec leaves it out
import { totalmem, freemem } from 'node:os';
import { readFileSync } from 'node:fs';
import type { TrainingSpec } from '../../lib/api/types.js';
import { maxCaptionLength, Vocabulary } from '../data/tokenizer.js';

export interface Hyperparameters {
  batchSize: number;
  learningRate: number;
  maxCaptionLength: number;
  vocabularySize: number;
  /** Which of the four were sized automatically. */
  auto: ('batchSize' | 'learningRate' | 'maxCaptionLength' | 'vocabularySize')[];
  /** The measurement behind an automatic batch size. */
  memory?: { perSampleBytes: number; budgetBytes: number };
}

export function buildVocabulary(training: TrainingSpec, captions: readonly string[]): Vocabulary {
  const maxSize = training.vocabularySize === 'auto' ? undefined : training.vocabularySize;
  return Vocabulary.build(captions, { minCount: training.minWordCount, maxSize });
}

export function resolveMaxCaptionLength(training: TrainingSpec, captions: readonly string[]): number {
  return training.maxCaptionLength === 'auto' ? maxCaptionLength(captions) : training.maxCaptionLength;
}

const MIN_STEPS_PER_EPOCH = 8;
const MAX_AUTO_BATCH = 256;

export function autoBatchSize(perSampleBytes: number, budgetBytes: number, examples: number): number {
  const byMemory = Math.max(1, Math.floor(budgetBytes / Math.max(1, perSampleBytes)));
  const byData = Math.max(1, Math.floor(examples / MIN_STEPS_PER_EPOCH));
  const limit = Math.min(byMemory, byData, MAX_AUTO_BATCH);
  return 2 ** Math.floor(Math.log2(limit));
}

export function scaledLearningRate(training: TrainingSpec, globalBatch: number): number {
  return training.learningRate ?? (1e-3 * globalBatch) / 64;
}

/**
 * Memory the activations of one step may use: half of what is free now, bounded by the cgroup limit
 * (containers) and by the 4 GiB a wasm heap can address.
 */
export function memoryBudget(backend: string): number {
  let limit = Math.min(freemem(), totalmem());
  try {
    const raw = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (raw !== 'max') limit = Math.min(limit, Number(raw));
  } catch {
    // No cgroup v2 memory controller (bare metal, macOS): the OS figure stands.
  }
  if (backend === 'wasm') limit = Math.min(limit, 4 * 1024 ** 3);
  return Math.floor(limit / 2);
}

/** Resolves all four hyperparameters for a fresh run; measures memory only when batchSize is "auto". */
export async function chooseHyperparameters(
  training: TrainingSpec,
  maxCaptionLengthValue: number,
  vocabularySize: number,
  worldSize: number,
  examples: number,
  backend: string,
  measurePerSampleBytes: () => Promise<number>,
): Promise<Hyperparameters> {
  const auto: Hyperparameters['auto'] = [];
  if (training.maxCaptionLength === 'auto') auto.push('maxCaptionLength');
  if (training.vocabularySize === 'auto') auto.push('vocabularySize');
  let batchSize: number;
  let memory: Hyperparameters['memory'];
  if (training.batchSize === 'auto') {
    auto.push('batchSize');
    const perSampleBytes = await measurePerSampleBytes();
    const budgetBytes = memoryBudget(backend);
    memory = { perSampleBytes, budgetBytes };
    batchSize = autoBatchSize(perSampleBytes, budgetBytes, examples);
  } else {
    batchSize = training.batchSize;
  }
  if (training.learningRate === undefined) auto.push('learningRate');
  return {
    batchSize,
    learningRate: scaledLearningRate(training, batchSize * worldSize),
    maxCaptionLength: maxCaptionLengthValue,
    vocabularySize,
    auto,
    ...(memory ? { memory } : {}),
  };
}
