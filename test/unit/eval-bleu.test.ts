// BLEU on small cases computed by hand from the toolkit's definition (bleu_scorer.py): clipped counts, the
// closest reference length with ties to the shorter, corpus sums, brevity penalty exp(1 - r/c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bleuTokenized, corpusBleu, type BleuScores } from '../../trainer-image/eval/bleu.js';
import { tokenizeSet } from '../../trainer-image/eval/captions.js';
import { InvalidInputError } from '../../lib/errors.js';

const refs = (o: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(o));
const cands = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));
const close = (actual: number, expected: number, what = ''): void => assert.ok(Math.abs(actual - expected) < 1e-8, `${what}: ${actual} vs ${expected}`);
const all = (s: BleuScores): number[] => [s.bleu1, s.bleu2, s.bleu3, s.bleu4];

test('counts are clipped to the most any one reference has', () => {
  // "the" x7 against a reference with "the" twice: p1 = 2/7; no bigram matches.
  const s = corpusBleu(refs({ 1: ['the cat is on the mat'] }), cands({ 1: 'the the the the the the the' }));
  close(s.bleu1, 2 / 7, 'BLEU-1');
  assert.ok(s.bleu2 < 1e-6, `BLEU-2 ${s.bleu2} must be ~0 without smoothing`);
});

test('clipping takes the maximum over references, not the sum', () => {
  // "a" x3; refs have it twice and once: clipped to 2, p1 = 2/3.
  const s = corpusBleu(refs({ 1: ['a a b', 'a c d'] }), cands({ 1: 'a a a' }));
  close(s.bleu1, 2 / 3, 'BLEU-1');
});

test('a short candidate pays the brevity penalty exp(1 - r/c)', () => {
  // 5 matching words against a 10-word reference: every precision 1, penalty exp(1 - 10/5) = e^-1.
  const s = corpusBleu(refs({ 1: ['a b c d e f g h i j'] }), cands({ 1: 'a b c d e' }));
  for (const [k, v] of all(s).entries()) close(v, Math.exp(-1), `BLEU-${k + 1}`);
});

test('the effective reference length is the closest one', () => {
  // Lengths 3 and 8 for a 6-word candidate: 8 is closer, penalty exp(1 - 8/6).
  const s = corpusBleu(refs({ 1: ['a b c', 'a b c d e f g h'] }), cands({ 1: 'a b c d e f' }));
  close(s.bleu1, Math.exp(1 - 8 / 6), 'BLEU-1');
});

test('a tie in closeness goes to the shorter reference', () => {
  // Lengths 4 and 8 are both 2 away from 6; the toolkit takes 4, so there is no penalty.
  const s = corpusBleu(refs({ 1: ['a b c d', 'a b c d e f g h'] }), cands({ 1: 'a b c d e f' }));
  close(s.bleu1, 1, 'BLEU-1');
});

test('a candidate longer than every reference has no penalty, only lower precision', () => {
  // Closest length 3; p1 = 3/5, p2 = 2/4: BLEU-2 = sqrt(3/5 * 2/4).
  const s = corpusBleu(refs({ 1: ['a b', 'a b c'] }), cands({ 1: 'a b c d e' }));
  close(s.bleu1, 3 / 5, 'BLEU-1');
  close(s.bleu2, Math.sqrt((3 / 5) * (2 / 4)), 'BLEU-2');
});

test('corpus BLEU sums counts over images instead of averaging per-image scores', () => {
  // Matches 2 of 2 and 0 of 4 words: corpus p1 = 2/6 (a per-image mean would be 0.5). Lengths 6 vs 6.
  const s = corpusBleu(refs({ 1: ['a b'], 2: ['x y z w'] }), cands({ 1: 'a b', 2: 'c d e f' }));
  close(s.bleu1, 2 / 6, 'BLEU-1');
});

test('an empty candidate scores 0 itself and adds its closest reference length to the corpus', () => {
  // Image 2's closest length to 0 words is 2: r = 3 + 2, c = 3, penalty exp(1 - 5/3); p1 = 3/3.
  const r = refs({ 1: ['a b c'], 2: ['x y', 'x y z'] });
  const result = bleuTokenized(tokenizeSet(r, cands({ 1: 'a b c', 2: '' })));
  close(result.corpus.bleu1, Math.exp(1 - 5 / 3), 'BLEU-1');
  assert.equal(result.candidateLength, 3);
  assert.equal(result.referenceLength, 5);
  for (const v of all(result.perImage.get('2') ?? { bleu1: 1, bleu2: 1, bleu3: 1, bleu4: 1 })) assert.equal(v, 0);
});

test('identical captions score 1 at every order (up to the toolkit guards)', () => {
  const s = corpusBleu(refs({ 1: ['a dog runs on the grass'] }), cands({ 1: 'a dog runs on the grass' }));
  for (const [k, v] of all(s).entries()) close(v, 1, `BLEU-${k + 1}`);
});

test('tokenisation first: case, punctuation and unicode do not change the words', () => {
  const s = corpusBleu(refs({ 1: ['Un café, au lait!'] }), cands({ 1: 'un CAFÉ au lait .' }));
  for (const [k, v] of all(s).entries()) close(v, 1, `BLEU-${k + 1}`);
  const apostrophes = corpusBleu(refs({ 1: ["The dog's ball isn't red."] }), cands({ 1: 'the dog ’s ball is n’t red' }));
  close(apostrophes.bleu4, 1, 'BLEU-4 with curly apostrophes');
});

test('per-image BLEU follows the toolkit: each image against its own closest length', () => {
  // Image 1: 2 of 3 words, no penalty (closest 3): BLEU-1 = 2/3. Image 2: exact match of 4 words.
  const result = bleuTokenized(tokenizeSet(refs({ 1: ['a b c'], 2: ['p q r s'] }), cands({ 1: 'a b x', 2: 'p q r s' })));
  close(result.perImage.get('1')?.bleu1 ?? 0, 2 / 3, 'image 1 BLEU-1');
  close(result.perImage.get('1')?.bleu2 ?? 0, Math.sqrt((2 / 3) * (1 / 2)), 'image 1 BLEU-2');
  close(result.perImage.get('2')?.bleu4 ?? 0, 1, 'image 2 BLEU-4');
});

test('candidates without references and images without candidates are errors naming the ids', () => {
  assert.throws(
    () => corpusBleu(refs({ 1: ['a'], 2: ['b'] }), cands({ 1: 'a', 3: 'c' })),
    (err: unknown) => err instanceof InvalidInputError && /without references: 3/.test(err.message) && /without a candidate: 2/.test(err.message),
  );
  const set = tokenizeSet(refs({ 1: ['a'], 2: ['b'] }), cands({ 1: 'a', 3: 'c' }), { allowMissing: true });
  assert.deepEqual(set.ids, ['1']);
});
