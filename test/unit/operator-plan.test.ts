import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { validateRun } from '../../lib/api/validate.js';
import type { CaptionTrainingRunStatus } from '../../lib/api/types.js';
import { buildWorkerPod } from '../../operator/gang-builder.js';
import { planRun, type PlanInput } from '../../operator/plan-run.js';
import type { StoredRun } from '../../operator/run-object.js';

const settings = { trainerImage: 'trainer:test', clusterDomain: 'cluster.local', nodeLostTolerationSeconds: 30 };
const NOW = Date.parse('2026-01-01T12:00:00Z');

function run(status: CaptionTrainingRunStatus | undefined, spec: Record<string, unknown> = {}): StoredRun {
  const result = validateRun({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'r' },
    spec: {
      dataset: { format: 'synthetic' },
      checkpoint: { store: { local: { path: '/tmp/ckpt' } } },
      resources: { workers: 2, gpusPerWorker: 1 },
      restartPolicy: { backoffLimit: 2, backoffSeconds: 10, maxBackoffSeconds: 15 },
      ...spec,
    },
  });
  assert.ok(result.ok, JSON.stringify(result.issues));
  const r = result.run as unknown as StoredRun;
  r.metadata = { name: 'r', namespace: 'ns', uid: 'u', generation: 3, resourceVersion: '7' };
  if (status) r.status = status;
  return r;
}

type PodState = 'pending' | 'running' | 'succeeded' | { exit: number; reason?: string; message?: string; finishedAt?: string } | { terminating: string };

function pod(r: StoredRun, rank: number, attempt: number, state: PodState, node = 'n1'): V1Pod {
  const p = buildWorkerPod(r, rank, attempt, undefined, settings);
  p.spec = { ...p.spec!, nodeName: node };
  if (state === 'pending') p.status = { phase: 'Pending' };
  else if (state === 'running') p.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  else if (state === 'succeeded') p.status = { phase: 'Succeeded', containerStatuses: [terminated(0)] };
  else if ('terminating' in state) {
    p.metadata = { ...p.metadata, deletionTimestamp: state.terminating as unknown as Date };
    p.status = { phase: 'Running' };
  } else {
    p.status = { phase: 'Failed', containerStatuses: [terminated(state.exit, state.reason, state.message, state.finishedAt)] };
  }
  return p;
}

function terminated(exitCode: number, reason?: string, message?: string, finishedAt = '2026-01-01T11:59:58Z') {
  return { name: 'trainer', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason, message, finishedAt: finishedAt as unknown as Date } } };
}

function plan(r: StoredRun, pods: V1Pod[], extra: Partial<PlanInput> = {}) {
  return planRun({ run: r, pods, serviceExists: true, nowMs: NOW, nodeReady: () => true, forceDeleteAfterMs: 10_000, ...extra });
}

const launched = (extra: CaptionTrainingRunStatus = {}): CaptionTrainingRunStatus => ({ phase: 'Running', attempt: 0, restarts: 0, workers: { ready: 2, total: 2 }, ...extra });

test('a new run gets a service and a whole gang of attempt 0', () => {
  const p = plan(run(undefined), [], { serviceExists: false });
  assert.equal(p.createService, true);
  assert.deepEqual(p.launch, { attempt: 0, ranks: [0, 1] });
  assert.equal(p.status.phase, 'Pending');
  assert.equal(p.status.observedGeneration, 3);
});

