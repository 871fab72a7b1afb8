import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../operator/runtime/workqueue.js';

test('a key named by many events is queued once', async () => {
  const q = new WorkQueue();
  q.add('ns/a');
  q.add('ns/a');
  q.add('ns/b');
  assert.equal(q.length, 2);
  assert.equal(await q.get(), 'ns/a');
  assert.equal(await q.get(), 'ns/b');
  assert.equal(q.length, 0);
});

test('a key is never handed out twice at once; an event while processing re-queues it after done', async () => {
  const q = new WorkQueue();
  q.add('k');
  const key = await q.get();
  q.add('k');
  assert.equal(q.length, 0, 'held back while a worker has it');
  let second: string | undefined;
  void q.get().then((k) => (second = k));
  await new Promise((r) => setImmediate(r));
  assert.equal(second, undefined);
  q.done(key as string);
  await new Promise((r) => setImmediate(r));
  assert.equal(second, 'k');
});

test('failures back off exponentially per key until forgotten', () => {
  const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => q.addRateLimited('k')), [100, 200, 400, 800, 1000]);
  q.forget('k');
  assert.equal(q.addRateLimited('k'), 100);
  q.shutDown();
});

test('addAfter keeps the earliest pending time and shutdown releases waiting workers', async () => {
  const q = new WorkQueue();
  q.addAfter('k', 60_000);
  q.addAfter('k', 10);
  assert.equal(await q.get(), 'k');
  const waiting = q.get();
  q.shutDown();
  assert.equal(await waiting, undefined);
});
