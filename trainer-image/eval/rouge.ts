// ROUGE-L as the COCO caption toolkit's rouge.py: per image, the longest common subsequence against each
// reference, the best precision and best recall taken separately, F-measure with beta = 1.2, averaged over
// images. Captions are split on single spaces (not str.split()), so an empty caption is one empty word.
import type { ImageId, TokenizedSet } from './captions.js';

const BETA = 1.2;

export interface RougeResult {
  rougeL: number;
  perImage: Map<ImageId, number>;
}

export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Array<number>(short.length + 1).fill(0);
  let cur = new Array<number>(short.length + 1).fill(0);
  for (let i = 1; i <= long.length; i++) {
    for (let j = 1; j <= short.length; j++) {
      cur[j] = long[i - 1] === short[j - 1] ? (prev[j - 1] ?? 0) + 1 : Math.max(prev[j] ?? 0, cur[j - 1] ?? 0);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[short.length] ?? 0;
}

export function rougeLImage(refs: readonly string[], cand: string): number {
  const c = cand.split(' ');
  let precision = 0;
  let recall = 0;
  for (const ref of refs) {
    const r = ref.split(' ');
    const lcs = lcsLength(r, c);
    precision = Math.max(precision, lcs / c.length);
    recall = Math.max(recall, lcs / r.length);
  }
  if (precision === 0 || recall === 0) return 0;
  return ((1 + BETA ** 2) * precision * recall) / (recall + BETA ** 2 * precision);
}

export function rougeL(set: TokenizedSet): RougeResult {
  const perImage = new Map<ImageId, number>();
  let sum = 0;
  for (const id of set.ids) {
    const s = rougeLImage(set.refs.get(id) ?? [], set.cands.get(id) ?? '');
    perImage.set(id, s);
    sum += s;
  }
  return { rougeL: set.ids.length > 0 ? sum / set.ids.length : 0, perImage };
}
