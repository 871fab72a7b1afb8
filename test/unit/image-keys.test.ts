// Packed feature-cache keys: what goes in comes out (images without a key included), slices and picks keep
// their images' keys, and an index file that was torn or altered reads as no index rather than as keys.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { ImageKeys } from '../../trainer-image/features/image-keys.js';

const key = (i: number): string => createHash('sha256').update(String(i)).digest('hex');
const keys = [key(0), undefined, key(2), key(3), undefined, key(5)];

test('keys and missing keys round-trip through the packed form and its encoding', () => {
  const packed = ImageKeys.from(keys);
  assert.equal(packed.length, 6);
  assert.deepEqual(packed.toArray(), keys);
  assert.equal(packed.has(1), false);
  assert.equal(packed.has(2), true);
  assert.deepEqual(ImageKeys.decode(packed.encode())?.toArray(), keys);
  assert.deepEqual(ImageKeys.decode(ImageKeys.from([]).encode())?.toArray(), []);
});

test('slice and pick keep each image with its own key', () => {
  const packed = ImageKeys.from(keys);
  assert.deepEqual(packed.slice(2).toArray(), keys.slice(2));
  assert.deepEqual(packed.slice(1, 3).toArray(), keys.slice(1, 3));
  assert.deepEqual(packed.pick([5, 0, 5]).toArray(), [key(5), key(0), key(5)]);
});

test('a torn, altered or foreign index decodes as none', () => {
  const bytes = ImageKeys.from(keys).encode();
  assert.equal(ImageKeys.decode(bytes.subarray(0, bytes.length - 1)), undefined, 'torn');
  const flipped = Buffer.from(bytes);
  flipped[20] = (flipped[20] as number) ^ 1;
  assert.equal(ImageKeys.decode(flipped), undefined, 'altered');
  assert.equal(ImageKeys.decode(Buffer.from(JSON.stringify(keys))), undefined, 'an index of the JSON format');
});

test('a key that is not a sha256 in hex is refused', () => {
  assert.throws(() => ImageKeys.from(['not-a-key']), /not a sha256 in hex/);
});
