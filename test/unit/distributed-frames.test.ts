// The ring's wire format: frames round-trip, and every kind of damage (magic, version, kind, sequence,
// length, checksum) is an error, never data — in the control-frame parser and in the data path's Receiver.
// Also the float16 wire conversion against the feature cache's reference conversion.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  checkCrc,
  checkHeader,
  encodeFrame,
  FRAME_MAGIC,
  FrameError,
  FrameKind,
  FrameParser,
  halfFromFloatBits,
  halfToFloatBitsTable,
  HEADER_BYTES,
  parseHeader,
  writeHeader,
  type FrameExpectation,
  type FrameProblem,
} from '../../trainer-image/distributed/frames.js';
import { Receiver, type ReceiveOp } from '../../trainer-image/distributed/ring.js';
import { fromHalf, toHalf } from '../../trainer-image/model/float16.js';

function payload(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

function problemOf(fn: () => unknown): FrameProblem | 'none' {
  try {
    fn();
    return 'none';
  } catch (err) {
    assert.ok(err instanceof FrameError, `a FrameError, not ${String(err)}`);
    return err.problem;
  }
}

test('a frame round-trips: header fields, payload and checksum', () => {
  const data = payload(1000);
  const frame = encodeFrame(FrameKind.AllReduce, 7, data);
  assert.equal(frame.length, HEADER_BYTES + 1000);
  assert.equal(frame.readUInt32BE(0), FRAME_MAGIC);
  const h = parseHeader(frame);
  assert.deepEqual(h, { kind: FrameKind.AllReduce, seq: 7, length: 1000, crc: crc32(data) });
  checkHeader(h, { kind: FrameKind.AllReduce, seq: 7, length: 1000 });
  checkCrc(h, crc32(frame.subarray(HEADER_BYTES)));
  assert.deepEqual(new Uint8Array(frame.subarray(HEADER_BYTES)), data);
  // An empty payload has checksum 0.
  assert.equal(parseHeader(encodeFrame(FrameKind.Barrier, 0)).crc, 0);
  // Sequence numbers are u32 and wrap.
  const big = new Uint8Array(HEADER_BYTES);
  writeHeader(big, FrameKind.Hello, 2 ** 32 + 5, 0, 0);
  assert.equal(parseHeader(big).seq, 5);
});

test('corrupt magic, version, kind, sequence, length and checksum are each detected', () => {
  const data = payload(64);
  const good = (): Buffer => encodeFrame(FrameKind.AllReduce, 3, data);
  const expect: FrameExpectation = { kind: FrameKind.AllReduce, seq: 3, length: 64 };
  const check = (f: Buffer, e: FrameExpectation = expect): void => {
    const h = parseHeader(f);
    checkHeader(h, e);
    checkCrc(h, crc32(f.subarray(HEADER_BYTES)));
  };
  assert.equal(problemOf(() => check(good())), 'none');
  const magic = good();
  magic[0] = 0x47;
  assert.equal(problemOf(() => check(magic)), 'magic');
  const version = good();
  version[4] = 2;
  assert.equal(problemOf(() => check(version)), 'version');
  assert.equal(problemOf(() => check(good(), { ...expect, kind: FrameKind.Broadcast })), 'kind');
  assert.equal(problemOf(() => check(good(), { ...expect, seq: 4 })), 'seq');
  assert.equal(problemOf(() => check(good(), { ...expect, length: 60 })), 'length', 'a length other than the exact one expected');
  assert.equal(problemOf(() => check(good(), { kind: FrameKind.AllReduce, seq: 3, maxLength: 63 })), 'length', 'a length beyond the maximum');
  for (const at of [HEADER_BYTES, HEADER_BYTES + 31, HEADER_BYTES + 63]) {
    const flipped = good();
    flipped[at] = (flipped[at] as number) ^ 0x10;
    assert.equal(problemOf(() => check(flipped)), 'crc', `a flipped bit at byte ${at}`);
  }
  const crcField = good();
  crcField[19] = (crcField[19] as number) ^ 1;
  assert.equal(problemOf(() => check(crcField)), 'crc', 'a damaged checksum field');
});

test('FrameParser reassembles frames from any split of the stream and rejects damage', () => {
  const frames = [encodeFrame(FrameKind.Register, 0, payload(10)), encodeFrame(FrameKind.Status, 1, payload(0)), encodeFrame(FrameKind.Answer, 2, payload(300, 9))];
  const stream = Buffer.concat(frames);
  for (const step of [1, 7, 20, 21, stream.length]) {
    const parser = new FrameParser();
    const got = [];
    for (let at = 0; at < stream.length; at += step) got.push(...parser.push(stream.subarray(at, at + step)));
    assert.deepEqual(
      got.map((f) => [f.header.kind, f.header.seq, f.payload.length]),
      [[FrameKind.Register, 0, 10], [FrameKind.Status, 1, 0], [FrameKind.Answer, 2, 300]],
      `chunks of ${step} bytes`,
    );
    assert.deepEqual(new Uint8Array(got[2]?.payload ?? []), payload(300, 9));
    assert.equal(parser.buffered, 0);
  }
  const gap = new FrameParser();
  gap.push(frames[0] as Buffer);
  assert.equal(problemOf(() => gap.push(frames[2] as Buffer)), 'seq', 'a skipped frame');
  const bad = Buffer.from(frames[0] as Buffer);
  bad[HEADER_BYTES + 3] = (bad[HEADER_BYTES + 3] as number) ^ 0xff;
  assert.equal(problemOf(() => new FrameParser().push(bad)), 'crc');
  assert.equal(problemOf(() => new FrameParser(100).push(encodeFrame(FrameKind.Answer, 0, payload(300)))), 'length', 'more than the parser allows');
  assert.equal(problemOf(() => new FrameParser().push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))), 'magic');
});

