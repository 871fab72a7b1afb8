// 2-D views of an encoder's pooled image features: PCA (ml-pca) and t-SNE (@keckelt/tsne), each point an
// image coloured by a keyword class taken from its reference captions. t-SNE runs on the first PCA
// components (at most 50), from a seeded start, so the same features always give the same picture.
import { TSNE } from '@keckelt/tsne';
import { PCA } from 'ml-pca';
import { CounterRng, Stream } from '../util/rng.js';
import { pySplit, tokenizeCaption } from '../eval/tokenizer.js';
import { COLOURS, NOUNS, singular } from '../eval/word-lists.js';

export interface Projection {
  /** One [x, y] per input row. */
  points: Array<[number, number]>;
}

export interface PcaProjection extends Projection {
  /** Share of the variance each of the two components explains. */
  explained: [number, number];
}

/** The first two principal components of the rows (centred, not scaled). */
export function pca2d(rows: readonly (readonly number[])[]): PcaProjection {
  if (rows.length < 2) return { points: rows.map(() => [0, 0]), explained: [0, 0] };
  const { scores, explained } = principalComponents(rows, 2);
  return { points: scores.map((p) => [p[0] ?? 0, p[1] ?? 0]), explained: [explained[0] ?? 0, explained[1] ?? 0] };
}

/** The rows projected onto their first k principal components. */
export function pcaReduce(rows: readonly (readonly number[])[], k: number): number[][] {
  const dim = rows[0]?.length ?? 0;
  if (rows.length < 3 || dim <= k) return rows.map((r) => [...r]);
  return principalComponents(rows, Math.min(k, rows.length - 1)).scores;
}

/**
 * Scores of the rows on their first k principal components, and the share of variance of each component.
 * Pooled encoder features have more dimensions (1024, 2048) than a validation set has images, and an SVD of
 * the n x d data takes ml-pca tens of seconds at n = 1,000. With n < d the same components come from the
 * n x n Gram matrix of the centred rows (dual PCA): ml-pca decomposes it (as a covariance matrix) and the
 * scores are its eigenvectors scaled by the square roots of its eigenvalues. With n >= d ml-pca runs on the
 * data itself.
 */
export function principalComponents(rows: readonly (readonly number[])[], k: number): { scores: number[][]; explained: number[] } {
  const n = rows.length;
  const d = rows[0]?.length ?? 0;
  if (n >= d) {
    const model = new PCA(rows.map((r) => [...r]), { center: true, scale: false });
    const scores = model.predict(rows.map((r) => [...r]), { nComponents: Math.min(k, d) }).to2DArray();
    return { scores, explained: model.getExplainedVariance().slice(0, k) };
  }
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] = (mean[j] ?? 0) + (r[j] ?? 0) / n;
  const centred = rows.map((r) => Float64Array.from({ length: d }, (_, j) => (r[j] ?? 0) - (mean[j] ?? 0)));
  const gram: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let a = 0; a < n; a++) {
    const x = centred[a] as Float64Array;
    for (let b = a; b < n; b++) {
      const y = centred[b] as Float64Array;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += (x[j] ?? 0) * (y[j] ?? 0);
      (gram[a] as number[])[b] = dot;
      (gram[b] as number[])[a] = dot;
    }
  }
  const model = new PCA(gram, { isCovarianceMatrix: true });
  const values = model.getEigenvalues();
  const vectors = model.getEigenvectors();
  const total = values.reduce((s, v) => s + Math.max(0, v), 0);
  const m = Math.min(k, n);
  const scores = Array.from({ length: n }, (_, i) => Array.from({ length: m }, (_, c) => vectors.get(i, c) * Math.sqrt(Math.max(0, values[c] ?? 0))));
  return { scores, explained: values.slice(0, m).map((v) => (total > 0 ? Math.max(0, v) / total : 0)) };
}

