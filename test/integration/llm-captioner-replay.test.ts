// The LLM captioner against the replay server (test/env/llm-replay-server.ts), which answers only the
// requests it has recordings for (test/fixtures/llm-replay): captions, normalisation, cost accounting and
// the response cache, then one fault at a time (429 with Retry-After, 500, a hang past the timeout, a body
// that is not JSON, an error object, a text-only model, a wrong key, no server) and what each ends in.
// Waits between retries go through a recorder, so the tests check the delays asked for, never the clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/free-port.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { openDataset } from '../../trainer-image/data/open-dataset.js';
import type { DatasetItem } from '../../trainer-image/data/dataset.js';
import { captionImages } from '../../trainer-image/eval/llm/caption-images.js';
import { ChatCompletionsCaptioner, imagePayload, type ChatCaptionerOptions, type ImagePayload } from '../../trainer-image/eval/llm/captioner.js';
import { LlmError } from '../../trainer-image/eval/llm/llm-errors.js';
import { ResponseCache } from '../../trainer-image/eval/llm/response-cache.js';
import { loadRecordings, startLlmReplayServer, type Recording, type ReplayResponse } from '../env/llm-replay-server.js';

const recordings = loadRecordings(fileURLToPath(new URL('../fixtures/llm-replay/recordings.json', import.meta.url)));
const VISION = 'replay-vision-model';
const dataset = await openDataset({ format: 'flickr8k', source: fileURLToPath(new URL('../fixtures/data-flickr8k-token', import.meta.url)) });
const items = dataset.items();
const red = items.find((it) => it.id === '1001_red.jpg') as DatasetItem;

function recordingOf(image: string, model = VISION): Recording {
  const r = recordings.find((x) => x.request.image === image && x.request.model === model);
  assert.ok(r, `no recording for ${image} / ${model}`);
  return r;
}

/** The recordings with `faults` served before the recorded answer of `image`. */
function withFaults(image: string, faults: ReplayResponse[], keepAnswer = true): Recording[] {
  return recordings.map((r) => (r === recordingOf(image) ? { ...r, responses: [...faults, ...(keepAnswer ? r.responses : [])] } : r));
}

function captioner(url: string, extra: Partial<ChatCaptionerOptions> = {}): { captioner: ChatCompletionsCaptioner; delays: number[] } {
  const delays: number[] = [];
  const c = new ChatCompletionsCaptioner({
    endpoint: url,
    model: VISION,
    timeoutMs: 5000,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...extra,
  });
  return { captioner: c, delays };
}