/** Drives a Receiver as a socket would: each read fills (part of) the buffer it hands out. */
function feed(receiver: Receiver, bytes: Uint8Array, readSize: number): void {
  let at = 0;
  while (at < bytes.length) {
    const into = receiver.onread.buffer();
    const n = Math.min(readSize, into.length, bytes.length - at);
    assert.ok(n > 0, 'the receiver hands out room while it expects data');
    into.set(bytes.subarray(at, at + n));
    at += n;
    if (!receiver.onread.callback(n)) break;
  }
}

function collectOp(lengths: number[]): ReceiveOp & { got: Uint8Array[]; progressed: number } {
  let i = 0;
  let current = new Uint8Array(0);
  const op = {
    got: [] as Uint8Array[],
    progressed: 0,
    next: () => (i < lengths.length ? { kind: FrameKind.AllReduce, length: lengths[i] as number, exact: true } : undefined),
    target: (length: number) => (current = new Uint8Array(length)),
    progress: (from: number, to: number) => {
      op.progressed += to - from;
    },
    done: () => {
      op.got.push(current);
      current = new Uint8Array(0);
      i++;
    },
  };
  return op;
}

test('the data-path Receiver reads frames into the targets it is given and rejects damage', () => {
  const parts = [payload(1000, 1), payload(0), payload(4096, 2)];
  const stream = Buffer.concat(parts.map((p, i) => encodeFrame(FrameKind.AllReduce, i, p)));
  for (const readSize of [1, 13, 1 << 20]) {
    const errors: FrameError[] = [];
    const r = new Receiver(true, (e) => errors.push(e));
    const op = collectOp(parts.map((p) => p.length));
    r.start(op);
    feed(r, stream, readSize);
    assert.deepEqual(errors, []);
    assert.deepEqual(op.got, parts, `reads of ${readSize} bytes`);
    assert.equal(op.progressed, 5096);
    assert.equal(r.bytes, stream.length);
    assert.equal(r.busy, false, 'the operation is over once its frames are in');
  }

  const damaged = (mutate: (frames: Buffer[]) => void, lengths = parts.map((p) => p.length)): FrameProblem | 'none' => {
    const frames = parts.map((p, i) => encodeFrame(FrameKind.AllReduce, i, p));
    mutate(frames);
    const errors: FrameError[] = [];
    const r = new Receiver(true, (e) => errors.push(e));
    const op = collectOp(lengths);
    r.start(op);
    feed(r, Buffer.concat(frames), 500);
    assert.ok(errors.length <= 1);
    return errors[0]?.problem ?? 'none';
  };
  assert.equal(damaged(() => undefined), 'none');
  assert.equal(damaged((f) => ((f[2] as Buffer)[HEADER_BYTES + 100] = ((f[2] as Buffer)[HEADER_BYTES + 100] as number) ^ 1)), 'crc');
  assert.equal(damaged((f) => ((f[0] as Buffer)[1] = 0)), 'magic');
  assert.equal(damaged((f) => (f[1] = encodeFrame(FrameKind.AllReduce, 5, parts[1]))), 'seq');
  assert.equal(damaged((f) => (f[2] = encodeFrame(FrameKind.Broadcast, 2, parts[2]))), 'kind');
  assert.equal(damaged(() => undefined, [1000, 0, 4000]), 'length');
  // A header announcing far more than expected is refused before any payload is read.
  assert.equal(
    damaged((f) => {
      const h = f[2] as Buffer;
      h.writeUInt32BE(0xffffffff, 12);
    }),
    'length',
  );
});

test('float16 wire conversion: round to nearest even, specials, and bit-stable round trips', () => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const bitsOf = (x: number): number => {
    f[0] = x;
    return u[0] as number;
  };
  for (const x of [0, -0, 1, -2, 65504, 65519, 65520, 1e6, -1e6, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -26, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, Infinity, -Infinity]) {
    assert.equal(halfFromFloatBits(bitsOf(x)), toHalf(x), `half of ${x}`);
  }
  let s = 99;
  for (let i = 0; i < 200_000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const bits = (Math.imul(s, 2654435761) ^ (s << 7)) >>> 0;
    f[0] = 0;
    u[0] = bits;
    const x = f[0] as number;
    if (Number.isNaN(x)) assert.equal(halfFromFloatBits(bits) & 0x7e00, 0x7e00, 'NaN stays a quiet NaN');
    else assert.equal(halfFromFloatBits(bits), toHalf(x), `half of bits 0x${bits.toString(16)}`);
  }
  const table = halfToFloatBitsTable();
  for (let h = 0; h < 65536; h++) {
    const exp = (h >>> 10) & 0x1f;
    u[0] = table[h] as number;
    if (exp === 0x1f && (h & 0x3ff) !== 0) {
      assert.ok(Number.isNaN(f[0]));
      if (h & 0x200) assert.equal(halfFromFloatBits(table[h] as number), h, 'a quiet NaN keeps its payload through a hop');
      continue;
    }
    assert.equal(f[0], fromHalf(h), `float of half 0x${h.toString(16)}`);
    assert.equal(halfFromFloatBits(table[h] as number), h, 'half -> float -> half is exact');
  }
});
