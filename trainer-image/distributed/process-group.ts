// The gang's collectives, built as Horovod and NCCL build them over plain TCP: after the rendezvous each
// process holds one connection to its successor in the ring and one from its predecessor.
//   allReduceSum: ring reduce-scatter then all-gather. The buffer is cut into W chunks; in W-1 steps each
//     chunk travels once around the ring and every process adds what it receives into its own copy, so
//     chunk c ends summed in the fixed order g[c+W-1] + (... + (g[c+1] + g[c])) on one process, which then
//     passes those exact bytes around in W-1 more steps. Every process ends with bitwise-identical sums,
//     whatever the timing. Each step sends and receives at once, in segments, and reads straight into
//     preallocated memory.
//   broadcast: the root's bytes passed around the ring, segment by segment.
//   barrier: an all-reduce of one number.
// A dead neighbour surfaces at once (its socket resets or closes); a hung one when the collective's
// deadline passes. Either way the group is broken and every later call fails with the same error.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Logger } from '../../lib/telemetry/logger.js';
import { PeerFailedError, RendezvousTimeoutError } from './errors.js';
import { FrameKind } from './frames.js';
import { Link } from './link.js';
import { float16ToFloat32, float32ToFloat16 } from '../model/float16.js';
import { hostRendezvous, joinRendezvous, specificAddress, type Peer, type RendezvousOptions } from './rendezvous.js';

export interface GroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Where to listen (POD_IP); default every interface. */
  bindAddress?: string;
  runId: string;
  attempt: number;
  rendezvousTimeoutMs: number;
  /** The deadline of a collective that names none, asked for when it starts. */
  collectiveTimeoutMs: () => number;
  /** float16 halves the bytes of allReduceSum on the wire and rounds every partial sum sent: not bit-exact. */
  compression: 'none' | 'float16';
  /** Bytes per frame of a collective: large enough to amortise a frame, small enough to pipeline. */
  segmentBytes?: number;
  log: Logger;
}

export interface CollectiveStats {
  seconds: number;
  bytesSent: number;
  bytesReceived: number;
}

const DEFAULT_SEGMENT_BYTES = 1 << 20;

