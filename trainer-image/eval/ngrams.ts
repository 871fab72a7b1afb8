// n-gram counting shared by BLEU and CIDEr-D: both split the tokenised caption with Python's str.split() and
// count every 1..n-gram, exactly as the toolkit's precook().
import { pySplit } from './tokenizer.js';

/** Counts of every 1..n-gram; keys are the words joined by a space (words never contain one after pySplit). */
export interface NgramCounts {
  words: number;
  counts: Map<string, number>;
}

export function ngramCounts(caption: string, n = 4): NgramCounts {
  const words = pySplit(caption);
  const counts = new Map<string, number>();
  for (let i = 0; i < words.length; i++) {
    let key = '';
    for (let k = 0; k < n && i + k < words.length; k++) {
      key = k === 0 ? (words[i] ?? '') : `${key} ${words[i + k] ?? ''}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return { words: words.length, counts };
}

/** The order of an n-gram key. */
export function ngramOrder(key: string): number {
  let spaces = 0;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 32) spaces++;
  return spaces + 1;
}
