// The collectives over an established ring: each rank holds one connection on which it receives from its
// predecessor and one on which it sends to its successor.
//
// allReduceSum is the ring algorithm of Baidu's allreduce, Horovod and NCCL: the buffer is cut into W
// chunks; in W-1 reduce-scatter steps every chunk travels once around the ring, each rank adding what it
// receives into its own copy, so chunk c ends on rank c-1 summed in the fixed order
// g[c-1] + (... + (g[c+1] + g[c])); in W-1 all-gather steps those exact bits travel around once more and
// overwrite every other copy. Every rank therefore ends bitwise identical, whatever the timing. Each chunk
// travels as segments of `segmentBytes`, and a segment is forwarded as soon as it has arrived and been
// added: sends and receives overlap across steps and both directions of every link are busy at once.
//
// The data path allocates nothing per segment beyond a 20-byte header: the receiving socket reads straight
// into preallocated memory (net's `onread`, which hands the kernel our buffer, sized so that a read never
// crosses a frame boundary): the all-gather straight into the caller's buffer, the reduce-scatter into one
// staging segment that is added into the caller's buffer read by read, while the bytes are still in
// cache. Sends are views of the caller's buffer (float32) or of a few staging segments (float16) that the
// kernel copies from. Checksums are computed incrementally as bytes arrive; a segment forwarded unchanged
// reuses the checksum it arrived with, and a reduced one gets its checksum computed during the addition.
import type { Socket } from 'node:net';
import { constants as bufferConstants } from 'node:buffer';
import { crc32 } from 'node:zlib';
import {
  checkCrc,
  checkHeader,
  FrameError,
  FrameKind,
  halfFromFloatBits,
  halfToFloatBitsTable,
  HEADER_BYTES,
  parseHeader,
  writeHeader,
  type FrameHeader,
} from './frames.js';

export interface WireSettings {
  compression: 'none' | 'float16';
  segmentBytes: number;
  /** CRC-32 of every payload, sent and verified. Off only to measure what checksums cost. */
  checksums: boolean;
}

export interface CollectiveStats {
  seconds: number;
  bytesSent: number;
  bytesReceived: number;
}

/** What a receive operation expects next. */
export interface Expectation {
  kind: number;
  /** Exact payload length, or the most allowed when `exact` is false. */
  length: number;
  exact: boolean;
}

/** A consumer of frames on the receiving connection (one at a time, in order). */
export interface ReceiveOp {
  /** The next frame due, or undefined when this operation has all it wanted. */
  next(): Expectation | undefined;
  /** Where the payload of the frame whose header just passed goes: exactly `length` bytes. */
  target(length: number, header: FrameHeader): Uint8Array;
  /** Bytes [from, to) of the current payload are in the target (called once per socket read). */
  progress(from: number, to: number): void;
  /** The current frame is complete and verified. */
  done(header: FrameHeader): void;
}

/**
 * The receiving side of a connection. Pass `onread` to net.connect: the socket then reads into the buffers
 * this hands out (a header, then exactly the rest of the current payload), so data lands where it belongs
 * with no intermediate copy. Between operations the socket is paused; the peer's next frames wait in the
 * kernel until the next operation starts.
 */
export class Receiver {
  private readonly header = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private op?: ReceiveOp;
  private expect?: Expectation;
  private current?: FrameHeader;
  private target: Uint8Array = this.header;
  private fill = 0;
  private crc = 0;
  private seq = 0;
  private paused = false;
  private socket?: Socket;
  bytes = 0;
  /** performance.now() of the last read, for timeout messages. */
  lastReadAt = performance.now();

  readonly onread = {
    buffer: (): Uint8Array => (this.current ? this.target.subarray(this.fill) : this.header.subarray(this.headerFill)),
    callback: (nread: number): boolean => this.onRead(nread),
  };

  constructor(
    private readonly checksums: boolean,
    private readonly onError: (err: FrameError) => void,
  ) {}

