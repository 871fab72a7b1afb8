// The legacy torch.save reader against files written by Python's own pickler (test/reference/torch_legacy_save.py,
// laid out as torch's _legacy_save does): strided views come out in logical order, storage offsets and storages
// shared between tensors are honoured, and anything outside a state dict is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../lib/errors.js';
import { readTorchLegacyCheckpoint } from '../../trainer-image/model/torch-legacy-checkpoint.js';

const writer = fileURLToPath(new URL('../reference/torch_legacy_save.py', import.meta.url));
let dir = '';
after(() => rm(dir, { recursive: true, force: true }));

async function written(): Promise<{ file: string; bytes: Buffer }> {
  dir = await mkdtemp(join(tmpdir(), 'torch-legacy-'));
  const file = join(dir, 'small.pth');
  const r = spawnSync('python3', [writer, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 ${writer} failed: ${r.error?.message ?? r.stderr}`);
  return { file, bytes: await readFile(file) };
}

test('strided views, storage offsets and shared storages read as torch would index them', async () => {
  const { file, bytes } = await written();
  const state = readTorchLegacyCheckpoint(bytes, file);
  assert.deepEqual([...state.keys()], ['conv.weight', 'every_second', 'block', 'num_batches_tracked']);

  const conv = state.get('conv.weight');
  assert.equal(conv?.dtype, 'float32');
  assert.deepEqual(conv.shape, [2, 3, 2, 2]);
  // Logical (o, i, y, x) is storage[y*12 + x*6 + i*2 + o]: a reader that ignored strides would give 0, 1, 2, ...
  const expected: number[] = [];
  for (let o = 0; o < 2; o++) for (let i = 0; i < 3; i++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) expected.push(y * 12 + x * 6 + i * 2 + o);
  assert.deepEqual([...conv.values], expected);

  assert.deepEqual([...(state.get('every_second')?.values ?? [])], [103, 105, 107, 109]);
  assert.deepEqual(state.get('block')?.shape, [2, 2]);
  assert.deepEqual([...(state.get('block')?.values ?? [])], [101, 102, 106, 107]);
  const count = state.get('num_batches_tracked');
  assert.equal(count?.dtype, 'int64');
  assert.deepEqual(count.shape, []);
  assert.deepEqual([...count.values], [-5n]);
});

test('damaged files and foreign pickles are clear errors, never code', async () => {
  const { file, bytes } = await written();
  const refused = (b: Uint8Array, pattern: RegExp) =>
    assert.throws(
      () => readTorchLegacyCheckpoint(b, file),
      (e: unknown) => e instanceof InvalidInputError && pattern.test(e.message) && e.file === file,
    );
  refused(bytes.subarray(0, bytes.length - 3), /truncated in storage/);
  refused(Buffer.concat([bytes, Buffer.from([0])]), /1 bytes after the last storage/);
  // A pickle naming os.system, where the magic number should be.
  refused(Buffer.from('\x80\x02cos\nsystem\nq\x00.', 'latin1'), /refusing pickle global os\.system/);
  refused(Buffer.from('PK\x03\x04', 'latin1'), /zip-format/);
});
