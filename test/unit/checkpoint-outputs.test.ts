import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../lib/checkpoint/open-store.js';
import { fetchOutputs, OUTPUTS_MANIFEST, publishOutputs } from '../../lib/checkpoint/outputs.js';
import { InvalidInputError } from '../../lib/errors.js';

const CLI = new URL('../../bin/captionrun', import.meta.url).pathname;

function outputsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'outputs-src-'));
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'model.json'), '{"format":1}\n');
  writeFileSync(join(dir, 'decoder.f32'), Buffer.alloc(4096, 3));
  writeFileSync(join(dir, 'images', 'a.png'), Buffer.from('png bytes'));
  return dir;
}

test('outputs published next to the checkpoints come back verified, nested files included', async () => {
  const src = outputsDir();
  const store = openStore(mkdtempSync(join(tmpdir(), 'outputs-store-')));
  const uri = await publishOutputs(store, src, 'sha256');
  assert.equal(uri, `${store.uri}/outputs`);
  const dest = mkdtempSync(join(tmpdir(), 'outputs-dest-'));
  const manifest = await fetchOutputs(store, dest);
  assert.deepEqual(manifest.files.map((f) => f.name), ['decoder.f32', 'images/a.png', 'model.json']);
  for (const f of manifest.files) assert.ok(readFileSync(join(dest, f.name)).equals(readFileSync(join(src, f.name))), f.name);
});

test('a corrupt file is named and not written; the verified ones are; `outputs get` exits 3', async () => {
  const src = outputsDir();
  const root = mkdtempSync(join(tmpdir(), 'outputs-store-'));
  const store = openStore(root);
  await publishOutputs(store, src, 'blake3');
  const stored = join(root, 'outputs', 'decoder.f32');
  const bytes = readFileSync(stored);
  bytes[100] = (bytes[100] as number) ^ 1;
  writeFileSync(stored, bytes);
  const dest = mkdtempSync(join(tmpdir(), 'outputs-dest-'));
  await assert.rejects(fetchOutputs(store, dest), (e: unknown) => e instanceof InvalidInputError && /decoder\.f32 \(digest does not match/.test(e.message));
  assert.equal(existsSync(join(dest, 'decoder.f32')), false, 'the corrupt file was not handed out');
  assert.ok(existsSync(join(dest, 'model.json')));
  const cli = spawnSync(process.execPath, [CLI, 'outputs', 'get', `${root}/outputs`, mkdtempSync(join(tmpdir(), 'outputs-cli-'))], { encoding: 'utf8' });
  assert.equal(cli.status, 3, cli.stderr);
  assert.match(cli.stderr, /decoder\.f32/);
});

test('a tampered manifest is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'outputs-store-'));
  const store = openStore(root);
  await publishOutputs(store, outputsDir(), 'sha256');
  const path = join(root, OUTPUTS_MANIFEST);
  writeFileSync(path, readFileSync(path, 'utf8').replace('"bytes": 4096', '"bytes": 4095'));
  await assert.rejects(fetchOutputs(store, mkdtempSync(join(tmpdir(), 'outputs-dest-'))), /does not match its own digest/);
  await assert.rejects(fetchOutputs(openStore(mkdtempSync(join(tmpdir(), 'empty-'))), tmpdir()), /no outputs manifest/);
});