  attach(socket: Socket): void {
    this.socket = socket;
  }

  get busy(): boolean {
    return this.op !== undefined;
  }

  /** Starts consuming frames for `op` (resuming the socket). */
  start(op: ReceiveOp): void {
    if (this.op) throw new Error('Receiver: an operation is already running');
    const expect = op.next();
    if (!expect) return;
    this.op = op;
    this.expect = expect;
    if (this.paused && this.socket) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Drops the running operation (its collective failed); the socket is being destroyed. */
  abort(): void {
    this.op = undefined;
    this.expect = undefined;
    this.current = undefined;
  }

  private onRead(nread: number): boolean {
    this.bytes += nread;
    this.lastReadAt = performance.now();
    const op = this.op;
    if (!op) {
      // Reading only runs while an operation waits: bytes now mean the peer sent what nobody asked for.
      this.onError(new FrameError('data arrived while no collective was running', 'kind'));
      return false;
    }
    const current = this.current;
    if (current) {
      const from = this.fill;
      this.fill += nread;
      if (this.checksums) this.crc = crc32(this.target.subarray(from, this.fill), this.crc);
      op.progress(from, this.fill);
      return this.fill === current.length ? this.frameDone(op, current) : true;
    }
    this.headerFill += nread;
    if (this.headerFill < HEADER_BYTES) return true;
    this.headerFill = 0;
    const expect = this.expect as Expectation;
    let header: FrameHeader;
    try {
      header = parseHeader(this.header);
      checkHeader(header, { kind: expect.kind, seq: this.seq, ...(expect.exact ? { length: expect.length } : { maxLength: expect.length }) });
    } catch (err) {
      return this.fail(err as FrameError);
    }
    this.seq = (this.seq + 1) >>> 0;
    if (header.length === 0) return this.frameDone(op, header);
    this.current = header;
    this.fill = 0;
    this.crc = 0;
    this.target = op.target(header.length, header);
    return true;
  }

  private frameDone(op: ReceiveOp, header: FrameHeader): boolean {
    this.current = undefined;
    if (this.checksums) {
      const crc = this.crc;
      this.crc = 0;
      try {
        checkCrc(header, header.length === 0 ? 0 : crc);
      } catch (err) {
        return this.fail(err as FrameError);
      }
    }
    op.done(header);
    if (this.op !== op) return false; // done() failed the collective
    const expect = op.next();
    if (expect) {
      this.expect = expect;
      return true;
    }
    this.op = undefined;
    this.expect = undefined;
    this.paused = true;
    return false;
  }

  private fail(err: FrameError): boolean {
    this.abort();
    this.onError(err);
    return false;
  }
}

/** The sending side of a connection: numbered frames, header and payload written together. */
export class Sender {
  bytes = 0;

  constructor(
    readonly socket: Socket,
    private readonly checksums: boolean,
    /** Frames already sent on this connection (the handshake's). */
    private seq = 0,
  ) {}

