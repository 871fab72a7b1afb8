// The wasm BatchMatMul re-registration (trainer-image/wasm-matmul.ts) must give exactly the products of
// explicit transposes followed by untransposed matmuls, for every transpose flag, batched and broadcast
// shapes, in both of its forms, and leave no memory behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../trainer-image/backend.js';

await initBackend('wasm');

function seeded(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37)), shape);
}

const swap = (x: tf.Tensor): tf.Tensor => tf.transpose(x, [...x.shape.keys()].map((i, _, all) => (i < all.length - 2 ? i : 2 * all.length - 3 - i)));

// [a shape, b shape] as multiplied after the flags are applied; each runs with every flag combination.
const cases: [number[], number[], string][] = [
  [[3, 40], [40, 200], 'small a, large b: the swapped form'],
  [[200, 40], [40, 3], 'large a, small b: the direct form'],
  [[4, 5, 6], [4, 6, 7], 'batched'],
  [[4, 5, 6], [6, 7], 'b broadcast over the batch'],
];

for (const [aShape, bShape, what] of cases) {
  test(`transposed matmuls equal explicit transposes on wasm: ${what}`, () => {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        tf.tidy(() => {
          const a = seeded(aShape, 1);
          const b = seeded(bShape, 2);
          const aIn = transposeA ? swap(a) : a;
          const bIn = transposeB ? swap(b) : b;
          // The backend's own count sees the kernel's temporaries, which the engine's tensor count does not.
          const before = tf.backend().numDataIds();
          const product = tf.matMul(aIn, bIn, transposeA, transposeB);
          assert.equal(tf.backend().numDataIds() - before, 1, 'only the product is left allocated');
          const expected = tf.matMul(a, b);
          assert.deepEqual(product.shape, expected.shape);
          assert.deepEqual([...product.dataSync()], [...expected.dataSync()], `transposeA=${transposeA} transposeB=${transposeB}`);
        });
      }
    }
  });
}
