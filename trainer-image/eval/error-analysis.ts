// Error analysis over tokenised captions: what the captioner invents (hallucinations: candidate content words
// no reference uses), what it misses (omissions: content words most references agree on), split into nouns,
// colours and counts; whether it is biased towards short or long captions; whether it repeats itself; and the
// worst images by BLEU-4 and by semantic similarity, for the report to show side by side.
import type { ImageId, TokenizedSet } from './captions.js';
import { pySplit } from './tokenizer.js';
import { STOP_WORDS, categoryOf, singular, type WordCategory } from './word-lists.js';

export interface CategoryCounts {
  noun: number;
  colour: number;
  number: number;
  other: number;
}

export interface ImageErrors {
  id: ImageId;
  candidate: string;
  references: string[];
  candidateLength: number;
  meanReferenceLength: number;
  hallucinations: string[];
  omissions: string[];
  hallucinationsByCategory: CategoryCounts;
  omissionsByCategory: CategoryCounts;
  /** Content words the candidate uses more than once. */
  repeatedWords: string[];
  /** Bigram occurrences beyond the first of each bigram. */
  repeatedBigrams: number;
  bleu4?: number;
  /** Mean-vector GloVe cosine to the closest reference. */
  similarity?: number;
}

export interface WordTally {
  total: number;
  perImage: number;
  imagesWithAny: number;
  byCategory: CategoryCounts;
  top: Array<{ word: string; count: number }>;
}

export interface ErrorAnalysis {
  images: number;
  hallucinations: WordTally;
  omissions: WordTally;
  length: {
    meanCandidate: number;
    meanReference: number;
    /** meanCandidate / meanReference: below 1 the captioner is terse, above 1 verbose. */
    ratio: number;
    shorterShare: number;
    longerShare: number;
    /** Mean BLEU-4 of images whose candidate is shorter / within one word / longer than the mean reference. */
    bleu4ByLength?: { shorter: number | null; similar: number | null; longer: number | null };
  };
  repetition: {
    imagesWithRepeatedWord: number;
    imagesWithRepeatedBigram: number;
    /** Repeated bigram occurrences over all candidate bigrams. */
    repeatedBigramRate: number;
  };
  worstByBleu4: ImageErrors[];
  worstBySimilarity: ImageErrors[];
  perImage: ImageErrors[];
}

export interface ErrorAnalysisInput {
  set: TokenizedSet;
  bleu4?: ReadonlyMap<ImageId, number>;
  similarity?: ReadonlyMap<ImageId, number>;
  worstN?: number;
}

const emptyCounts = (): CategoryCounts => ({ noun: 0, colour: 0, number: 0, other: 0 });

function count(counts: CategoryCounts, word: string): void {
  const c: WordCategory | 'other' = categoryOf(word) ?? 'other';
  counts[c]++;
}

const isContent = (w: string): boolean => !STOP_WORDS.has(w) && /[\p{L}\p{Nd}]/u.test(w);