  /**
   * Queues one frame. `payload` is not copied: it must stay unchanged until `written` runs (the kernel has
   * taken it). `crc` is the payload's checksum when the caller already knows it.
   */
  send(kind: number, payload: Uint8Array, crc: number | undefined, written: (err?: Error | null) => void): void {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    writeHeader(header, kind, this.seq, payload.byteLength, this.checksums ? (crc ?? crc32(payload)) : 0);
    this.seq = (this.seq + 1) >>> 0;
    this.bytes += HEADER_BYTES + payload.byteLength;
    if (payload.byteLength === 0) {
      this.socket.write(header, written);
      return;
    }
    this.socket.cork();
    this.socket.write(header);
    this.socket.write(payload, written);
    this.socket.uncork();
  }
}

/** f[off+k] += st[k] for k in [e0, e1): unrolled by four, which V8 runs about 40 % faster than the plain loop. */
function addInto(f: Float32Array, st: Float32Array, off: number, e0: number, e1: number): void {
  let k = e0;
  let j = off + e0;
  for (const end = e1 - 3; k < end; k += 4, j += 4) {
    f[j] = (f[j] as number) + (st[k] as number);
    f[j + 1] = (f[j + 1] as number) + (st[k + 1] as number);
    f[j + 2] = (f[j + 2] as number) + (st[k + 2] as number);
    f[j + 3] = (f[j + 3] as number) + (st[k + 3] as number);
  }
  for (; k < e1; k++, j++) f[j] = (f[j] as number) + (st[k] as number);
}

/** Options of one collective. */
interface OpContext {
  rank: number;
  worldSize: number;
  sender: Sender;
  settings: WireSettings;
  /** Segments handed to the socket but not yet taken by the kernel, at most. */
  window: number;
  /** A send failed. */
  fail(err: Error): void;
  /** What the predecessor sent is not valid. */
  corrupt(err: FrameError): void;
  finish(): void;
}

interface Plan {
  length: number;
  /** Segments of the chunk this rank sends first (its own, step 0). */
  first: number;
  firstOff: Float64Array;
  firstLen: Float64Array;
  /** Received segments in arrival order: element offset, element count, ring step. */
  recvOff: Float64Array;
  recvLen: Float64Array;
  recvStep: Uint32Array;
  /** Sends in order: `first` segments of the own chunk, then every received one except the last step's. */
  sends: number;
}

/** Chunk c of `length` elements over n ranks: [floor(c*len/n), floor((c+1)*len/n)) — sizes differ by at most 1. */
function chunkBounds(c: number, length: number, n: number): [number, number] {
  return [Math.floor((c * length) / n), Math.floor(((c + 1) * length) / n)];
}

export function makePlan(length: number, rank: number, n: number, segElems: number): Plan {
  // Every chunk is at least one frame, even when empty: each step then exchanges a frame, so ranks that
  // disagree on the length are caught, and an empty buffer still synchronises like a barrier.
  const segments = (c: number): [number, number][] => {
    const [start, end] = chunkBounds(c, length, n);
    const out: [number, number][] = [];
    for (let at = start; at < end || out.length === 0; at += segElems) out.push([at, Math.min(segElems, end - at)]);
    return out;
  };
  const own = segments(rank);
  const recv: [number, number, number][] = [];
  for (let s = 0; s < 2 * (n - 1); s++) {
    const c = (((rank - s - 1) % n) + n) % n;
    for (const [off, len] of segments(c)) recv.push([off, len, s]);
  }
  const lastStep = 2 * n - 3;
  const lastCount = recv.filter((r) => r[2] === lastStep).length;
  return {
    length,
    first: own.length,
    firstOff: Float64Array.from(own, (s) => s[0]),
    firstLen: Float64Array.from(own, (s) => s[1]),
    recvOff: Float64Array.from(recv, (r) => r[0]),
    recvLen: Float64Array.from(recv, (r) => r[1]),
    recvStep: Uint32Array.from(recv, (r) => r[2]),
    sends: own.length + recv.length - lastCount,
  };
}

/** Staging memory of a ring, reused by every collective. */
export class Staging {
  /** One received segment of the reduce-scatter (float32) or of any step (float16). */
  recv: ArrayBuffer;
  /** float16 only: `slots` segments being sent. */
  readonly sendSlots: ArrayBuffer[] = [];
  private planCache?: { key: string; plan: Plan };

  constructor(
    readonly segmentBytes: number,
    slots: number,
    half: boolean,
  ) {
    this.recv = new ArrayBuffer(segmentBytes);
    if (half) for (let i = 0; i < slots; i++) this.sendSlots.push(new ArrayBuffer(segmentBytes));
  }

