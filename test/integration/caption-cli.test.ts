// `captionrun caption` on a model the trainer just produced: on the run's own validation images (written
// out as PNG files) it gives exactly the captions the trainer wrote to captions.json with the same beam
// size; an unreadable image is named on stderr, exit 3, and the other images are still captioned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSynthetic } from '../../trainer-image/data/synthetic.js';
import { startCli, tinySpec } from './train-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-caption-'));
const env = { CAPTIONRUN_FEATURE_CACHE: join(root, 'features') };

test('caption reproduces the trainer\'s validation captions and skips an unreadable image', async () => {
  const output = join(root, 'outputs');
  const spec = join(root, 'run.yaml');
  writeFileSync(spec, tinySpec({ name: 'caption', checkpointDir: join(root, 'checkpoints'), epochs: 2 }));
  const trained = startCli(['train', '--output', output, spec], env);
  assert.equal((await trained.exit).code, 0, trained.stderrText().slice(-3000));
  const expected = (JSON.parse(readFileSync(join(output, 'captions.json'), 'utf8')) as { beamSize: number; captions: { id: string; caption: string }[] });

  // The same scenes the trainer encoded (tinySpec: 40 images, seed 5, 64 px, 2 objects), as PNG files.
  const images = join(root, 'images');
  mkdirSync(images);
  for (const item of openSynthetic({ images: 40, seed: 5, imageSize: 64, maxObjects: 2 }).items('val')) {
    const src = await item.image();
    assert.equal(src.kind, 'raw');
    if (src.kind !== 'raw') continue;
    await sharp(src.data, { raw: { width: src.width, height: src.height, channels: 3 } }).png().toFile(join(images, `${item.id}.png`));
  }
  writeFileSync(join(images, 'zz-broken.png'), 'not an image');

  const run = startCli(['caption', '--model', output, '--beam', String(expected.beamSize), '--format', 'jsonl', images], env);
  const { code } = await run.exit;
  assert.equal(code, 3, 'an unreadable image makes the exit code say so');
  assert.match(run.stderrText(), /zz-broken\.png/);
  const got = new Map(run.stdout().trim().split('\n').map((l) => JSON.parse(l) as { image: string; caption: string }).map((c) => [c.image.replace(/^.*\/|\.png$/g, ''), c.caption]));
  assert.equal(got.size, expected.captions.length, 'every readable image was captioned');
  for (const c of expected.captions) assert.equal(got.get(c.id), c.caption, `caption of ${c.id}`);
});
