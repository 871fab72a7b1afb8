import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

function captionrun(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: repo, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const fiveMistakes = `apiVersion: captionrun.dev/v1alpha1
kind: CaptionTrainingRun
metadata:
  name: five-mistakes
spec:
  dataset:
    format: flickr8k
  model:
    decoder: lstn
    hiddenDim: -5
  training:
    epochz: 3
  checkpoint:
    store:
      s3:
        bucket: my-bucket
`;

test('validate accepts the cluster example (exit 0)', () => {
  const r = captionrun('validate', 'manifests/examples/run.yaml');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /run\.yaml \(flickr8k-gru\): valid/);
});

test('a file with five different mistakes prints five errors, each naming its path (exit 1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-'));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, fiveMistakes);
  const r = captionrun('validate', file);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /5 errors/);
  for (const path of ['spec.dataset.source', 'spec.model.decoder', 'spec.model.hiddenDim', 'spec.training.epochz', 'spec.checkpoint.store.s3']) {
    assert.match(r.stdout, new RegExp(`^  ${path.replace(/\./g, '\\.')}: `, 'm'), `an error line for ${path}`);
  }
});

test('--output json is machine-readable', () => {
  const r = captionrun('validate', '-o', 'json', 'manifests/examples/quickstart.yaml');
  assert.equal(r.status, 0);
  const report = JSON.parse(r.stdout) as { valid: boolean; name: string }[];
  assert.deepEqual(report.map((x) => [x.name, x.valid]), [['quickstart', true]]);
});

test('usage errors exit 2 with a message', () => {
  assert.equal(captionrun('validate').status, 2);
  const missing = captionrun('validate', 'no/such/file.yaml');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no\/such\/file\.yaml: cannot read/);
  const unknown = captionrun('validate', '--frobnicate', 'x.yaml');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /--frobnicate/);
  assert.equal(captionrun('no-such-command').status, 2);
});

test('--help works for the CLI and its commands', () => {
  const top = captionrun('--help');
  assert.equal(top.status, 0);
  assert.match(top.stdout, /validate/);
  const sub = captionrun('validate', '--help');
  assert.equal(sub.status, 0);
  assert.match(sub.stdout, /Exit codes/);
});
