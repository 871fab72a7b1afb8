// The live-progress path from the trainer's side to the run's status: the trainer's account of its stage
// and ETA, the operator's check of what a pod reports, and how a report and a checkpoint land in status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CaptionTrainingRunStatus } from '../../lib/api/types.js';
import { InvalidProgressReportError, parseProgressReport, type CommittedCheckpoint } from '../../lib/telemetry/progress-report.js';
import { applyCheckpoint, applyProgressReport, formatDuration } from '../../operator/run-progress.js';
import { TrainingProgress } from '../../trainer-image/train/progress.js';

const checkpoint = (step: number, loss = 2.123456789): CommittedCheckpoint => ({
  name: `ckpt-${String(step).padStart(12, '0')}`,
  uri: `s3://b/runs/ns/r/ckpt-${String(step).padStart(12, '0')}`,
  step,
  epoch: 1,
  digest: `sha256:${step}`,
  time: '2026-12-04T10:00:00.000Z',
  metrics: { loss },
});

test('the trainer reports stages with their fraction, and an ETA from the rate it measured', () => {
  let now = Date.parse('2026-12-04T10:00:00Z');
  const p = new TrainingProgress(4, () => now);
  assert.equal(p.current().stage, 'Starting');
  p.extractingFeatures(30, 120);
  assert.deepEqual([p.current().stage, p.current().stageFraction], ['ExtractingFeatures', 0.25]);
  p.started({ backend: 'wasm', hyperparameters: { batchSize: 8, learningRate: 0.01, maxCaptionLength: 12, vocabularySize: 40 }, step: 0, epoch: 0 });
  p.trained(1, 101, 0, 3.5);
  assert.equal(p.current().etaSeconds, undefined, 'one step measures no rate yet');
  assert.equal(p.current().stageFraction, 1 / 101);
  now += 20_000;
  p.trained(11, 101, 0, 3.0);
  // 10 steps in 20 s: 90 steps to go take 180 s.
  assert.equal(p.current().etaSeconds, 180);
  assert.equal(p.current().loss, 3.0);
  assert.equal(p.current().backend, 'wasm');
  p.enter('Validating');
  assert.equal(p.current().etaSeconds, undefined, 'an ETA belongs to the training stage');
  assert.equal(p.current().stageFraction, undefined);
  assert.equal(p.current().step, 11, 'the step stays');
  p.committed(checkpoint(10));
  p.committed(checkpoint(4));
  assert.equal(p.current().checkpoint?.step, 10, 'a commit reported late does not replace a newer one');
  // What the trainer serves is what the operator accepts.
  assert.deepEqual(parseProgressReport(JSON.parse(JSON.stringify(p.current()))), p.current());
});

test('a report a pod serves is checked field by field before it can reach status', () => {
  const good = { stage: 'Training', step: 5, epoch: 0, epochs: 2, updateTime: '2026-12-04T10:00:00Z' };
  assert.equal(parseProgressReport({ ...good, extra: 'dropped' }).stage, 'Training');
  assert.equal('extra' in parseProgressReport({ ...good, extra: 'dropped' }), false);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...good, stage: 'Mining' }, /stage must be one of/],
    [{ ...good, step: -1 }, /step must be a non-negative integer/],
    [{ ...good, stageFraction: 1.5 }, /stageFraction must be between 0 and 1/],
    [{ ...good, loss: 'NaN' }, /loss must be a finite number/],
    [{ ...good, backend: 'wasm\nPhase: Succeeded' }, /backend must be a printable string/],
    [{ ...good, updateTime: 'yesterday' }, /updateTime must be an RFC 3339 time/],
    [{ ...good, checkpoint: { ...checkpoint(3), metrics: { loss: null } } }, /checkpoint\.metrics\.loss must be a finite number/],
  ];
  for (const [value, message] of bad) assert.throws(() => parseProgressReport(value), (err: unknown) => err instanceof InvalidProgressReportError && message.test(err.message));
  assert.throws(() => parseProgressReport([]), InvalidProgressReportError);
});

