import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';
import { childEnv, launch } from '../../trainer-image/distributed/launch-command.js';

const log = createLogger({}, new PassThrough());

test('each local process gets torchrun\'s ranks, its own GPU and its own metrics port', () => {
  const base = { NVIDIA_VISIBLE_DEVICES: 'GPU-a,GPU-b', CAPTIONRUN_METRICS_PORT: '9400', MASTER_ADDR: 'm' };
  const e1 = childEnv(base, 1, { nproc: 2, nodeRank: 3, worldSize: 8 });
  assert.deepEqual([e1.RANK, e1.LOCAL_RANK, e1.LOCAL_WORLD_SIZE, e1.WORLD_SIZE, e1.CUDA_VISIBLE_DEVICES, e1.CAPTIONRUN_METRICS_PORT, e1.MASTER_ADDR], ['7', '1', '2', '8', 'GPU-b', '9401', 'm']);
  // No device list (CPU, or a runtime that exposes all devices by index): the i-th device.
  assert.equal(childEnv({}, 1, { nproc: 2, nodeRank: 0, worldSize: 2 }).CUDA_VISIBLE_DEVICES, '1');
  assert.equal(childEnv({}, 0, { nproc: 1, nodeRank: 0, worldSize: 1 }).CAPTIONRUN_METRICS_PORT, undefined);
});

/** A child that records its rank, then exits with the code the test gives that rank (or waits for SIGTERM). */
function script(dir: string, codes: Record<string, number | 'wait'>): string[] {
  const body = `
    const fs = require('fs');
    const rank = process.env.RANK;
    const action = ${JSON.stringify(codes)}[rank];
    fs.writeFileSync(${JSON.stringify(dir)} + '/started-' + rank, process.env.LOCAL_RANK);
    process.on('SIGTERM', () => { fs.writeFileSync(${JSON.stringify(dir)} + '/sigterm-' + rank, ''); process.exit(75); });
    if (action === 'wait') setInterval(() => {}, 1000); else setTimeout(() => process.exit(action), 200);
  `;
  return [process.execPath, '-e', body];
}

test('all processes succeed: exit 0; all stop after a checkpoint: exit 75', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'launcher-'));
  assert.equal(await launch({ argv: script(dir, { 2: 0, 3: 0 }), nproc: 2, nodeRank: 1, worldSize: 4, log }), 0);
  assert.deepEqual(readdirSync(dir).sort(), ['started-2', 'started-3']);
  assert.equal(readFileSync(join(dir, 'started-3'), 'utf8'), '1');
  assert.equal(await launch({ argv: script(dir, { 0: 75, 1: 75 }), nproc: 2, nodeRank: 0, worldSize: 2, log }), 75);
});

test('one process fails: the others get SIGTERM and the launcher exits with the failed code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'launcher-'));
  const started = Date.now();
  const code = await launch({ argv: script(dir, { 0: 'wait', 1: 7, 2: 'wait' }), nproc: 3, nodeRank: 0, worldSize: 3, log });
  assert.equal(code, 7);
  assert.ok(readdirSync(dir).includes('sigterm-0') && readdirSync(dir).includes('sigterm-2'), readdirSync(dir).join(','));
  assert.ok(Date.now() - started < 5000, 'the others were stopped, not waited for');
});
