// The wire format between ranks. Every message is a frame: a fixed 20-byte header, then the payload.
//
//   offset 0  u32  magic 0x43524e47 ("CRNG")
//          4  u8   version (1)
//          5  u8   kind (FrameKind)
//          6  u16  reserved (0)
//          8  u32  sequence number: 0, 1, 2, ... per connection and direction, wrapping at 2^32
//         12  u32  payload length in bytes
//         16  u32  CRC-32 (zlib's polynomial) of the payload
//   all big-endian.
//
// A receiver always knows what comes next (which kind, which sequence number, how many bytes at most), so
// a frame with a bad magic or version, an unexpected kind or sequence number, a length beyond the expected
// one or a checksum that does not match is corruption: a FrameError, which the ring turns into
// PeerFailedError(cause 'corrupt'), never data. Control messages (rendezvous, ring hello) carry JSON.
//
// float16 wire compression also lives here: IEEE 754 half precision, round to nearest even, working on the
// float's bits so that a value that is already a half passes through any number of hops bit for bit.
import { crc32 } from 'node:zlib';

export const FRAME_MAGIC = 0x43524e47;
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 20;
/** Largest control (JSON) payload anyone sends or accepts. */
export const MAX_CONTROL_BYTES = 1 << 20;

export const FrameKind = {
  /** A rank's registration with rank 0 (JSON Registration). */
  Register: 1,
  /** Rank 0's progress report to the registered ranks: who has joined so far (JSON). */
  Status: 2,
  /** An answer: the ring, a ring-hello acceptance, or why a process was refused (JSON). */
  Answer: 3,
  /** The first frame on a ring connection: who is connecting (JSON). */
  Hello: 4,
  /** A segment of allReduceSum. */
  AllReduce: 5,
  /** broadcast: the 8-byte total length, then the segments. */
  Broadcast: 6,
  /** A segment of a barrier (a tiny all-reduce of its own kind, so a mismatched call is caught). */
  Barrier: 7,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const KIND_NAMES: Record<number, string> = {
  [FrameKind.Register]: 'register',
  [FrameKind.Status]: 'status',
  [FrameKind.Answer]: 'answer',
  [FrameKind.Hello]: 'hello',
  [FrameKind.AllReduce]: 'allReduceSum',
  [FrameKind.Broadcast]: 'broadcast',
  [FrameKind.Barrier]: 'barrier',
};

export function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? `unknown kind ${kind}`;
}

export type FrameProblem = 'magic' | 'version' | 'kind' | 'seq' | 'length' | 'crc' | 'payload';

/** A frame that is not what the receiver expects. The ring turns it into PeerFailedError('corrupt'). */
export class FrameError extends Error {
  constructor(
    message: string,
    readonly problem: FrameProblem,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

export interface FrameHeader {
  kind: number;
  seq: number;
  length: number;
  crc: number;
}

export interface FrameExpectation {
  kind: number;
  seq: number;
  /** The payload must be exactly this long... */
  length?: number;
  /** ...or at most this long. */
  maxLength?: number;
}

/** Writes a header into target[0..20). */
export function writeHeader(target: Uint8Array, kind: number, seq: number, length: number, crc: number): void {
  const v = new DataView(target.buffer, target.byteOffset, HEADER_BYTES);
  v.setUint32(0, FRAME_MAGIC);
  v.setUint8(4, FRAME_VERSION);
  v.setUint8(5, kind);
  v.setUint16(6, 0);
  v.setUint32(8, seq >>> 0);
  v.setUint32(12, length);
  v.setUint32(16, crc >>> 0);
}

/** Parses a header, checking only what every frame must satisfy (magic and version). */
export function parseHeader(h: Uint8Array): FrameHeader {
  const v = new DataView(h.buffer, h.byteOffset, HEADER_BYTES);
  const magic = v.getUint32(0);
  if (magic !== FRAME_MAGIC) throw new FrameError(`bad magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${FRAME_MAGIC.toString(16)}): not a captionrun ring frame`, 'magic');
  const version = v.getUint8(4);
  if (version !== FRAME_VERSION) throw new FrameError(`protocol version ${version}, this process speaks ${FRAME_VERSION}`, 'version');
  return { kind: v.getUint8(5), seq: v.getUint32(8), length: v.getUint32(12), crc: v.getUint32(16) };
}

/** Checks a parsed header against what the receiver expects next. */
export function checkHeader(h: FrameHeader, expect: FrameExpectation): void {
  if (h.kind !== expect.kind) {
    throw new FrameError(`a ${kindName(h.kind)} frame where a ${kindName(expect.kind)} frame was due (do all ranks call the same collectives in the same order?)`, 'kind');
  }
  if (h.seq !== expect.seq >>> 0) throw new FrameError(`sequence number ${h.seq}, expected ${expect.seq >>> 0} (a frame was lost, repeated or reordered)`, 'seq');
  if (expect.length !== undefined && h.length !== expect.length) {
    throw new FrameError(`${kindName(h.kind)} frame of ${h.length} bytes, expected ${expect.length} (do all ranks pass buffers of the same length, segmentBytes and compression?)`, 'length');
  }
  if (expect.maxLength !== undefined && h.length > expect.maxLength) {
    throw new FrameError(`${kindName(h.kind)} frame of ${h.length} bytes, more than the ${expect.maxLength} expected`, 'length');
  }
}

/** Throws unless `crc` (as computed over the received payload) is the header's. */
export function checkCrc(h: FrameHeader, crc: number): void {
  if (crc >>> 0 !== h.crc) {
    throw new FrameError(`${kindName(h.kind)} frame ${h.seq}: payload checksum 0x${(crc >>> 0).toString(16)} does not match the header's 0x${h.crc.toString(16)}`, 'crc');
  }
}

/** One whole frame (header and payload) in a new buffer: for control messages, not the data path. */
export function encodeFrame(kind: number, seq: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength);
  writeHeader(out, kind, seq, payload.byteLength, crc32(payload));
  out.set(payload, HEADER_BYTES);
  return out;
}

export function encodeJson(kind: number, seq: number, value: unknown): Buffer {
  return encodeFrame(kind, seq, Buffer.from(JSON.stringify(value)));
}

export function decodeJson<T>(payload: Uint8Array): T {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')) as T;
  } catch (err) {
    throw new FrameError(`a control frame whose payload is not JSON (${(err as Error).message})`, 'payload');
  }
}

