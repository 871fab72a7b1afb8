import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { InvalidInputError } from '../../lib/errors.js';
import { COLORS, generateScene, openSynthetic, renderScene, syntheticVocabulary } from '../../trainer-image/data/synthetic.js';
import { tokenize } from '../../trainer-image/data/tokenizer.js';

async function pixels(ds: ReturnType<typeof openSynthetic>, i: number): Promise<Uint8Array> {
  const src = await (ds.items()[i] as { image: () => Promise<import('../../trainer-image/data/dataset.js').ImageSource> }).image();
  assert.equal(src.kind, 'raw');
  return src.data;
}

test('the same seed gives the same captions and pixels; another seed differs', async () => {
  const a = openSynthetic({ images: 30, seed: 7, maxObjects: 3, noise: 0.2 });
  const b = openSynthetic({ images: 30, seed: 7, maxObjects: 3, noise: 0.2 });
  const c = openSynthetic({ images: 30, seed: 8, maxObjects: 3, noise: 0.2 });
  assert.deepEqual(
    a.items().map((it) => it.captions),
    b.items().map((it) => it.captions),
  );
  const digest = (px: Uint8Array) => createHash('sha256').update(px).digest('hex');
  assert.equal(digest(await pixels(a, 5)), digest(await pixels(b, 5)));
  assert.notDeepEqual(
    a.items().map((it) => it.captions[0]),
    c.items().map((it) => it.captions[0]),
  );
});

test('an image does not depend on the dataset size (random access by index)', async () => {
  const small = openSynthetic({ images: 10, seed: 2 });
  const large = openSynthetic({ images: 50_000, seed: 2 });
  assert.deepEqual(small.items()[3]?.captions, large.items()[3]?.captions);
  assert.deepEqual(await pixels(small, 3), await pixels(large, 3));
  assert.equal(large.items().length, 50_000);
});

test('every 10th image is held out as val; splits are reported and an unknown split is a clear error', () => {
  const ds = openSynthetic({ images: 100, seed: 1 });
  assert.equal(ds.items('val').length, 10);
  assert.equal(ds.items('train').length, 90);
  assert.throws(() => ds.items('test'), (e: unknown) => e instanceof InvalidInputError && /split "test" is unknown/.test(e.message));
});

test('captions use the small vocabulary and name each object with its size, colour and shape at the recorded words', () => {
  const vocab = new Set(syntheticVocabulary());
  const ds = openSynthetic({ images: 200, seed: 11, maxObjects: 4 });
  for (const it of ds.items()) {
    for (const c of it.captions) for (const w of tokenize(c)) assert.ok(vocab.has(w), `${w} not in vocabulary`);
    const words = (it.captions[0] as string).split(' ');
    assert.equal(it.objects?.length, words.filter((w) => w === 'a').length);
    for (const o of it.objects ?? []) assert.deepEqual(o.words.map((i) => words[i]), [o.size, o.color, o.shape]);
  }
});

test('boxes are ordered as the caption reads and the relation words agree with their positions', () => {
  const ds = openSynthetic({ images: 300, seed: 5, maxObjects: 3 });
  let checked = 0;
  for (const it of ds.items()) {
    const objs = it.objects ?? [];
    const words = (it.captions[0] as string).split(' ');
    for (let i = 1; i < objs.length; i++) {
      const [a, b] = [objs[i - 1], objs[i]];
      assert.ok(a && b);
      const rel = words[(b.words[0] as number) - 2];
      if (rel === 'of') assert.ok(a.box[2] < b.box[0], 'left of: boxes must not overlap horizontally');
      else {
        assert.equal(rel, 'above');
        assert.ok(a.box[3] < b.box[1], 'above: boxes must not overlap vertically');
      }
      checked++;
    }
    for (const o of objs) for (const v of o.box) assert.ok(v >= 0 && v <= 1);
  }
  assert.ok(checked > 100);
});

test('the rendered colour at each box centre is that object colour; the background is elsewhere', () => {
  const size = 96;
  for (let i = 0; i < 20; i++) {
    const scene = generateScene(9, i, 3);
    const px = renderScene(scene, size, 0, 1);
    scene.sceneObjects.forEach((o) => {
      // A point on the vertical axis, below the centre, lies inside circles, squares and triangles alike.
      const x = Math.floor(((o.box[0] + o.box[2]) / 2) * size);
      const y = Math.floor((o.box[1] + (o.box[3] - o.box[1]) * 0.7) * size);
      const at = (y * size + x) * 3;
      assert.deepEqual([...px.slice(at, at + 3)], [...(COLORS[o.color] as readonly number[])]);
    });
    const corner = 0.5 / size;
    if (!scene.sceneObjects.some((o) => o.box[0] <= corner && o.box[1] <= corner)) assert.deepEqual([...px.slice(0, 3)], scene.background);
  }
});

test('options outside the schema ranges are rejected with the field name', () => {
  assert.throws(() => openSynthetic({ images: 5 }), /synthetic.images/);
  assert.throws(() => openSynthetic({ maxObjects: 9 }), /synthetic.maxObjects/);
});
