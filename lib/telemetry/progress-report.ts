// What a trainer says about itself on GET /progress, and what the operator accepts from it. Rank 0's
// report is how `kubectl get captionruns` shows the stage, step and ETA between checkpoints, and how the
// operator learns the newest committed checkpoint without reading the store: trainer pods need no API
// rights, and the operator only polls pods it launched.

export const PROGRESS_PATH = '/progress';

export const TRAINING_STAGES = ['Starting', 'ExtractingFeatures', 'Training', 'Validating', 'Evaluating', 'WritingReport', 'Uploading', 'Finished'] as const;
export type TrainingStage = (typeof TRAINING_STAGES)[number];

export interface CommittedCheckpoint {
  name: string;
  uri: string;
  step: number;
  epoch: number;
  /** Digest of its MANIFEST.json. */
  digest: string;
  time: string;
  metrics: Record<string, number>;
}

export interface ProgressReport {
  stage: TrainingStage;
  /** How much of the stage is done, 0..1, where the stage can tell (features encoded, steps trained). */
  stageFraction?: number;
  step: number;
  totalSteps?: number;
  /** Zero-based, like status.epoch. */
  epoch: number;
  epochs: number;
  /** Mean training loss of the current epoch so far. */
  loss?: number;
  /** The latest validation BLEU-4. */
  valBleu4?: number;
  /** Seconds until training ends at the rate measured since this process started training. */
  etaSeconds?: number;
  /** The TensorFlow.js backend the trainer computes on. */
  backend?: string;
  hyperparameters?: { batchSize: number; learningRate: number; maxCaptionLength: number; vocabularySize: number };
  /** The checkpoint this gang resumed from, verified; absent for a fresh start. */
  resumedFrom?: string;
  /** The newest checkpoint this process committed or resumed from (rank 0 is the only writer). */
  checkpoint?: CommittedCheckpoint;
  /** When the trainer last changed the report. */
  updateTime: string;
}

export class InvalidProgressReportError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`invalid progress report: ${field} ${detail}`);
    this.name = 'InvalidProgressReportError';
  }
}

/**
 * Checks a report read from a pod field by field: a pod is not trusted to write whatever it likes into a
 * run's status. Unknown fields are dropped.
 */
export function parseProgressReport(value: unknown): ProgressReport {
  const r = record(value, 'report');
  const stage = r.stage;
  if (typeof stage !== 'string' || !(TRAINING_STAGES as readonly string[]).includes(stage)) throw new InvalidProgressReportError('stage', `must be one of ${TRAINING_STAGES.join(', ')}`);
  const report: ProgressReport = {
    stage: stage as TrainingStage,
    step: count(r.step, 'step'),
    epoch: count(r.epoch, 'epoch'),
    epochs: count(r.epochs, 'epochs'),
    updateTime: time(r.updateTime, 'updateTime'),
  };
  if (r.stageFraction !== undefined) report.stageFraction = fraction(r.stageFraction, 'stageFraction');
  if (r.totalSteps !== undefined) report.totalSteps = count(r.totalSteps, 'totalSteps');
  if (r.loss !== undefined) report.loss = finite(r.loss, 'loss');
  if (r.valBleu4 !== undefined) report.valBleu4 = fraction(r.valBleu4, 'valBleu4');
  if (r.etaSeconds !== undefined) report.etaSeconds = count(r.etaSeconds, 'etaSeconds');
  if (r.backend !== undefined) report.backend = text(r.backend, 'backend');
  if (r.resumedFrom !== undefined) report.resumedFrom = text(r.resumedFrom, 'resumedFrom');
  if (r.hyperparameters !== undefined) {
    const h = record(r.hyperparameters, 'hyperparameters');
    report.hyperparameters = {
      batchSize: count(h.batchSize, 'hyperparameters.batchSize'),
      learningRate: finite(h.learningRate, 'hyperparameters.learningRate'),
      maxCaptionLength: count(h.maxCaptionLength, 'hyperparameters.maxCaptionLength'),
      vocabularySize: count(h.vocabularySize, 'hyperparameters.vocabularySize'),
    };
  }
  if (r.checkpoint !== undefined) {
    const c = record(r.checkpoint, 'checkpoint');
    const metrics = record(c.metrics, 'checkpoint.metrics');
    report.checkpoint = {
      name: text(c.name, 'checkpoint.name'),
      uri: text(c.uri, 'checkpoint.uri'),
      step: count(c.step, 'checkpoint.step'),
      epoch: count(c.epoch, 'checkpoint.epoch'),
      digest: text(c.digest, 'checkpoint.digest'),
      time: time(c.time, 'checkpoint.time'),
      metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, finite(v, `checkpoint.metrics.${k}`)])),
    };
  }
  return report;
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidProgressReportError(field, 'must be an object');
  return v as Record<string, unknown>;
}

function finite(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidProgressReportError(field, 'must be a finite number');
  return v;
}

function count(v: unknown, field: string): number {
  const n = finite(v, field);
  if (!Number.isInteger(n) || n < 0) throw new InvalidProgressReportError(field, 'must be a non-negative integer');
  return n;
}

function fraction(v: unknown, field: string): number {
  const n = finite(v, field);
  if (n < 0 || n > 1) throw new InvalidProgressReportError(field, 'must be between 0 and 1');
  return n;
}

function text(v: unknown, field: string): string {
  // Status fields are printed by kubectl: a bounded, printable string only.
  if (typeof v !== 'string' || v.length === 0 || v.length > 1024 || [...v].some((ch) => ch.charCodeAt(0) < 0x20)) throw new InvalidProgressReportError(field, 'must be a printable string of 1 to 1024 characters');
  return v;
}

function time(v: unknown, field: string): string {
  const s = text(v, field);
  if (Number.isNaN(Date.parse(s))) throw new InvalidProgressReportError(field, 'must be an RFC 3339 time');
  return s;
}
