import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenizeSet } from '../../trainer-image/eval/captions.js';
import { analyseErrors, analyseImage } from '../../trainer-image/eval/error-analysis.js';

test('hallucinations are candidate content words that no reference uses, by category', () => {
  const e = analyseImage('1', 'two red dogs play with a ball on the beach', ['a brown dog plays on the grass', 'one dog playing in the grass']);
  // "play" matches "plays" (same singular form), so it is not invented.
  assert.deepEqual(e.hallucinations.sort(), ['ball', 'beach', 'red', 'two']);
  assert.deepEqual(e.hallucinationsByCategory, { noun: 2, colour: 1, number: 1, other: 0 });
});

test('plurals match singulars: "dogs" is not a hallucination when references say "dog"', () => {
  const e = analyseImage('1', 'dogs run', ['a dog runs', 'the dog is running']);
  assert.ok(!e.hallucinations.includes('dogs'));
});

test('omissions are content words in more than half of the references that the candidate lacks', () => {
  const e = analyseImage('1', 'a dog runs', ['a black dog runs on grass', 'a black dog running on the grass', 'a dog on grass', 'a puppy']);
  // "black" 2 of 4 (not most), "grass" 3 of 4 (most), "dog" present.
  assert.deepEqual(e.omissions, ['grass']);
  assert.deepEqual(e.omissionsByCategory, { noun: 1, colour: 0, number: 0, other: 0 });
});

test('repetition: repeated content words and repeated bigram occurrences', () => {
  const e = analyseImage('1', 'a dog and a dog and a dog', ['a dog']);
  assert.deepEqual(e.repeatedWords, ['dog']);
  // Bigrams: "a dog" x3, "dog and" x2, "and a" x2 -> 2 + 1 + 1 repeats.
  assert.equal(e.repeatedBigrams, 4);
});

test('corpus summary: length bias, worst-N ordering and tallies', () => {
  const refs = new Map([
    ['1', ['a dog runs on the grass']],
    ['2', ['a cat sleeps on a red sofa']],
    ['3', ['two men ride bikes down a hill']],
  ]);
  const cands = new Map([
    ['1', 'a dog runs on the grass'],
    ['2', 'a cat'],
    ['3', 'two men ride red bikes down a steep hill today'],
  ]);
  const set = tokenizeSet(refs, cands);
  const a = analyseErrors({ set, bleu4: new Map([['1', 1], ['2', 0], ['3', 0.4]]), similarity: new Map([['1', 1], ['2', 0.7], ['3', 0.9]]), worstN: 2 });
  assert.equal(a.images, 3);
  assert.deepEqual(a.worstByBleu4.map((e) => e.id), ['2', '3']);
  assert.deepEqual(a.worstBySimilarity.map((e) => e.id), ['2', '3']);
  // Candidate lengths 6, 2, 10 vs references 6, 7, 7.
  assert.equal(a.length.meanCandidate, 6);
  assert.equal(a.length.meanReference, 20 / 3);
  assert.equal(a.length.shorterShare, 1 / 3);
  assert.equal(a.length.longerShare, 1 / 3);
  assert.deepEqual(a.length.bleu4ByLength, { shorter: 0, similar: 1, longer: 0.4 });
  assert.deepEqual(a.hallucinations.top.map((t) => t.word).sort(), ['red', 'steep', 'today']);
  assert.equal(a.hallucinations.byCategory.colour, 1);
  assert.ok(a.omissions.top.some((t) => t.word === 'sofa'));
});
