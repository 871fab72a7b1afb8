// `captionrun caption-llm` end to end against the LLM replay server: the captions file, the summary, the
// cache on a rerun, the exit codes, and an API key that reaches the Authorization header and no output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlmCaptionsFile } from '../../trainer-image/eval/llm/caption-images.js';
import { loadRecordings, startLlmReplayServer } from '../env/llm-replay-server.js';

const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
const dataset = fileURLToPath(new URL('../fixtures/data-flickr8k-token', import.meta.url));
const recordings = loadRecordings(fileURLToPath(new URL('../fixtures/llm-replay/recordings.json', import.meta.url)));

interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

/** Asynchronous, so the replay server in this process answers while the command runs. */
function captionLlm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'caption-llm', ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

test('--help and usage errors', async () => {
  const help = await captionLlm(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: captionrun caption-llm --endpoint URL --model M --dataset DIR_OR_URI -o captions\.json/);
  const missing = await captionLlm(['--model', 'm', '--dataset', dataset, '-o', 'x.json']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--endpoint is required/);
});

test('captions a split into a file the comparison reads; a rerun costs no request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-caption-llm-'));
  const server = await startLlmReplayServer(recordings);
  try {
    const args = ['--endpoint', server.url, '--model', 'replay-vision-model', '--dataset', dataset, '--split', 'train', '-o', join(dir, 'captions.json'), '--cache', join(dir, 'cache')];
    const first = await captionLlm(args);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^3 of 3 images captioned by replay-vision-model at http:\/\/127\.0\.0\.1:\d+\/v1 \(0 from the cache, 3 requests\); latency p50 [\d.]+ ms, p95 [\d.]+ ms; tokens \d+ prompt \+ \d+ completion$/m);
    // Not a terminal: progress is structured log lines.
    const done = first.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; done?: number });
    assert.ok(done.some((l) => l.msg === 'caption-llm: 3/3 images, done' && l.done === 3), first.stderr);
    const file = JSON.parse(readFileSync(join(dir, 'captions.json'), 'utf8')) as LlmCaptionsFile;
    assert.deepEqual(file.captions.map((c) => [c.id, c.caption]), [
      ['1001_red.jpg', 'A plain red square fills the frame.'],
      ['1002_green.jpg', 'A flat green surface like a field of grass.'],
      ['1003_blue.jpg', 'A solid blue background.'],
    ]);
    assert.equal(file.captions[0]?.references.length, 5);
    assert.equal(file.captioner.model, 'replay-vision-model');
    assert.equal(server.log.length, 3);

    const again = await captionLlm(args);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /\(3 from the cache, 0 requests\)/);
    assert.equal(server.log.length, 3);
  } finally {
    await server.close();
  }
});

test('a text-only model: exit 3 naming endpoint and cause, and the file still says what failed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-caption-llm-'));
  const server = await startLlmReplayServer(recordings);
  try {
    const r = await captionLlm(['--endpoint', server.url, '--model', 'replay-text-only-model', '--dataset', dataset, '--split', 'train', '--limit', '1', '-o', join(dir, 'captions.json'), '--no-cache']);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`captionrun caption-llm: ${server.url.replace(/[./]/g, '\\$&')}: rejects-images: model "replay-text-only-model" does not take images`));
    const file = JSON.parse(readFileSync(join(dir, 'captions.json'), 'utf8')) as LlmCaptionsFile;
    assert.deepEqual(file.failures.map((f) => [f.id, f.cause]), [['1001_red.jpg', 'rejects-images']]);
  } finally {
    await server.close();
  }
});

test('the API key comes from CAPTIONRUN_LLM_API_KEY and appears in no output, right or wrong', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-caption-llm-'));
  const key = 'sk-cli-secret-4f1d2a';
  const server = await startLlmReplayServer(recordings, { requireAuthorization: `Bearer ${key}` });
  try {
    const args = ['--endpoint', server.url, '--model', 'replay-vision-model', '--dataset', dataset, '--split', 'dev', '-o', join(dir, 'captions.json'), '--no-cache'];
    const right = await captionLlm(args, { CAPTIONRUN_LLM_API_KEY: key, CAPTIONRUN_LOG_LEVEL: 'debug' });
    assert.equal(right.status, 0, right.stderr);
    const wrong = await captionLlm(args, { CAPTIONRUN_LLM_API_KEY: 'sk-wrong-77aa', CAPTIONRUN_LOG_LEVEL: 'debug' });
    assert.equal(wrong.status, 3);
    assert.match(wrong.stderr, /unauthorized: HTTP 401/);
    for (const output of [right.stdout, right.stderr, wrong.stdout, wrong.stderr, readFileSync(join(dir, 'captions.json'), 'utf8')]) {
      assert.ok(!output.includes(key) && !output.includes('sk-wrong-77aa'), output);
    }
    assert.deepEqual(server.log.map((l) => l.authorization), [`Bearer ${key}`, 'Bearer sk-wrong-77aa']);
  } finally {
    await server.close();
  }
});
