import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateRun } from '../../lib/api/validate.js';
import { teacherForcingAt, teacherForcingSchedule } from '../../trainer-image/train/teacher-forcing.js';

function spec(training: Record<string, unknown>): ReturnType<typeof validateRun> {
  return validateRun({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'tf' },
    spec: { dataset: { format: 'synthetic' }, training, checkpoint: { store: { local: { path: '/tmp/x' } } } },
  });
}

function issues(training: Record<string, unknown>): string[] {
  const r = spec(training);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}

test('linear decay goes from start to end over decaySteps, then stays at end', () => {
  const s = { schedule: 'linear', start: 1, end: 0.25, decaySteps: 100 } as const;
  assert.deepEqual([0, 20, 50, 100, 101, 10_000].map((step) => teacherForcingAt(s, step)), [1, 0.85, 0.625, 0.25, 0.25, 0.25]);
});

test('inverse-sigmoid decay follows k / (k + exp(step / k)) between start and end, halfway at step k ln k', () => {
  const s = { schedule: 'inverseSigmoid', start: 0.9, end: 0.1, k: 50 } as const;
  assert.equal(teacherForcingAt(s, 0), 0.1 + 0.8 * (50 / 51));
  assert.ok(Math.abs(teacherForcingAt(s, 50 * Math.log(50)) - 0.5) < 1e-12);
  const curve = [0, 100, 200, 300, 400].map((step) => teacherForcingAt(s, step));
  curve.slice(1).forEach((p, i) => assert.ok(p < (curve[i] as number), `decreasing at ${i}`));
  assert.equal(teacherForcingAt(s, 1e9), 0.1, 'exp overflows to Infinity: exactly end, never NaN');
});

test('teacherForcingRatio is a constant schedule; a spec with neither always feeds the ground truth', () => {
  const ratio = spec({ teacherForcingRatio: 0.7 });
  assert.ok(ratio.ok);
  assert.deepEqual(teacherForcingSchedule(ratio.run.spec.training), { schedule: 'constant', start: 0.7 });
  const none = spec({});
  assert.ok(none.ok);
  assert.equal(teacherForcingAt(teacherForcingSchedule(none.run.spec.training), 12345), 1);
  const linear = spec({ teacherForcing: { schedule: 'linear', end: 0.5, decaySteps: 10 } });
  assert.ok(linear.ok, JSON.stringify(linear.ok ? [] : linear.issues));
  assert.deepEqual(linear.run.spec.training.teacherForcing, { schedule: 'linear', start: 1, end: 0.5, decaySteps: 10 }, 'start defaults to 1');
});

test('validation rejects schedules the trainer could not follow, naming the field and the fix', () => {
  assert.deepEqual(issues({ teacherForcing: { schedule: 'linear', end: 0.5 } }), ['spec.training.teacherForcing.decaySteps: belongs to schedule linear: set it there (steps from start to end) and nowhere else']);
  assert.deepEqual(issues({ teacherForcing: { schedule: 'inverseSigmoid', k: 100 } }), ['spec.training.teacherForcing.end: is required with schedule linear or inverseSigmoid: set the probability the schedule decays to']);
  assert.deepEqual(issues({ teacherForcing: { schedule: 'constant', start: 0.8, k: 100 } }), ['spec.training.teacherForcing.k: belongs to schedule inverseSigmoid: set it there (steepness in steps) and nowhere else']);
  assert.deepEqual(issues({ teacherForcing: { schedule: 'constant', end: 0.5 } }), ['spec.training.teacherForcing.end: is not used by schedule constant (start holds at every step); remove it or choose linear or inverseSigmoid']);
  assert.deepEqual(issues({ teacherForcing: { schedule: 'linear', start: 0.5, end: 0.9, decaySteps: 10 } }), ['spec.training.teacherForcing.end: must not exceed start: the schedules decay from start to end']);
  assert.deepEqual(issues({ teacherForcingRatio: 0.8, teacherForcing: { schedule: 'constant', start: 0.8 } }), ['spec.training.teacherForcingRatio: is shorthand for teacherForcing {schedule: constant, start: R}; set one of them, not both']);
  assert.match(issues({ teacherForcing: { schedule: 'inverseSigmoid', end: 0.1, k: 0.5 } }).join(), /spec\.training\.teacherForcing\.k: .*>= 1/);
});
