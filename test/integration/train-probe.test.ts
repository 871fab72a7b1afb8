// The memory probe behind `batchSize: auto` reads a few training images' features, and only where it is
// used: a fresh run with an automatic batch size measures with them, and a relaunch (which keeps its
// checkpoint's hyperparameters) reads no training entry before training. The relaunch here resumes a
// finished run whose training entries were deleted since: reading any of them would fail it.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { openSynthetic } from '../../trainer-image/data/synthetic.js';
import { imageDigest } from '../../trainer-image/features/feature-cache.js';
import { startCli, tinySpec } from './train-helpers.js';

test('batchSize auto measures with the probe on a fresh run; a relaunch reads no training entry for it', { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'captionrun-probe-'));
  const file = join(root, 'run.yaml');
  writeFileSync(file, tinySpec({ name: 'probe', checkpointDir: join(root, 'checkpoints'), epochs: 1 }).replace('batchSize: 8', 'batchSize: auto'));
  const env = { CAPTIONRUN_FEATURE_CACHE: join(root, 'features'), CAPTIONRUN_CACHE: join(root, 'work') };
  const args = ['trainer', '--output', join(root, 'outputs'), file];

  const fresh = startCli(args, env);
  const first = await fresh.exit;
  assert.equal(first.code, 0, fresh.stderrText().slice(-3000));
  const chosen = fresh.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('hyperparameters:'));
  const hyper = chosen?.hyperparameters as { auto: string[]; memory?: { perSampleBytes: number } } | undefined;
  assert.ok(hyper?.auto.includes('batchSize'), JSON.stringify(chosen));
  assert.ok((hyper?.memory?.perSampleBytes ?? 0) > 0, 'the probe measured bytes per sample');

  // tinySpec's dataset: every image but the validation ones (index % 10 == 9) loses its cache entry.
  const val = new Set(await Promise.all(openSynthetic({ images: 40, seed: 5, imageSize: 64, maxObjects: 2 }).items('val').map(async (it) => imageDigest(await it.image()))));
  const entries = readdirSync(env.CAPTIONRUN_FEATURE_CACHE, { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.feat'));
  const training = entries.filter((p) => !val.has(basename(p, '.feat')));
  assert.ok(training.length > 0 && training.length < entries.length, `training and validation entries: ${entries.length}`);
  for (const p of training) rmSync(join(env.CAPTIONRUN_FEATURE_CACHE, p));

  const relaunch = startCli(args, env);
  const second = await relaunch.exit;
  assert.equal(second.code, 0, `the relaunch read a training entry: ${relaunch.stderrText().slice(-3000)}`);
  assert.ok(relaunch.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('resuming from ckpt-')), 'it resumed the finished run');
  rmSync(root, { recursive: true, force: true });
});
