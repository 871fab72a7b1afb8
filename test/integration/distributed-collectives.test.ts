// The collective layer over real loopback TCP: several ranks of a gang in this process (each a real
// ProcessGroup with its own sockets) and, for the SIGKILL test, ranks in child processes. Exact sums in the
// ring's fixed order, bitwise agreement, float16, broadcast, barrier, refusals, rendezvous timeouts, a hung
// peer, a killed peer and a corrupt frame from a peer that speaks the protocol by hand.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/free-port.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { GroupClosedError, PeerFailedError, RendezvousRefusedError, RendezvousTimeoutError } from '../../trainer-image/distributed/errors.js';
import { encodeFrame, encodeJson, FrameKind, FrameParser, HEADER_BYTES, MAX_CONTROL_BYTES } from '../../trainer-image/distributed/frames.js';
import { ProcessGroup, type GroupOptions } from '../../trainer-image/distributed/process-group.js';
import { register } from '../../trainer-image/distributed/rendezvous.js';

const log = createLogger({}, new PassThrough());
const child = fileURLToPath(new URL('./distributed-rank.ts', import.meta.url));


function options(rank: number, worldSize: number, masterPort: number, extra: Partial<GroupOptions> = {}): GroupOptions {
  return {
    rank,
    worldSize,
    masterAddr: '127.0.0.1',
    masterPort,
    bindAddress: '127.0.0.1',
    runId: 'ns/run-a',
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

/** Rank r's input: deterministic pseudo-random floats in [-2, 2) with varied magnitudes. */
function input(rank: number, length: number): Float32Array {
  let x = ((rank + 1) * 2654435761) >>> 0;
  return Float32Array.from({ length }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x / 2 ** 32 - 0.5) * 4 * 2 ** ((x & 7) - 3);
  });
}

/**
 * The sum the ring must produce, bit for bit: chunk c (of floor(c*len/n)..floor((c+1)*len/n)) starts at
 * rank c and each next rank adds its own value to what arrived, in float32.
 */
function ringOrderSum(inputs: Float32Array[], length: number): Float32Array {
  const n = inputs.length;
  const out = new Float32Array(length);
  for (let c = 0; c < n; c++) {
    for (let i = Math.floor((c * length) / n); i < Math.floor(((c + 1) * length) / n); i++) {
      let acc = (inputs[c] as Float32Array)[i] as number;
      for (let k = 1; k < n; k++) acc = Math.fround(((inputs[(c + k) % n] as Float32Array)[i] as number) + acc);
      out[i] = acc;
    }
  }
  return out;
}

const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

for (const n of [2, 3, 4]) {
  test(`${n} ranks: allReduceSum is the sum in the ring's fixed order, bitwise identical on every rank, for any length`, async () => {
    const groups = await gang(n);
    try {
      for (const length of [0, 1, n - 1, 1001, 2_621_440 /* 10 MB */]) {
        const inputs = groups.map((g) => input(g.rank, length));
        const bufs = inputs.map((b) => b.slice());
        const stats = await Promise.all(groups.map((g, r) => g.allReduceSum(bufs[r] as Float32Array)));
        for (const b of bufs.slice(1)) assert.ok(bits(b).equals(bits(bufs[0] as Float32Array)), `length ${length}: the ranks differ`);
        assert.ok(bits(bufs[0] as Float32Array).equals(bits(ringOrderSum(inputs, length))), `length ${length}: not the fixed-order float32 sum`);
        let worst = 0;
        for (let i = 0; i < length; i++) {
          let exact = 0;
          for (const x of inputs) exact += x[i] as number;
          worst = Math.max(worst, Math.abs(((bufs[0] as Float32Array)[i] as number) - exact));
        }
        assert.ok(worst < 1e-5, `length ${length}: off the float64 sum by ${worst}`);
        // Each rank sends and receives 2(n-1)/n of the buffer (plus headers).
        const payload = (2 * (n - 1) * length * 4) / n;
        for (const s of stats) assert.ok(s.bytesSent >= payload && s.bytesSent < payload + 2 * n * 20 * (1 + (length * 4) / n / (64 << 10)) + 100, `length ${length}: ${s.bytesSent} bytes sent`);
      }
    } finally {
      await closeAll(groups);
    }
  });
}

test('the result does not depend on timing: ranks entering late, and segments of any size, give the same bits', async () => {
  for (const [segmentBytes, length] of [[4, 5001], [4096, 300_001], [1 << 20, 300_001]] as const) {
    const inputs = [0, 1, 2].map((r) => input(r, length));
    const groups = await gang(3, { segmentBytes });
    try {
      const bufs = inputs.map((b) => b.slice());
      await Promise.all(
        groups.map(async (g, r) => {
          await new Promise((resolve) => setTimeout(resolve, [30, 0, 15][r]));
          return g.allReduceSum(bufs[r] as Float32Array);
        }),
      );
      const expected = bits(ringOrderSum(inputs, length));
      for (const b of bufs) assert.ok(bits(b).equals(expected), `segments of ${segmentBytes} B`);
    } finally {
      await closeAll(groups);
    }
  }
});

