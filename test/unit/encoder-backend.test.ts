import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../lib/telemetry/logger.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { InvalidInputError } from '../../lib/errors.js';
import { TERMINATION_LOG_ENV } from '../../trainer-image/train/trainer-command.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKEND_ENV, currentBackend, initBackend, tf } from '../../trainer-image/backend.js';
import { TFJS_NODE_PATH_ENV } from '../../trainer-image/native/tfjs-node.js';

test('without the native packages the backend falls back to wasm, logs the choice and why the others were skipped', async (t) => {
  // No backend requested, and no native build to find (a build setup-native.sh linked here would come first).
  const saved = { backend: process.env[BACKEND_ENV], build: process.env[TFJS_NODE_PATH_ENV] };
  delete process.env[BACKEND_ENV];
  process.env[TFJS_NODE_PATH_ENV] = mkdtempSync(join(tmpdir(), 'no-tfjs-node-'));
  t.after(() => {
    for (const [name, value] of [[BACKEND_ENV, saved.backend], [TFJS_NODE_PATH_ENV, saved.build]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) });
  const name = await initBackend(undefined, createLogger({}, sink));
  assert.equal(name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(currentBackend(), 'wasm');
  const logged = JSON.parse(lines[0] as string) as { backend: string; skipped: string[] };
  assert.equal(logged.backend, 'wasm');
  assert.match(logged.skipped.join(' '), /tensorflow-gpu: .*tensorflow: .*holds no built tfjs-node/);
  assert.equal(await initBackend('cpu', createLogger({}, sink)), 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  await assert.rejects(initBackend('tpu' as 'cpu'), /unknown backend/);
  // A requested backend is strict: one that cannot load is an error, not a silent fall back to a slower one.
  await assert.rejects(initBackend('tensorflow-gpu', createLogger({}, sink)), (err: unknown) => {
    assert.ok(err instanceof InvalidInputError, 'exit 3: relaunching the same pod cannot load it either');
    assert.match(err.message, /backend "tensorflow-gpu" was requested but could not be initialised: tensorflow-gpu: .*tfjs-node/);
    assert.match(err.hint ?? '', /gpusPerWorker/);
    return true;
  });
  assert.equal(currentBackend(), 'cpu', 'the failed request left the working backend in place');
});

test('a trainer told to use tensorflow-gpu where it cannot load exits 3 and writes the backend and the reason as its termination message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpu-backend-'));
  writeFileSync(join(dir, 'run.yaml'), stringify({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'gpu' },
    spec: { dataset: { format: 'synthetic', synthetic: { images: 10 } }, resources: { gpusPerWorker: 1 }, checkpoint: { store: { local: { path: join(dir, 'ckpt') } } } },
  }));
  // The kubelet creates the file before the container starts; the trainer only writes into one that exists.
  const terminationLog = join(dir, 'termination-log');
  writeFileSync(terminationLog, '');
  const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
  const r = spawnSync(process.execPath, [cli, 'trainer', join(dir, 'run.yaml')], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, [BACKEND_ENV]: 'tensorflow-gpu', [TERMINATION_LOG_ENV]: terminationLog, CAPTIONRUN_METRICS_PORT: '0', CAPTIONRUN_CACHE: join(dir, 'cache') },
  });
  assert.equal(r.status, 3, r.stderr);
  const reason = /CAPTIONRUN_BACKEND: backend "tensorflow-gpu" was requested but could not be initialised: tensorflow-gpu: .*@tensorflow\/tfjs-node-gpu.*gpusPerWorker/;
  assert.match(r.stderr, reason);
  assert.match(readFileSync(terminationLog, 'utf8'), reason);
});
