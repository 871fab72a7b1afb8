// Checkpoints in an S3-compatible bucket (AWS, MinIO, Ceph...). Files go up through lib-storage's multipart
// upload with a CRC32 checksum per part that the server verifies; a multipart object becomes visible only
// when complete, so a crashed writer leaves nothing half-written behind a name. Transient failures are retried
// inside a time budget, then reported as StoreUnavailableError.
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Logger } from '../telemetry/logger.js';
import { parseS3Uri, s3ClientConfig, type S3Connection } from '../s3-connection.js';
import { deleteObjects, isNoSuchKey, listObjects, type S3Call } from '../s3-objects.js';
import { MANIFEST_FILE, parseCheckpointName } from './layout.js';
import { withRetry } from './retry.js';
import { sourceBytes, type CheckpointStore, type FileSource, type StoreDescriptor } from './store.js';

export interface S3StoreOptions extends S3Connection {
  /** How long transient failures are retried before StoreUnavailableError; default 60 s. */
  retryDeadlineMs?: number;
  /** Multipart part size; default 8 MiB (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts uploaded concurrently; default 4. */
  queueSize?: number;
}

export class S3Store implements CheckpointStore {
  readonly uri: string;
  readonly descriptor: StoreDescriptor;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly options: S3StoreOptions;
  private readonly logger: Logger | undefined;

  constructor(uri: string, options: S3StoreOptions = {}, logger?: Logger) {
    const { bucket, prefix } = parseS3Uri(uri);
    this.bucket = bucket;
    this.prefix = prefix;
    this.uri = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
    this.options = options;
    this.descriptor = { uri: this.uri, s3: options };
    this.logger = logger;
    this.client = new S3Client(s3ClientConfig(options));
  }

  async listCheckpoints(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.retry('list checkpoints', () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key(''), Delimiter: '/', ContinuationToken: token })),
      );
      for (const p of page.CommonPrefixes ?? []) {
        const name = p.Prefix?.slice(this.key('').length).replace(/\/$/, '');
        if (name !== undefined && parseCheckpointName(name) !== undefined) names.push(name);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return names;
  }

  async writeFile(path: string, source: FileSource): Promise<void> {
    const data = await sourceBytes(source);
    await this.retry(`upload ${path}`, async () => {
      // A Uint8Array body is cut into parts as views, without copying; a retry starts the object over. Each
      // part carries a CRC32 the server checks (transport integrity, as a plain PutObject has by default);
      // end-to-end integrity is the file's digest in the manifest, which costs no second hash here.
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.key(path), Body: data, ChecksumAlgorithm: 'CRC32' },
        partSize: this.options.partSizeBytes ?? 8 << 20,
        queueSize: this.options.queueSize ?? 4,
        leavePartsOnError: false,
      });
      await upload.done();
    });
  }

  async readFile(path: string): Promise<AsyncIterable<Uint8Array> | undefined> {
    try {
      const res = await this.retry(`open ${path}`, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) })));
      return res.Body as AsyncIterable<Uint8Array> | undefined;
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw err;
    }
  }

  async deleteFile(path: string): Promise<void> {
    await this.retry(`delete ${path}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(path) })));
  }

  async deleteCheckpoint(name: string): Promise<void> {
    // Uncommit first: a crash halfway through leaves objects without a manifest, which readers skip.
    await this.deleteFile(`${name}/${MANIFEST_FILE}`);
    const call: S3Call = (what, request) => this.retry(`${name}: ${what}`, request);
    const objects = await listObjects(this.client, this.bucket, this.key(`${name}/`), call);
    await deleteObjects(this.client, this.bucket, objects.map((o) => o.key), call);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private key(path: string): string {
    return this.prefix ? `${this.prefix}/${path}` : path;
  }

  private retry<T>(what: string, op: () => Promise<T>): Promise<T> {
    return withRetry(`${this.uri}: ${what}`, op, { deadlineMs: this.options.retryDeadlineMs ?? 60_000, logger: this.logger });
  }
}
