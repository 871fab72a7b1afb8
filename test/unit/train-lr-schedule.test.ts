import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterValidation, initialLrState, learningRateAt, type LrScheduleOptions } from '../../trainer-image/train/lr-schedule.js';

const spec = { type: 'plateau' as const, warmupSteps: 0, factor: 0.5, patience: 2, minLearningRate: 0.0002 };

test('plateau: the rate halves after `patience` validations without improvement, never below the minimum', () => {
  const opts: LrScheduleOptions = { spec, higherIsBetter: true, totalSteps: 100 };
  let s = initialLrState('plateau', 0.001);
  s = afterValidation(s, opts, 0.3);
  s = afterValidation(s, opts, 0.4);
  assert.equal(learningRateAt(s, opts, 10), 0.001);
  s = afterValidation(s, opts, 0.39);
  assert.equal(learningRateAt(s, opts, 10), 0.001, 'one bad epoch is within patience');
  s = afterValidation(s, opts, 0.38);
  assert.equal(learningRateAt(s, opts, 10), 0.0005);
  for (let i = 0; i < 10; i++) s = afterValidation(s, opts, 0.1);
  assert.equal(learningRateAt(s, opts, 10), 0.0002);
  const json = JSON.parse(JSON.stringify(s)) as typeof s;
  assert.deepEqual(json, s, 'the state survives a checkpoint round trip unchanged');
});

test('plateau on loss: lower is better', () => {
  const opts: LrScheduleOptions = { spec: { ...spec, patience: 1 }, higherIsBetter: false, totalSteps: 100 };
  let s = afterValidation(initialLrState('plateau', 0.01), opts, 2.0);
  s = afterValidation(s, opts, 1.5);
  assert.equal(learningRateAt(s, opts, 0), 0.01);
  s = afterValidation(s, opts, 1.6);
  assert.equal(learningRateAt(s, opts, 0), 0.005);
});

test('cosine: linear warmup to the base rate, then decay to the minimum at the last step', () => {
  const opts: LrScheduleOptions = { spec: { ...spec, type: 'cosine', warmupSteps: 10 }, higherIsBetter: true, totalSteps: 110 };
  const s = initialLrState('cosine', 0.001);
  assert.ok(Math.abs(learningRateAt(s, opts, 0) - 0.0001) < 1e-12);
  assert.ok(Math.abs(learningRateAt(s, opts, 9) - 0.001) < 1e-12);
  assert.ok(Math.abs(learningRateAt(s, opts, 10) - 0.001) < 1e-12);
  assert.ok(Math.abs(learningRateAt(s, opts, 60) - (0.0002 + 0.0008 / 2)) < 1e-12);
  assert.ok(Math.abs(learningRateAt(s, opts, 110) - 0.0002) < 1e-12);
  assert.ok(learningRateAt(s, opts, 30) > learningRateAt(s, opts, 31));
});
