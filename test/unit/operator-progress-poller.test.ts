// The operator's reader of rank 0's /progress, against real HTTP servers on loopback: it queues a run only
// when its report changed, forgets a report when the gang (URL) changes, and neither a hung pod nor a bad
// report stops it or reaches status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../lib/telemetry/logger.js';
import { ProgressPoller } from '../../operator/progress-poller.js';

async function serve(answer: () => unknown): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const body = answer();
    if (body === 'hang') return;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/progress`, server };
}

const report = (step: number) => ({ stage: 'Training', step, epoch: 0, epochs: 3, updateTime: '2026-12-04T10:00:00.000Z' });

test('a run is queued when its report changes, and only then', async () => {
  let step = 1;
  let body: unknown = report(step);
  const a = await serve(() => body);
  const hung = await serve(() => 'hang');
  const queued: string[] = [];
  const poller = new ProgressPoller({ intervalMs: 60_000, maxPerSecond: 50, timeoutMs: 300, onChange: (k) => queued.push(k), logger: createLogger({ component: 'test' }) });
  try {
    poller.watch('ns/a', a.url);
    poller.watch('ns/hung', hung.url);
    await poller.pollOnce();
    assert.deepEqual(queued, ['ns/a']);
    assert.equal(poller.latest('ns/a')?.step, 1);
    assert.equal(poller.latest('ns/hung'), undefined, 'a pod that does not answer in time has no report');

    await poller.pollOnce();
    assert.deepEqual(queued, ['ns/a'], 'the same report again queues nothing');

    step = 2;
    body = report(step);
    await poller.pollOnce();
    assert.deepEqual(queued, ['ns/a', 'ns/a']);
    assert.equal(poller.latest('ns/a')?.step, 2);

    body = { ...report(3), stage: 'Mining' };
    await poller.pollOnce();
    assert.equal(poller.latest('ns/a')?.step, 2, 'an invalid report is ignored, the last good one kept');
    body = '{"stage": ';
    await poller.pollOnce();
    assert.equal(queued.length, 2);

    // A relaunched gang is another pod: the old gang's report must not describe it.
    poller.watch('ns/a', hung.url);
    assert.equal(poller.latest('ns/a'), undefined);
    poller.watch('ns/a', undefined);
    assert.equal(poller.size, 1);
  } finally {
    await poller.stop();
    a.server.close();
    hung.server.closeAllConnections();
    hung.server.close();
  }
});

test('the schedule runs by itself until stopped', async () => {
  let served = 0;
  const a = await serve(() => report(++served));
  const queued: string[] = [];
  const poller = new ProgressPoller({ intervalMs: 20, maxPerSecond: 1000, timeoutMs: 1000, onChange: (k) => queued.push(k), logger: createLogger({ component: 'test' }) });
  poller.watch('ns/a', a.url);
  poller.start();
  while (queued.length < 3) await new Promise((r) => setTimeout(r, 10));
  await poller.stop();
  const after = served;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(served, after, 'no request after stop()');
  a.server.close();
});
