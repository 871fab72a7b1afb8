// ROUGE-L and CIDEr-D on cases computed by hand from the toolkit's rouge.py and cider_scorer.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenizeSet } from '../../trainer-image/eval/captions.js';
import { ciderD } from '../../trainer-image/eval/cider.js';
import { lcsLength, rougeL, rougeLImage } from '../../trainer-image/eval/rouge.js';

const close = (actual: number, expected: number, what = ''): void => assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} vs ${expected}`);
const set = (r: Record<string, string[]>, c: Record<string, string>) => tokenizeSet(new Map(Object.entries(r)), new Map(Object.entries(c)));
const f = (p: number, r: number): number => ((1 + 1.44) * p * r) / (r + 1.44 * p);

test('LCS length', () => {
  assert.equal(lcsLength(['a', 'c', 'd', 'e', 'f'], ['a', 'b', 'c', 'd']), 3);
  assert.equal(lcsLength([], ['a']), 0);
  assert.equal(lcsLength(['x', 'y'], ['y', 'x']), 1);
});

test('ROUGE-L is the beta = 1.2 F-measure of LCS precision and recall', () => {
  // LCS("a b c d", "a c d e f") = 3: P = 3/4, R = 3/5.
  close(rougeLImage(['a c d e f'], 'a b c d'), f(3 / 4, 3 / 5));
});

test('ROUGE-L takes the best precision and the best recall from possibly different references', () => {
  // "a b" gives P 2/4 R 1; "a b c d e f g h" gives P 1 R 1/2: the toolkit combines P = 1, R = 1.
  close(rougeLImage(['a b', 'a b c d e f g h'], 'a b c d'), 1);
});

test('ROUGE-L of an empty candidate is 0 and the corpus score is the mean over images', () => {
  close(rougeLImage(['a b'], ''), 0);
  const r = rougeL(set({ 1: ['a b'], 2: ['a c d e f'] }, { 1: '', 2: 'a b c d' }));
  close(r.rougeL, f(3 / 4, 3 / 5) / 2);
});

test('CIDEr-D: an exact match scores 10 x mean over n of the cosines; 3- and 4-grams absent count 0', () => {
  // Two images, so idf = log(2) - log(df) with df = 1 for every reference n-gram. Image 1 "a b" vs "a b":
  // unigram and bigram cosines are 1, no 3/4-grams: (1 + 1 + 0 + 0) / 4 x 10 = 5. Image 2 shares nothing: 0.
  const c = ciderD(set({ 1: ['a b'], 2: ['c d'] }, { 1: 'a b', 2: 'x' }));
  close(c.perImage.get('1') ?? 0, 5, 'image 1');
  close(c.perImage.get('2') ?? 0, 0, 'image 2');
  close(c.ciderD, 2.5, 'corpus');
});

test('CIDEr-D clips candidate weights to the reference and penalises the bigram-count difference', () => {
  // Candidate "a b a b" vs reference "a b" (idf log 2 each; "b a" unseen in references: df 1, same idf).
  // Unigrams: cand (2L, 2L), ref (L, L): sum min(c, r) * r = 2L^2 over |c||r| = 2*sqrt2*L * sqrt2*L = 4L^2 -> 1/2.
  // Bigrams: cand "a b" 2L, "b a" L; ref "a b" L: L^2 over sqrt5*L * L -> 1/sqrt5. No 3/4-gram overlap.
  // Penalty: bigram counts 3 vs 1, exp(-(2^2) / (2 * 36)).
  const c = ciderD(set({ 1: ['a b'], 2: ['c d'] }, { 1: 'a b a b', 2: 'x' }));
  const expected = ((0.5 + 1 / Math.sqrt(5)) / 4) * Math.exp(-4 / 72) * 10;
  close(c.perImage.get('1') ?? 0, expected, 'image 1');
});

test('CIDEr-D averages over references', () => {
  // Image 1 has references "a b" (exact: 5 as above) and "c d" (nothing shared: 0); image 2 is "e f" vs "e f".
  // df: a, b, "a b", c, d, "c d" in image 1 only, e, f, "e f" in image 2 only -> all df 1, idf log 2.
  const c = ciderD(set({ 1: ['a b', 'c d'], 2: ['e f'] }, { 1: 'a b', 2: 'e f' }));
  close(c.perImage.get('1') ?? 0, 2.5, 'image 1');
  close(c.perImage.get('2') ?? 0, 5, 'image 2');
});

test('CIDEr-D: n-grams in every image weigh nothing (idf 0)', () => {
  // "a" appears in both images' references: idf log 2 - log 2 = 0, so a candidate of only "a" scores 0.
  const c = ciderD(set({ 1: ['a b'], 2: ['a c'] }, { 1: 'a', 2: 'a c' }));
  close(c.perImage.get('1') ?? 0, 0, 'image 1');
});
