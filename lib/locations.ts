// Reading files that a spec names by location: a local path or file:// URL, an s3://bucket/prefix, or an
// https:// URL (read-only), behind one small interface whose locations are strings of the same kind as the
// root. Datasets and encoder weights are read through it, so each accepts the same three kinds of source.
// An S3 root is listed once, on the first exists(), so checking thousands of images costs a few list pages
// rather than a request per image.
import { access, readFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { InvalidInputError } from './errors.js';
import { parseS3Uri, s3ClientConfig, type S3Connection } from './s3-connection.js';
import { getObjectBytes, listObjects } from './s3-objects.js';

export interface Files {
  /** The root as given (a path, or an s3:// or https:// URL); other locations are built from it with join(). */
  readonly root: string;
  join(from: string, ...parts: string[]): string;
  dirname(location: string): string;
  exists(location: string): Promise<boolean>;
  readText(location: string): Promise<string>;
  /**
   * The bytes at `location`. One that cannot be read for good (absent, unreadable) is an InvalidInputError
   * whose message is the short reason (ENOENT, "object does not exist", HTTP 404) and whose file is the
   * location; a failure that may pass (network, throttling) is a plain Error, so a relaunch can retry.
   */
  readBytes(location: string): Promise<Buffer>;
}

/** Files below `root`; `s3` says how to reach an s3:// root (default: the AWS environment variables). */
export function openFiles(root: string, s3: S3Connection = {}): Files {
  if (root.startsWith('s3://')) return new S3Files(root, s3);
  if (/^https?:\/\//.test(root)) return new HttpFiles(root);
  return new LocalFiles(root.startsWith('file://') ? fileURLToPath(root) : root);
}

/** The folder part and the name part of a path or URL (a source may name a file rather than a folder). */
export function splitLocation(location: string): { parent: string; name: string } {
  const trimmed = location.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  if (i < 0) return { parent: '.', name: trimmed };
  return { parent: i === 0 ? '/' : trimmed.slice(0, i), name: trimmed.slice(i + 1) };
}

class LocalFiles implements Files {
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

  async readText(location: string): Promise<string> {
    return (await this.readBytes(location)).toString('utf8');
  }

  async readBytes(location: string): Promise<Buffer> {
    try {
      return await readFile(location);
    } catch (err) {
      throw new InvalidInputError((err as NodeJS.ErrnoException).code ?? (err as Error).message, { file: location, cause: err });
    }
  }
}

class S3Files implements Files {
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
    const joined = posix.join(key(from), ...parts).replace(/^\.?\/+|\/+$/g, '');
    return `s3://${this.bucket}/${joined === '.' ? '' : joined}`;
  }

  dirname(location: string): string {
    const parent = posix.dirname(key(location));
    return `s3://${this.bucket}/${parent === '.' ? '' : parent}`;
  }

  async exists(location: string): Promise<boolean> {
    const { objects, folders } = await this.list();
    return objects.has(key(location)) || folders.has(key(location));
  }

  async readText(location: string): Promise<string> {
    return (await this.readBytes(location)).toString('utf8');
  }

  async readBytes(location: string): Promise<Buffer> {
    let bytes: Buffer | undefined;
    try {
      bytes = await getObjectBytes(this.client, this.bucket, key(location));
    } catch (err) {
      // Network, throttling, credentials: these may pass, so not invalid input, and a relaunch can retry.
      throw new Error(`${location}: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
    }
    if (bytes === undefined) throw new InvalidInputError('object does not exist', { file: location });
    return bytes;
  }

  /** Every object below the root, listed once, and every folder those keys imply. */
  private list(): Promise<{ objects: Set<string>; folders: Set<string> }> {
    this.listing ??= (async () => {
      const prefix = key(this.root);
      const listed = await listObjects(this.client, this.bucket, prefix === '' ? '' : `${prefix}/`).catch((err: Error) => {
        throw new InvalidInputError(`cannot list: ${err.name}: ${err.message}`, {
          file: this.root,
          hint: 'check the bucket name and that captionrun has s3:ListBucket and s3:GetObject on it',
          cause: err,
        });
      });
      const objects = new Set<string>();
      const folders = new Set<string>([prefix]);
      for (const { key: k } of listed) {
        objects.add(k);
        for (let d = posix.dirname(k); d !== '.' && d.length >= prefix.length; d = posix.dirname(d)) folders.add(d);
      }
      if (objects.size === 0) throw new InvalidInputError('no objects under this prefix', { file: this.root, hint: 'check the bucket and prefix' });
      return { objects, folders };
    })();
    return this.listing;
  }
}

function key(location: string): string {
  return parseS3Uri(location).prefix;
}

/** Read-only: a web server cannot be listed, so exists() asks for each location with HEAD. */
class HttpFiles implements Files {
  constructor(readonly root: string) {}

  join(from: string, ...parts: string[]): string {
    const url = new URL(from);
    url.pathname = posix.join(url.pathname, ...parts);
    return url.href;
  }

  dirname(location: string): string {
    const url = new URL(location);
    url.pathname = posix.dirname(url.pathname);
    return url.href;
  }

  async exists(location: string): Promise<boolean> {
    return (await this.request(location, 'HEAD')).ok;
  }

  async readText(location: string): Promise<string> {
    return (await this.readBytes(location)).toString('utf8');
  }

  async readBytes(location: string): Promise<Buffer> {
    const res = await this.request(location, 'GET');
    if (res.status === 404 || res.status === 410) throw new InvalidInputError(`HTTP ${res.status}`, { file: location });
    if (!res.ok) throw new Error(`${location}: HTTP ${res.status} ${res.statusText}`);
    return Buffer.from(await res.arrayBuffer());
  }

  private async request(location: string, method: 'GET' | 'HEAD'): Promise<Response> {
    try {
      return await fetch(location, { method, signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      throw new Error(`${location}: ${(err as Error).message}`, { cause: err });
    }
  }
}
