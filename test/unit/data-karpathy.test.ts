import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../lib/errors.js';
import { openKarpathy } from '../../trainer-image/data/karpathy.js';
import { jsonErrorPosition } from '../../trainer-image/data/json-position.js';
import { DEFAULT_VALIDATION_SPLIT, openDataset } from '../../trainer-image/data/open-dataset.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const temps: string[] = [];
after(async () => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

function invalid(pattern: RegExp, where?: RegExp) {
  return (e: unknown) => e instanceof InvalidInputError && pattern.test(e.message) && (where === undefined || where.test(e.file ?? ''));
}

test('karpathy JSON: splits (restval joins train), raw captions, images next to the JSON', async () => {
  for (const source of [join(fixtures, 'data-karpathy/dataset_flickr8k.json'), join(fixtures, 'data-karpathy')]) {
    const ds = await openDataset({ format: 'karpathy', source });
    assert.deepEqual(ds.splits, ['train', 'val', 'test']);
    assert.deepEqual(
      ds.items('train').map((it) => it.id),
      ['1001_red.jpg', '1002_green.jpg'],
    );
    assert.equal(ds.items(DEFAULT_VALIDATION_SPLIT.karpathy)[0]?.captions[0], 'The blue sea .');
    const img = await ds.items('test')[0]?.image();
    assert.equal(img?.kind === 'encoded' && img.path.endsWith('Images/1004_grey.jpg'), true);
  }
});

test('bad Karpathy files: JSON syntax error with its line, an entry without filename, no images array', async () => {
  await assert.rejects(openKarpathy(join(fixtures, 'data-bad/dataset_syntax.json')), invalid(/not valid JSON/, /dataset_syntax\.json:5$/));
  await assert.rejects(openKarpathy(join(fixtures, 'data-bad/dataset_nofilename.json')), invalid(/no "filename"/, /images\[1\]$/));
  await assert.rejects(openKarpathy(join(fixtures, 'data-flickr8k-kaggle/Images')), invalid(/no dataset_\*\.json/));
});

test('a missing image is reported and skipped when few are missing; an empty split is an error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'karpathy-'));
  temps.push(dir);
  await cp(join(fixtures, 'data-karpathy'), dir, { recursive: true });
  await rm(join(dir, 'Images', '1003_blue.jpg'));
  const ds = await openKarpathy(dir, { maxMissingFraction: 0.3 });
  assert.deepEqual(
    ds.problems.map((p) => p.id),
    ['1003_blue.jpg'],
  );
  assert.deepEqual(ds.splits, ['train', 'test']);
  assert.throws(() => ds.items('val'), invalid(/split "val" is empty/));
  await assert.rejects(openKarpathy(dir), invalid(/1 of 4 images are missing/));
});

test('jsonErrorPosition finds the first syntax error and accepts valid JSON', () => {
  assert.deepEqual(jsonErrorPosition('{"a": [1, 2,, 3]}'), { line: 1, column: 13 });
  assert.deepEqual(jsonErrorPosition('{\n "a": tru\n}'), { line: 2, column: 7 });
  assert.deepEqual(jsonErrorPosition('[1] x'), { line: 1, column: 5 });
  assert.equal(jsonErrorPosition('{"a": [1.5e3, "x\\"y", null, true, {}], "b": -0}'), undefined);
});
