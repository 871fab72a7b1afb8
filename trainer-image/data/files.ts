// Where the on-disk dataset formats read their files: a local directory or an s3://bucket/prefix, behind one
// small interface (locations are paths or s3:// URIs), plus lazy image items and the missing-image policy.
// An S3 dataset is listed once when opened, so checking thousands of images for existence costs a few list
// pages rather than a request per image; images are fetched only when an item's image() is called.
import { access, readFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { InvalidInputError } from '../../lib/errors.js';
import { parseS3Uri, s3ClientConfig, type S3Connection } from '../../lib/s3-connection.js';
import type { DatasetItem, DatasetProblem } from './dataset.js';

export interface DatasetFiles {
  /** The dataset directory as given: a path or an s3:// URI. */
  readonly root: string;
  /** A location below root (or below another location). */
  join(from: string, ...parts: string[]): string;
  dirname(location: string): string;
  exists(location: string): Promise<boolean>;
  readText(location: string): Promise<string>;
  readBytes(location: string): Promise<Buffer>;
}

/** The files of the dataset at `source` (a directory path, file:// URL or s3://bucket/prefix). */
export function datasetFiles(source: string | undefined, format: string, s3: S3Connection = {}): DatasetFiles {
  if (source === undefined || source === '') {
    throw new InvalidInputError(`dataset format ${format} needs a source directory or file`, { field: 'spec.dataset.source' });
  }
  if (source.startsWith('s3://')) return new S3Files(source, s3);
  return new LocalFiles(source.startsWith('file://') ? fileURLToPath(source) : source);
}

class LocalFiles implements DatasetFiles {
  constructor(readonly root: string) {}

  join(from: string, ...parts: string[]): string {
    return join(from, ...parts);
  }

  dirname(location: string): string {
    return dirname(location);
  }

  async exists(location: string): Promise<boolean> {
    try {
      await access(location);
      return true;
    } catch {
      return false;
    }
  }

  readText(location: string): Promise<string> {
    return readFile(location, 'utf8');
  }

  readBytes(location: string): Promise<Buffer> {
    return readFile(location);
  }
}

class S3Files implements DatasetFiles {
  private readonly client: S3Client;
  private readonly bucket: string;
  private listing: Promise<{ objects: Set<string>; folders: Set<string> }> | undefined;

  constructor(
    readonly root: string,
    connection: S3Connection,
  ) {
    this.bucket = parseS3Uri(root).bucket;
    this.client = new S3Client(s3ClientConfig(connection));
  }

  join(from: string, ...parts: string[]): string {
    const key = posix.join(this.key(from), ...parts).replace(/^\.?\/+|\/+$/g, '');
    return `s3://${this.bucket}/${key === '.' ? '' : key}`;
  }

  dirname(location: string): string {
    const parent = posix.dirname(this.key(location));
    return `s3://${this.bucket}/${parent === '.' ? '' : parent}`;
  }

  async exists(location: string): Promise<boolean> {
    const { objects, folders } = await this.list();
    const key = this.key(location);
    return objects.has(key) || folders.has(key);
  }

  async readText(location: string): Promise<string> {
    return (await this.readBytes(location)).toString('utf8');
  }

  async readBytes(location: string): Promise<Buffer> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(location) }));
      return Buffer.from((await res.Body?.transformToByteArray()) ?? new Uint8Array());
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') throw new InvalidInputError('object does not exist', { file: location, cause: err });
      // Anything else (network, throttling, credentials) may pass: not invalid input, so a relaunch can retry.
      throw new Error(`${location}: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
    }
  }

  private key(location: string): string {
    return parseS3Uri(location).prefix;
  }

  /** Every object below the root's folder, listed once, and every folder those keys imply. */
  private list(): Promise<{ objects: Set<string>; folders: Set<string> }> {
    this.listing ??= (async () => {
      const prefix = this.key(this.root);
      const objects = new Set<string>();
      const folders = new Set<string>([prefix]);
      let token: string | undefined;
      do {
        const page = await this.client
          .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix === '' ? undefined : `${prefix}/`, ContinuationToken: token }))
          .catch((err: Error) => {
            throw new InvalidInputError(`cannot list the dataset: ${err.name}: ${err.message}`, {
              file: this.root,
              field: 'spec.dataset.source',
              hint: 'check the bucket name and that the trainer has s3:ListBucket and s3:GetObject on it',
              cause: err,
            });
          });
        for (const o of page.Contents ?? []) {
          if (!o.Key) continue;
          objects.add(o.Key);
          for (let d = posix.dirname(o.Key); d !== '.' && d.length >= prefix.length; d = posix.dirname(d)) folders.add(d);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      if (objects.size === 0) {
        throw new InvalidInputError('no objects under this prefix', { file: this.root, field: 'spec.dataset.source', hint: 'check the bucket and prefix' });
      }
      return { objects, folders };
    })();
    return this.listing;
  }
}

/** The folder part and the name part of a path or s3:// URI (a karpathy source may name its JSON file). */
export function splitLocation(location: string): { parent: string; name: string } {
  const trimmed = location.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  if (i < 0) return { parent: '.', name: trimmed };
  return { parent: i === 0 ? '/' : trimmed.slice(0, i), name: trimmed.slice(i + 1) };
}

/** An item whose image is read only when needed. */
export function fileItem(files: DatasetFiles, id: string, split: string, captions: string[], location: string): DatasetItem {
  return {
    id,
    split,
    captions,
    image: async () => {
      try {
        return { kind: 'encoded', data: await files.readBytes(location), path: location };
      } catch (err) {
        if (!(err instanceof InvalidInputError) && (err as NodeJS.ErrnoException).code === undefined) throw err;
        throw new InvalidInputError(`cannot read image: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: location, cause: err });
      }
    },
  };
}

/**
 * Drops items whose image file is missing, recording each as a problem. More than maxMissingFraction missing
 * means a wrong directory rather than a few lost files: that is an error naming the first one.
 */
export async function dropMissingImages(
  files: DatasetFiles,
  candidates: { item: DatasetItem; path: string }[],
  source: string,
  maxMissingFraction: number,
): Promise<{ items: DatasetItem[]; problems: DatasetProblem[] }> {
  const present = await Promise.all(candidates.map((c) => files.exists(c.path)));
  const problems: DatasetProblem[] = [];
  const items: DatasetItem[] = [];
  candidates.forEach((c, i) => {
    if (present[i]) items.push(c.item);
    else problems.push({ id: c.item.id, file: c.path, message: 'image file is missing' });
  });
  if (candidates.length > 0 && problems.length > maxMissingFraction * candidates.length) {
    throw new InvalidInputError(`${problems.length} of ${candidates.length} images are missing (first: ${problems[0]?.file ?? ''})`, {
      file: source,
      hint: 'check that the images directory belongs to this caption file',
    });
  }
  return { items, problems };
}
