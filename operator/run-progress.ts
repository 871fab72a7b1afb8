// How a run's progress reaches its status, from the two sources there are: rank 0's live report (stage,
// step, ETA, within a poll interval of the truth) and the newest checkpoint in the store (what survives the
// pods). Pure functions of (status, source); the reconciler decides which source it has.
import type { CaptionTrainingRunStatus } from '../lib/api/types.js';
import type { CommittedCheckpoint, ProgressReport } from '../lib/telemetry/progress-report.js';
import type { PlannedEvent } from './run-plan.js';

/**
 * Copies a live report into status, rounded as `kubectl get` prints it. Returns the event telling which
 * checkpoint the trainer resumed from, when that is news: the pods were given none, or another one.
 */
export function applyProgressReport(status: CaptionTrainingRunStatus, report: ProgressReport): PlannedEvent | undefined {
  const percent = report.stageFraction === undefined ? undefined : Math.floor(report.stageFraction * 100);
  status.progress = {
    stage: report.stage,
    summary: percent === undefined ? report.stage : `${report.stage} ${percent}%`,
    ...(percent === undefined ? {} : { percent }),
    ...(report.etaSeconds === undefined ? {} : { etaSeconds: report.etaSeconds, eta: formatDuration(report.etaSeconds) }),
    updateTime: report.updateTime,
  };
  status.step = report.step;
  status.epoch = report.epoch;
  if (report.loss !== undefined) status.loss = roundTo(report.loss, 4);
  if (report.valBleu4 !== undefined) status.valBleu4 = roundTo(report.valBleu4, 3);
  if (report.backend !== undefined) status.backend = report.backend;
  // What the trainer verified and loaded, which may differ from the operator's choice (a corrupt checkpoint
  // skipped) or fill in what the operator could not see (a PVC store).
  const resumed = report.resumedFrom !== undefined && report.resumedFrom !== status.resumedFrom ? report.resumedFrom : undefined;
  if (resumed !== undefined) status.resumedFrom = resumed;
  if (report.hyperparameters !== undefined) status.hyperparameters = { ...report.hyperparameters };
  if (report.checkpoint !== undefined && (status.lastCheckpoint?.step ?? -1) <= report.checkpoint.step) setLastCheckpoint(status, report.checkpoint);
  return resumed === undefined ? undefined : { type: 'Normal', reason: 'Resumed', message: `attempt ${status.attempt ?? 0}: the trainer resumed from ${resumed}` };
}

/**
 * The newest checkpoint as the run's checkpoint column, and as its progress when no live report is newer
 * (between gangs, or with a trainer that serves none).
 */
export function applyCheckpoint(status: CaptionTrainingRunStatus, c: CommittedCheckpoint): void {
  setLastCheckpoint(status, c);
  if ((status.step ?? -1) > c.step) return;
  status.step = c.step;
  status.epoch = c.epoch;
  if (Number.isFinite(c.metrics.loss)) status.loss = roundTo(c.metrics.loss as number, 4);
  if (Number.isFinite(c.metrics.valBleu4)) status.valBleu4 = roundTo(c.metrics.valBleu4 as number, 3);
}

/** "45s", "4m05s", "2h03m": what an ETA column needs, no more. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function setLastCheckpoint(status: CaptionTrainingRunStatus, c: CommittedCheckpoint): void {
  status.lastCheckpoint = { name: c.name, uri: c.uri, step: c.step, digest: c.digest, time: c.time };
}

function roundTo(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}
