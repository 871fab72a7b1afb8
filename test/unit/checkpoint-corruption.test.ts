import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { CheckpointReader, openStore } from '../../lib/checkpoint/index.js';
import { writeCheckpoint } from '../../lib/checkpoint/save-job.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { runCorruptionTrials, writePristine, type RawAccess } from '../integration/checkpoint-corruptions.js';

test('1,000 seeded random corruptions on the filesystem store: none loads, each is reported with a reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-corrupt-'));
  const store = openStore(dir);
  const raw: RawAccess = {
    read: async (p) => new Uint8Array(await readFile(join(dir, p))),
    write: (p, d) => writeFile(join(dir, p), d),
    remove: (p) => rm(join(dir, p)),
  };
  const pristine = await writePristine(store, raw, 42);
  const stats = await runCorruptionTrials(store, raw, pristine, 1000, 4242);
  assert.equal(stats.trials, 1000);
  assert.equal(stats.corruptLoaded, 0);
  // Every kind of damage was exercised, and the reasons cover the rules that catch them.
  assert.equal(Object.keys(stats.byKind).length, 10, JSON.stringify(stats.byKind));
  for (const reason of ['manifest-missing', 'manifest-unparsable', 'manifest-digest-mismatch', 'step-mismatch', 'unknown-format-version', 'file-missing', 'file-short', 'file-long', 'digest-mismatch']) {
    assert.ok((stats.byReason[reason] ?? 0) > 0, `no trial was caught by ${reason}: ${JSON.stringify(stats.byReason)}`);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('an invalid checkpoint is logged as structured JSON with its reason and counted in metrics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-corrupt-log-'));
  const store = openStore(dir);
  for (const step of [1, 2]) {
    await writeCheckpoint(store, { step, epoch: 0, files: [{ name: 'w.bin', data: new Uint8Array(64).fill(step) }], state: {}, metrics: {}, parent: null, createdAt: new Date().toISOString() }, { hashAlgorithm: 'sha256', producer: {} });
  }
  await writeFile(join(dir, 'ckpt-000000000002', 'w.bin'), new Uint8Array(10));
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const registry = new Registry();
  const { checkpoint, invalid } = await new CheckpointReader(store, { logger: createLogger({}, sink), registry }).loadLatest();
  assert.equal(checkpoint?.name, 'ckpt-000000000001');
  assert.deepEqual(invalid.map((i) => [i.name, i.reason]), [['ckpt-000000000002', 'file-short']]);
  const entry = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.msg === 'invalid checkpoint');
  assert.ok(entry, lines.join(''));
  assert.equal(entry.level, 'warn');
  assert.equal(entry.checkpoint, 'ckpt-000000000002');
  assert.equal(entry.reason, 'file-short');
  assert.match(String(entry.detail), /w\.bin has 10 bytes, the manifest records 64/);
  const counted = await registry.getSingleMetric('captionrun_checkpoint_invalid_total')?.get();
  assert.equal(counted?.values.find((v) => v.labels.reason === 'file-short')?.value, 1);
  rmSync(dir, { recursive: true, force: true });
});
