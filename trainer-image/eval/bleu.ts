// BLEU-1..4 exactly as the COCO caption toolkit's bleu_scorer.py computes it: clipped n-gram counts against the
// per-n-gram maximum over the references, the "closest" effective reference length (ties to the shorter),
// corpus-level sums, no smoothing beyond the toolkit's own 1e-15/1e-9 guards (kept: they move the 4th decimal
// when a higher order has no match), and its per-image scores for error analysis.
import type { ImageId, References, Candidates, TokenizedSet } from './captions.js';
import { tokenizeSet } from './captions.js';
import { ngramCounts, ngramOrder } from './ngrams.js';

export const BLEU_N = 4;
const TINY = 1e-15;
const SMALL = 1e-9;

export interface BleuScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
}

export interface BleuResult {
  corpus: BleuScores;
  perImage: Map<ImageId, BleuScores>;
  /** Candidate words over the corpus. */
  candidateLength: number;
  /** Sum of each image's closest reference length. */
  referenceLength: number;
}

interface Cooked {
  testLength: number;
  refLength: number;
  guess: number[];
  correct: number[];
}

/** One image's sufficient statistics (cook_refs + cook_test with eff="closest"). */
export function cookImage(refs: readonly string[], cand: string, n = BLEU_N): Cooked {
  const refLengths: number[] = [];
  const maxCounts = new Map<string, number>();
  for (const ref of refs) {
    const { words, counts } = ngramCounts(ref, n);
    refLengths.push(words);
    for (const [g, c] of counts) if (c > (maxCounts.get(g) ?? 0)) maxCounts.set(g, c);
  }
  const test = ngramCounts(cand, n);
  let refLength = Number.NaN;
  let bestDiff = Infinity;
  for (const l of refLengths) {
    const diff = Math.abs(l - test.words);
    if (diff < bestDiff || (diff === bestDiff && l < refLength)) {
      bestDiff = diff;
      refLength = l;
    }
  }
  const guess = Array.from({ length: n }, (_, k) => Math.max(0, test.words - k));
  const correct = new Array<number>(n).fill(0);
  for (const [g, c] of test.counts) {
    const k = ngramOrder(g) - 1;
    correct[k] = (correct[k] ?? 0) + Math.min(maxCounts.get(g) ?? 0, c);
  }
  return { testLength: test.words, refLength, guess, correct };
}

/** The toolkit's score from summed statistics, including its guards and brevity penalty. */
function score(correct: number[], guess: number[], testLength: number, refLength: number): number[] {
  const out: number[] = [];
  let product = 1;
  for (let k = 0; k < correct.length; k++) {
    product *= ((correct[k] ?? 0) + TINY) / ((guess[k] ?? 0) + SMALL);
    out.push(product ** (1 / (k + 1)));
  }
  const ratio = (testLength + TINY) / (refLength + SMALL);
  if (ratio < 1) {
    const penalty = Math.exp(1 - 1 / ratio);
    for (let k = 0; k < out.length; k++) out[k] = (out[k] ?? 0) * penalty;
  }
  return out;
}

function toScores(s: number[]): BleuScores {
  return { bleu1: s[0] ?? 0, bleu2: s[1] ?? 0, bleu3: s[2] ?? 0, bleu4: s[3] ?? 0 };
}

/** BLEU over captions already passed through tokenizeCaption. */
export function bleuTokenized(set: TokenizedSet): BleuResult {
  const correct = new Array<number>(BLEU_N).fill(0);
  const guess = new Array<number>(BLEU_N).fill(0);
  let testLength = 0;
  let refLength = 0;
  const perImage = new Map<ImageId, BleuScores>();
  for (const id of set.ids) {
    const c = cookImage(set.refs.get(id) ?? [], set.cands.get(id) ?? '');
    testLength += c.testLength;
    refLength += c.refLength;
    for (let k = 0; k < BLEU_N; k++) {
      correct[k] = (correct[k] ?? 0) + (c.correct[k] ?? 0);
      guess[k] = (guess[k] ?? 0) + (c.guess[k] ?? 0);
    }
    perImage.set(id, toScores(score(c.correct, c.guess, c.testLength, c.refLength)));
  }
  return { corpus: toScores(score(correct, guess, testLength, refLength)), perImage, candidateLength: testLength, referenceLength: refLength };
}

/**
 * Corpus BLEU-1..4 of raw captions, tokenised as the toolkit does. Throws InvalidInputError when a candidate
 * has no references or an image has no candidate.
 */
export function corpusBleu(refs: References, cands: Candidates): BleuScores {
  return bleuTokenized(tokenizeSet(refs, cands)).corpus;
}
