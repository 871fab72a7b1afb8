// GetObject for hot paths: one SigV4-signed HTTP GET over a keep-alive agent, without the AWS SDK's
// middleware stack. The feature reader issues one GET per cache entry per batch (32 per step at batch 32);
// through the SDK each cost ~0.7 ms of client CPU on the cores that train (BENCHMARKS.md, issue 19), this
// path a fraction of that. The signature is the SDK's own signer (@smithy/signature-v4, ~20 us a request) and
// the credentials its resolver (env, Secret files, IRSA, instance metadata), so rotation and session tokens
// behave as for every other S3 call; only the HTTP request is ours.
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';

/** sha256 of an empty body: a GET signs its (absent) payload with this. */
const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** A GET the server answered with something other than the object or "no such key". */
export class S3GetError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly statusCode: number | undefined,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`s3://${bucket}/${key}: ${code}: ${message}`, options);
    this.name = 'S3GetError';
  }
}

export interface SignedGetOptions {
  region: string;
  /** e.g. http://127.0.0.1:9000; undefined for AWS itself. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** A request with no response for this long fails; the SDK's requestTimeout, for the same budget. */
  requestTimeoutMs: number;
  /** Open connections per origin: enough for one batch's entries in flight at once. */
  maxSockets?: number;
}

/** Signed GETs of one bucket's objects, reusing connections (and, in the signer, the day's signing key). */
export class SignedGet {
  private readonly agent: HttpAgent;
  private readonly https: boolean;
  private readonly host: string;
  private readonly pathPrefix: string;
  private readonly signer: SignatureV4;

  private constructor(
    private readonly bucket: string,
    client: S3Client,
    private readonly options: SignedGetOptions,
  ) {
    const base = new URL(options.endpoint ?? `https://s3.${options.region}.amazonaws.com`);
    this.https = base.protocol === 'https:';
    const virtualHost = !options.forcePathStyle;
    this.host = virtualHost ? `${bucket}.${base.host}` : base.host;
    this.pathPrefix = `${base.pathname.replace(/\/+$/, '')}${virtualHost ? '' : `/${encodeSegment(bucket)}`}`;
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
    this.agent = this.https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    // S3 signs the path as sent (no second escaping) and wants the payload hash header.
    this.signer = new SignatureV4({ service: 's3', region: options.region, credentials: client.config.credentials, sha256: client.config.sha256, uriEscapePath: false, applyChecksum: true });
  }

  /** Builds one from an SDK client: its credential chain and hash, with `options` for where requests go. */
  static fromClient(client: S3Client, bucket: string, options: SignedGetOptions): SignedGet {
    return new SignedGet(bucket, client, options);
  }

  /** The object's bytes, or undefined when there is no such key. */
  async get(key: string): Promise<Buffer | undefined> {
    const path = `${this.pathPrefix}/${key.split('/').map(encodeSegment).join('/')}`;
    const signed = await this.signer.sign({
      method: 'GET',
      protocol: this.https ? 'https:' : 'http:',
      hostname: this.host,
      path,
      query: {},
      headers: { host: this.host, 'x-amz-content-sha256': EMPTY_SHA256 },
    });
    const res = await this.send(path, signed.headers, key);
    const body = await readBody(res);
    if (res.statusCode === 200) return body;
    if (res.statusCode === 404) return undefined;
    const code = /<Code>([^<]*)<\/Code>/.exec(body.toString('utf8'))?.[1] ?? `HTTP ${res.statusCode}`;
    const message = /<Message>([^<]*)<\/Message>/.exec(body.toString('utf8'))?.[1] ?? (res.statusMessage ?? '');
    throw new S3GetError(this.bucket, key, res.statusCode, code, message);
  }

  /** Closes idle connections (a reader that is done must not hold sockets open). */
  close(): void {
    this.agent.destroy();
  }

  private send(path: string, headers: Record<string, string>, key: string): Promise<IncomingMessage> {
    const request = this.https ? httpsRequest : httpRequest;
    const { hostname, port } = new URL(`${this.https ? 'https' : 'http'}://${this.host}`);
    return new Promise((resolve, reject) => {
      const req = request({ host: hostname, port: port || undefined, path, method: 'GET', headers, agent: this.agent }, resolve);
      req.setTimeout(this.options.requestTimeoutMs, () => {
        req.destroy(new S3GetError(this.bucket, key, undefined, 'TimeoutError', `no response within ${this.options.requestTimeoutMs} ms`));
      });
      req.on('error', (err) => reject(err instanceof S3GetError ? err : new S3GetError(this.bucket, key, undefined, (err as NodeJS.ErrnoException).code ?? err.name, err.message, { cause: err })));
      req.end();
    });
  }
}

/** RFC 3986 encoding of one path segment, as SigV4's canonical URI for S3 wants it (no double encoding). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function readBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    res.on('error', reject);
  });
}
