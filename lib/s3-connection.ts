// How captionrun reaches an S3-compatible store (AWS, MinIO, Ceph...): endpoint, region, addressing style and
// credentials, with the AWS environment variables as defaults. The checkpoint store and the dataset reader
// connect the same way, so one set of settings (and one mounted Secret) serves both.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { InvalidInputError } from './errors.js';

export interface S3Connection {
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
  /** A request with no progress for this long is a timeout; default 30 s. */
  requestTimeoutMs?: number;
}

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!m?.[1]) throw new InvalidInputError(`"${uri}" is not an s3://bucket/prefix URI`, { hint: 'bucket names are 3-63 lowercase letters, digits, dots and dashes' });
  return { bucket: m[1], prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/** Where requests for `o` go, with the defaults applied: what a client without the SDK needs (lib/s3-signed-get.ts). */
export function s3Address(o: S3Connection): { endpoint: string | undefined; region: string; forcePathStyle: boolean; requestTimeoutMs: number } {
  const env = process.env;
  const endpoint = o.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return {
    endpoint,
    region: o.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: o.forcePathStyle ?? endpoint !== undefined,
    requestTimeoutMs: o.requestTimeoutMs ?? 30_000,
  };
}

/** Client settings for `o`. Callers own retries (maxAttempts 1), so a time budget is one number, not two nested ones. */
export function s3ClientConfig(o: S3Connection): S3ClientConfig {
  // The SDK prints a multi-line notice on Node < 22 (versions after January 2027 will need 22) once per
  // thread, into logs that are otherwise JSON lines. The pinned SDK supports Node 20, on which the local
  // commands still run (README, "Node versions"); a user who wants the notice sets the variable to "false".
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { endpoint, region, forcePathStyle, requestTimeoutMs } = s3Address(o);
  const config: S3ClientConfig = {
    region,
    forcePathStyle,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5000, requestTimeout: requestTimeoutMs },
  };
  if (endpoint) config.endpoint = endpoint;
  const credentials = explicitCredentials(o);
  if (credentials) config.credentials = credentials;
  return config;
}

/** Explicit options, then a mounted Secret directory, then the AWS env vars; otherwise the SDK's default chain. */
function explicitCredentials(o: S3Connection): { accessKeyId: string; secretAccessKey: string } | undefined {
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

/**
 * The connection settings of a spec's S3 checkpoint store (credentials come from the environment or the
 * mounted Secret). An s3:// dataset is read through the same connection: one object store, one Secret;
 * without an S3 checkpoint store the AWS environment variables decide.
 */
export function connectionOf(s3: { endpoint?: string; region?: string; forcePathStyle?: boolean } | undefined): S3Connection {
  return s3 ? { endpoint: s3.endpoint, region: s3.region, forcePathStyle: s3.forcePathStyle } : {};
}
