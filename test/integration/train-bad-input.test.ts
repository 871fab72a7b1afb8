// Bad input fails once, clearly, and is not retried: an unknown encoder (rejected before any trainer
// starts), a dataset path that does not exist and a checkpoint store that refuses writes (each rejected
// by the first trainer, whose exit code 3 the supervisor does not retry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, tinySpec } from './train-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-train-bad-'));
const env = { CAPTIONRUN_FEATURE_CACHE: join(root, 'features') };

function write(name: string, text: string): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

async function trainFails(file: string): Promise<{ code: number | null; stderr: string; launches: number }> {
  const run = startCli(['train', file], env);
  const { code } = await run.exit;
  const launches = run.lines.filter((l) => l.component === 'supervisor' && typeof l.msg === 'string' && l.msg.startsWith('trainer started')).length;
  return { code, stderr: run.stderrText(), launches };
}

test('an unknown encoder is rejected before any trainer starts, naming the field (exit 3)', async () => {
  const spec = tinySpec({ name: 'bad-encoder', checkpointDir: join(root, 'ck1') }).replace('  model:\n', '  model:\n    encoder: vgg16\n');
  const r = await trainFails(write('bad-encoder', spec));
  assert.equal(r.code, 3);
  assert.equal(r.launches, 0);
  assert.match(r.stderr, /spec\.model\.encoder: "vgg16" is not allowed; must be one of: inceptionv3, densenet121/);
});

test('a dataset path that does not exist fails the first trainer with exit 3 and no relaunch', async () => {
  const missing = join(root, 'no-such-flickr8k');
  const spec = tinySpec({ name: 'bad-dataset', checkpointDir: join(root, 'ck2') }).replace(
    / {2}dataset:\n {4}format: synthetic\n {4}synthetic: .*\n/,
    `  dataset:\n    format: flickr8k\n    source: ${missing}\n`,
  );
  const r = await trainFails(write('bad-dataset', spec));
  assert.equal(r.code, 3, r.stderr.slice(-2000));
  assert.equal(r.launches, 1, 'the supervisor did not relaunch');
  assert.ok(r.stderr.includes(missing), 'the error names the path');
  assert.match(r.stderr, /permanent failure/);
});

test('a checkpoint store that refuses writes fails the first trainer with exit 3 and no relaunch', async () => {
  const blocker = join(root, 'a-file');
  writeFileSync(blocker, 'not a directory\n');
  const r = await trainFails(write('bad-store', tinySpec({ name: 'bad-store', checkpointDir: join(blocker, 'checkpoints') })));
  assert.equal(r.code, 3, r.stderr.slice(-2000));
  assert.equal(r.launches, 1);
  assert.match(r.stderr, /checkpoint store .* refuses writes/);
  assert.match(r.stderr, /spec\.checkpoint\.store/);
});
