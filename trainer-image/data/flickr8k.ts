// Flickr8k from a directory or an s3:// prefix: captions from Kaggle's captions.txt ("image,caption" CSV) or the original
// Flickr8k.token.txt ("<image>#<n>\t<caption>"), split lists Flickr_8k.{train,dev,test}Images.txt, and
// images in Images/ (Kaggle) or Flicker8k_Dataset/ (original zip). Without split lists, every 10th image
// (in file-name order) is "dev" and the rest "train".
import { InvalidInputError } from '../../lib/errors.js';
import { selectSplit, type Dataset } from './dataset.js';
import type { S3Connection } from '../../lib/s3-connection.js';
import type { Files } from '../../lib/locations.js';
import { datasetFiles, dropMissingImages, fileItem } from './files.js';

export const FLICKR8K_SPLITS = ['train', 'dev', 'test'] as const;
const SPLIT_FILES: Record<string, string> = { train: 'Flickr_8k.trainImages.txt', dev: 'Flickr_8k.devImages.txt', test: 'Flickr_8k.testImages.txt' };
const IMAGE_DIRS = ['Images', 'Flicker8k_Dataset', 'Flickr8k_Dataset', 'images', '.'];
const TEXT_DIRS = ['.', 'Flickr8k_text'];

export interface OpenOptions {
  /** Above this fraction of missing images the dataset is refused (default 0.05). */
  maxMissingFraction?: number;
  /** How to reach an s3:// source (default: the AWS environment variables). */
  s3?: S3Connection;
}

/** Parses one CSV line of exactly two fields (image, caption), quotes as RFC 4180; undefined if malformed. */
export function parseCsvPair(line: string): [string, string] | undefined {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= line.length) return undefined;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line[i++];
      }
      fields.push(value);
      if (i < line.length && line[i] !== ',') return undefined;
      i++;
    } else {
      const comma = fields.length === 0 ? line.indexOf(',', i) : -1;
      const end = comma < 0 ? line.length : comma;
      fields.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return fields.length === 2 ? [fields[0] as string, fields[1] as string] : undefined;
}

const IMAGE_NAME = /^[^/\\]+\.(jpe?g|png)$/i;

/** image name -> captions, from captions.txt (Kaggle) or Flickr8k.token.txt; every bad line is an error with its line number. */
export async function readFlickrCaptions(file: string, files: Files = datasetFiles(file, 'flickr8k')): Promise<Map<string, string[]>> {
  const text = await files.readText(file);
  const lines = text.split(/\r?\n/);
  const kaggle = /^image,caption$/i.test((lines[0] ?? '').trim());
  const captions = new Map<string, string[]>();
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || (kaggle && index === 0)) return;
    let image: string | undefined;
    let caption: string | undefined;
    if (kaggle) [image, caption] = parseCsvPair(line) ?? [];
    else {
      const m = /^([^#\t]+)#\d+\t(.*)$/.exec(line);
      [image, caption] = m ? [m[1], m[2]] : [];
    }
    if (image === undefined || caption === undefined || !IMAGE_NAME.test(image.trim()) || caption.trim() === '') {
      const expected = kaggle ? 'image.jpg,caption text' : '<image>.jpg#<n><TAB>caption text';
      throw new InvalidInputError(`caption line does not parse (expected "${expected}"): ${JSON.stringify(line.slice(0, 80))}`, {
        file: `${file}:${index + 1}`,
      });
    }
    const list = captions.get(image.trim()) ?? [];
    list.push(caption.trim());
    captions.set(image.trim(), list);
  });
  if (captions.size === 0) throw new InvalidInputError('caption file holds no captions', { file });
  return captions;
}

export async function openFlickr8k(source: string | undefined, options: OpenOptions = {}): Promise<Dataset> {
  const files = datasetFiles(source, 'flickr8k', options.s3);
  const dir = files.root;
  const join = (...parts: string[]): string => files.join(dir, ...parts);
  const firstExisting = async (locations: string[]): Promise<string | undefined> => {
    for (const l of locations) if (await files.exists(l)) return l;
    return undefined;
  };
  const captionFile = await firstExisting(TEXT_DIRS.flatMap((d) => [join(d, 'captions.txt'), join(d, 'Flickr8k.token.txt')]));
  if (captionFile === undefined) {
    throw new InvalidInputError('no captions.txt or Flickr8k.token.txt found', { file: dir, field: 'spec.dataset.source' });
  }
  const captions = await readFlickrCaptions(captionFile, files);
  const imageDir = (await firstExisting(IMAGE_DIRS.map((d) => join(d)))) ?? dir;
  const splitOf = new Map<string, string>();
  let listed = false;
  for (const split of FLICKR8K_SPLITS) {
    const file = await firstExisting(TEXT_DIRS.map((d) => join(d, SPLIT_FILES[split] as string)));
    if (file === undefined) continue;
    listed = true;
    for (const name of (await files.readText(file)).split(/\r?\n/)) if (name.trim() !== '') splitOf.set(name.trim(), split);
  }
  const names = [...captions.keys()].sort();
  if (!listed) names.forEach((n, i) => splitOf.set(n, i % 10 === 9 ? 'dev' : 'train'));
  const candidates = names.flatMap((name) => {
    const split = splitOf.get(name);
    if (split === undefined) return [];
    const path = files.join(imageDir, name);
    return [{ item: fileItem(files, name, split, captions.get(name) as string[], path), path }];
  });
  const { items, problems } = await dropMissingImages(files, candidates, dir, options.maxMissingFraction ?? 0.05);
  for (const [name, split] of splitOf) {
    if (!captions.has(name)) problems.push({ id: name, file: captionFile, message: `listed in the ${split} split but has no captions` });
  }
  const splits = FLICKR8K_SPLITS.filter((s) => items.some((it) => it.split === s));
  const described = `${dir} (${captionFile.endsWith('captions.txt') ? 'captions.txt' : 'Flickr8k.token.txt'}${listed ? '' : ', no split lists: every 10th image is dev'})`;
  return { format: 'flickr8k', source: described, splits, items: (split) => selectSplit(items, split, dir, FLICKR8K_SPLITS), problems };
}