  plan(length: number, rank: number, n: number, segElems: number): Plan {
    const key = `${length}/${rank}/${n}/${segElems}`;
    if (this.planCache?.key !== key) this.planCache = { key, plan: makePlan(length, rank, n, segElems) };
    return this.planCache.plan;
  }
}

/**
 * What both collectives share: at most `ctx.window` sends handed to the socket at a time; when the kernel
 * takes one, the next is pumped and the collective checks whether it is complete.
 */
abstract class WindowedSends {
  protected sendsWritten = 0;
  protected inFlight = 0;
  protected finished = false;

  constructor(protected readonly ctx: OpContext) {}

  protected abstract pump(): void;
  protected abstract checkFinished(): void;

  protected readonly written = (err?: Error | null): void => {
    if (this.finished) return;
    if (err) {
      this.ctx.fail(err);
      return;
    }
    this.inFlight--;
    this.sendsWritten++;
    this.pump();
    this.checkFinished();
  };

  /** Stops sending (the collective failed). */
  cancel(): void {
    this.finished = true;
  }
}

/**
 * One allReduceSum (or barrier) in flight: a ReceiveOp for the predecessor's frames plus the send schedule
 * to the successor. Send i >= plan.first forwards received segment i - plan.first once it is complete.
 */
export class AllReduceOp extends WindowedSends implements ReceiveOp {
  private readonly plan: Plan;
  private readonly f32: Float32Array;
  private readonly u32: Uint32Array;
  private readonly bytes: Uint8Array;
  private readonly half: boolean;
  private readonly wire: number;
  private readonly stage32: Float32Array;
  private readonly stage16: Uint16Array;
  private readonly stageBytes: Uint8Array;
  private readonly table?: Uint32Array;
  private readonly tableF32?: Float32Array;
  /** Checksum of each received segment as it will be forwarded. */
  private readonly forwardCrc: Uint32Array;
  private recvDone = 0;
  private sendNext = 0;
  private freeSlots: number[] = [];
  private slots: Uint16Array[] = [];
  /** Elements of the current received segment already added or copied. */
  private elemsDone = 0;
  private runningCrc = 0;

  constructor(
    ctx: OpContext,
    buf: Float32Array,
    private readonly kind: number,
    staging: Staging,
  ) {
    super(ctx);
    this.half = ctx.settings.compression === 'float16';
    this.wire = this.half ? 2 : 4;
    const segElems = Math.max(1, Math.floor(ctx.settings.segmentBytes / this.wire));
    this.plan = staging.plan(buf.length, ctx.rank, ctx.worldSize, segElems);
    this.f32 = buf;
    this.u32 = new Uint32Array(buf.buffer, buf.byteOffset, buf.length);
    this.bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    this.stage32 = new Float32Array(staging.recv, 0, Math.floor(staging.recv.byteLength / 4));
    this.stage16 = new Uint16Array(staging.recv, 0, Math.floor(staging.recv.byteLength / 2));
    this.stageBytes = new Uint8Array(staging.recv);
    this.forwardCrc = new Uint32Array(this.plan.recvOff.length);
    if (this.half) {
      this.table = halfToFloatBitsTable();
      this.tableF32 = new Float32Array(this.table.buffer);
      this.freeSlots = staging.sendSlots.map((_, i) => i);
      this.slots = staging.sendSlots.map((b) => new Uint16Array(b));
    }
  }

  /** Issues the sends that need nothing received. */
  begin(): void {
    this.pump();
    this.checkFinished();
  }

  next(): Expectation | undefined {
    const i = this.recvDone;
    if (i >= this.plan.recvOff.length) return undefined;
    return { kind: this.kind, length: (this.plan.recvLen[i] as number) * this.wire, exact: true };
  }

  target(length: number): Uint8Array {
    const i = this.recvDone;
    this.elemsDone = 0;
    this.runningCrc = 0;
    if (!this.half && (this.plan.recvStep[i] as number) >= this.ctx.worldSize - 1) {
      // All-gather, float32: the owner's final bytes go straight into place.
      const off = (this.plan.recvOff[i] as number) * 4;
      return this.bytes.subarray(off, off + length);
    }
    return this.stageBytes.subarray(0, length);
  }