export class ProcessGroup {
  private broken?: Error;
  private busy = false;
  private scratch = new Float32Array(0);
  private scratch16 = new Uint16Array(0);

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly o: GroupOptions,
    private readonly next?: Link,
    private readonly prev?: Link,
  ) {}

  static async join(o: GroupOptions): Promise<ProcessGroup> {
    if (o.worldSize === 1) return new ProcessGroup(0, 1, o);
    const deadline = Date.now() + o.rendezvousTimeoutMs;
    const listener = await listen(specificAddress(o.bindAddress));
    try {
      const port = (listener.server.address() as { port: number }).port;
      const r: RendezvousOptions = { ...o, deadline, timeoutSeconds: Math.round(o.rendezvousTimeoutMs / 1000) };
      const ring =
        o.rank === 0
          ? await hostRendezvous(r, { rank: 0, host: specificAddress(o.bindAddress) ?? o.masterAddr, port })
          : await joinRendezvous(r, port);
      const succ = ring[(o.rank + 1) % o.worldSize] as Peer;
      const pred = ring[(o.rank + o.worldSize - 1) % o.worldSize] as Peer;
      const [next, prev] = await Promise.all([connectRing(o, succ, deadline), acceptRing(o, listener, pred, deadline)]);
      o.log.info({ worldSize: o.worldSize, next: `${succ.host}:${succ.port}`, prev: `${pred.host}:${pred.port}` }, `rank ${o.rank} of ${o.worldSize} joined the ring`);
      return new ProcessGroup(o.rank, o.worldSize, o, next, prev);
    } finally {
      listener.server.close();
    }
  }

  async allReduceSum(buf: Float32Array, opts: { timeoutMs?: number } = {}): Promise<CollectiveStats> {
    return this.collective('allReduceSum', opts.timeoutMs, async (next, prev) => {
      const n = this.worldSize;
      const chunk = (c: number): Float32Array => {
        const base = Math.floor(buf.length / n);
        const extra = buf.length % n;
        const i = ((c % n) + n) % n;
        const start = i * base + Math.min(i, extra);
        return buf.subarray(start, start + base + (i < extra ? 1 : 0));
      };
      const r = this.rank;
      for (let s = 0; s < n - 1; s++) await this.exchange(next, prev, chunk(r - s), chunk(r - s - 1), 'add');
      for (let s = 0; s < n - 1; s++) await this.exchange(next, prev, chunk(r + 1 - s), chunk(r - s), 'copy');
    });
  }

  async broadcast(data: Uint8Array | undefined, opts: { root?: number; timeoutMs?: number } = {}): Promise<Uint8Array> {
    const root = opts.root ?? 0;
    if (this.worldSize === 1) return data ?? new Uint8Array(0);
    if ((this.rank === root) !== (data !== undefined)) throw new Error(`broadcast: rank ${this.rank} ${data ? 'passed data but is not' : 'passed no data but is'} the root (${root})`);
    let out = data ?? new Uint8Array(0);
    const last = (this.rank + 1) % this.worldSize === root;
    await this.collective('broadcast', opts.timeoutMs, async (next, prev) => {
      const length = new Uint8Array(8);
      if (this.rank === root) {
        new DataView(length.buffer).setBigUint64(0, BigInt(out.byteLength));
      } else {
        await prev.receive(FrameKind.Data, length, 'broadcast');
        out = new Uint8Array(Number(new DataView(length.buffer).getBigUint64(0)));
      }
      if (!last) await sendOrAbort(next, prev, length);
      const seg = this.segmentBytes;
      const sends: Promise<void>[] = [];
      for (let at = 0; at < out.byteLength; at += seg) {
        const part = out.subarray(at, Math.min(at + seg, out.byteLength));
        if (this.rank !== root) await prev.receive(FrameKind.Data, part, 'broadcast');
        if (!last) sends.push(sendOrAbort(next, prev, part));
      }
      await Promise.all(sends);
    });
    return out;
  }

  async barrier(opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.allReduceSum(new Float32Array(1), opts);
  }

  async close(): Promise<void> {
    this.broken ??= new Error('the process group is closed');
    this.next?.close();
    this.prev?.close();
  }

  private get segmentBytes(): number {
    return this.o.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /**
   * Runs one collective under its deadline; any failure breaks the group for good (the peers' state is
   * unknown after a partial exchange), and a timeout names the neighbour being waited on.
   */
  private async collective(what: string, timeoutMs: number | undefined, body: (next: Link, prev: Link) => Promise<void>): Promise<CollectiveStats> {
    const started = performance.now();
    if (this.worldSize === 1) return { seconds: 0, bytesSent: 0, bytesReceived: 0 };
    const next = this.next as Link;
    const prev = this.prev as Link;
    const failure = this.broken ?? prev.failure ?? next.failure;
    if (failure) {
      this.broken = failure;
      throw failure;
    }
    if (this.busy) throw new Error(`${what}: another collective is still running on this group`);
    this.busy = true;
    const sent0 = next.bytesSent;
    const received0 = prev.bytesReceived;
    const limit = timeoutMs ?? this.o.collectiveTimeoutMs();
    const timer = setTimeout(() => {
      const err = new PeerFailedError(`no data from rank ${prev.peer.rank} (${prev.peer.address}) for ${Math.round(limit / 1000)} s during ${what} (collective timeout): it is hung or too slow`, prev.peer.rank, 'timeout');
      prev.abort(err);
      next.abort(err);
    }, limit);
    try {
      await body(next, prev);
    } catch (err) {
      this.broken = err as Error;
      this.o.log.error({ peer: (err as PeerFailedError).peer, failure: (err as PeerFailedError).failure }, (err as Error).message);
      throw err;
    } finally {
      clearTimeout(timer);
      this.busy = false;
    }
    return { seconds: (performance.now() - started) / 1000, bytesSent: next.bytesSent - sent0, bytesReceived: prev.bytesReceived - received0 };
  }

  /**
   * One ring step: `out` goes to the successor while `into` arrives from the predecessor, segment by
   * segment; received values are added into `into` or copied over it.
   */
  private async exchange(next: Link, prev: Link, out: Float32Array, into: Float32Array, mode: 'add' | 'copy'): Promise<void> {
    const half = this.o.compression === 'float16';
    const per = Math.max(1, Math.floor(this.segmentBytes / 4));
    const sends: Promise<void>[] = [];
    if (half) {
      // Converted once per step into scratch that stays untouched until the sends have flushed.
      if (this.scratch16.length < out.length) this.scratch16 = new Uint16Array(out.length);
      this.scratch16.set(float32ToFloat16(out));
      // The owner of a summed chunk keeps what it sends, so every rank ends with the same values.
      if (mode === 'copy') out.set(float16ToFloat32(this.scratch16.subarray(0, out.length)));
    }
    for (let at = 0; at < out.length; at += per) {
      const end = Math.min(at + per, out.length);
      const payload = half ? this.scratch16.subarray(at, end) : out.subarray(at, end);
      sends.push(sendOrAbort(next, prev, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)));
    }
    if (this.scratch.length < Math.min(per, into.length)) this.scratch = new Float32Array(Math.min(per, into.length));
    for (let at = 0; at < into.length; at += per) {
      const end = Math.min(at + per, into.length);
      const target = into.subarray(at, end);
      if (half) {
        const bits = new Uint16Array(end - at);
        await prev.receive(FrameKind.Data, new Uint8Array(bits.buffer), what(mode));
        const values = float16ToFloat32(bits);
        if (mode === 'add') addInto(target, values);
        else target.set(values);
      } else if (mode === 'copy') {
        await prev.receive(FrameKind.Data, new Uint8Array(target.buffer, target.byteOffset, target.byteLength), what(mode));
      } else {
        const got = this.scratch.subarray(0, end - at);
        await prev.receive(FrameKind.Data, new Uint8Array(got.buffer, got.byteOffset, got.byteLength), what(mode));
        addInto(target, got);
      }
    }
    await Promise.all(sends);
  }
}