export function analyseImage(id: ImageId, candidate: string, references: readonly string[]): ImageErrors {
  const cand = pySplit(candidate);
  const refs = references.map(pySplit);
  const refKeys = refs.map((r) => new Set(r.map(singular)));
  const candKeys = new Set(cand.map(singular));
  const hallucinations = [...new Set(cand.filter((w) => isContent(w) && !refKeys.some((k) => k.has(singular(w)))))];
  const support = new Map<string, { word: string; refs: number }>();
  for (const r of refs) {
    const seen = new Set<string>();
    for (const w of r) {
      const key = singular(w);
      if (!isContent(w) || seen.has(key)) continue;
      seen.add(key);
      const s = support.get(key) ?? { word: w, refs: 0 };
      s.refs++;
      support.set(key, s);
    }
  }
  const omissions = [...support].filter(([key, s]) => s.refs > refs.length / 2 && !candKeys.has(key)).map(([, s]) => s.word);
  const hallucinationsByCategory = emptyCounts();
  for (const w of hallucinations) count(hallucinationsByCategory, w);
  const omissionsByCategory = emptyCounts();
  for (const w of omissions) count(omissionsByCategory, w);
  const wordCounts = new Map<string, number>();
  for (const w of cand) if (isContent(w)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const bigrams = new Map<string, number>();
  for (let i = 0; i + 1 < cand.length; i++) {
    const b = `${cand[i] ?? ''} ${cand[i + 1] ?? ''}`;
    bigrams.set(b, (bigrams.get(b) ?? 0) + 1);
  }
  return {
    id,
    candidate,
    references: [...references],
    candidateLength: cand.length,
    meanReferenceLength: refs.length ? refs.reduce((a, r) => a + r.length, 0) / refs.length : 0,
    hallucinations,
    omissions,
    hallucinationsByCategory,
    omissionsByCategory,
    repeatedWords: [...wordCounts].filter(([, c]) => c > 1).map(([w]) => w),
    repeatedBigrams: [...bigrams.values()].reduce((a, c) => a + c - 1, 0),
  };
}

function tally(images: ImageErrors[], pick: (e: ImageErrors) => string[], byCategory: (e: ImageErrors) => CategoryCounts): WordTally {
  const words = new Map<string, number>();
  const categories = emptyCounts();
  let total = 0;
  let withAny = 0;
  for (const e of images) {
    const ws = pick(e);
    total += ws.length;
    if (ws.length > 0) withAny++;
    for (const w of ws) words.set(w, (words.get(w) ?? 0) + 1);
    const c = byCategory(e);
    categories.noun += c.noun;
    categories.colour += c.colour;
    categories.number += c.number;
    categories.other += c.other;
  }
  const top = [...words].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 20).map(([word, n]) => ({ word, count: n }));
  return { total, perImage: images.length ? total / images.length : 0, imagesWithAny: withAny, byCategory: categories, top };
}

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export function analyseErrors(input: ErrorAnalysisInput): ErrorAnalysis {
  const { set, bleu4, similarity } = input;
  const worstN = input.worstN ?? 10;
  const perImage = set.ids.map((id) => {
    const e = analyseImage(id, set.cands.get(id) ?? '', set.refs.get(id) ?? []);
    const b = bleu4?.get(id);
    const s = similarity?.get(id);
    if (b !== undefined) e.bleu4 = b;
    if (s !== undefined) e.similarity = s;
    return e;
  });
  const n = Math.max(1, perImage.length);
  const meanCandidate = perImage.reduce((a, e) => a + e.candidateLength, 0) / n;
  const meanReference = perImage.reduce((a, e) => a + e.meanReferenceLength, 0) / n;
  const shorter = perImage.filter((e) => e.candidateLength < e.meanReferenceLength - 1);
  const longer = perImage.filter((e) => e.candidateLength > e.meanReferenceLength + 1);
  const similar = perImage.filter((e) => Math.abs(e.candidateLength - e.meanReferenceLength) <= 1);
  const bleuOf = (xs: ImageErrors[]): number | null => mean(xs.flatMap((e) => (e.bleu4 === undefined ? [] : [e.bleu4])));
  const totalBigrams = perImage.reduce((a, e) => a + Math.max(0, e.candidateLength - 1), 0);
  const worst = (score: (e: ImageErrors) => number | undefined): ImageErrors[] =>
    perImage
      .filter((e) => score(e) !== undefined)
      .sort((a, b) => (score(a) ?? 0) - (score(b) ?? 0) || (a.id < b.id ? -1 : 1))
      .slice(0, worstN);
  return {
    images: perImage.length,
    hallucinations: tally(perImage, (e) => e.hallucinations, (e) => e.hallucinationsByCategory),
    omissions: tally(perImage, (e) => e.omissions, (e) => e.omissionsByCategory),
    length: {
      meanCandidate,
      meanReference,
      ratio: meanReference ? meanCandidate / meanReference : 0,
      shorterShare: shorter.length / n,
      longerShare: longer.length / n,
      ...(bleu4 ? { bleu4ByLength: { shorter: bleuOf(shorter), similar: bleuOf(similar), longer: bleuOf(longer) } } : {}),
    },
    repetition: {
      imagesWithRepeatedWord: perImage.filter((e) => e.repeatedWords.length > 0).length,
      imagesWithRepeatedBigram: perImage.filter((e) => e.repeatedBigrams > 0).length,
      repeatedBigramRate: totalBigrams ? perImage.reduce((a, e) => a + e.repeatedBigrams, 0) / totalBigrams : 0,
    },
    worstByBleu4: worst((e) => e.bleu4),
    worstBySimilarity: worst((e) => e.similarity),
    perImage,
  };
}
