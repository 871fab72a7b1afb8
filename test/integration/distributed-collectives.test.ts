// The collective layer over real loopback TCP: ranks of one gang in this process (and, for a SIGKILL, in a
// child process), exact sums, bitwise agreement, broadcast, refusals, timeouts and corrupt frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';
import { PeerFailedError, RendezvousRefusedError, RendezvousTimeoutError } from '../../trainer-image/distributed/errors.js';
import { FrameKind } from '../../trainer-image/distributed/frames.js';
import { Link } from '../../trainer-image/distributed/link.js';
import { ProcessGroup, type GroupOptions } from '../../trainer-image/distributed/process-group.js';

const log = createLogger({}, new PassThrough());

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function options(rank: number, worldSize: number, masterPort: number, extra: Partial<GroupOptions> = {}): GroupOptions {
  return {
    rank,
    worldSize,
    masterAddr: '127.0.0.1',
    masterPort,
    bindAddress: '127.0.0.1',
    runId: 'run-a',
    attempt: 3,
    rendezvousTimeoutMs: 10_000,
    collectiveTimeoutMs: () => 10_000,
    compression: 'none',
    segmentBytes: 64 << 10,
    log,
    ...extra,
  };
}

async function gang(n: number, extra: Partial<GroupOptions> = {}): Promise<ProcessGroup[]> {
  const port = await freePort();
  return Promise.all(Array.from({ length: n }, (_, r) => ProcessGroup.join(options(r, n, port, extra))));
}

async function closeAll(groups: ProcessGroup[]): Promise<void> {
  await Promise.all(groups.map((g) => g.close()));
}

/** Rank r's input: deterministic pseudo-random floats. */
function input(rank: number, length: number): Float32Array {
  let x = (rank + 1) * 2654435761;
  return Float32Array.from({ length }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x / 2 ** 32 - 0.5) * 4;
  });
}

for (const n of [2, 3, 4]) {
  test(`${n} ranks: allReduceSum is the sum, bitwise identical on every rank, for any length`, async () => {
    const groups = await gang(n);
    try {
      for (const length of [0, 1, n - 1, 1001, 2_500_000]) {
        const bufs = groups.map((g) => input(g.rank, length));
        const expected = new Float64Array(length);
        for (const b of bufs) for (let i = 0; i < length; i++) expected[i] = (expected[i] as number) + (b[i] as number);
        await Promise.all(groups.map((g, r) => g.allReduceSum(bufs[r] as Float32Array)));
        for (const b of bufs.slice(1)) assert.ok(Buffer.from(b.buffer).equals(Buffer.from((bufs[0] as Float32Array).buffer)), `length ${length}: ranks differ`);
        for (let i = 0; i < length; i++) assert.ok(Math.abs((bufs[0] as Float32Array)[i] as number - (expected[i] as number)) < 1e-5, `length ${length}, element ${i}`);
      }
      // Integers sum exactly whatever the order: the result is exactly the sum.
      const ints = groups.map((g) => Float32Array.from({ length: 999 }, (_, i) => g.rank * 1000 + i));
      await Promise.all(groups.map((g, r) => g.allReduceSum(ints[r] as Float32Array)));
      assert.deepEqual([...(ints[n - 1] as Float32Array)].slice(0, 3), [0, 1, 2].map((i) => n * i + (1000 * n * (n - 1)) / 2));
    } finally {
      await closeAll(groups);
    }
  });
}

test('float16 compression halves the bytes and stays within half precision of the sum', async () => {
  const exact = await gang(3);
  const half = await gang(3, { compression: 'float16' });
  try {
    const length = 100_000;
    const a = exact.map((g) => input(g.rank, length));
    const b = half.map((g) => input(g.rank, length));
    const [sa, sb] = await Promise.all([Promise.all(exact.map((g, r) => g.allReduceSum(a[r] as Float32Array))), Promise.all(half.map((g, r) => g.allReduceSum(b[r] as Float32Array)))]);
    assert.ok((sb[0]?.bytesSent ?? 0) < (sa[0]?.bytesSent ?? 0) * 0.55, `${sb[0]?.bytesSent} vs ${sa[0]?.bytesSent} bytes`);
    let worst = 0;
    for (let i = 0; i < length; i++) worst = Math.max(worst, Math.abs(((b[0] as Float32Array)[i] as number) - ((a[0] as Float32Array)[i] as number)));
    assert.ok(worst > 0 && worst < 0.02, `largest deviation ${worst} (values up to 6)`);
    for (const x of b.slice(1)) assert.ok(Buffer.from(x.buffer).equals(Buffer.from((b[0] as Float32Array).buffer)), 'still identical on every rank');
  } finally {
    await closeAll([...exact, ...half]);
  }
});

