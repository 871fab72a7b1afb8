// The one interface every dataset format (synthetic, flickr8k, karpathy) implements, so tokenizer,
// feature extraction and training never look at a format's files.
import { InvalidInputError } from '../../lib/errors.js';

/** Pixels already in memory (synthetic scenes) or the bytes of an encoded file (JPEG/PNG on disk). */
export type ImageSource =
  | { kind: 'raw'; data: Uint8Array; width: number; height: number; channels: 3 }
  | { kind: 'encoded'; data: Buffer; path: string };

/** A box in image coordinates normalised to 0..1: [x0, y0, x1, y1]. */
export type Box = [number, number, number, number];

/** An object drawn in a synthetic scene and where the canonical caption (captions[0]) names it. */
export interface SceneObject {
  shape: string;
  color: string;
  size: string;
  box: Box;
  /** Word indexes in captions[0] (split on spaces) of this object's size, colour and shape words. */
  words: number[];
}

export interface DatasetItem {
  /** Unique within the dataset: the image file name, or "synthetic-<seed>-<index>". */
  id: string;
  split: string;
  /** Reference captions as written in the source (tokenise with data/tokenizer.ts). */
  captions: string[];
  /** Loads (or renders) the image lazily, so a dataset of any size costs no image memory until used. */
  image(): Promise<ImageSource>;
  /** Synthetic scenes only: the objects and their boxes, for attention checks. */
  objects?: SceneObject[];
}

/** A problem found while opening a dataset that did not stop it from opening (e.g. one missing image). */
export interface DatasetProblem {
  id: string;
  file?: string;
  message: string;
}

export interface Dataset {
  format: 'synthetic' | 'flickr8k' | 'karpathy';
  /** Where it came from: a directory, a file, or "synthetic:seed=1,images=1000". */
  source: string;
  /** Split names that hold at least one item, e.g. ["train", "dev"]. */
  splits: string[];
  /** Items of one split (throws InvalidInputError for an unknown or empty split), or all items. */
  items(split?: string): DatasetItem[];
  /** Images skipped while opening (missing files); they are not in items(). */
  problems: DatasetProblem[];
}

/** Items of one split, or every item; an unknown or empty split is an InvalidInputError naming the known ones. */
export function selectSplit(all: DatasetItem[], split: string | undefined, source: string, known: readonly string[]): DatasetItem[] {
  if (split === undefined) return all;
  const items = all.filter((it) => it.split === split);
  if (items.length === 0) {
    const why = known.includes(split) ? 'is empty' : `is unknown (splits: ${known.join(', ')})`;
    throw new InvalidInputError(`split "${split}" ${why}`, { file: source, hint: 'choose a split that holds images' });
  }
  return items;
}
