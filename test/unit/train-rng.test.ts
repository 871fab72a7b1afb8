import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CounterRng, permutation, Stream } from '../../trainer-image/util/rng.js';
import { epochOrder } from '../../trainer-image/train/batches.js';

test('a restored counter RNG continues with exactly the values the original would draw', () => {
  const a = new CounterRng(42, Stream.Dropout, 7);
  for (let i = 0; i < 5; i++) a.uniform();
  const b = CounterRng.restore(a.state());
  assert.deepEqual(Array.from({ length: 10 }, () => b.nextUint32()), Array.from({ length: 10 }, () => a.nextUint32()));
});

test('streams and keys are independent; draws are uniform enough to shuffle and drop out', () => {
  const x = new CounterRng(1, Stream.Dropout, 0);
  const y = new CounterRng(1, Stream.DataOrder, 0);
  const z = new CounterRng(1, Stream.Dropout, 1);
  const xs = Array.from({ length: 2000 }, () => x.uniform());
  assert.notDeepEqual(xs.slice(0, 8), Array.from({ length: 8 }, () => y.uniform()));
  assert.notDeepEqual(xs.slice(0, 8), Array.from({ length: 8 }, () => z.uniform()));
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
  assert.ok(xs.every((v) => v >= 0 && v < 1));
});

test('the epoch order is a permutation and a pure function of (seed, epoch), the same on every rank', () => {
  const order = epochOrder(100, 9, 3);
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(epochOrder(100, 9, 3), order);
  assert.notDeepEqual(epochOrder(100, 9, 4), order, 'another epoch shuffles differently');
  assert.notDeepEqual(epochOrder(100, 10, 3), order, 'another seed shuffles differently');
  assert.deepEqual(permutation(1, 1, Stream.DataOrder, 0), [0]);
});