test('broadcast from any root and barrier', async () => {
  const groups = await gang(3);
  try {
    const data = Uint8Array.from({ length: 5_000_001 }, (_, i) => (i * 31) & 0xff);
    const got = await Promise.all(groups.map((g) => g.broadcast(g.rank === 1 ? data : undefined, { root: 1 })));
    for (const x of got) assert.ok(Buffer.from(x).equals(Buffer.from(data)));
    const empty = await Promise.all(groups.map((g) => g.broadcast(g.rank === 0 ? new Uint8Array(0) : undefined)));
    assert.deepEqual(empty.map((x) => x.byteLength), [0, 0, 0]);
    await Promise.all(groups.map((g) => g.barrier()));
  } finally {
    await closeAll(groups);
  }
});

test('rank 0 refuses a process of another attempt or run and completes with the right ones', async () => {
  const port = await freePort();
  const rank0 = ProcessGroup.join(options(0, 2, port));
  await assert.rejects(ProcessGroup.join(options(1, 2, port, { attempt: 2 })), (e: unknown) => e instanceof RendezvousRefusedError && /attempt 2, this gang is attempt 3/.test(e.message));
  await assert.rejects(ProcessGroup.join(options(1, 2, port, { runId: 'run-b' })), (e: unknown) => e instanceof RendezvousRefusedError && /run run-b/.test(e.message));
  await assert.rejects(ProcessGroup.join(options(1, 3, port)), (e: unknown) => e instanceof RendezvousRefusedError && /WORLD_SIZE 3/.test(e.message));
  const groups = await Promise.all([rank0, ProcessGroup.join(options(1, 2, port))]);
  const bufs = [Float32Array.of(1, 2), Float32Array.of(10, 20)];
  await Promise.all(groups.map((g, r) => g.allReduceSum(bufs[r] as Float32Array)));
  assert.deepEqual([...(bufs[1] as Float32Array)], [11, 22]);
  await closeAll(groups);
});

test('a rendezvous that misses ranks fails at its deadline naming them; a rank with no rank 0 names rank 0', async () => {
  const port = await freePort();
  const started = Date.now();
  const [r0, r2] = await Promise.allSettled([ProcessGroup.join(options(0, 3, port, { rendezvousTimeoutMs: 1500 })), ProcessGroup.join(options(2, 3, port, { rendezvousTimeoutMs: 1500 }))]);
  assert.equal(r0.status, 'rejected');
  const err = (r0 as PromiseRejectedResult).reason as RendezvousTimeoutError;
  assert.ok(err instanceof RendezvousTimeoutError);
  assert.deepEqual(err.missing, [1]);
  assert.match(err.message, /rank 1 of 3 never joined rank 0 at 127\.0\.0\.1:\d+/);
  assert.equal(r2.status, 'rejected');
  assert.ok(Date.now() - started < 5000);
  const lonely = await ProcessGroup.join(options(1, 2, await freePort(), { rendezvousTimeoutMs: 800 })).catch((e: unknown) => e);
  assert.ok(lonely instanceof RendezvousTimeoutError && /no ring from rank 0/.test(lonely.message), String(lonely));
});

test('a peer that joined and then hangs fails the collective at its deadline, naming the peer; the group stays broken', async () => {
  const groups = await gang(2);
  const started = Date.now();
  const err = await (groups[0] as ProcessGroup).allReduceSum(new Float32Array(1000), { timeoutMs: 700 }).catch((e: unknown) => e);
  assert.ok(err instanceof PeerFailedError, String(err));
  assert.equal(err.failure, 'timeout');
  assert.equal(err.peer, 1);
  assert.match(err.message, /no data from rank 1 .* for 1 s during allReduceSum/);
  assert.ok(Date.now() - started < 3000);
  await assert.rejects((groups[0] as ProcessGroup).barrier(), /rank 1/);
  await closeAll(groups);
});

