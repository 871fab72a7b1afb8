// Checkpoints in an S3-compatible bucket (AWS, MinIO, Ceph...). Files go up through lib-storage's multipart
// upload with a CRC32 checksum per part that the server verifies; a multipart object becomes visible only
// when complete, so a crashed writer leaves nothing half-written behind a name. Transient failures are retried
// inside a time budget, then reported as StoreUnavailableError.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Logger } from '../telemetry/logger.js';
import { InvalidInputError } from '../errors.js';
import { MANIFEST_FILE, parseCheckpointName } from './layout.js';
import { withRetry } from './retry.js';
import { sourceBytes, type CheckpointStore, type FileSource, type StoreDescriptor } from './store.js';

export interface S3StoreOptions {
  /** e.g. http://minio:9000; default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS itself. */
  endpoint?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1. */
  region?: string;
  /** Bucket in the path rather than the host name; default true when an endpoint is set (MinIO needs it). */
  forcePathStyle?: boolean;
  /** A mounted Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY files; default CAPTIONRUN_S3_CREDENTIALS_DIR. */
  credentialsDir?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** How long transient failures are retried before StoreUnavailableError; default 60 s. */
  retryDeadlineMs?: number;
  /** Multipart part size; default 8 MiB (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts uploaded concurrently; default 4. */
  queueSize?: number;
  /** A request with no progress for this long is a timeout (and retried); default 30 s. */
  requestTimeoutMs?: number;
}

const DELETE_BATCH = 1000;

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!m?.[1]) throw new InvalidInputError(`"${uri}" is not an s3://bucket/prefix URI`, { hint: 'bucket names are 3-63 lowercase letters, digits, dots and dashes' });
  return { bucket: m[1], prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
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
    // The SDK prints a multi-line notice on Node < 22 (versions after January 2027 will need 22) once per
    // thread, into logs that are otherwise JSON lines. The pinned SDK supports Node 20, which captionrun runs
    // on; a user who wants the notice sets the variable to "false".
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client(clientConfig(options));
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
      if ((err as Error).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }

  async deleteFile(path: string): Promise<void> {
    await this.retry(`delete ${path}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(path) })));
  }

  async deleteCheckpoint(name: string): Promise<void> {
    // Uncommit first: a crash halfway through leaves objects without a manifest, which readers skip.
    await this.deleteFile(`${name}/${MANIFEST_FILE}`);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.retry(`list ${name}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key(`${name}/`), ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((Key) => ({ Key }));
      const res = await this.retry(`delete ${name}`, () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } })),
      );
      if (res.Errors?.length) throw new Error(`deleting ${name}: ${res.Errors.map((e) => `${e.Key}: ${e.Message}`).join('; ')}`);
    }
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

function clientConfig(o: S3StoreOptions): S3ClientConfig {
  const env = process.env;
  const endpoint = o.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = {
    region: o.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: o.forcePathStyle ?? endpoint !== undefined,
    // Our withRetry owns retries, so the time budget is one number rather than two nested ones.
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5000, requestTimeout: o.requestTimeoutMs ?? 30_000 },
  };
  if (endpoint) config.endpoint = endpoint;
  const credentials = explicitCredentials(o);
  if (credentials) config.credentials = credentials;
  return config;
}

/** Explicit options, then a mounted Secret directory, then the AWS env vars; otherwise the SDK's default chain. */
function explicitCredentials(o: S3StoreOptions): { accessKeyId: string; secretAccessKey: string } | undefined {
  if (o.accessKeyId && o.secretAccessKey) return { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey };
  const dir = o.credentialsDir ?? process.env.CAPTIONRUN_S3_CREDENTIALS_DIR;
  if (dir) {
    const read = (...names: string[]): string | undefined => {
      for (const n of names) {
        try {
          return readFileSync(join(dir, n), 'utf8').trim();
        } catch {
          // try the next spelling of the key
        }
      }
      return undefined;
    };
    const accessKeyId = read('AWS_ACCESS_KEY_ID', 'accessKeyId', 'access-key-id');
    const secretAccessKey = read('AWS_SECRET_ACCESS_KEY', 'secretAccessKey', 'secret-access-key');
    if (!accessKeyId || !secretAccessKey) {
      throw new InvalidInputError(`credentials directory ${dir} lacks AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY files`, {
        hint: 'mount the Secret with those two keys',
      });
    }
    return { accessKeyId, secretAccessKey };
  }
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}
