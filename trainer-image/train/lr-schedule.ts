// Learning-rate schedules. All state is plain numbers, saved in every checkpoint, so a resumed run uses the
// same rate at every step as an uninterrupted one.
//   constant: the base rate.
//   cosine:   linear warmup from 0 over warmupSteps, then cosine decay to minLearningRate at the last step.
//   plateau:  ReduceLROnPlateau: multiply by `factor` after `patience` validations without improvement.
import type { TrainingSpec } from '../../lib/api/types.js';

export interface LrScheduleState {
  type: TrainingSpec['lrSchedule']['type'];
  base: number;
  /** The plateau schedule's current rate (the base rate for the others). */
  current: number;
  best: number | null;
  badEpochs: number;
}

export interface LrScheduleOptions {
  spec: TrainingSpec['lrSchedule'];
  /** Whether a larger validation value is better (BLEU) or worse (loss). */
  higherIsBetter: boolean;
  totalSteps: number;
}

export function initialLrState(type: LrScheduleState['type'], base: number): LrScheduleState {
  return { type, base, current: base, best: null, badEpochs: 0 };
}

/** The rate for optimizer step `step` (0-based). */
export function learningRateAt(state: LrScheduleState, opts: LrScheduleOptions, step: number): number {
  const { warmupSteps, minLearningRate } = opts.spec;
  switch (state.type) {
    case 'constant':
      return state.base;
    case 'plateau':
      return state.current;
    case 'cosine': {
      if (step < warmupSteps) return (state.base * (step + 1)) / warmupSteps;
      const span = Math.max(1, opts.totalSteps - warmupSteps);
      const progress = Math.min(1, (step - warmupSteps) / span);
      return minLearningRate + 0.5 * (state.base - minLearningRate) * (1 + Math.cos(Math.PI * progress));
    }
  }
}

/** Records one validation result; returns the new state (the plateau schedule may lower its rate). */
export function afterValidation(state: LrScheduleState, opts: LrScheduleOptions, metric: number): LrScheduleState {
  const improved = state.best === null || (opts.higherIsBetter ? metric > state.best : metric < state.best);
  if (improved) return { ...state, best: metric, badEpochs: 0 };
  const badEpochs = state.badEpochs + 1;
  if (state.type !== 'plateau' || badEpochs < opts.spec.patience) return { ...state, badEpochs };
  return { ...state, current: Math.max(opts.spec.minLearningRate, state.current * opts.spec.factor), badEpochs: 0 };
}