export interface Frame {
  header: FrameHeader;
  payload: Buffer;
}

/**
 * Splits a byte stream of control frames (fed from 'data' events) into checked frames: magic, version,
 * length at most `maxLength`, sequence numbers from 0 in order, checksum. Kinds are the caller's to check.
 * It copies, so it is for the few small control messages, not for collectives.
 */
export class FrameParser {
  private pending: Buffer = Buffer.alloc(0);
  private seq = 0;

  constructor(private readonly maxLength = MAX_CONTROL_BYTES) {}

  /** The complete frames that `chunk` finishes (throws FrameError on the first bad one). */
  push(chunk: Uint8Array): Frame[] {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const header = parseHeader(this.pending);
      if (header.seq !== this.seq >>> 0) throw new FrameError(`sequence number ${header.seq}, expected ${this.seq >>> 0}`, 'seq');
      if (header.length > this.maxLength) throw new FrameError(`${kindName(header.kind)} frame of ${header.length} bytes, more than the ${this.maxLength} allowed`, 'length');
      if (this.pending.length < HEADER_BYTES + header.length) break;
      const payload = this.pending.subarray(HEADER_BYTES, HEADER_BYTES + header.length);
      checkCrc(header, crc32(payload));
      frames.push({ header, payload });
      this.seq = (this.seq + 1) >>> 0;
      this.pending = this.pending.subarray(HEADER_BYTES + header.length);
    }
    return frames;
  }

  /** Bytes received past the last complete frame. */
  get buffered(): number {
    return this.pending.length;
  }
}

// ---- float16 ----

/** Half-precision bits of the float32 with bits `x` (round to nearest even; overflow -> Infinity; NaN stays NaN). */
export function halfFromFloatBits(x: number): number {
  const abs = x & 0x7fffffff;
  // Normal halves, the common case, first: rebias the exponent (127 -> 15) and round the 13 dropped mantissa
  // bits to nearest even by adding 0xfff plus the kept lowest bit; a carry correctly bumps the exponent
  // (up to Infinity at 65520).
  if (abs - 0x38800000 >>> 0 < 0x0f000000) return (((abs + 0xfff + ((abs >>> 13) & 1)) >>> 13) - 0x1c000) | ((x >>> 16) & 0x8000);
  return halfFromFloatBitsRare(x);
}

function halfFromFloatBitsRare(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) return abs === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
  // 65536 and above (the fast path rounds 65520..65535 up itself).
  if (abs >= 0x47800000) return sign | 0x7c00;
  // Below 2^-25 (and 2^-25 itself, a tie to the even 0) -> signed zero.
  if (abs <= 0x33000000) return sign;
  // Subnormal half: the 24-bit significand shifted down to units of 2^-24, rounded to nearest even.
  const shift = 126 - (abs >>> 23);
  const mant = (abs & 0x7fffff) | 0x800000;
  const half = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  return sign | (rest > mid || (rest === mid && (half & 1) === 1) ? half + 1 : half);
}

let halfTable: Uint32Array | undefined;

/**
 * Float32 bits of every half (65,536 entries): widening is one lookup, and copying through the bits (not
 * through a JS number) keeps NaN payloads, so all ranks end bitwise identical even there.
 */
export function halfToFloatBitsTable(): Uint32Array {
  if (halfTable) return halfTable;
  const t = new Uint32Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      t[h] = sign | 0x7f800000 | (mant << 13);
    } else if (exp === 0) {
      f[0] = mant * 2 ** -24;
      t[h] = (sign | (u[0] as number)) >>> 0;
    } else {
      t[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  halfTable = t;
  return t;
}
