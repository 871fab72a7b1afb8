// How chat answers become captions (one sentence, preamble and markdown gone) and how a Retry-After header
// becomes a delay: the parts of the LLM client that need no server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryAfter } from '../../trainer-image/eval/llm/chat-completions.js';
import { oneSentence } from '../../trainer-image/eval/llm/one-sentence.js';

test('answers are cut to their first caption sentence', () => {
  const cases: Array<[string, string]> = [
    ['A dog runs on the grass.', 'A dog runs on the grass.'],
    ['Sure! Here is a caption:\n\n"A dog runs on the grass." It looks happy.', 'A dog runs on the grass.'],
    ["Here's a short caption: Two children play in the snow! They laugh.", 'Two children play in the snow!'],
    ['**Caption:** A brown dog jumps over a log', 'A brown dog jumps over a log'],
    ['A man in a red shirt climbs a rock wall. The sky is blue.', 'A man in a red shirt climbs a rock wall.'],
    ['Certainly, a black cat sleeps on a sofa.', 'a black cat sleeps on a sofa.'],
    ['# A girl   in a pink dress\n\nsecond line', 'A girl in a pink dress'],
    ['  \n **  ', ''],
  ];
  for (const [raw, expected] of cases) assert.equal(oneSentence(raw), expected, JSON.stringify(raw));
});

test('Retry-After: delay seconds or an HTTP date; absent or unreadable is undefined', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('7', now), 7000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(null, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
});