/**
 * Sends one data frame; if the send fails (the successor is gone) the receive this process is waiting on
 * fails too, so a dead successor is noticed at once rather than at the collective's deadline.
 */
function sendOrAbort(next: Link, prev: Link, payload: Uint8Array): Promise<void> {
  const sent = next.send(FrameKind.Data, payload);
  sent.catch((err: Error) => prev.abort(err));
  return sent;
}

/** target += values, element by element (unrolled: V8 runs this about 1.5x faster than the plain loop). */
function addInto(target: Float32Array, values: Float32Array): void {
  const n = values.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    target[i] = (target[i] as number) + (values[i] as number);
    target[i + 1] = (target[i + 1] as number) + (values[i + 1] as number);
    target[i + 2] = (target[i + 2] as number) + (values[i + 2] as number);
    target[i + 3] = (target[i + 3] as number) + (values[i + 3] as number);
  }
  for (; i < n; i++) target[i] = (target[i] as number) + (values[i] as number);
}

function what(mode: 'add' | 'copy'): string {
  return mode === 'add' ? 'allReduceSum (reduce-scatter)' : 'allReduceSum (all-gather)';
}

/**
 * The data listener, opened before the rendezvous. It keeps every connection from the start: a predecessor
 * that got the ring first may connect before this process has read its own copy of the ring.
 */
function listen(host: string | undefined): Promise<{ server: Server; arrived: Socket[] }> {
  return new Promise((resolve, reject) => {
    const arrived: Socket[] = [];
    const server = createServer((socket) => arrived.push(socket));
    server.once('error', reject);
    server.listen(0, host, () => resolve({ server, arrived }));
  });
}

interface Hello {
  rank: number;
  runId: string;
  attempt: number;
}

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

/** Connects to the successor's data port and says who this is. */
async function connectRing(o: GroupOptions, succ: Peer, deadline: number): Promise<Link> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: succ.host, port: succ.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new RendezvousTimeoutError(`rank ${o.rank} could not connect to rank ${succ.rank} at ${succ.host}:${succ.port} before the rendezvous deadline`, [succ.rank]));
    }, Math.max(1, deadline - Date.now()));
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(new PeerFailedError(`rank ${o.rank} cannot connect to rank ${succ.rank} at ${succ.host}:${succ.port}: ${err.message}`, succ.rank, 'reset'));
    });
  });
  const link = new Link(socket, { rank: succ.rank, address: `${succ.host}:${succ.port}` });
  await link.send(FrameKind.Hello, encode({ rank: o.rank, runId: o.runId, attempt: o.attempt } satisfies Hello));
  return link;
}

/** Accepts the predecessor's connection; anything else that connects is turned away. */
function acceptRing(o: GroupOptions, listener: { server: Server; arrived: Socket[] }, pred: Peer, deadline: number): Promise<Link> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new RendezvousTimeoutError(`rank ${pred.rank} (${pred.host}:${pred.port}) never connected to rank ${o.rank} before the rendezvous deadline`, [pred.rank])), Math.max(1, deadline - Date.now()));
    const consider = (socket: Socket): void => {
      const link = new Link(socket, { rank: pred.rank, address: `${pred.host}:${pred.port}` });
      link.receive(FrameKind.Hello, undefined, 'the ring handshake', 4096).then(
        (payload) => {
          const hello = JSON.parse(new TextDecoder().decode(payload)) as Hello;
          if (hello.rank !== pred.rank || hello.runId !== o.runId || hello.attempt !== o.attempt) {
            o.log.warn({ hello, expected: { rank: pred.rank, runId: o.runId, attempt: o.attempt } }, 'ring: turned away a connection that is not this gang\'s predecessor');
            link.close();
            return;
          }
          clearTimeout(timer);
          resolve(link);
        },
        () => link.close(),
      );
    };
    for (const socket of listener.arrived.splice(0)) consider(socket);
    listener.server.on('connection', consider);
  });
}
