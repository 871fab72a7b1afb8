// `captionrun extract-features` end to end as a user runs it: a second run over the same images is all
// cache hits, and --prune starts over; usage and dataset errors exit with the documented codes and say what is wrong.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
const temps: string[] = [];
after(async () => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, 'extract-features', ...args], { env: { ...process.env, CAPTIONRUN_BACKEND: 'wasm' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('a second run over the same synthetic images encodes nothing', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'extract-cli-'));
  temps.push(cache);
  const args = ['--format', 'synthetic', '--images', '10', '--image-size', '48', '--input-size', '75', '--cache', cache, '--batch-size', '5', '-o', 'json'];
  const first = await run(args);
  assert.equal(first.code, 0, first.stderr);
  const a = JSON.parse(first.stdout) as { total: number; encoded: number; hits: number; weightsDigest: string };
  assert.deepEqual([a.total, a.encoded, a.hits], [10, 10, 0]);
  assert.match(first.stderr, /"backend":"wasm"/);
  assert.match(first.stderr, /extract-features: 10\/10 images, done/);
  const second = JSON.parse((await run(args)).stdout) as typeof a;
  assert.deepEqual([second.total, second.encoded, second.hits], [10, 0, 10]);
  assert.equal(second.weightsDigest, a.weightsDigest);
  // --prune empties the cache first (what images replaced in place need): everything is encoded again.
  const pruned = await run([...args, '--prune']);
  assert.equal(pruned.code, 0, pruned.stderr);
  const third = JSON.parse(pruned.stdout) as typeof a;
  assert.deepEqual([third.total, third.encoded, third.hits], [10, 10, 0]);
  assert.match(pruned.stderr, /"bytesFreed":[1-9]\d*,"msg":"feature cache pruned"/);
});

test('usage and input errors exit 2 and 3 with a message naming the problem', async () => {
  const usage = await run(['--format', 'pictures']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--format must be one of synthetic, flickr8k, karpathy/);
  const missing = await run(['--format', 'flickr8k']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--dataset is required/);
  const cache = await run(['--format', 'synthetic', '--images', '10', '--cache', 's3://Not_A_Bucket/features']);
  assert.equal(cache.code, 3);
  assert.match(cache.stderr, /"s3:\/\/Not_A_Bucket\/features" is not an s3:\/\/bucket\/prefix URI/);
  const dense = await run(['--format', 'synthetic', '--images', '10', '--encoder', 'densenet121']);
  assert.equal(dense.code, 3);
  assert.match(dense.stderr, /no pretrained DenseNet121 weights ship with captionrun/);
});
