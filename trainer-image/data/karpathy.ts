// Karpathy-split JSON (dataset_flickr8k.json, dataset_coco.json, ...): {"images": [{"filename", "filepath"?,
// "split", "sentences": [{"raw"}]}]}. Images are looked up next to the JSON (under "filepath" when given,
// as COCO's train2014/val2014 folders) or in an Images/ folder beside it. "restval" joins "train", as in
// Karpathy's and most published training setups.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import { selectSplit, type Dataset, type DatasetItem } from './dataset.js';
import { dropMissingImages, exists, fileItem, localSource } from './files.js';
import type { OpenOptions } from './flickr8k.js';
import { jsonErrorPosition } from './json-position.js';

export const KARPATHY_SPLITS = ['train', 'val', 'test'] as const;

interface KarpathyImage {
  filename?: unknown;
  filepath?: unknown;
  split?: unknown;
  sentences?: { raw?: unknown; tokens?: unknown }[];
}

export async function openKarpathy(source: string | undefined, options: OpenOptions = {}): Promise<Dataset> {
  let file = localSource(source, 'karpathy');
  if (!file.endsWith('.json')) {
    const found = (await Promise.all(['dataset_flickr8k.json', 'dataset_coco.json', 'dataset_flickr30k.json'].map(async (n) => ((await exists(join(file, n))) ? join(file, n) : undefined)))).find(Boolean);
    if (found === undefined) throw new InvalidInputError('no dataset_*.json found', { file, field: 'spec.dataset.source' });
    file = found;
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read Karpathy JSON: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file, field: 'spec.dataset.source', cause: err });
  }
  let json: { images?: unknown };
  try {
    json = JSON.parse(text) as { images?: unknown };
  } catch (err) {
    const at = jsonErrorPosition(text);
    const message = ((err as Error).message.split('\n')[0] ?? '').slice(0, 120);
    throw new InvalidInputError(`not valid JSON${at ? ` at column ${at.column}` : ''}: ${message}`, { file: at ? `${file}:${at.line}` : file });
  }
  if (!Array.isArray(json.images)) throw new InvalidInputError('not a Karpathy split file: no "images" array', { file });
  const base = dirname(file);
  const candidates: { item: DatasetItem; path: string }[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of (json.images as KarpathyImage[]).entries()) {
    const where = `${file}: images[${i}]`;
    if (typeof entry.filename !== 'string' || entry.filename === '') throw new InvalidInputError('entry has no "filename"', { file: where });
    if (typeof entry.split !== 'string') throw new InvalidInputError(`${entry.filename} has no "split"`, { file: where });
    const captions = (entry.sentences ?? []).map((s) => (typeof s.raw === 'string' ? s.raw : Array.isArray(s.tokens) ? s.tokens.join(' ') : ''));
    if (captions.length === 0 || captions.some((c) => c.trim() === '')) {
      throw new InvalidInputError(`${entry.filename}: every sentence needs a "raw" caption (or "tokens")`, { file: where });
    }
    const sub = typeof entry.filepath === 'string' ? entry.filepath : '';
    const id = sub === '' ? entry.filename : `${sub}/${entry.filename}`;
    if (seen.has(id)) throw new InvalidInputError(`${id} appears twice`, { file: where });
    seen.add(id);
    const direct = join(base, sub, entry.filename);
    const path = (await exists(direct)) ? direct : join(base, 'Images', sub, entry.filename);
    const split = entry.split === 'restval' ? 'train' : entry.split;
    candidates.push({ item: fileItem(id, split, captions, path), path });
  }
  const { items, problems } = await dropMissingImages(candidates, file, options.maxMissingFraction ?? 0.05);
  const known = [...new Set([...KARPATHY_SPLITS, ...items.map((it) => it.split)])];
  return { format: 'karpathy', source: file, splits: known.filter((s) => items.some((it) => it.split === s)), items: (split) => selectSplit(items, split, file, known), problems };
}
