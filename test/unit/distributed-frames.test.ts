import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { checkHeader, checkPayload, FrameError, FrameKind, frameHeader, HEADER_BYTES, StreamReader } from '../../trainer-image/distributed/frames.js';

const payload = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);

test('a frame header round-trips and every field is checked', () => {
  const h = frameHeader(FrameKind.Data, 41, payload);
  assert.equal(h.byteLength, HEADER_BYTES);
  const { length, crc } = checkHeader(h, { kind: FrameKind.Data, seq: 41, length: 1000 });
  assert.equal(length, 1000);
  checkPayload(payload, crc);
  const corrupt = (at: number): Buffer => {
    const c = Buffer.from(h);
    c[at] = (c[at] as number) ^ 0x01;
    return c;
  };
  assert.throws(() => checkHeader(corrupt(0), { kind: FrameKind.Data, seq: 41 }), /bad magic/);
  assert.throws(() => checkHeader(corrupt(4), { kind: FrameKind.Data, seq: 41 }), /protocol version/);
  assert.throws(() => checkHeader(corrupt(5), { kind: FrameKind.Data, seq: 41 }), /frame kind/);
  assert.throws(() => checkHeader(h, { kind: FrameKind.Data, seq: 42 }), /sequence number 41, expected 42/);
  assert.throws(() => checkHeader(h, { kind: FrameKind.Data, seq: 41, length: 999 }), /payload of 1000 bytes, expected 999/);
  assert.throws(() => checkHeader(h, { kind: FrameKind.Data, seq: 41, maxLength: 10 }), /exceeds 10/);
  const flipped = Uint8Array.from(payload);
  flipped[500] = (flipped[500] as number) ^ 0x80;
  assert.throws(() => checkPayload(flipped, crc), (e: unknown) => e instanceof FrameError && /checksum/.test(e.message));
});

async function socketPair(): Promise<{ a: Socket; b: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect({ host: '127.0.0.1', port });
  const b = await accepted;
  return { a, b, close: () => (a.destroy(), b.destroy(), server.close()) };
}

test('the stream reader reassembles exact reads from arbitrary chunks and reports a closed stream', async () => {
  const { a, b, close } = await socketPair();
  const reader = new StreamReader(b);
  const data = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251);
  for (let at = 0; at < data.length; at += 777) a.write(data.subarray(at, at + 777));
  const first = new Uint8Array(10);
  const rest = new Uint8Array(data.length - 10);
  await reader.read(first);
  await reader.read(rest);
  assert.deepEqual([...first], [...data.subarray(0, 10)]);
  assert.ok(Buffer.from(rest).equals(Buffer.from(data.subarray(10))));
  const waiting = reader.read(new Uint8Array(5));
  a.end();
  await assert.rejects(waiting, /closed/);
  close();
});