async function llmError(p: Promise<unknown>): Promise<LlmError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LlmError, `expected an LlmError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to fail');
}

const newCache = (): ResponseCache => new ResponseCache(mkdtempSync(join(tmpdir(), 'captionrun-llm-cache-')));

test('captions every image from its recording, cut to one sentence with the raw answer kept; a rerun asks nothing', async () => {
  const server = await startLlmReplayServer(recordings);
  try {
    const cache = newCache();
    const first = await captionImages(items, captioner(server.url, { cache }).captioner, { concurrency: 2 });
    assert.equal(first.stoppedBy, undefined);
    const byId = new Map(first.file.captions.map((c) => [c.id, c]));
    assert.deepEqual([...byId.keys()], items.map((it) => it.id), 'dataset order');
    assert.equal(byId.get('1001_red.jpg')?.caption, 'A plain red square fills the frame.');
    assert.equal(byId.get('1003_blue.jpg')?.caption, 'A solid blue background.');
    const recorded = recordingOf('1001_red.jpg').responses[0] as { body: { choices: [{ message: { content: string } }] } };
    assert.equal(byId.get('1001_red.jpg')?.raw, recorded.body.choices[0].message.content);
    assert.deepEqual(byId.get('1001_red.jpg')?.references, red.captions);
    const s = first.file.captioner.stats;
    const usage = recordings.filter((r) => r.request.model === VISION).map((r) => (r.responses[0] as { body: { usage: { prompt_tokens: number; completion_tokens: number } } }).body.usage);
    assert.deepEqual(s.tokens, { prompt: usage.reduce((a, u) => a + u.prompt_tokens, 0), completion: usage.reduce((a, u) => a + u.completion_tokens, 0) });
    assert.equal(s.requests, 4);
    assert.equal(server.log.length, 4);
    assert.equal(s.cacheHits, 0);
    assert.ok(s.latencyMs && s.latencyMs.p50 > 0 && s.latencyMs.p95 >= s.latencyMs.p50);
    console.log(`replay: ${s.requests} requests for ${s.captioned} captions, latency p50 ${s.latencyMs.p50} ms, p95 ${s.latencyMs.p95} ms, tokens ${s.tokens.prompt}+${s.tokens.completion}`);

    const again = await captionImages(items, captioner(server.url, { cache }).captioner, { concurrency: 2 });
    assert.equal(server.log.length, 4, 'the rerun sent no request');
    assert.equal(again.file.captioner.stats.cacheHits, 4);
    assert.equal(again.file.captioner.stats.requests, 0);
    assert.deepEqual(again.file.captions, first.file.captions);
    assert.deepEqual(again.file.captioner.stats.latencyMs, s.latencyMs, 'cached captions keep the latency they were asked with');
  } finally {
    await server.close();
  }
});

test('a request without a recording fails with the replay server\'s message and the endpoint', async () => {
  const server = await startLlmReplayServer(recordings);
  try {
    const err = await llmError(captioner(server.url, { prompt: 'A prompt nobody recorded.' }).captioner.caption(await imageOf(red)));
    assert.equal(err.llmCause, 'rejected');
    assert.match(err.message, new RegExp(`^${server.url}: rejected: HTTP 400: llm-replay-server: no recording for request`));
    assert.equal(server.log.length, 1, 'not retried');
  } finally {
    await server.close();
  }
});

test('429 with Retry-After: waits what the server asked, then answers', async () => {
  const server = await startLlmReplayServer(withFaults('1001_red.jpg', [{ status: 429, headers: { 'retry-after': '7' }, body: { error: { message: 'Too many requests' } } }]));
  try {
    const { captioner: c, delays } = captioner(server.url);
    const caption = await c.caption(await imageOf(red));
    assert.equal(caption.caption, 'A plain red square fills the frame.');
    assert.equal(caption.requests, 2);
    assert.deepEqual(delays, [7000]);
    assert.deepEqual(server.log.map((l) => l.status), [429, 200]);
  } finally {
    await server.close();
  }
});

test('500s: retried with growing backoff; when they do not stop, a server-error after the last attempt', async () => {
  const fault: ReplayResponse = { status: 500, body: { error: { message: 'CUDA out of memory' } } };
  const server = await startLlmReplayServer(withFaults('1001_red.jpg', [fault, fault]));
  try {
    const { captioner: c, delays } = captioner(server.url, { backoffMs: 1000 });
    assert.equal((await c.caption(await imageOf(red))).requests, 3);
    assert.equal(delays.length, 2);
    assert.ok(delays[0] !== undefined && delays[0] >= 500 && delays[0] <= 1000, `first backoff ${delays[0]}`);
    assert.ok(delays[1] !== undefined && delays[1] >= 1000 && delays[1] <= 2000, `second backoff ${delays[1]}`);
  } finally {
    await server.close();
  }
  const down = await startLlmReplayServer(withFaults('1001_red.jpg', [fault], false));
  try {
    const err = await llmError(captioner(down.url, { maxAttempts: 3 }).captioner.caption(await imageOf(red)));
    assert.equal(err.llmCause, 'server-error');
    assert.equal(err.fatal, false);
    assert.match(err.message, /HTTP 500: CUDA out of memory \(after 3 attempts\)/);
    assert.equal(down.log.length, 3);
  } finally {
    await down.close();
  }
});

test('a hang past the per-request timeout: retried, then a timeout error', async () => {
  const server = await startLlmReplayServer(withFaults('1001_red.jpg', [{ hang: true }], false));
  try {
    const err = await llmError(captioner(server.url, { timeoutMs: 200, maxAttempts: 2 }).captioner.caption(await imageOf(red)));
    assert.equal(err.llmCause, 'timeout');
    assert.match(err.message, /no complete answer within 0.2 s \(after 2 attempts\)/);
    assert.deepEqual(server.log.map((l) => l.status), ['hang', 'hang']);
  } finally {
    await server.close();
  }
});

test('a body that is not JSON, an error object and an empty answer: clear errors, not retried', async () => {
  const cases: Array<[ReplayResponse, string, RegExp]> = [
    [{ status: 200, text: '{"choices": [{"message": {"content": "A red' }, 'malformed', /HTTP 200 with a body that is not JSON: \{"choices"/],
    [{ status: 200, body: { error: { message: 'context length exceeded', type: 'invalid_request_error' } } }, 'error-object', /error object: context length exceeded/],
    [{ status: 200, body: { choices: [{ message: { role: 'assistant', content: '  \n **  ' } }] } }, 'empty-answer', /answered no sentence/],
    [{ status: 200, body: { choices: [] } }, 'malformed', /without choices\[0\]\.message\.content/],
  ];
  for (const [response, cause, message] of cases) {
    const server = await startLlmReplayServer(withFaults('1001_red.jpg', [response], false));
    try {
      const err = await llmError(captioner(server.url).captioner.caption(await imageOf(red)));
      assert.equal(err.llmCause, cause);
      assert.match(err.message, message);
      assert.equal(server.log.length, 1, `${cause} is not retried`);
    } finally {
      await server.close();
    }
  }
});

test('a model that rejects images stops the job at once, exit 3, naming the model', async () => {
  const server = await startLlmReplayServer(recordings);
  try {
    const result = await captionImages([red], captioner(server.url, { model: 'replay-text-only-model' }).captioner, { concurrency: 1 });
    assert.ok(result.stoppedBy instanceof LlmError);
    assert.equal(result.stoppedBy.llmCause, 'rejects-images');
    assert.equal(result.stoppedBy.exitCode, ExitCode.InvalidInput);
    assert.match(result.stoppedBy.describe(), /model "replay-text-only-model" does not take images .*is not a multimodal model.*\(serve a vision-language model/);
  } finally {
    await server.close();
  }
});

test('the API key goes in the Authorization header; a wrong one is unauthorized and never echoed', async () => {
  const key = 'sk-replay-0123456789';
  const server = await startLlmReplayServer(recordings, { requireAuthorization: `Bearer ${key}` });
  try {
    assert.equal((await captioner(server.url, { apiKey: key }).captioner.caption(await imageOf(red))).requests, 1);
    const err = await llmError(captioner(server.url, { apiKey: 'sk-wrong' }).captioner.caption(await imageOf(red)));
    assert.equal(err.llmCause, 'unauthorized');
    assert.equal(err.fatal, true);
    assert.ok(!err.describe().includes('sk-wrong'));
  } finally {
    await server.close();
  }
});

test('no server at the endpoint: unreachable after the retries, fatal, naming the endpoint', async () => {
  const url = `http://127.0.0.1:${await freePort()}/v1`;
  const { captioner: c, delays } = captioner(url, { maxAttempts: 2 });
  const result = await captionImages(items, c, { concurrency: 1 });
  assert.ok(result.stoppedBy instanceof LlmError);
  assert.equal(result.stoppedBy.llmCause, 'unreachable');
  assert.match(result.stoppedBy.message, new RegExp(`^${url}: unreachable: cannot connect \\(ECONNREFUSED\\)`));
  assert.equal(delays.length, 1);
  assert.equal(result.file.failures.length, 1, 'the job stopped at the first image');
});

