// The trainer's running account of where it is, served on GET /progress: stage, step, epoch, loss, ETA and
// the newest committed checkpoint. Updating it costs a few assignments, so the loop does it every step.
import type { CommittedCheckpoint, ProgressReport, TrainingStage } from '../../lib/telemetry/progress-report.js';

export class TrainingProgress {
  private report: ProgressReport;
  /** The first step this process trained and when it ended: the ETA's rate is measured from there. */
  private firstStep: { step: number; atMs: number } | undefined;

  constructor(epochs: number, private readonly nowMs: () => number = Date.now) {
    this.report = { stage: 'Starting', step: 0, epoch: 0, epochs, updateTime: this.now() };
  }

  current(): ProgressReport {
    return structuredClone(this.report);
  }

  enter(stage: TrainingStage): void {
    // Fraction and ETA belong to the stage that reported them.
    const next: ProgressReport = { ...this.report, stage, updateTime: this.now() };
    delete next.stageFraction;
    delete next.etaSeconds;
    this.report = next;
  }

  extractingFeatures(done: number, total: number): void {
    this.report = { ...this.report, stage: 'ExtractingFeatures', stageFraction: total > 0 ? Math.min(1, done / total) : 0, updateTime: this.now() };
  }

  started(facts: Pick<ProgressReport, 'backend' | 'hyperparameters' | 'resumedFrom' | 'checkpoint'> & { step: number; epoch: number }): void {
    this.report = { ...this.report, ...facts, updateTime: this.now() };
  }

  /** After each optimizer step: the step count, where the epoch is, and its mean loss so far. */
  trained(step: number, totalSteps: number, epoch: number, epochLoss: number): void {
    const now = this.nowMs();
    // The first step of a process includes kernel compilation; its end is where a steady rate starts.
    if (this.firstStep === undefined) this.firstStep = { step, atMs: now };
    const stepsDone = step - this.firstStep.step;
    const rate = stepsDone > 0 ? stepsDone / Math.max(1e-3, (now - this.firstStep.atMs) / 1000) : undefined;
    this.report = {
      ...this.report,
      stage: 'Training',
      stageFraction: totalSteps > 0 ? Math.min(1, step / totalSteps) : 0,
      step,
      totalSteps,
      epoch,
      ...(Number.isFinite(epochLoss) ? { loss: epochLoss } : {}),
      ...(rate === undefined ? {} : { etaSeconds: Math.round(Math.max(0, totalSteps - step) / rate) }),
      updateTime: new Date(now).toISOString(),
    };
    if (rate === undefined) delete this.report.etaSeconds;
  }

  validated(valBleu4: number | undefined): void {
    if (valBleu4 !== undefined && Number.isFinite(valBleu4)) this.report = { ...this.report, valBleu4, updateTime: this.now() };
  }

  committed(checkpoint: CommittedCheckpoint): void {
    // Commits finish in the background and may be reported out of order; the newest step wins.
    if (this.report.checkpoint && this.report.checkpoint.step > checkpoint.step) return;
    this.report = { ...this.report, checkpoint, updateTime: this.now() };
  }

  private now(): string {
    return new Date(this.nowMs()).toISOString();
  }
}
