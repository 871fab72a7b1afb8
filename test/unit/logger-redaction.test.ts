// The logger's redaction covers the LLM API key wherever a log line could carry it: an options object's
// apiKey, an environment map's CAPTIONRUN_LLM_API_KEY, HTTP headers in either case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';

test('the LLM API key is redacted by key, at any of the depths log lines use', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ component: 'test' }, sink);
  const key = 'sk-redaction-check-5521';
  log.info({ apiKey: key, llm: { apiKey: key }, env: { CAPTIONRUN_LLM_API_KEY: key }, request: { headers: { Authorization: `Bearer ${key}`, authorization: `Bearer ${key}` } } }, 'llm request');
  assert.equal(lines.length, 1);
  assert.ok(!lines[0]?.includes(key), lines[0]);
  const line = JSON.parse(lines[0] ?? '{}') as { llm: { apiKey: string }; request: { headers: Record<string, string> } };
  assert.equal(line.llm.apiKey, '[redacted]');
  assert.deepEqual(line.request.headers, { Authorization: '[redacted]', authorization: '[redacted]' });
});