test('a peer killed mid-run (SIGKILL) fails its predecessor and its successor at once, not at the deadline', async () => {
  const port = await freePort();
  // Ranks 0 and 2 here, rank 1 in a child: rank 0 loses its successor (its sends fail), rank 2 its predecessor.
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./distributed-rank.ts', import.meta.url).pathname, '1', '3', String(port), '3000000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    // The child runs with the default segment size, which every rank of a gang must share.
    const extra = { runId: 'child-gang', attempt: 0, collectiveTimeoutMs: () => 60_000, segmentBytes: undefined };
    const groups = await Promise.all([0, 2].map((r) => ProcessGroup.join(options(r, 3, port, extra))));
    const bufs = groups.map(() => new Float32Array(3_000_000));
    await Promise.all(groups.map((g, i) => g.allReduceSum(bufs[i] as Float32Array)));
    assert.equal(bufs[0]?.[0], 2, 'one collective went through: 0 here, 0 in rank 2, 2 from the child');
    let killedAt = 0;
    const failed = groups.map((g, i) =>
      (async () => {
        for (;;) await g.allReduceSum(bufs[i] as Float32Array);
      })().catch((e: unknown) => ({ err: e, at: Date.now() })),
    );
    setTimeout(() => {
      killedAt = Date.now();
      child.kill('SIGKILL');
    }, 300);
    const [zero, two] = await Promise.all(failed);
    for (const { err, at } of [zero, two] as { err: unknown; at: number }[]) {
      assert.ok(err instanceof PeerFailedError, String(err));
      assert.ok(['closed', 'reset'].includes(err.failure), err.failure);
      assert.ok(at - killedAt < 3000, `noticed ${at - killedAt} ms after the kill: ${err.message}`);
    }
    // Rank 0 names its dead successor. Rank 2 may name rank 1 or rank 0, whichever connection it sees go
    // first: a failing rank closes its connections, so a failure travels round the ring within moments.
    assert.equal((zero?.err as PeerFailedError).peer, 1, (zero?.err as Error).message);
    await closeAll(groups);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a corrupt frame is an error naming the peer, never data', async () => {
  const port = await freePort();
  const rank0 = ProcessGroup.join(options(0, 2, port));
  // A hand-made rank 1 that follows the protocol up to the first data frame, then flips a payload bit.
  const listener = createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const fromRank0 = new Promise<Socket>((r) => listener.once('connection', r));
  const rdzv = new Link(connect({ host: '127.0.0.1', port }), { rank: 0, address: 'rank 0' });
  await new Promise<void>((r) => rdzv.socket.once('connect', () => r()));
  const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
  await rdzv.send(FrameKind.Register, json({ rank: 1, worldSize: 2, runId: 'run-a', attempt: 3, host: '127.0.0.1', port: (listener.address() as { port: number }).port }));
  const ring = JSON.parse(new TextDecoder().decode(await rdzv.receive(FrameKind.Answer, undefined, 'test'))) as { ring: { host: string; port: number }[] };
  const toRank0 = new Link(connect({ host: '127.0.0.1', port: ring.ring[0]?.port as number }), { rank: 0, address: 'rank 0' });
  await toRank0.send(FrameKind.Hello, json({ rank: 1, runId: 'run-a', attempt: 3 }));
  const incoming = new Link(await fromRank0, { rank: 0, address: 'rank 0' });
  await incoming.receive(FrameKind.Hello, undefined, 'test');
  const group = await rank0;
  const reduce = group.allReduceSum(new Float32Array(8)).catch((e: unknown) => e);
  // Rank 0 sends its chunk first; answer with a frame whose payload does not match its checksum.
  const sent = await incoming.receive(FrameKind.Data, new Uint8Array(16), 'test');
  const header = Buffer.from((await import('../../trainer-image/distributed/frames.js')).frameHeader(FrameKind.Data, 1, sent));
  const bad = Buffer.from(sent);
  bad[3] = (bad[3] as number) ^ 0x40;
  toRank0.socket.write(Buffer.concat([header.subarray(0, 8), Buffer.from([0, 0, 0, 0]), header.subarray(12)]));
  toRank0.socket.write(bad);
  const err = await reduce;
  assert.ok(err instanceof PeerFailedError, String(err));
  assert.equal(err.failure, 'corrupt');
  assert.match(err.message, /corrupt frame from rank 1/);
  toRank0.close();
  incoming.close();
  rdzv.close();
  listener.close();
  await group.close();
});