test('float16 compression: within half precision of the sum, half the bytes, still identical on every rank', async () => {
  const n = 3;
  const length = 100_003;
  const groups = await gang(n, { compression: 'float16' });
  try {
    const inputs = groups.map((g) => input(g.rank, length));
    const bufs = inputs.map((b) => b.slice());
    const stats = await Promise.all(groups.map((g, r) => g.allReduceSum(bufs[r] as Float32Array)));
    for (const b of bufs.slice(1)) assert.ok(bits(b).equals(bits(bufs[0] as Float32Array)), 'ranks differ');
    let rounded = 0;
    for (let i = 0; i < length; i++) {
      let exact = 0;
      let magnitude = 0;
      for (const x of inputs) {
        exact += x[i] as number;
        magnitude += Math.abs(x[i] as number);
      }
      const got = (bufs[0] as Float32Array)[i] as number;
      // Each of the n-1 reduce hops and the final broadcast rounds to half: about 2^-11 relative each.
      assert.ok(Math.abs(got - exact) <= n * 2 ** -11 * magnitude + 2 ** -24, `element ${i}: ${got} vs ${exact}`);
      if (got !== Math.fround(exact)) rounded++;
    }
    assert.ok(rounded > length / 10, 'float16 is really on the wire (most sums are rounded)');
    const payload = (2 * (n - 1) * length * 2) / n;
    assert.ok((stats[0]?.bytesSent ?? 0) < payload * 1.01 + 1000, `${stats[0]?.bytesSent} bytes sent for ${payload} bytes of halves`);
  } finally {
    await closeAll(groups);
  }
});

test('broadcast of 5 MB from any root, an empty broadcast, and a barrier that waits for the last rank', async () => {
  const groups = await gang(3, { segmentBytes: 256 << 10 });
  try {
    const data = Uint8Array.from({ length: 5_000_001 }, (_, i) => (i * 31 + (i >>> 13)) & 0xff);
    for (const root of [0, 1, 2]) {
      const got = await Promise.all(groups.map((g) => g.broadcast(g.rank === root ? data : undefined, { root })));
      for (const x of got) assert.ok(Buffer.from(x).equals(Buffer.from(data)), `root ${root}`);
    }
    const empty = await Promise.all(groups.map((g) => g.broadcast(g.rank === 0 ? new Uint8Array(0) : undefined)));
    assert.deepEqual(empty.map((x) => x.byteLength), [0, 0, 0]);
    await assert.rejects(groups[1]?.broadcast(new Uint8Array(1)) as Promise<Uint8Array>, TypeError, 'only the root passes data');

    const entered: number[] = [];
    const left: number[] = [];
    await Promise.all(groups.map(async (g, r) => {
      await new Promise((resolve) => setTimeout(resolve, [0, 150, 60][r]));
      entered.push(performance.now());
      await g.barrier();
      left.push(performance.now());
    }));
    assert.ok(Math.min(...left) >= Math.max(...entered), 'no rank left the barrier before the last one entered');
  } finally {
    await closeAll(groups);
  }
});

test('rank 0 refuses another attempt, another run, a duplicate rank and another world size, and completes with the right ranks', async () => {
  const port = await freePort();
  const rank0 = ProcessGroup.join(options(0, 3, port));
  const refused = (extra: Partial<GroupOptions>, rank: number, pattern: RegExp): Promise<void> =>
    assert.rejects(ProcessGroup.join(options(rank, extra.worldSize ?? 3, port, extra)), (e: unknown) => {
      assert.ok(e instanceof RendezvousRefusedError, String(e));
      assert.match(e.message, pattern);
      assert.equal(e.exitCode, 1, 'retryable');
      return true;
    });
  await refused({ attempt: 2 }, 1, /attempt 2, this gang is attempt 3/);
  await refused({ runId: 'ns/run-b' }, 1, /run "ns\/run-b"/);
  await refused({ worldSize: 4 }, 1, /WORLD_SIZE 4/);
  const rank1 = ProcessGroup.join(options(1, 3, port));
  // Rank 1 is registered once rank 0 has answered its Status; a second rank 1 is then a duplicate.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await refused({}, 1, /rank 1 has already joined/);
  const rank2 = ProcessGroup.join(options(2, 3, port));
  const groups = await Promise.all([rank0, rank1, rank2]);
  try {
    const bufs = groups.map((g) => Float32Array.of(g.rank, 1));
    await Promise.all(groups.map((g, r) => g.allReduceSum(bufs[r] as Float32Array)));
    assert.deepEqual([...(bufs[2] as Float32Array)], [3, 3]);
  } finally {
    await closeAll(groups);
  }
});