export interface TsneOptions {
  /** Default: 30, or (n - 1) / 3 for small sets, as perplexity must stay below n. */
  perplexity?: number;
  iterations?: number;
  seed?: number;
  /** Dimensions kept by PCA before t-SNE (default 50). */
  pcaDimensions?: number;
}

/** @keckelt/tsne draws its start from Math.random; this one draws it from a seeded generator. */
class SeededTsne extends TSNE {
  private spare: number | undefined;

  constructor(
    options: { perplexity: number; dim: number; epsilon: number },
    private readonly rng: CounterRng,
  ) {
    super(options);
  }

  override gaussRandom(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    for (;;) {
      const u = 2 * this.rng.uniform() - 1;
      const v = 2 * this.rng.uniform() - 1;
      const r = u * u + v * v;
      if (r === 0 || r >= 1) continue;
      const c = Math.sqrt((-2 * Math.log(r)) / r);
      this.spare = v * c;
      return u * c;
    }
  }
}

export function tsne2d(rows: readonly (readonly number[])[], options: TsneOptions = {}): Projection {
  const n = rows.length;
  if (n < 4) return pca2d(rows);
  const perplexity = options.perplexity ?? Math.max(2, Math.min(30, Math.floor((n - 1) / 3)));
  const model = new SeededTsne({ perplexity, dim: 2, epsilon: 10 }, new CounterRng(options.seed ?? 1, Stream.Layout));
  model.initDataRaw(pcaReduce(rows, options.pcaDimensions ?? 50));
  const iterations = options.iterations ?? 500;
  for (let i = 0; i < iterations; i++) model.step();
  const solution = model.getSolution() as number[][];
  return { points: solution.map((p) => [p[0] ?? 0, p[1] ?? 0]) };
}

export type ClassScheme = 'noun' | 'colour';

/** Shapes of the synthetic scenes count as nouns, so their plots are coloured by shape. */
const CLASS_NOUNS = new Set([...NOUNS, 'circle', 'square', 'triangle']);

/**
 * The keyword class of one image from its references. 'noun': the noun used most often over the references
 * (ties: the earliest in the first reference), else the first colour word. 'colour': the first colour word
 * of the first reference that has one, else the noun. 'other' when neither is found.
 */
export function keywordClass(references: readonly string[], scheme: ClassScheme = 'noun'): string {
  const tokenised = references.map((r) => pySplit(tokenizeCaption(r)));
  const colour = (): string | undefined => {
    for (const words of tokenised) {
      const w = words.find((x) => COLOURS.has(x));
      if (w) return w === 'gray' ? 'grey' : w;
    }
    return undefined;
  };
  const noun = (): string | undefined => {
    const counts = new Map<string, { count: number; first: number }>();
    let order = 0;
    for (const words of tokenised) {
      for (const w of words) {
        const s = singular(w);
        if (!CLASS_NOUNS.has(s)) continue;
        const c = counts.get(s) ?? { count: 0, first: order++ };
        c.count++;
        counts.set(s, c);
      }
    }
    let best: string | undefined;
    let bestC = { count: 0, first: Infinity };
    for (const [w, c] of counts) {
      if (c.count > bestC.count || (c.count === bestC.count && c.first < bestC.first)) {
        best = w;
        bestC = c;
      }
    }
    return best;
  };
  return (scheme === 'noun' ? (noun() ?? colour()) : (colour() ?? noun())) ?? 'other';
}

/** Keeps the `max` most frequent classes (ties by name) and folds the rest into "other". */
export function limitClasses(classes: readonly string[], max = 8): { classes: string[]; legend: string[] } {
  const counts = new Map<string, number>();
  for (const c of classes) counts.set(c, (counts.get(c) ?? 0) + 1);
  const ranked = [...counts].filter(([c]) => c !== 'other').sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const kept = new Set(ranked.slice(0, max).map(([c]) => c));
  const out = classes.map((c) => (kept.has(c) ? c : 'other'));
  const legend = ranked.filter(([c]) => kept.has(c)).map(([c]) => c);
  if (out.includes('other')) legend.push('other');
  return { classes: out, legend };
}
