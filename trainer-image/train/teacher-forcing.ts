// Scheduled sampling (Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with Recurrent Neural
// Networks"): each decoder step feeds the ground-truth word with probability p and the model's own previous
// prediction otherwise, and p decays as training goes on, so the model learns to recover from its own
// mistakes. p is a pure function of the optimizer step, which every checkpoint holds: a resumed run draws its
// sampling coins with exactly the probabilities of an uninterrupted one.
import type { TeacherForcingSpec, TrainingSpec } from '../../lib/api/types.js';

/** The spec's schedule; teacherForcingRatio is shorthand for a constant one, and neither means always 1. */
export function teacherForcingSchedule(training: Pick<TrainingSpec, 'teacherForcing' | 'teacherForcingRatio'>): TeacherForcingSpec {
  return training.teacherForcing ?? { schedule: 'constant', start: training.teacherForcingRatio ?? 1 };
}

/** The probability of feeding the ground-truth word during optimizer step `step` (0-based). */
export function teacherForcingAt(s: TeacherForcingSpec, step: number): number {
  switch (s.schedule) {
    case 'constant':
      return s.start;
    case 'linear':
      return s.start + (s.end - s.start) * Math.min(1, step / s.decaySteps);
    case 'inverseSigmoid':
      // exp overflows to Infinity far into training, which gives exactly `end`.
      return s.end + ((s.start - s.end) * s.k) / (s.k + Math.exp(step / s.k));
  }
}
