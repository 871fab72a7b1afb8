import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../lib/errors.js';
import { decodeBatch, decodeToRgb, type BadImage } from '../../trainer-image/model/image-pipeline.js';

const bad = fileURLToPath(new URL('../fixtures/data-bad/', import.meta.url));
const encoded = async (name: string) => ({ kind: 'encoded' as const, data: await readFile(`${bad}${name}`), path: `${bad}${name}` });

test('EXIF orientation is applied before resizing: left/right halves become top/bottom', async () => {
  const px = await decodeToRgb(await encoded('exif-rotate-6.jpg'), 8);
  const at = (x: number, y: number) => [...px.slice((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)];
  // Stored red|blue side by side; orientation 6 rotates 90 degrees clockwise: red on top, blue below.
  assert.ok((at(4, 1)[0] as number) > 150 && (at(4, 1)[2] as number) < 100, `top is red: ${at(4, 1)}`);
  assert.ok((at(4, 6)[2] as number) > 150 && (at(4, 6)[0] as number) < 100, `bottom is blue: ${at(4, 6)}`);
});

test('raw pixels are resized to the square input', async () => {
  const data = new Uint8Array(4 * 2 * 3).fill(200);
  const px = await decodeToRgb({ kind: 'raw', data, width: 4, height: 2, channels: 3 }, 6);
  assert.equal(px.length, 6 * 6 * 3);
  assert.ok(px.every((v) => v === 200));
});

test('truncated and non-image files are InvalidInputError naming the file; a batch keeps the good ones', async () => {
  for (const name of ['truncated.jpg', 'not-an-image.jpg']) {
    await assert.rejects(decodeToRgb(await encoded(name), 8), (e: unknown) => e instanceof InvalidInputError && e.file === `${bad}${name}` && /unreadable or truncated/.test(e.message));
  }
  const reported: BadImage[] = [];
  const sources = [
    { id: 'trunc', src: await encoded('truncated.jpg') },
    { id: 'ok', src: await encoded('exif-rotate-6.jpg') },
    { id: 'text', src: await encoded('not-an-image.jpg') },
  ];
  const out = await decodeBatch(sources, 8, (b) => reported.push(b));
  assert.deepEqual(out.indexes, [1]);
  assert.equal(out.pixels.length, 8 * 8 * 3);
  assert.deepEqual(reported.map((b) => b.id).sort(), ['text', 'trunc']);
});
