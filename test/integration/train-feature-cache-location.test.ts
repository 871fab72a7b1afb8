// spec.dataset.featureCache names where the trainer caches features: a run fills the directory the spec
// names (not the work directory's), the next run over the same images finds them there, and a location the
// trainer cannot create fails the first trainer with exit 3 naming the field, without a relaunch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, tinySpec } from './train-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-feature-cache-'));
// The environment's override would hide the spec field under test.
const env = { CAPTIONRUN_FEATURE_CACHE: undefined, CAPTIONRUN_CACHE: join(root, 'work') };

function specWithCache(name: string, cache: string): string {
  const file = join(root, `${name}.yaml`);
  const spec = tinySpec({ name, checkpointDir: join(root, name, 'checkpoints'), epochs: 1 }).replace(
    /( {4}synthetic: .*\n)/,
    `$1    featureCache: ${cache}\n`,
  );
  assert.match(spec, /featureCache:/);
  writeFileSync(file, spec);
  return file;
}

test('a run caches its features where spec.dataset.featureCache says, and the next run finds them there', async () => {
  const cache = join(root, 'shared-features');
  const first = startCli(['train', specWithCache('first', cache), '--output', join(root, 'first', 'out')], env);
  assert.equal((await first.exit).code, 0, first.stderrText().slice(-2000));
  assert.ok(existsSync(cache) && readdirSync(cache, { recursive: true }).length > 0, 'the named directory holds the cache');
  assert.ok(!existsSync(join(root, 'work', 'features')), 'the work directory holds no feature cache');

  const second = startCli(['train', specWithCache('second', cache), '--output', join(root, 'second', 'out')], env);
  assert.equal((await second.exit).code, 0, second.stderrText().slice(-2000));
  assert.ok(second.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('feature index found')), 'the second run read no image');
});

test('a feature cache location the trainer cannot create fails once with exit 3, naming spec.dataset.featureCache', async () => {
  const blocker = join(root, 'a-file');
  writeFileSync(blocker, 'not a directory\n');
  const run = startCli(['train', specWithCache('blocked', join(blocker, 'features'))], env);
  const { code } = await run.exit;
  const stderr = run.stderrText();
  assert.equal(code, 3, stderr.slice(-2000));
  assert.equal(run.lines.filter((l) => l.component === 'supervisor' && typeof l.msg === 'string' && l.msg.startsWith('trainer started')).length, 1, 'not relaunched');
  assert.match(stderr, /spec\.dataset\.featureCache/);
  assert.match(stderr, /cannot create the feature cache directory/);
});
