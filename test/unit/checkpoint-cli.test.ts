import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../lib/checkpoint/index.js';
import { writeCheckpoint } from '../../lib/checkpoint/save-job.js';

const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => spawnSync(process.execPath, [cli, 'checkpoints', ...args], { encoding: 'utf8' });

test('checkpoints list/verify on a directory: table, JSON, exit codes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-cli-'));
  const store = openStore(dir);
  for (const step of [3, 12]) {
    await writeCheckpoint(store, { step, epoch: 1, files: [{ name: 'w.bin', data: new Uint8Array(2048) }], state: { step }, metrics: {}, parent: null, createdAt: new Date().toISOString() }, { hashAlgorithm: 'blake3', producer: {} });
  }
  const ok = run('verify', dir);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^NAME\s+STEP\s+EPOCH\s+SIZE\s+AGE\s+STATUS$/m);
  assert.match(ok.stdout, /^ckpt-000000000012\s+12\s+1\s+2\.0 KiB\s+\d+s\s+VALID$/m);
  truncateSync(join(dir, 'ckpt-000000000012', 'w.bin'), 100);
  const bad = run('verify', dir);
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /^ckpt-000000000012 .*INVALID file-short: w\.bin has 100 bytes, the manifest records 2048$/m);
  const list = run('list', '-o', 'json', dir);
  assert.equal(list.status, 0);
  const rows = JSON.parse(list.stdout) as { name: string; valid: boolean; reason: string | null }[];
  assert.deepEqual(rows.map((r) => [r.name, r.valid, r.reason]), [['ckpt-000000000012', false, 'file-short'], ['ckpt-000000000003', true, null]]);
  rmSync(dir, { recursive: true, force: true });
});

test('checkpoints usage errors exit 2', () => {
  assert.equal(run('frobnicate', '/tmp').status, 2);
  assert.equal(run('list').status, 2);
  assert.equal(run('list', '-o', 'yaml', '/tmp').status, 2);
  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: captionrun checkpoints list\|verify/);
});
