// The wire format between ranks: every message is a frame with a fixed 20-byte header — magic, version,
// kind, sequence number, payload length, CRC32 of the payload — then the payload. A frame that fails any
// check (wrong magic or version, unexpected kind, a sequence gap, a length beyond what the receiver
// expects, a checksum mismatch) is corruption: an error, never data.
import { crc32 } from 'node:zlib';
import type { Socket } from 'node:net';

export const MAGIC = 0x43524e31; // "CRN1"
export const VERSION = 1;
export const HEADER_BYTES = 20;

export const FrameKind = {
  /** A process's registration with rank 0 (JSON). */
  Register: 1,
  /** Rank 0's answer: the ring, or why it refused (JSON). */
  Answer: 2,
  /** The first frame on a ring connection: who is connecting (JSON). */
  Hello: 3,
  /** A segment of a collective's data. */
  Data: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export function frameHeader(kind: FrameKind, seq: number, payload: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32BE(MAGIC, 0);
  h.writeUInt8(VERSION, 4);
  h.writeUInt8(kind, 5);
  h.writeUInt16BE(0, 6);
  h.writeUInt32BE(seq >>> 0, 8);
  h.writeUInt32BE(payload.byteLength, 12);
  h.writeUInt32BE(crc32(payload), 16);
  return h;
}

/** Why a frame was rejected; the caller turns it into the right error for its context. */
export class FrameError extends Error {}

export interface FrameCheck {
  kind: FrameKind;
  seq: number;
  /** The payload must be exactly this long (data segments), or at most `maxLength` bytes. */
  length?: number;
  maxLength?: number;
}

/** Checks a received header against what the receiver expects; returns the payload length and checksum. */
export function checkHeader(h: Uint8Array, expect: FrameCheck): { length: number; crc: number } {
  const v = Buffer.from(h.buffer, h.byteOffset, HEADER_BYTES);
  if (v.readUInt32BE(0) !== MAGIC) throw new FrameError(`bad magic 0x${v.readUInt32BE(0).toString(16)}`);
  if (v.readUInt8(4) !== VERSION) throw new FrameError(`protocol version ${v.readUInt8(4)}, expected ${VERSION}`);
  if (v.readUInt8(5) !== expect.kind) throw new FrameError(`frame kind ${v.readUInt8(5)}, expected ${expect.kind}`);
  const seq = v.readUInt32BE(8);
  if (seq !== expect.seq >>> 0) throw new FrameError(`sequence number ${seq}, expected ${expect.seq >>> 0}`);
  const length = v.readUInt32BE(12);
  if (expect.length !== undefined && length !== expect.length) throw new FrameError(`payload of ${length} bytes, expected ${expect.length}`);
  if (expect.maxLength !== undefined && length > expect.maxLength) throw new FrameError(`payload of ${length} bytes exceeds ${expect.maxLength}`);
  return { length, crc: v.readUInt32BE(16) };
}

export function checkPayload(payload: Uint8Array, crc: number): void {
  const actual = crc32(payload);
  if (actual !== crc) throw new FrameError(`payload checksum 0x${actual.toString(16)} does not match the header's 0x${crc.toString(16)}`);
}

/** Why a stream ended: the caller maps it to a peer failure. */
export class StreamClosedError extends Error {
  constructor(
    message: string,
    readonly reset: boolean,
  ) {
    super(message);
  }
}

/**
 * Reads exact byte counts from a socket into caller-given buffers, copying each arriving chunk once,
 * straight into the destination when a read is waiting (the hot path of the ring).
 */
export class StreamReader {
  private readonly chunks: Buffer[] = [];
  private pending?: { target: Uint8Array; filled: number; resolve: () => void; reject: (e: Error) => void };
  private ended?: Error;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.end(new StreamClosedError(`${err.code ?? 'error'}: ${err.message}`, true)));
    socket.on('close', () => this.end(new StreamClosedError('connection closed', false)));
    socket.on('end', () => this.end(new StreamClosedError('connection closed by the peer', false)));
  }

  /** The error that ended the stream, if it has ended. */
  get closed(): Error | undefined {
    return this.ended;
  }

  /** Fills `target` completely. */
  read(target: Uint8Array): Promise<void> {
    if (this.pending) return Promise.reject(new Error('StreamReader: a read is already pending'));
    let filled = 0;
    while (filled < target.byteLength && this.chunks.length > 0) filled += this.take(target, filled);
    if (filled === target.byteLength) return Promise.resolve();
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.pending = { target, filled, resolve, reject };
    });
  }

  /** Fails a waiting read (and every later one) with `err`, e.g. on a collective timeout. */
  abort(err: Error): void {
    this.end(err);
  }

  private take(target: Uint8Array, at: number): number {
    const chunk = this.chunks[0] as Buffer;
    const n = Math.min(chunk.byteLength, target.byteLength - at);
    target.set(n === chunk.byteLength ? chunk : chunk.subarray(0, n), at);
    if (n === chunk.byteLength) this.chunks.shift();
    else this.chunks[0] = chunk.subarray(n);
    return n;
  }

  private push(chunk: Buffer): void {
    const p = this.pending;
    if (!p) {
      this.chunks.push(chunk);
      return;
    }
    const n = Math.min(chunk.byteLength, p.target.byteLength - p.filled);
    p.target.set(n === chunk.byteLength ? chunk : chunk.subarray(0, n), p.filled);
    p.filled += n;
    if (n < chunk.byteLength) this.chunks.push(chunk.subarray(n));
    if (p.filled === p.target.byteLength) {
      this.pending = undefined;
      p.resolve();
    }
  }

  private end(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }
}
