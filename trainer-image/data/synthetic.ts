// Seeded synthetic scenes: a few coloured shapes on a dark background with compositional captions
// ("a small red circle left of a large blue square") and each object's box. Every image is a pure function
// of (seed, index), rendered on demand into raw pixels, so a dataset of 100,000 images stores none.
//
// Learnability by design: objects sit in distinct cells of a 3x3 grid (no overlap, unambiguous relations),
// the canonical caption lists them in reading order (column, then row), so it is a function of the image;
// the vocabulary is 16 words. A second reference lists them in reverse order ("right of", "below").
import type { SyntheticOptions } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import { selectSplit, type Box, type Dataset, type DatasetItem, type ImageSource, type SceneObject } from './dataset.js';
import { mixSeed, SceneRng } from './scene-rng.js';

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export const COLORS: Record<string, readonly [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 200, 60],
  blue: [50, 90, 235],
  yellow: [235, 215, 40],
  white: [240, 240, 240],
};
/** Half-extent of a shape as a fraction of the image side. */
export const SIZES: Record<string, number> = { small: 0.075, large: 0.14 };
const GRID = 3;

export const SYNTHETIC_DEFAULTS: SyntheticOptions = { images: 1000, seed: 1, imageSize: 128, maxObjects: 2, noise: 0 };
/** Every 10th image (index % 10 == 9) is held out for validation. */
export const SYNTHETIC_SPLITS = ['train', 'val'] as const;

interface PlacedObject {
  shape: string;
  color: string;
  size: string;
  col: number;
  row: number;
  /** Centre and half-extent in 0..1 image coordinates. */
  cx: number;
  cy: number;
  r: number;
}

export interface Scene {
  index: number;
  background: [number, number, number];
  objects: PlacedObject[];
  captions: string[];
  sceneObjects: SceneObject[];
}

/** The scene for image `index` of the dataset with this seed (no pixels yet). */
export function generateScene(seed: number, index: number, maxObjects: number): Scene {
  const rng = new SceneRng(mixSeed(seed, index));
  const count = 1 + rng.int(maxObjects);
  const cells = rng.sample(
    Array.from({ length: GRID * GRID }, (_, i) => i),
    count,
  );
  const objects: PlacedObject[] = cells.map((cell) => {
    const size = rng.pick(Object.keys(SIZES));
    const r = SIZES[size] as number;
    const col = cell % GRID;
    const row = Math.floor(cell / GRID);
    // Jitter keeps the shape inside its cell, so boxes never overlap and relations stay unambiguous.
    const slack = 0.5 / GRID - r - 0.01;
    return {
      shape: rng.pick(SHAPES),
      color: rng.pick(Object.keys(COLORS)),
      size,
      col,
      row,
      cx: (col + 0.5) / GRID + (rng.next() * 2 - 1) * slack,
      cy: (row + 0.5) / GRID + (rng.next() * 2 - 1) * slack,
      r,
    };
  });
  objects.sort((a, b) => a.col - b.col || a.row - b.row);
  const background: [number, number, number] = [20 + rng.int(40), 20 + rng.int(40), 20 + rng.int(40)];

  const phrase = (o: PlacedObject): string => `a ${o.size} ${o.color} ${o.shape}`;
  const forward: string[] = [];
  const words: number[][] = [];
  let wordCount = 0;
  objects.forEach((o, i) => {
    if (i > 0) {
      const prev = objects[i - 1] as PlacedObject;
      const rel = prev.col < o.col ? 'left of' : 'above';
      forward.push(rel);
      wordCount += rel.split(' ').length;
    }
    forward.push(phrase(o));
    words.push([wordCount + 1, wordCount + 2, wordCount + 3]);
    wordCount += 4;
  });
  const backward: string[] = [];
  for (let i = objects.length - 1; i >= 0; i--) {
    const o = objects[i] as PlacedObject;
    if (i < objects.length - 1) {
      const next = objects[i + 1] as PlacedObject;
      backward.push(o.col < next.col ? 'right of' : 'below');
    }
    backward.push(phrase(o));
  }
  const captions = objects.length > 1 ? [forward.join(' '), backward.join(' ')] : [forward.join(' ')];
  const sceneObjects = objects.map((o, i) => ({
    shape: o.shape,
    color: o.color,
    size: o.size,
    box: [o.cx - o.r, o.cy - o.r, o.cx + o.r, o.cy + o.r] as Box,
    words: words[i] as number[],
  }));
  return { index, background, objects, captions, sceneObjects };
}

