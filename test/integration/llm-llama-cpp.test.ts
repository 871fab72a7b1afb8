// The chat-completions client against a real OpenAI-compatible server: llama-cpp-python's, built from PyPI
// by test/env/setup-llama-cpp.sh, serving the text-only gemma3 270M model. That model has no vision, so these
// requests carry text only (as a string: llama-cpp-python's text chat formats drop content-part lists): they
// check the protocol (answer and usage parsing, seeded determinism) and that the server's own errors become
// clear LlmErrors; captions from images are covered by the replay tests. Skipped when the server is not built, unless CAPTIONRUN_LLAMA_CPP_TESTS=required (CI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../lib/free-port.js';
import { ChatCompletionsClient, type SamplingParameters } from '../../trainer-image/eval/llm/chat-completions.js';
import { LlmError } from '../../trainer-image/eval/llm/llm-errors.js';

const dir = spawnSync('bash', [new URL('../env/setup-llama-cpp.sh', import.meta.url).pathname, '--dir'], { encoding: 'utf8' }).stdout.trim();
const built = existsSync(join(dir, '.complete'));
const required = process.env.CAPTIONRUN_LLAMA_CPP_TESTS === 'required';
const skip = !built && !required ? `llama-cpp-python is not built (bash test/env/setup-llama-cpp.sh builds it)` : false;
const MODEL = 'gemma-3-270m';
const PARAMS: SamplingParameters = { maxTokens: 12, temperature: 0, seed: 7 };

async function startServer(): Promise<{ url: string; stop: () => void }> {
  assert.ok(built, `no llama-cpp-python build at ${dir}: run bash test/env/setup-llama-cpp.sh`);
  const port = await freePort();
  const child = spawn(join(dir, 'venv', 'bin', 'python'), ['-m', 'llama_cpp.server', '--model', join(dir, 'gemma-3-270m-q4_k_m.gguf'), '--model_alias', MODEL, '--chat_format', 'gemma', '--host', '127.0.0.1', '--port', String(port), '--n_ctx', '512', '--n_threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}/v1`;
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/models`).then((r) => r.ok, () => false);
    if (up) break;
    assert.ok(child.exitCode === null && i < 240, `llama-cpp-python's server did not come up: ${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, stop: () => child.kill('SIGTERM') };
}

test('llama-cpp-python server: answers, usage and seeded determinism; its errors become clear LlmErrors', { skip, timeout: 300_000 }, async () => {
  const server = await startServer();
  try {
    const client = new ChatCompletionsClient({ endpoint: server.url, model: MODEL, timeoutMs: 120_000 });
    const ask = (text: string) => client.complete(text, PARAMS);
    const first = await ask('Name one colour.');
    assert.ok(first.raw.length > 0, 'an answer');
    assert.ok(first.promptTokens > 0, 'the prompt was counted');
    assert.ok(first.completionTokens > 0 && first.completionTokens <= PARAMS.maxTokens, `completion tokens ${first.completionTokens}`);
    assert.equal(first.requests, 1);
    const again = await ask('Name one colour.');
    assert.equal(again.raw, first.raw, 'temperature 0 and a fixed seed give the same answer');
    console.log(`llama.cpp: ${first.promptTokens}+${first.completionTokens} tokens, ${first.latencyMs.toFixed(0)} ms then ${again.latencyMs.toFixed(0)} ms`);

    // More tokens than its 512-token context: the server's 400 names the cause; not retried.
    const tooLong = await ask('word '.repeat(700)).then(() => undefined, (err: unknown) => err);
    assert.ok(tooLong instanceof LlmError, String(tooLong));
    assert.equal(tooLong.llmCause, 'rejected');
    assert.match(tooLong.message, new RegExp(`^${server.url.replace(/[./]/g, '\\$&')}: rejected: HTTP 400: .*context`, 'i'));

    // The base URL without /v1: a 404 that says what to check.
    const wrongPath = new ChatCompletionsClient({ endpoint: server.url.replace(/\/v1$/, ''), model: MODEL });
    const notFound = await wrongPath.complete('hi', PARAMS).then(() => undefined, (err: unknown) => err);
    assert.ok(notFound instanceof LlmError, String(notFound));
    assert.equal(notFound.llmCause, 'not-found');
    assert.match(notFound.describe(), /HTTP 404.*\(the endpoint is the base URL ending in \/v1/);
  } finally {
    server.stop();
  }
});