  progress(_from: number, to: number): void {
    const i = this.recvDone;
    const step = this.plan.recvStep[i] as number;
    const reduce = step < this.ctx.worldSize - 1;
    const off = this.plan.recvOff[i] as number;
    const e0 = this.elemsDone;
    const e1 = this.half ? to >>> 1 : to >>> 2;
    if (e1 === e0) return;
    this.elemsDone = e1;
    const f = this.f32;
    if (this.half) {
      const st = this.stage16;
      if (reduce) {
        const t = this.tableF32 as Float32Array;
        for (let k = e0; k < e1; k++) f[off + k] = (f[off + k] as number) + (t[st[k] as number] as number);
      } else {
        const t = this.table as Uint32Array;
        const u = this.u32;
        for (let k = e0; k < e1; k++) u[off + k] = t[st[k] as number] as number;
      }
    } else if (reduce) {
      addInto(f, this.stage32, off, e0, e1);
      // The sum is forwarded next step: checksum it now, while it is in cache.
      if (this.ctx.settings.checksums) this.runningCrc = crc32(this.bytes.subarray((off + e0) * 4, (off + e1) * 4), this.runningCrc);
    }
  }

  done(header: FrameHeader): void {
    const i = this.recvDone;
    // float32 all-gather forwards the bytes it received: their checksum is the header's.
    const reduce = (this.plan.recvStep[i] as number) < this.ctx.worldSize - 1;
    this.forwardCrc[i] = header.length === 0 ? 0 : !this.half && !reduce ? header.crc : this.runningCrc;
    this.runningCrc = 0;
    this.recvDone = i + 1;
    this.pump();
    this.checkFinished();
  }

  /** Sends, in order, everything whose data is ready, keeping at most `window` segments queued. */
  protected pump(): void {
    const p = this.plan;
    while (this.sendNext < p.sends && this.inFlight < this.ctx.window && !this.finished) {
      const j = this.sendNext;
      const fwd = j - p.first;
      if (fwd >= 0 && this.recvDone <= fwd) return;
      if (this.half && this.freeSlots.length === 0) return;
      const off = fwd < 0 ? (p.firstOff[j] as number) : (p.recvOff[fwd] as number);
      const len = fwd < 0 ? (p.firstLen[j] as number) : (p.recvLen[fwd] as number);
      const step = fwd < 0 ? 0 : (p.recvStep[fwd] as number) + 1;
      this.sendNext = j + 1;
      this.inFlight++;
      if (!this.half) {
        const crc = fwd < 0 || !this.ctx.settings.checksums ? undefined : (this.forwardCrc[fwd] as number);
        this.ctx.sender.send(this.kind, this.bytes.subarray(off * 4, (off + len) * 4), crc, this.written);
        continue;
      }
      const slot = this.freeSlots.pop() as number;
      const out = this.slots[slot] as Uint16Array;
      const u = this.u32;
      if (step === this.ctx.worldSize - 1) {
        // The owner's chunk, first all-gather step: the others will hold its float16 rounding, so the
        // owner keeps exactly that too (bitwise identical on all ranks).
        const t = this.table as Uint32Array;
        for (let k = 0; k < len; k++) {
          const h = halfFromFloatBits(u[off + k] as number);
          out[k] = h;
          u[off + k] = t[h] as number;
        }
      } else {
        for (let k = 0; k < len; k++) out[k] = halfFromFloatBits(u[off + k] as number);
      }
      this.ctx.sender.send(this.kind, new Uint8Array(out.buffer, 0, len * 2), undefined, (err) => {
        this.freeSlots.push(slot);
        this.written(err);
      });
    }
  }