function inside(o: PlacedObject, x: number, y: number): boolean {
  const dx = x - o.cx;
  const dy = y - o.cy;
  switch (o.shape) {
    case 'circle':
      return dx * dx + dy * dy <= o.r * o.r;
    case 'square':
      return Math.abs(dx) <= o.r && Math.abs(dy) <= o.r;
    default: {
      // Upward triangle: apex at the top of the box, base along its bottom edge.
      if (dy < -o.r || dy > o.r) return false;
      const halfWidth = (o.r * (dy + o.r)) / (2 * o.r);
      return Math.abs(dx) <= halfWidth;
    }
  }
}

/** Renders a scene into RGB pixels; noise adds seeded uniform noise of amplitude noise*128 per channel. */
export function renderScene(scene: Scene, size: number, noise: number, noiseSeed: number): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  const rng = new SceneRng(noiseSeed);
  const amplitude = noise * 128;
  for (let yi = 0; yi < size; yi++) {
    const y = (yi + 0.5) / size;
    for (let xi = 0; xi < size; xi++) {
      const x = (xi + 0.5) / size;
      let rgb = scene.background as readonly number[];
      for (const o of scene.objects) {
        if (inside(o, x, y)) {
          rgb = COLORS[o.color] as readonly number[];
          break;
        }
      }
      const at = (yi * size + xi) * 3;
      for (let c = 0; c < 3; c++) {
        const v = (rgb[c] as number) + (amplitude > 0 ? (rng.next() * 2 - 1) * amplitude : 0);
        px[at + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
  return px;
}

/** All words the synthetic captions use, for tests and vocabulary checks. */
export function syntheticVocabulary(): string[] {
  return ['a', ...Object.keys(SIZES), ...Object.keys(COLORS), ...SHAPES, 'left', 'right', 'of', 'above', 'below'];
}

/** Opens a synthetic dataset; options default as in the CaptionTrainingRun schema. */
export function openSynthetic(options: Partial<SyntheticOptions> = {}): Dataset {
  const o: SyntheticOptions = { ...SYNTHETIC_DEFAULTS, ...options };
  if (!Number.isInteger(o.images) || o.images < 10 || o.images > 100_000) {
    throw new InvalidInputError(`synthetic.images must be an integer in 10..100000, got ${o.images}`, { field: 'spec.dataset.synthetic.images' });
  }
  if (!Number.isInteger(o.maxObjects) || o.maxObjects < 1 || o.maxObjects > 4) {
    throw new InvalidInputError(`synthetic.maxObjects must be 1..4, got ${o.maxObjects}`, { field: 'spec.dataset.synthetic.maxObjects' });
  }
  if (o.imageSize < 32 || o.imageSize > 512) {
    throw new InvalidInputError(`synthetic.imageSize must be 32..512, got ${o.imageSize}`, { field: 'spec.dataset.synthetic.imageSize' });
  }
  if (!(o.noise >= 0 && o.noise <= 1)) {
    throw new InvalidInputError(`synthetic.noise must be 0..1, got ${o.noise}`, { field: 'spec.dataset.synthetic.noise' });
  }
  const all: DatasetItem[] = [];
  for (let i = 0; i < o.images; i++) all.push(new SyntheticItem(o, i, generateScene(o.seed, i, o.maxObjects).captions));
  const source = `synthetic:seed=${o.seed},images=${o.images},imageSize=${o.imageSize},maxObjects=${o.maxObjects},noise=${o.noise}`;
  return {
    format: 'synthetic',
    source,
    splits: [...SYNTHETIC_SPLITS],
    items: (split) => selectSplit(all, split, source, SYNTHETIC_SPLITS),
    problems: [],
  };
}

/**
 * Scene i of the dataset. Only its captions are held: the id, split, objects and pixels are derived from
 * (options, i) when asked for, on the prototype, so an item costs its caption strings and three fields.
 * 100,000 items held as plain objects with their objects and an image closure each took 107 MB of heap;
 * the trainer holds every item while it prepares its data (BENCHMARKS.md, issue 19).
 */
class SyntheticItem implements DatasetItem {
  constructor(
    private readonly o: SyntheticOptions,
    private readonly i: number,
    readonly captions: string[],
  ) {}

  get id(): string {
    return `synthetic-${this.o.seed}-${this.i}`;
  }

  get split(): string {
    return this.i % 10 === 9 ? 'val' : 'train';
  }

  /** Regenerated on each call: the trainer asks only for the validation items' objects. */
  get objects(): SceneObject[] {
    return generateScene(this.o.seed, this.i, this.o.maxObjects).sceneObjects;
  }

  async image(): Promise<ImageSource> {
    const { o, i } = this;
    return {
      kind: 'raw',
      data: renderScene(generateScene(o.seed, i, o.maxObjects), o.imageSize, o.noise, mixSeed(o.seed, i, 1)),
      width: o.imageSize,
      height: o.imageSize,
      channels: 3,
    };
  }
}
