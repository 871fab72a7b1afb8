// CIDEr-D as the COCO caption toolkit's cider_scorer.py: TF-IDF vectors of 1..4-grams with document
// frequencies taken from the references of the evaluated images (so the score depends on the set), clipped
// cosine (min(candidate, reference) * reference), a Gaussian length penalty with sigma = 6, the mean over n,
// the mean over references, times 10. Its quirks are kept on purpose: the "length" in the penalty counts
// bigrams, not words, and an n-gram unseen in the references gets document frequency 1.
import type { ImageId, TokenizedSet } from './captions.js';
import { ngramCounts, ngramOrder } from './ngrams.js';

const N = 4;
const SIGMA = 6;

export interface CiderResult {
  ciderD: number;
  perImage: Map<ImageId, number>;
}

interface Vector {
  weights: Map<string, number>[];
  norms: number[];
  bigrams: number;
}

function toVector(counts: Map<string, number>, df: Map<string, number>, logImages: number): Vector {
  const weights = Array.from({ length: N }, () => new Map<string, number>());
  const squares = new Array<number>(N).fill(0);
  let bigrams = 0;
  for (const [g, tf] of counts) {
    const n = ngramOrder(g) - 1;
    const w = tf * (logImages - Math.log(Math.max(1, df.get(g) ?? 0)));
    weights[n]?.set(g, w);
    squares[n] = (squares[n] ?? 0) + w ** 2;
    if (n === 1) bigrams += tf;
  }
  return { weights, norms: squares.map(Math.sqrt), bigrams };
}

function similarity(cand: Vector, ref: Vector): number[] {
  const delta = cand.bigrams - ref.bigrams;
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    let val = 0;
    const refWeights = ref.weights[n] ?? new Map<string, number>();
    for (const [g, w] of cand.weights[n] ?? []) {
      const r = refWeights.get(g) ?? 0;
      val += Math.min(w, r) * r;
    }
    const nc = cand.norms[n] ?? 0;
    const nr = ref.norms[n] ?? 0;
    if (nc !== 0 && nr !== 0) val /= nc * nr;
    out.push(val * Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2)));
  }
  return out;
}

export function ciderD(set: TokenizedSet): CiderResult {
  const refCounts = new Map<ImageId, Map<string, number>[]>();
  const df = new Map<string, number>();
  for (const id of set.ids) {
    const counts = (set.refs.get(id) ?? []).map((r) => ngramCounts(r, N).counts);
    refCounts.set(id, counts);
    const seen = new Set<string>();
    for (const c of counts) for (const g of c.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const logImages = Math.log(set.ids.length);
  const perImage = new Map<ImageId, number>();
  let sum = 0;
  for (const id of set.ids) {
    const cand = toVector(ngramCounts(set.cands.get(id) ?? '', N).counts, df, logImages);
    const refs = refCounts.get(id) ?? [];
    const total = new Array<number>(N).fill(0);
    for (const r of refs) {
      const s = similarity(cand, toVector(r, df, logImages));
      for (let n = 0; n < N; n++) total[n] = (total[n] ?? 0) + (s[n] ?? 0);
    }
    const score = ((total.reduce((a, b) => a + b, 0) / N) / refs.length) * 10;
    perImage.set(id, score);
    sum += score;
  }
  return { ciderD: set.ids.length > 0 ? sum / set.ids.length : 0, perImage };
}
