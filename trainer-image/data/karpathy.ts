// Karpathy-split JSON (dataset_flickr8k.json, dataset_coco.json, ...): {"images": [{"filename", "filepath"?,
// "split", "sentences": [{"raw"}]}]}. Images are looked up next to the JSON (under "filepath" when given,
// as COCO's train2014/val2014 folders) or in an Images/ folder beside it. "restval" joins "train", as in
// Karpathy's and most published training setups.
import { InvalidInputError } from '../../lib/errors.js';
import { selectSplit, type Dataset, type DatasetItem } from './dataset.js';
import { splitLocation } from '../../lib/locations.js';
import { datasetFiles, dropMissingImages, fileItem } from './files.js';
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
  // The source names the JSON file or the folder holding it; images are looked up from that folder.
  const named = source?.endsWith('.json') ? splitLocation(source) : undefined;
  const files = datasetFiles(named ? named.parent : source, 'karpathy', options.s3);
  let file: string;
  if (named) {
    file = files.join(files.root, named.name);
  } else {
    const candidates = ['dataset_flickr8k.json', 'dataset_coco.json', 'dataset_flickr30k.json'].map((n) => files.join(files.root, n));
    const found = (await Promise.all(candidates.map(async (c) => ((await files.exists(c)) ? c : undefined)))).find(Boolean);
    if (found === undefined) throw new InvalidInputError('no dataset_*.json found', { file: files.root, field: 'spec.dataset.source' });
    file = found;
  }
  let text: string;
  try {
    text = await files.readText(file);
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
  const base = files.dirname(file);
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
    const direct = files.join(base, sub, entry.filename);
    const path = (await files.exists(direct)) ? direct : files.join(base, 'Images', sub, entry.filename);
    const split = entry.split === 'restval' ? 'train' : entry.split;
    candidates.push({ item: fileItem(files, id, split, captions, path), path });
  }
  const { items, problems } = await dropMissingImages(files, candidates, file, options.maxMissingFraction ?? 0.05);
  const known = [...new Set([...KARPATHY_SPLITS, ...items.map((it) => it.split)])];
  return { format: 'karpathy', source: file, splits: known.filter((s) => items.some((it) => it.split === s)), items: (split) => selectSplit(items, split, file, known), problems };
}
