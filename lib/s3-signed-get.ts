// GetObject for hot paths: one SigV4-signed HTTP GET over a keep-alive agent, without the AWS SDK's
// middleware stack. The feature reader issues one GET per cache entry per batch (32 per step at batch 32);
// through the SDK each cost ~0.7 ms of client CPU on the cores that train (BENCHMARKS.md, issue 19), this
// path a fraction of that. Credentials still come from the SDK's resolver (env, Secret files, IRSA, instance
// metadata), so rotation and session tokens behave as for every other S3 call; only the request is ours.
import { createHash, createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';

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

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Signed GETs of one bucket's objects, reusing connections and the day's signing key. */
export class SignedGet {
  private readonly agent: HttpAgent;
  private readonly https: boolean;
  private readonly host: string;
  private readonly pathPrefix: string;
  private signingKey: { secret: string; date: string; key: Buffer } | undefined;

  constructor(
    private readonly bucket: string,
    private readonly credentials: () => Promise<Credentials>,
    private readonly options: SignedGetOptions,
  ) {
    const base = new URL(options.endpoint ?? `https://s3.${options.region}.amazonaws.com`);
    this.https = base.protocol === 'https:';
    const virtualHost = !options.forcePathStyle;
    this.host = virtualHost ? `${bucket}.${base.host}` : base.host;
    this.pathPrefix = `${base.pathname.replace(/\/+$/, '')}${virtualHost ? '' : `/${encodeSegment(bucket)}`}`;
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
    this.agent = this.https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  /** Builds one from an SDK client's settings: its region, endpoint, addressing style and credential chain. */
  static fromClient(client: S3Client, bucket: string, options: SignedGetOptions): SignedGet {
    const resolve = client.config.credentials;
    return new SignedGet(bucket, () => resolve(), options);
  }

  /** The object's bytes, or undefined when there is no such key. */
  async get(key: string): Promise<Buffer | undefined> {
    const credentials = await this.credentials();
    const path = `${this.pathPrefix}/${key.split('/').map(encodeSegment).join('/')}`;
    const headers = this.sign(path, credentials, new Date());
    const res = await this.send(path, headers, key);
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

  /** SigV4 headers for GET `path` (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html). */
  private sign(path: string, credentials: Credentials, now: Date): Record<string, string> {
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    const date = amzDate.slice(0, 8);
    const headers: Record<string, string> = { host: this.host, 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': amzDate };
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(headers).sort();
    const signedHeaders = names.join(';');
    const canonical = ['GET', path, '', ...names.map((n) => `${n}:${headers[n]}`), '', signedHeaders, EMPTY_SHA256].join('\n');
    const scope = `${date}/${this.options.region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.keyFor(credentials.secretAccessKey, date)).update(toSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  /** The signing key changes with the day and the secret only: derived once for both, not four HMACs a GET. */
  private keyFor(secret: string, date: string): Buffer {
    if (this.signingKey?.secret === secret && this.signingKey.date === date) return this.signingKey.key;
    const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), this.options.region), 's3'), 'aws4_request');
    this.signingKey = { secret, date, key };
    return key;
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
