import assert from 'node:assert/strict';
import { test } from 'node:test';
import { float16ToFloat32, float32ToFloat16, FLOAT16_RELATIVE_ERROR, fromHalf, toHalf } from '../../trainer-image/model/float16.js';

test('exact values and IEEE special cases', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [0.333251953125, 0x3555],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  for (const [value, bits] of cases) {
    assert.equal(toHalf(value), bits, `toHalf(${value})`);
    assert.equal(fromHalf(bits), value, `fromHalf(0x${bits.toString(16)})`);
  }
  assert.equal(toHalf(-0), 0x8000);
  assert.equal(toHalf(1e6), 0x7c00, 'overflow saturates to Infinity');
  assert.equal(toHalf(65520), 0x7c00, 'rounds up past the largest half to Infinity');
  assert.equal(toHalf(2 ** -26), 0, 'underflow to zero');
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
});

test('round to nearest, ties to even', () => {
  // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to the even mantissa (1).
  assert.equal(toHalf(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  assert.equal(toHalf(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(toHalf(1 + 2 ** -11 + 2 ** -20), 0x3c01, 'just above the tie rounds up');
});

test('every half survives half -> float -> half unchanged', () => {
  for (let h = 0; h < 65536; h++) {
    const exp = (h >>> 10) & 0x1f;
    if (exp === 0x1f && (h & 0x3ff) !== 0) continue;
    assert.equal(toHalf(fromHalf(h)), h);
  }
});

test('feature-like values round-trip within half an ulp (relative 2^-11) and small values within 2^-25 absolute', () => {
  const values = new Float32Array(100_000);
  let s = 12345;
  for (let i = 0; i < values.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    // ReLU features: many zeros, most mass below 5, a tail up to ~40.
    const u = s / 4294967296;
    values[i] = u < 0.3 ? 0 : (-Math.log(u) * 3) ** 1.5;
  }
  const back = float16ToFloat32(float32ToFloat16(values));
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    const err = Math.abs((back[i] as number) - v);
    assert.ok(err <= Math.max(Math.abs(v) * FLOAT16_RELATIVE_ERROR, 2 ** -25), `value ${v} came back as ${back[i]}`);
  }
});
