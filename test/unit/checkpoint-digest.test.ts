// The checkpoint digests are the standard algorithms: published test vectors, and the same answer whether the
// bytes arrive at once or in uneven chunks (as the writer's 1 MiB slices and the reader's stream deliver them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDigest, digestOf, HASH_ALGORITHMS } from '../../lib/checkpoint/digest.js';

test('SHA-256 and BLAKE3 match their published test vectors', async () => {
  // FIPS 180-2 appendix B.1; the BLAKE3 reference's empty-input vector.
  assert.equal(await digestOf('sha256', 'abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(await digestOf('blake3', ''), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
});

test('a digest is the same for any chunking and cannot be updated after it is read', async () => {
  const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31) % 251);
  for (const algorithm of HASH_ALGORITHMS) {
    const whole = await digestOf(algorithm, data);
    const d = await createDigest(algorithm);
    for (let at = 0, size = 1; at < data.length; at += size, size = size * 3 + 7) d.update(data.subarray(at, at + size));
    assert.equal(d.hex(), whole, algorithm);
    assert.throws(() => d.update(data), /already finished/);
    assert.notEqual(await digestOf(algorithm, data.subarray(1)), whole);
  }
});
