// The status a launched gang leaves behind: worker counts, the resume point, and a condition and event that
// say where the gang starts from, in each of the three cases the operator can be in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CaptionTrainingRunStatus } from '../../lib/api/types.js';
import { gangCreated } from '../../operator/gang-created.js';

const NOW = '2026-01-01T12:00:00.000Z';
const progressing = (s: CaptionTrainingRunStatus) => s.conditions?.find((c) => c.type === 'Progressing');

test('a gang given a checkpoint names it in status, condition and event', () => {
  const status: CaptionTrainingRunStatus = { phase: 'Restarting', workers: { ready: 1, total: 0 } };
  const uri = 's3://b/runs/ns/r/ckpt-000000000012';
  const event = gangCreated(status, { attempt: 2, workers: 2, worldSize: 4, resumeFrom: uri }, NOW, 5);
  assert.deepEqual(status.workers, { ready: 1, total: 2 });
  assert.equal(status.worldSize, 4);
  assert.equal(status.resumedFrom, uri);
  assert.deepEqual(progressing(status), {
    type: 'Progressing', status: 'True', reason: 'GangCreated', lastTransitionTime: NOW, observedGeneration: 5,
    message: `attempt 2: 2 workers, 4 training processes, resuming from ${uri}`,
  });
  assert.deepEqual(event, { type: 'Normal', reason: 'GangCreated', message: `created attempt 2 with 2 workers (4 training processes), resuming from ${uri}` });
});

test('a store the operator cannot read leaves the resume point to the trainer, and says so', () => {
  const status: CaptionTrainingRunStatus = { resumedFrom: '/checkpoints/runs/ns/r/ckpt-000000000004' };
  const event = gangCreated(status, { attempt: 1, workers: 1, worldSize: 1, unseen: 'claim c is mounted into worker pods only' }, NOW, 1);
  assert.equal(status.resumedFrom, undefined, 'the previous gang\'s resume point says nothing about this one');
  assert.match(progressing(status)?.message ?? '', /latest valid checkpoint it finds, if any \(claim c is mounted into worker pods only\)/);
  assert.match(event.message, /status\.resumedFrom names it once the trainer reports/);
});

test('no checkpoint is a fresh start', () => {
  const status: CaptionTrainingRunStatus = {};
  assert.match(gangCreated(status, { attempt: 0, workers: 1, worldSize: 1 }, NOW, 1).message, /starting fresh \(no valid checkpoint\)$/);
  assert.equal(status.resumedFrom, undefined);
});