test('a job that lost images to a failing server keeps the rest; the rerun asks only for the missing ones', async () => {
  const cache = newCache();
  const broken = await startLlmReplayServer(withFaults('1003_blue.jpg', [{ status: 503, body: { error: { message: 'overloaded' } } }], false));
  let first;
  try {
    first = await captionImages(items, captioner(broken.url, { cache, maxAttempts: 2 }).captioner, { concurrency: 2 });
  } finally {
    await broken.close();
  }
  assert.equal(first.stoppedBy, undefined, 'one failing image does not stop the job');
  assert.deepEqual(first.file.failures.map((f) => [f.id, f.cause]), [['1003_blue.jpg', 'server-error']]);
  assert.deepEqual(first.file.captioner.stats.failuresByCause, { 'server-error': 1 });
  assert.equal(first.file.captions.length, 3);
  const healthy = await startLlmReplayServer(recordings);
  try {
    const rerun = await captionImages(items, captioner(healthy.url, { cache }).captioner, { concurrency: 2 });
    assert.equal(healthy.log.length, 1);
    assert.equal(healthy.log[0]?.hash, recordingOf('1003_blue.jpg').hash);
    assert.equal(rerun.file.captions.length, 4);
    assert.equal(rerun.file.captioner.stats.cacheHits, 3);
  } finally {
    await healthy.close();
  }
});

test('the same failure on every image stops the job after five in a row', async () => {
  const fault: ReplayResponse = { status: 200, text: 'not json' };
  const server = await startLlmReplayServer(recordings.map((r) => ({ ...r, responses: [fault] })));
  try {
    const many = Array.from({ length: 12 }, (_, i) => ({ ...(items[i % 4] as DatasetItem), id: `copy-${i}` }));
    const result = await captionImages(many, captioner(server.url).captioner, { concurrency: 1 });
    assert.match(result.stoppedBy?.message ?? '', /^stopped after 5 images in a row failed; the last: .*malformed/);
    assert.equal(server.log.length, 5);
  } finally {
    await server.close();
  }
});

async function imageOf(item: DatasetItem): Promise<ImagePayload> {
  return imagePayload(await item.image());
}