  protected checkFinished(): void {
    if (this.finished || this.recvDone < this.plan.recvOff.length || this.sendsWritten < this.plan.sends) return;
    this.finished = true;
    this.ctx.finish();
  }

}

/**
 * One broadcast in flight. The root sends an 8-byte length and then the payload in segments; every other
 * rank reads them straight into the result and forwards each segment as it completes, unless its
 * successor is the root.
 */
export class BroadcastOp extends WindowedSends implements ReceiveOp {
  private result: Uint8Array;
  private total = -1;
  private readonly head = new Uint8Array(8);
  private recvFrames = 0;
  private recvAt = 0;
  private sendAt = 0;
  private sendFrames = 0;
  private headCrc = 0;
  private forwardCrc: number[] = [];
  private readonly forwards: boolean;
  private readonly isRoot: boolean;

  constructor(ctx: OpContext, data: Uint8Array | undefined, root: number) {
    super(ctx);
    this.isRoot = ctx.rank === root;
    this.forwards = (ctx.rank + 1) % ctx.worldSize !== root;
    this.result = data ?? new Uint8Array(0);
    if (data) this.total = data.byteLength;
  }

  get value(): Uint8Array {
    return this.result;
  }

  private get segs(): number {
    return Math.ceil(this.total / this.ctx.settings.segmentBytes);
  }

  begin(): void {
    if (this.isRoot) {
      new DataView(this.head.buffer).setUint32(0, Math.floor(this.total / 2 ** 32));
      new DataView(this.head.buffer).setUint32(4, this.total >>> 0);
      this.headCrc = crc32(this.head);
      this.sendFrames = 1 + this.segs;
    }
    this.pump();
    this.checkFinished();
  }

  next(): Expectation | undefined {
    if (this.isRoot) return undefined;
    if (this.recvFrames === 0) return { kind: FrameKind.Broadcast, length: 8, exact: true };
    if (this.recvAt >= this.total) return undefined;
    return { kind: FrameKind.Broadcast, length: Math.min(this.ctx.settings.segmentBytes, this.total - this.recvAt), exact: true };
  }

  target(length: number): Uint8Array {
    return this.recvFrames === 0 ? this.head : this.result.subarray(this.recvAt, this.recvAt + length);
  }

  progress(): void {}

  done(header: FrameHeader): void {
    if (this.recvFrames === 0) {
      const v = new DataView(this.head.buffer);
      const total = v.getUint32(0) * 2 ** 32 + v.getUint32(4);
      if (total > bufferConstants.MAX_LENGTH) {
        this.ctx.corrupt(new FrameError(`broadcast of ${total} bytes announced, more than a buffer can hold`, 'length'));
        return;
      }
      this.total = total;
      this.result = new Uint8Array(total);
      this.headCrc = header.crc;
      if (this.forwards) this.sendFrames = 1 + this.segs;
    } else {
      this.recvAt += header.length;
      this.forwardCrc.push(header.crc);
    }
    this.recvFrames++;
    this.pump();
    this.checkFinished();
  }

  protected pump(): void {
    const seg = this.ctx.settings.segmentBytes;
    while (this.sendAt < this.sendFrames && this.inFlight < this.ctx.window && !this.finished) {
      const j = this.sendAt;
      // Frame j (0 = the length) can go once it is here (the root has everything).
      if (!this.isRoot && this.recvFrames <= j) return;
      this.sendAt++;
      this.inFlight++;
      if (j === 0) {
        this.ctx.sender.send(FrameKind.Broadcast, this.head, this.headCrc, this.written);
      } else {
        const at = (j - 1) * seg;
        const part = this.result.subarray(at, Math.min(at + seg, this.total));
        this.ctx.sender.send(FrameKind.Broadcast, part, this.isRoot ? undefined : this.forwardCrc[j - 1], this.written);
      }
    }
  }

  protected checkFinished(): void {
    if (this.finished) return;
    const received = this.isRoot || (this.recvFrames > 0 && this.recvAt >= this.total);
    if (!received || this.sendsWritten < this.sendFrames) return;
    this.finished = true;
    this.ctx.finish();
  }

}

export type { OpContext };