test('a live report sets stage, ETA and the rounded columns; the checkpoint path never moves the step back', () => {
  const status: CaptionTrainingRunStatus = { phase: 'Running' };
  applyProgressReport(status, {
    stage: 'Training',
    stageFraction: 0.376,
    step: 150,
    totalSteps: 400,
    epoch: 2,
    epochs: 8,
    loss: 1.234567891,
    valBleu4: 0.123456,
    etaSeconds: 245,
    backend: 'tensorflow',
    checkpoint: checkpoint(140),
    updateTime: '2026-12-04T10:00:00.000Z',
  });
  assert.deepEqual(status.progress, { stage: 'Training', summary: 'Training 37%', percent: 37, etaSeconds: 245, eta: '4m05s', updateTime: '2026-12-04T10:00:00.000Z' });
  assert.deepEqual([status.step, status.epoch, status.loss, status.valBleu4, status.backend], [150, 2, 1.2346, 0.123, 'tensorflow']);
  assert.equal(status.lastCheckpoint?.step, 140);
  // The store's newest checkpoint is older than the live step: it updates the checkpoint column only.
  applyCheckpoint(status, checkpoint(145, 9));
  assert.deepEqual([status.step, status.loss, status.lastCheckpoint?.step], [150, 1.2346, 145]);
  // Between gangs the store is all there is.
  const fresh: CaptionTrainingRunStatus = {};
  applyCheckpoint(fresh, checkpoint(200, 0.98765));
  assert.deepEqual([fresh.step, fresh.epoch, fresh.loss], [200, 1, 0.9877]);
  // A stage that cannot say how far it is prints just its name.
  applyProgressReport(status, { stage: 'Evaluating', step: 400, epoch: 7, epochs: 8, updateTime: '2026-12-04T10:05:00.000Z' });
  assert.deepEqual(status.progress, { stage: 'Evaluating', summary: 'Evaluating', updateTime: '2026-12-04T10:05:00.000Z' });
});

test('the checkpoint a trainer reports resuming from is recorded once, with an event, when the pods were given another or none', () => {
  const report = { stage: 'Training' as const, step: 6, epoch: 1, epochs: 4, updateTime: '2026-12-04T10:00:00.000Z' };
  // A PVC store: the operator launched without a resume point, the trainer found one.
  const status: CaptionTrainingRunStatus = { phase: 'Running', attempt: 1 };
  const event = applyProgressReport(status, { ...report, resumedFrom: '/checkpoints/runs/ns/r/ckpt-000000000004' });
  assert.deepEqual(event, { type: 'Normal', reason: 'Resumed', message: 'attempt 1: the trainer resumed from /checkpoints/runs/ns/r/ckpt-000000000004' });
  assert.equal(status.resumedFrom, '/checkpoints/runs/ns/r/ckpt-000000000004');
  assert.equal(applyProgressReport(status, { ...report, resumedFrom: '/checkpoints/runs/ns/r/ckpt-000000000004' }), undefined, 'the same report again is no news');
  // The operator's choice was invalid by the time the trainer looked: it fell back to an older checkpoint.
  const chosen: CaptionTrainingRunStatus = { phase: 'Running', attempt: 2, resumedFrom: 's3://b/runs/ns/r/ckpt-000000000008' };
  assert.equal(applyProgressReport(chosen, { ...report, resumedFrom: 's3://b/runs/ns/r/ckpt-000000000006' })?.reason, 'Resumed');
  assert.equal(chosen.resumedFrom, 's3://b/runs/ns/r/ckpt-000000000006');
  assert.equal(applyProgressReport({ phase: 'Running' }, report), undefined, 'a fresh start resumes from nothing');
});

test('ETAs print as kubectl users read durations', () => {
  assert.deepEqual([0, 45, 60, 245, 3599, 3600, 7380].map(formatDuration), ['0s', '45s', '1m00s', '4m05s', '59m59s', '1h00m', '2h03m']);
});
