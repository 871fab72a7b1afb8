import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../lib/checkpoint/index.js';
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
