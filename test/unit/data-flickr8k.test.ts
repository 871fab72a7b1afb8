import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../lib/errors.js';
import { openFlickr8k, parseCsvPair, readFlickrCaptions } from '../../trainer-image/data/flickr8k.js';
import { openDataset } from '../../trainer-image/data/open-dataset.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const SAMPLE = '/work/shared/data/flickr8k-sample';
const temps: string[] = [];
after(async () => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

function invalid(pattern: RegExp, where?: RegExp) {
  return (e: unknown) => e instanceof InvalidInputError && pattern.test(e.message) && (where === undefined || where.test(e.file ?? ''));
}

test('CSV pairs: quotes, doubled quotes and commas inside quotes; malformed lines are rejected', () => {
  assert.deepEqual(parseCsvPair('a.jpg,A dog .'), ['a.jpg', 'A dog .']);
  assert.deepEqual(parseCsvPair('a.jpg,"Red paint, fresh ."'), ['a.jpg', 'Red paint, fresh .']);
  assert.deepEqual(parseCsvPair('a.jpg,"The ""red"" box"'), ['a.jpg', 'The "red" box']);
  assert.deepEqual(parseCsvPair('a.jpg,a, b'), ['a.jpg', 'a, b']);
  assert.equal(parseCsvPair('a.jpg,"unterminated'), undefined);
  assert.equal(parseCsvPair('no comma'), undefined);
});

for (const variant of ['data-flickr8k-kaggle', 'data-flickr8k-token']) {
  test(`${variant}: splits from the lists, five captions per image as written, images load lazily`, async () => {
    const ds = await openDataset({ format: 'flickr8k', source: join(fixtures, variant) });
    assert.equal(ds.format, 'flickr8k');
    assert.deepEqual(ds.splits, ['train', 'dev']);
    assert.deepEqual(
      ds.items('train').map((it) => it.id),
      ['1001_red.jpg', '1002_green.jpg', '1003_blue.jpg'],
    );
    const red = ds.items('train')[0];
    assert.deepEqual(red?.captions.slice(0, 4), ['A red square on a white wall .', 'Red paint, fresh and bright .', 'The "red" box', "A dog's red ball"]);
    const img = await red?.image();
    assert.equal(img?.kind, 'encoded');
    assert.equal(img?.kind === 'encoded' && img.data.subarray(0, 2).toString('hex'), 'ffd8');
    assert.deepEqual(ds.problems, []);
    assert.throws(() => ds.items('test'), invalid(/split "test" is empty/));
  });
}

test('the real sample opens with its 762/113 split and 5 captions per image', async () => {
  const ds = await openFlickr8k(SAMPLE);
  assert.equal(ds.items('train').length, 762);
  assert.equal(ds.items('dev').length, 113);
  assert.ok(ds.items().every((it) => it.captions.length === 5));
  assert.ok(ds.items().some((it) => it.captions.includes('Young boy with a black " ADHD " t-shirt nodding off')));
});

test('a caption line that does not parse is an error naming the file and line', async () => {
  await assert.rejects(readFlickrCaptions(join(fixtures, 'data-bad/captions-bad-line.txt')), invalid(/does not parse/, /captions-bad-line\.txt:3$/));
  await assert.rejects(readFlickrCaptions(join(fixtures, 'data-bad/token-bad-line.txt')), invalid(/#<n><TAB>caption/, /token-bad-line\.txt:3$/));
});

test('a few missing images are skipped and reported; most missing is an error; a missing directory is clear', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flickr8k-'));
  temps.push(dir);
  await cp(join(fixtures, 'data-flickr8k-kaggle'), dir, { recursive: true });
  await rm(join(dir, 'Images', '1002_green.jpg'));
  const ds = await openFlickr8k(dir, { maxMissingFraction: 0.5 });
  assert.deepEqual(
    ds.items('train').map((it) => it.id),
    ['1001_red.jpg', '1003_blue.jpg'],
  );
  assert.deepEqual(ds.problems, [{ id: '1002_green.jpg', file: join(dir, 'Images', '1002_green.jpg'), message: 'image file is missing' }]);
  await assert.rejects(openFlickr8k(dir), invalid(/1 of 4 images are missing/));
  await assert.rejects(openFlickr8k(join(dir, 'nope')), invalid(/no captions.txt or Flickr8k.token.txt/));
  await assert.rejects(openFlickr8k(undefined), invalid(/needs a source/));
});

test('without split lists every 10th image is dev; an image removed after opening fails to load with its path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flickr8k-'));
  temps.push(dir);
  await cp(join(fixtures, 'data-flickr8k-token'), dir, { recursive: true });
  await rm(join(dir, 'Flickr_8k.trainImages.txt'));
  await rm(join(dir, 'Flickr_8k.devImages.txt'));
  const lines = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(4, '0')}.jpg#0\tcaption ${i}`);
  await writeFile(join(dir, 'Flickr8k.token.txt'), `${lines.join('\n')}\n`);
  for (let i = 0; i < 20; i++) await cp(join(dir, 'Images', '1001_red.jpg'), join(dir, 'Images', `${String(i).padStart(4, '0')}.jpg`));
  const ds = await openFlickr8k(dir);
  assert.deepEqual(
    ds.items('dev').map((it) => it.id),
    ['0009.jpg', '0019.jpg'],
  );
  assert.match(ds.source, /every 10th image is dev/);
  await rm(join(dir, 'Images', '0009.jpg'));
  await assert.rejects((ds.items('dev')[0] as { image: () => Promise<unknown> }).image(), invalid(/cannot read image: ENOENT/, /0009\.jpg$/));
});
