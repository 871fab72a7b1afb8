// Caption tokenisation and the vocabulary. Tokens follow the COCO caption evaluation's PTB tokenisation
// closely enough that training targets and BLEU references agree: lowercase, punctuation dropped, clitics
// split off as PTB does ("dog's" -> "dog 's", "don't" -> "do n't"). The vocabulary is saved with every
// checkpoint as JSON, so ids never change under a resumed run.
import { InvalidInputError } from '../../lib/errors.js';

export const PAD = '<pad>';
export const START = '<start>';
export const END = '<end>';
export const UNK = '<unk>';
export const SPECIAL_TOKENS = [PAD, START, END, UNK] as const;
export const PAD_ID = 0;
export const START_ID = 1;
export const END_ID = 2;
export const UNK_ID = 3;

const CLITIC = /^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$/;
/** Words PTB splits in two. */
const PTB_SPLITS: Record<string, [string, string]> = { cannot: ['can', 'not'], gonna: ['gon', 'na'], gotta: ['got', 'ta'], wanna: ['wan', 'na'] };

/**
 * Splits a caption into lowercase word tokens of [a-z0-9'] with inner hyphens kept ("snow-covered", as PTB
 * does); everything else, "--" included, separates words.
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().split(/[^a-z0-9'-]+|-{2,}/)) {
    const word = raw.replace(/^-+|-+$/g, '').replace(/^'+(?!s$|re$|ve$|ll$|d$|m$)|'+$/g, '');
    if (word === '' || /^'+$/.test(word)) continue;
    const split = PTB_SPLITS[word];
    if (split) {
      out.push(...split);
      continue;
    }
    const m = CLITIC.exec(word);
    if (m && m[1] !== undefined && m[2] !== undefined && !m[1].endsWith("'")) out.push(m[1], m[2]);
    else out.push(word);
  }
  return out;
}

/** The p-quantile (0..1) of a list of numbers, nearest-rank: the smallest value with >= p of the list at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] as number;
}

/**
 * maxCaptionLength "auto": the 95th percentile of tokenised caption lengths, plus 2 for <start> and <end>,
 * so 95 % of captions are never truncated.
 */
export function maxCaptionLength(captions: readonly string[], p = 0.95): number {
  return percentile(captions.map((c) => tokenize(c).length), p) + 2;
}

export interface VocabularyJSON {
  version: 1;
  words: string[];
  minCount: number;
  maxSize: number | null;
}

export interface BuildOptions {
  /** Keep words seen at least this often (spec.training.minWordCount). */
  minCount?: number;
  /** Cap on the total size including the 4 special tokens (spec.training.vocabularySize). */
  maxSize?: number;
}

export class Vocabulary {
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  private constructor(
    words: string[],
    readonly minCount: number,
    readonly maxSize: number | null,
  ) {
    this.words = words;
    this.ids = new Map(words.map((w, i) => [w, i]));
  }

  /**
   * Builds from raw captions: words sorted by descending count, ties alphabetically, so the same captions
   * always give the same ids whatever their order.
   */
  static build(captions: Iterable<string>, options: BuildOptions = {}): Vocabulary {
    const minCount = options.minCount ?? 1;
    const maxSize = options.maxSize ?? null;
    if (maxSize !== null && maxSize < SPECIAL_TOKENS.length + 1) {
      throw new InvalidInputError(`vocabulary size ${maxSize} leaves no room for words (4 special tokens)`, { field: 'spec.training.vocabularySize' });
    }
    const counts = new Map<string, number>();
    for (const caption of captions) for (const t of tokenize(caption)) counts.set(t, (counts.get(t) ?? 0) + 1);
    let kept = [...counts.entries()]
      .filter(([w, n]) => n >= minCount && !(SPECIAL_TOKENS as readonly string[]).includes(w))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([w]) => w);
    if (maxSize !== null) kept = kept.slice(0, maxSize - SPECIAL_TOKENS.length);
    if (kept.length === 0) throw new InvalidInputError(`no word occurs at least ${minCount} times in the captions`, { field: 'spec.training.minWordCount' });
    return new Vocabulary([...SPECIAL_TOKENS, ...kept], minCount, maxSize);
  }

  static fromJSON(json: VocabularyJSON): Vocabulary {
    if (json.version !== 1 || !Array.isArray(json.words) || SPECIAL_TOKENS.some((t, i) => json.words[i] !== t)) {
      throw new InvalidInputError('vocabulary JSON is not version 1 or does not start with <pad>, <start>, <end>, <unk>');
    }
    return new Vocabulary([...json.words], json.minCount, json.maxSize);
  }

  toJSON(): VocabularyJSON {
    return { version: 1, words: [...this.words], minCount: this.minCount, maxSize: this.maxSize };
  }

  get size(): number {
    return this.words.length;
  }

  id(word: string): number {
    return this.ids.get(word) ?? UNK_ID;
  }

  word(id: number): string {
    return this.words[id] ?? UNK;
  }

  /**
   * <start> tokens... <end> then <pad> up to maxLength (truncating words, never the <end>), as Int32Array.
   * Without maxLength the array is exactly as long as needed.
   */
  encode(caption: string, maxLength?: number): Int32Array {
    const ids = tokenize(caption).map((t) => this.id(t));
    const length = maxLength ?? ids.length + 2;
    if (length < 2) throw new Error(`maxLength ${length} cannot hold <start> and <end>`);
    const out = new Int32Array(length);
    const words = ids.slice(0, length - 2);
    out[0] = START_ID;
    out.set(words, 1);
    out[words.length + 1] = END_ID;
    return out;
  }

  /** Words up to the first <end>, skipping <start> and <pad>. */
  decode(ids: ArrayLike<number>): string[] {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id === END_ID) break;
      if (id === START_ID || id === PAD_ID) continue;
      words.push(this.word(id));
    }
    return words;
  }
}