test('a gang that came up is Running with every worker ready', () => {
  const r = run({ phase: 'Pending', attempt: 0, restarts: 0, workers: { ready: 0, total: 2 } });
  const p = plan(r, [pod(r, 0, 0, 'running'), pod(r, 1, 0, 'running')]);
  assert.equal(p.status.phase, 'Running');
  assert.deepEqual(p.status.workers, { ready: 2, total: 2 });
  assert.equal(p.launch, undefined);
  assert.equal(p.status.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
});

test('a running gang\'s condition names the checkpoint its trainer resumed from', () => {
  const r = run({ phase: 'Pending', attempt: 1, restarts: 1, workers: { ready: 0, total: 2 }, resumedFrom: '/checkpoints/runs/ns/r/ckpt-000000000004' });
  const p = plan(r, [pod(r, 0, 1, 'running'), pod(r, 1, 1, 'running')]);
  assert.equal(p.status.conditions?.find((c) => c.type === 'Progressing')?.message, 'attempt 1 is training, resumed from /checkpoints/runs/ns/r/ckpt-000000000004');
});

test('one killed worker fails the whole gang: next attempt, counted, with lastFailure', () => {
  const r = run(launched());
  const p = plan(r, [pod(r, 0, 0, 'running'), pod(r, 1, 0, { exit: 137 })]);
  assert.equal(p.status.attempt, 1);
  assert.equal(p.status.restarts, 1);
  assert.equal(p.status.phase, 'Restarting');
  assert.equal(p.status.lastFailure?.pod, 'r-worker-1-0');
  assert.equal(p.status.lastFailure?.exitCode, 137);
  assert.equal(p.status.lastFailure?.reason, 'Signal');
  assert.equal(p.launch, undefined, 'the new gang waits until the old one is gone');
  assert.ok(p.events.some((e) => e.type === 'Warning' && e.reason === 'Signal'));
});

test('the old attempt is deleted before the new gang, and the backoff is respected', () => {
  const failedAt = new Date(NOW - 4000).toISOString();
  const r = run({ phase: 'Restarting', attempt: 1, restarts: 1, workers: { ready: 0, total: 0 }, lastFailure: { reason: 'Signal', time: failedAt } });
  const old = [pod(r, 0, 0, 'running'), pod(r, 1, 0, { exit: 137 })];
  const p1 = plan(r, old);
  assert.deepEqual(p1.deletePods.map((x) => x.metadata?.name).sort(), ['r-worker-0-0', 'r-worker-1-0']);
  assert.equal(p1.launch, undefined);

  const p2 = plan(r, []);
  assert.equal(p2.launch, undefined, 'still inside the 10 s backoff');
  assert.ok(p2.requeueAfterMs !== undefined && p2.requeueAfterMs > 5000 && p2.requeueAfterMs <= 6000);

  const p3 = plan(r, [], { nowMs: NOW + 7000 });
  assert.deepEqual(p3.launch, { attempt: 1, ranks: [0, 1] });
});

test('a crash loop ends Failed after backoffLimit, naming the exit code and the last log line', () => {
  const r = run(launched({ restarts: 2, attempt: 2 }));
  const p = plan(r, [pod(r, 0, 2, { exit: 1, message: 'loading\nError: dataset shard 3 unreadable\n' }), pod(r, 1, 2, 'running')]);
  assert.equal(p.status.phase, 'Failed');
  const failed = p.status.conditions?.find((c) => c.type === 'Failed');
  assert.equal(failed?.reason, 'BackoffLimitExceeded');
  assert.match(failed?.message ?? '', /exited with code 1/);
  assert.match(failed?.message ?? '', /Error: dataset shard 3 unreadable/);
  assert.equal(p.status.restarts, 2);
});

test('a failed run stops the workers still running and keeps the finished ones', () => {
  const r = run({ phase: 'Failed', attempt: 2, restarts: 2, workers: { ready: 1, total: 2 } });
  const p = plan(r, [pod(r, 0, 2, { exit: 1 }), pod(r, 1, 2, 'running')]);
  assert.deepEqual(p.deletePods.map((x) => x.metadata?.name), ['r-worker-1-2']);
  assert.equal(p.launch, undefined);
});

test('exit code 3 fails the run at once with what to fix', () => {
  const r = run(launched());
  const p = plan(r, [pod(r, 0, 0, { exit: 3, message: 'spec.dataset.source: no such bucket' }), pod(r, 1, 0, 'running')]);
  assert.equal(p.status.phase, 'Failed');
  assert.equal(p.status.restarts, 0);
  const failed = p.status.conditions?.find((c) => c.type === 'Failed');
  assert.equal(failed?.reason, 'PermanentExitCode');
  assert.match(failed?.message ?? '', /code 3.*no such bucket.*fix the spec/);
});

test('retryableExitCodes turns every other code permanent, but signals stay retryable', () => {
  const r = run(launched(), { restartPolicy: { backoffLimit: 5, retryableExitCodes: [1] } });
  assert.equal(plan(r, [pod(r, 0, 0, { exit: 4 }), pod(r, 1, 0, 'running')]).status.phase, 'Failed');
  assert.equal(plan(r, [pod(r, 0, 0, { exit: 1 }), pod(r, 1, 0, 'running')]).status.phase, 'Restarting');
  assert.equal(plan(r, [pod(r, 0, 0, { exit: 137, reason: 'OOMKilled' }), pod(r, 1, 0, 'running')]).status.lastFailure?.reason, 'OOMKilled');
});

test('exit 75 after a graceful stop relaunches without counting, even when peers then lost the rendezvous', () => {
  const r = run(launched());
  const p = plan(r, [
    pod(r, 0, 0, { exit: 1, finishedAt: '2026-01-01T11:59:50Z' }),
    pod(r, 1, 0, { exit: 75, finishedAt: '2026-01-01T11:59:55Z' }),
  ]);
  assert.equal(p.status.attempt, 1);
  assert.equal(p.status.restarts, 0);
  assert.equal(p.status.phase, 'Pending');
  assert.equal(p.status.lastFailure, undefined);
  const next = run({ ...p.status });
  assert.deepEqual(plan(next, []).launch, { attempt: 1, ranks: [0, 1] }, 'no backoff after a graceful stop');
});

test('a worker inside its grace period holds the verdict back', () => {
  const r = run(launched());
  const p = plan(r, [pod(r, 0, 0, { exit: 1 }), pod(r, 1, 0, { terminating: new Date(NOW + 20_000).toISOString() })]);
  assert.equal(p.status.attempt, 0);
  assert.equal(p.status.restarts, 0);
  assert.ok(p.requeueAfterMs !== undefined && p.requeueAfterMs <= 20_000);
});

test('a vanished worker of a launched gang is a disruption: relaunch, not counted', () => {
  const r = run(launched());
  const p = plan(r, [pod(r, 0, 0, 'running')]);
  assert.equal(p.status.attempt, 1);
  assert.equal(p.status.restarts, 0);
  assert.equal(p.status.lastFailure?.reason, 'PodDeleted');
});

test('an evicted worker on a lost node is relaunched and force-deleted after the timeout', () => {
  const r = run(launched());
  const gone = new Date(NOW - 15_000).toISOString();
  const pods = [pod(r, 0, 0, 'running', 'n1'), pod(r, 1, 0, { terminating: gone }, 'n2')];
  const nodeReady = (n: string) => n !== 'n2';
  const p = plan(r, pods, { nodeReady });
  assert.equal(p.status.lastFailure?.reason, 'NodeLost');
  assert.equal(p.status.attempt, 1);
  assert.deepEqual(p.forceDeletePods.map((x) => x.metadata?.name), ['r-worker-1-0']);
  const early = plan(r, pods, { nodeReady, nowMs: NOW - 10_000 });
  assert.deepEqual(early.forceDeletePods, []);
});

test('suspend ends the attempt; unsuspend launches the next one', () => {
  const r = run(launched(), { suspend: true });
  const p = plan(r, [pod(r, 0, 0, 'running'), pod(r, 1, 0, 'running')]);
  assert.equal(p.status.phase, 'Suspended');
  assert.equal(p.status.attempt, 1);
  const suspended = run({ ...p.status }, { suspend: true });
  const p2 = plan(suspended, [pod(r, 0, 0, 'running'), pod(r, 1, 0, 'running')]);
  assert.equal(p2.deletePods.length, 2);
  assert.equal(p2.launch, undefined);
  const resumed = plan(run({ ...p.status }), []);
  assert.equal(resumed.status.phase, 'Pending');
  assert.deepEqual(resumed.launch, { attempt: 1, ranks: [0, 1] });
  assert.equal(resumed.status.conditions?.find((c) => c.type === 'Suspended')?.status, 'False');
});

test('every worker exiting 0 is success', () => {
  const r = run(launched());
  const p = plan(r, [pod(r, 0, 0, 'succeeded'), pod(r, 1, 0, 'succeeded')]);
  assert.equal(p.status.phase, 'Succeeded');
  assert.ok(p.status.completionTime);
});

test('a launch interrupted half-way completes with the same resume point', () => {
  const r = run({ phase: 'Pending', attempt: 3, restarts: 0, workers: { ready: 0, total: 0 } });
  const existing = buildWorkerPod(r, 0, 3, '/tmp/ckpt/ns/r/ckpt-000000000020', settings);
  const p = plan(r, [existing]);
  assert.deepEqual(p.launch, { attempt: 3, ranks: [1], resumeFrom: { uri: '/tmp/ckpt/ns/r/ckpt-000000000020' } });
});

test('an image that can never be pulled fails the run', () => {
  const r = run({ phase: 'Pending', attempt: 0, restarts: 0, workers: { ready: 0, total: 2 } });
  const bad = pod(r, 0, 0, 'pending');
  bad.status = { phase: 'Pending', containerStatuses: [{ name: 'trainer', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull', message: 'manifest unknown' } } }] };
  const p = plan(r, [bad, pod(r, 1, 0, 'pending')]);
  assert.equal(p.status.phase, 'Failed');
  assert.match(p.status.conditions?.find((c) => c.type === 'Failed')?.message ?? '', /spec.resources.image/);
});