test('rank 0 may come up late (connection refused is retried); a rendezvous that misses a rank times out naming it', async () => {
  const port = await freePort();
  const early = ProcessGroup.join(options(1, 2, port));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const groups = await Promise.all([ProcessGroup.join(options(0, 2, port)), early]);
  await closeAll(groups);

  const port2 = await freePort();
  const started = performance.now();
  const results = await Promise.allSettled([0, 2].map((r) => ProcessGroup.join(options(r, 3, port2, { rendezvousTimeoutMs: 800 }))));
  assert.ok(performance.now() - started < 3000, 'fails at the deadline');
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as unknown;
    assert.ok(e instanceof RendezvousTimeoutError, String(e));
    assert.deepEqual([...e.missing], [1]);
    assert.match(e.message, /rank 1 of 3 never joined/);
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port2}`));
  }

  const alone = await ProcessGroup.join(options(1, 2, await freePort(), { rendezvousTimeoutMs: 500 })).catch((e: unknown) => e);
  assert.ok(alone instanceof RendezvousTimeoutError);
  assert.deepEqual([...alone.missing], [0]);
  assert.match(alone.message, /ECONNREFUSED/);
});

test('a peer that joined and then hangs: the collective times out within its deadline, naming it; later calls fail at once', async () => {
  const port = await freePort();
  const [rank0, rank1] = await Promise.all([
    ProcessGroup.join(options(0, 2, port, { collectiveTimeoutMs: () => 600 })),
    ProcessGroup.join(options(1, 2, port)),
  ]);
  try {
    const started = performance.now();
    const err = await rank0.allReduceSum(new Float32Array(100_000)).catch((e: unknown) => e);
    const took = performance.now() - started;
    assert.ok(err instanceof PeerFailedError, String(err));
    assert.equal(err.cause, 'timeout');
    assert.equal(err.peer, 1);
    assert.match(err.message, /no data from rank 1 \(127\.0\.0\.1:\d+\) for 0\.6 s during allReduceSum \(collective timeout\)/);
    assert.ok(took >= 550 && took < 1500, `${took} ms`);
    const again = performance.now();
    await assert.rejects(rank0.barrier(), (e: unknown) => e === err);
    assert.ok(performance.now() - again < 50, 'a broken group fails at once');
    // The hung rank learns of it too: once rank 0's sockets are gone, its next collective fails at once.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const other = await rank1.allReduceSum(new Float32Array(10), { timeoutMs: 5000 }).catch((e: unknown) => e);
    assert.ok(other instanceof PeerFailedError && ['closed', 'reset'].includes(other.cause) && other.peer === 0, String(other));
  } finally {
    await closeAll([rank0, rank1]);
  }
});

interface ChildRank {
  rank: number;
  lines: string[];
  exited: Promise<number | null>;
  kill(): void;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
}

function spawnRank(rank: number, worldSize: number, port: number, floats: number): ChildRank {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, String(rank), String(worldSize), String(port), String(floats)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let partial = '';
  proc.stdout.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    rank,
    lines,
    exited,
    kill: () => proc.kill('SIGKILL'),
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`rank ${rank}: no line matching ${pattern} within ${timeoutMs} ms; got ${lines.slice(-3).join(' | ')}`)), timeoutMs);
        const check = (): void => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

test('a rank killed (SIGKILL) mid-allReduce: the others fail at once with closed/reset, not at the 20 s deadline', async () => {
  const port = await freePort();
  const ranks = [0, 1, 2].map((r) => spawnRank(r, 3, port, 1 << 20));
  try {
    await Promise.all(ranks.map((r) => r.waitFor(/^reduced 3$/, 30_000)));
    const killedAt = performance.now();
    ranks[1]?.kill();
    const failures = await Promise.all([ranks[0], ranks[2]].map(async (r) => JSON.parse((await (r as ChildRank).waitFor(/^failed /, 10_000)).slice(7)) as { name: string; peer: number; cause: string; message: string }));
    const took = performance.now() - killedAt;
    assert.ok(took < 3000, `the survivors failed ${took} ms after the kill`);
    for (const f of failures) {
      assert.equal(f.name, 'PeerFailedError', f.message);
      assert.ok(['closed', 'reset'].includes(f.cause), f.message);
    }
    // Rank 2 receives from rank 1: it names rank 1 (rank 0 names rank 1, or rank 2 if rank 2's exit reached it first).
    assert.equal(failures[1]?.peer, 1, failures[1]?.message);
    assert.match(failures[1]?.message ?? '', /rank 1 \(127\.0\.0\.1:\d+\) (closed|reset) the connection/);
    assert.deepEqual(await Promise.all([ranks[0], ranks[2]].map((r) => (r as ChildRank).exited)), [1, 1]);
  } finally {
    for (const r of ranks) r.kill();
  }
});

/** Listens on 127.0.0.1:0. */
async function listener(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads control frames from a socket until one arrives. */
function nextFrame(socket: Socket, parser = new FrameParser()): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      const frames = parser.push(d);
      if (frames[0]) {
        socket.off('data', onData);
        resolve(frames[0].payload);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

test('a corrupt frame from the predecessor (a hand-made rank 1) is a PeerFailedError "corrupt", never data', async () => {
  const length = 1000;
  const chunkBytes = (length / 2) * 4;
  const variants: [string, (frame: Buffer) => void, RegExp][] = [
    ['checksum', (f) => (f[HEADER_BYTES + 10] = (f[HEADER_BYTES + 10] as number) ^ 0x01), /payload checksum/],
    ['magic', (f) => f.writeUInt32BE(0xdeadbeef, 0), /bad magic/],
    ['sequence', (f) => f.writeUInt32BE(7, 8), /sequence number 7, expected 1/],
    ['length', (f) => f.writeUInt32BE(chunkBytes + 4, 12), /expected 2000/],
  ];
  for (const [what, damage, pattern] of variants) {
    const port = await freePort();
    const rank0 = ProcessGroup.join(options(0, 2, port));
    // The fake rank 1 registers like a real one, with its own data listener.
    const fakeData = await listener();
    const fakePort = (fakeData.address() as { port: number }).port;
    const accepted = new Promise<Socket>((r) => fakeData.once('connection', r));
    const ring = await register(
      { rank: 1, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, bindAddress: '127.0.0.1', runId: 'ns/run-a', attempt: 3, settings: { compression: 'none', segmentBytes: 64 << 10, checksums: true }, deadline: performance.now() + 5000, timeoutMs: 5000, log },
      fakePort,
    );
    // Rank 0 receives from rank 1 on the connection rank 0 opens to rank 1's data port: answer its hello.
    const fromRank0 = await accepted;
    await nextFrame(fromRank0);
    fromRank0.write(encodeJson(FrameKind.Answer, 0, { ok: true, rank: 1, runId: 'ns/run-a', attempt: 3 }));
    // Rank 1 receives from rank 0 on the connection it opens to rank 0's data port.
    const toRank0 = await connected((ring[0] as { port: number }).port);
    toRank0.write(encodeJson(FrameKind.Hello, 0, { rank: 1, runId: 'ns/run-a', attempt: 3 }));
    await nextFrame(toRank0, new FrameParser(MAX_CONTROL_BYTES));
    const group = await rank0;
    try {
      const buf = new Float32Array(length).fill(1);
      const result = group.allReduceSum(buf).catch((e: unknown) => e);
      // Rank 0 waits for rank 1's chunk (the first half): send it damaged.
      const frame = encodeFrame(FrameKind.AllReduce, 1, new Uint8Array(chunkBytes).fill(0x3f));
      damage(frame);
      fromRank0.write(frame);
      const err = await result;
      assert.ok(err instanceof PeerFailedError, `${what}: ${String(err)}`);
      assert.equal(err.cause, 'corrupt', what);
      assert.equal(err.peer, 1);
      assert.match(err.message, /corrupt frame from rank 1 \(127\.0\.0\.1:\d+\) during allReduceSum/);
      assert.match(err.message, pattern, what);
    } finally {
      await group.close();
      fromRank0.destroy();
      toRank0.destroy();
      fakeData.close();
    }
  }
});

test('close(): a pending collective rejects with GroupClosedError, later calls too, and close is idempotent; one rank is a group without sockets', async () => {
  const [a, b] = (await gang(2)) as [ProcessGroup, ProcessGroup];
  const pending = a.allReduceSum(new Float32Array(1000));
  await a.close();
  await assert.rejects(pending, GroupClosedError);
  await assert.rejects(a.barrier(), GroupClosedError);
  await a.close();
  await b.close();

  const started = performance.now();
  const solo = await ProcessGroup.join({ ...options(0, 1, 1), masterAddr: 'nowhere.invalid' });
  assert.ok(performance.now() - started < 50);
  const buf = Float32Array.of(1.5, -2);
  assert.deepEqual(await solo.allReduceSum(buf), { seconds: 0, bytesSent: 0, bytesReceived: 0 });
  assert.deepEqual([...buf], [1.5, -2]);
  const data = Uint8Array.of(1, 2, 3);
  assert.equal(await solo.broadcast(data), data);
  await solo.barrier();
  await solo.close();
});
