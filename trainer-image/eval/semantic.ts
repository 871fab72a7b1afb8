// Semantic similarity of captions with GloVe vectors: a sentence vector per caption (the plain mean of its
// word vectors, and a mean weighted by IDF over the reference corpus), cosine against each reference, then
// the best and the mean over the references. Words without a vector are counted and reported per word,
// never silently dropped; a caption with no known word has no vector and scores 0 (and is counted).
import type { ImageId, TokenizedSet } from './captions.js';
import type { WordVectors } from './glove.js';
import { pySplit } from './tokenizer.js';

/**
 * PTB splits clitics and the GloVe vocabulary here has no digits: map both to the words they stand for, so
 * "don't" counts as "do not" and "2" as "two" rather than as unknown words.
 */
const LOOKUP_ALIASES: Record<string, string> = {
  "n't": 'not', "'re": 'are', "'m": 'am', "'ve": 'have', "'ll": 'will', "'d": 'would', ca: 'can', wo: 'will',
  0: 'zero', 1: 'one', 2: 'two', 3: 'three', 4: 'four', 5: 'five', 6: 'six', 7: 'seven', 8: 'eight', 9: 'nine', 10: 'ten',
  11: 'eleven', 12: 'twelve', 13: 'thirteen', 14: 'fourteen', 15: 'fifteen', 16: 'sixteen', 17: 'seventeen', 18: 'eighteen',
  19: 'nineteen', 20: 'twenty',
};

export interface SimilarityPair {
  /** Cosine to the closest reference. */
  max: number;
  /** Mean cosine over the references. */
  mean: number;
}

export interface ImageSimilarity {
  /** Sentence vector = mean of word vectors. */
  meanVector: SimilarityPair;
  /** Sentence vector = IDF-weighted mean of word vectors. */
  idfVector: SimilarityPair;
}

export interface OovReport {
  candidateTokens: number;
  candidateOov: number;
  referenceTokens: number;
  referenceOov: number;
  /** candidateOov / candidateTokens. */
  candidateOovRate: number;
  referenceOovRate: number;
  distinctOov: number;
  /** Most frequent unknown words over candidates and references. */
  top: Array<{ word: string; count: number }>;
  /** Captions (candidates and references) in which no word has a vector. */
  captionsWithoutVector: number;
}

export interface SimilarityResult {
  corpus: ImageSimilarity;
  perImage: Map<ImageId, ImageSimilarity>;
  oov: OovReport;
}

export function cosine(a: Float64Array, b: Float64Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}

/** Vector lookup with the alias table and an unknown-word tally. */
export class VectorLookup {
  readonly unknown = new Map<string, number>();
  tokens = 0;
  oov = 0;

  constructor(readonly vectors: WordVectors) {}

  get(word: string): Float32Array | undefined {
    this.tokens++;
    const v = this.vectors.vector(word) ?? (LOOKUP_ALIASES[word] === undefined ? undefined : this.vectors.vector(LOOKUP_ALIASES[word]));
    if (!v) {
      this.oov++;
      this.unknown.set(word, (this.unknown.get(word) ?? 0) + 1);
    }
    return v;
  }
}

/** Weighted mean of the known words' vectors; undefined when no word is known. */
export function sentenceVector(words: readonly string[], lookup: VectorLookup, weight: (w: string) => number = () => 1): Float64Array | undefined {
  const out = new Float64Array(lookup.vectors.dimensions);
  let total = 0;
  for (const w of words) {
    const v = lookup.get(w);
    if (!v) continue;
    const k = weight(w);
    total += k;
    for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) + k * (v[i] ?? 0);
  }
  if (total === 0) return undefined;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / total;
  return out;
}

/** Mean-vector cosine of two tokenised captions (1 for identical captions with a known word). */
export function captionSimilarity(a: string, b: string, vectors: WordVectors): number {
  const lookup = new VectorLookup(vectors);
  const va = sentenceVector(pySplit(a), lookup);
  const vb = sentenceVector(pySplit(b), lookup);
  return va && vb ? cosine(va, vb) : 0;
}

/**
 * Smoothed IDF over the evaluated images' references (an image is a document, as for CIDEr-D):
 * ln((1 + N) / (1 + df)) + 1, so a word in every image still counts a little and unseen words count most.
 */
export function referenceIdf(set: TokenizedSet): (word: string) => number {
  const df = new Map<string, number>();
  for (const id of set.ids) {
    const seen = new Set<string>();
    for (const r of set.refs.get(id) ?? []) for (const w of pySplit(r)) seen.add(w);
    for (const w of seen) df.set(w, (df.get(w) ?? 0) + 1);
  }
  const n = set.ids.length;
  return (w) => Math.log((1 + n) / (1 + (df.get(w) ?? 0))) + 1;
}

function pair(cand: Float64Array | undefined, refs: Array<Float64Array | undefined>): SimilarityPair {
  const scores = refs.map((r) => (cand && r ? cosine(cand, r) : 0));
  return { max: scores.length ? Math.max(...scores) : 0, mean: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0 };
}

export function semanticSimilarity(set: TokenizedSet, vectors: WordVectors, topOov = 20): SimilarityResult {
  const idf = referenceIdf(set);
  const candLookup = new VectorLookup(vectors);
  const refLookup = new VectorLookup(vectors);
  // The IDF pass looks the same words up again; a second tally keeps the OOV counts to one per occurrence.
  const silent = new VectorLookup(vectors);
  const perImage = new Map<ImageId, ImageSimilarity>();
  const sums = { mm: 0, ma: 0, im: 0, ia: 0 };
  let withoutVector = 0;
  for (const id of set.ids) {
    const candWords = pySplit(set.cands.get(id) ?? '');
    const refWords = (set.refs.get(id) ?? []).map(pySplit);
    const candMean = sentenceVector(candWords, candLookup);
    const refMean = refWords.map((w) => sentenceVector(w, refLookup));
    const candIdf = sentenceVector(candWords, silent, idf);
    const refIdf = refWords.map((w) => sentenceVector(w, silent, idf));
    withoutVector += (candMean ? 0 : 1) + refMean.filter((v) => !v).length;
    const s: ImageSimilarity = { meanVector: pair(candMean, refMean), idfVector: pair(candIdf, refIdf) };
    perImage.set(id, s);
    sums.mm += s.meanVector.max;
    sums.ma += s.meanVector.mean;
    sums.im += s.idfVector.max;
    sums.ia += s.idfVector.mean;
  }
  const n = Math.max(1, set.ids.length);
  const unknown = new Map(candLookup.unknown);
  for (const [w, c] of refLookup.unknown) unknown.set(w, (unknown.get(w) ?? 0) + c);
  const top = [...unknown].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, topOov).map(([word, count]) => ({ word, count }));
  return {
    corpus: { meanVector: { max: sums.mm / n, mean: sums.ma / n }, idfVector: { max: sums.im / n, mean: sums.ia / n } },
    perImage,
    oov: {
      candidateTokens: candLookup.tokens,
      candidateOov: candLookup.oov,
      referenceTokens: refLookup.tokens,
      referenceOov: refLookup.oov,
      candidateOovRate: candLookup.tokens ? candLookup.oov / candLookup.tokens : 0,
      referenceOovRate: refLookup.tokens ? refLookup.oov / refLookup.tokens : 0,
      distinctOov: unknown.size,
      top,
      captionsWithoutVector: withoutVector,
    },
  };
}
