// The gang's process group, the torchrun/Horovod shape over plain TCP:
//   join       rendezvous at rank 0 (rendezvous.ts), then the ring: each rank connects to its predecessor's
//              data listener and accepts one connection from its successor, both sides checking the other's
//              run, attempt and rank. (The receiving side is the one that connects, because only a socket
//              created by net.connect can be given `onread` buffers, which is what lets data arrive straight
//              in the caller's memory.)
//   collectives ring all-reduce, broadcast and barrier (ring.ts), one at a time, each under a deadline.
// Sockets: TCP_NODELAY (a segment's header must not wait for an ACK) and keep-alive. Node's net cannot set
// SO_SNDBUF/SO_RCVBUF on TCP sockets, so buffer sizes are Linux's autotuning (net.ipv4.tcp_rmem/tcp_wmem);
// on top of the kernel's buffer each sender keeps up to SEND_AHEAD_BYTES of segments queued.
// A dead neighbour surfaces at once (its socket closes or resets); a hung one when the collective's
// deadline passes; bytes that are not the expected frame are corruption. Each is a PeerFailedError naming
// the neighbour, and the group is broken for good: its sockets are destroyed (so the failure reaches the
// other ranks within moments) and every later call rejects at once with the same error.
import { connect, type Server, type Socket } from 'node:net';
import { InvalidInputError } from '../../lib/errors.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import { GroupClosedError, PeerFailedError, RendezvousRefusedError, RendezvousTimeoutError, type PeerFailure } from './errors.js';
import { decodeJson, FrameKind, MAX_CONTROL_BYTES, type FrameError, type FrameHeader } from './frames.js';
import { ControlWriter, listen, readControl, register, seconds, serveRendezvous, type Answer, type Peer, type RendezvousOptions } from './rendezvous.js';
import { AllReduceOp, BroadcastOp, Receiver, Sender, Staging, type CollectiveStats, type OpContext, type ReceiveOp, type WireSettings } from './ring.js';

export type { CollectiveStats } from './ring.js';

export interface GroupOptions {
  rank: number;
  worldSize: number;
  /** Hostname or IP of rank 0; it may not resolve at first: DNS and connect are retried until the rendezvous deadline. */
  masterAddr: string;
  masterPort: number;
  /** Address to listen on (env POD_IP); default '0.0.0.0'. A specific address is also the one advertised to peers. */
  bindAddress?: string;
  /** Identifies the run (its UID, or namespace/name): a rank of another run is refused. */
  runId: string;
  /** Gang attempt: a rank of another attempt is refused. */
  attempt: number;
  /** All ranks in and the ring connected before this, else RendezvousTimeoutError naming the missing ranks. */
  rendezvousTimeoutMs: number;
  /** Deadline of each collective that names none, asked for when it starts. */
  collectiveTimeoutMs: () => number;
  /**
   * Wire compression of allReduceSum. 'float16' halves the bytes but is lossy: every partial sum is
   * rounded to half precision at each hop (relative error about 2^-11 per hop, so up to (W-1) x 2^-11 of
   * the magnitudes summed), values beyond +/-65504 become +/-Infinity and below about 6e-8 flush towards
   * zero. Ranks still end bitwise identical. broadcast and barrier are never compressed.
   */
  compression: 'none' | 'float16';
  /** Pipelining segment (payload bytes per frame); default DEFAULT_SEGMENT_BYTES. Every rank must use the same. */
  segmentBytes?: number;
  /** CRC-32 on every frame (default true). Turning it off is for measuring its cost only. */
  checksums?: boolean;
  log: Logger;
}

/**
 * Measured with `npm run bench -- allreduce --sweep 262144,1048576,4194304`: on loopback 256 KB to 4 MB are
 * within noise of each other; 1 MB keeps the staging memory small and pipelines well for W > 2.
 */
export const DEFAULT_SEGMENT_BYTES = 1 << 20;
/** Bytes of segments handed to a socket ahead of the kernel taking them. */
const SEND_AHEAD_BYTES = 8 << 20;

interface PeerInfo {
  rank: number;
  address: string;
}

interface Links {
  sender: Sender;
  receiver: Receiver;
  sendSocket: Socket;
  recvSocket: Socket;
  succ: PeerInfo;
  pred: PeerInfo;
  /** Where the sockets' events go once the group exists. */
  route: Route;
}

interface Route {
  frameError(err: FrameError): void;
  socketEnd(side: 'send' | 'recv', why: string, failure: PeerFailure): void;
  unexpectedData(): void;
}

interface Running {
  name: string;
  op: AllReduceOp | BroadcastOp;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  limitMs: number;
  started: number;
  recvBytesAtStart: number;
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  private readonly links?: Links;
  private readonly settings: WireSettings;
  private readonly staging?: Staging;
  private readonly log: Logger;
  private readonly barrierBuf: Float32Array;
  private queue: Promise<unknown> = Promise.resolve();
  private running?: Running;
  private broken?: Error;
  private closing = false;
  private closed?: Promise<void>;
  /** The successor closed its connection during the running collective (see socketEnd). */
  private successorGone?: PeerFailedError;

  private constructor(
    private readonly opts: GroupOptions,
    settings: WireSettings,
    links?: Links,
  ) {
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.settings = settings;
    this.log = opts.log;
    this.links = links;
    this.barrierBuf = new Float32Array(opts.worldSize);
    if (links) {
      this.staging = new Staging(settings.segmentBytes, this.window, settings.compression === 'float16');
      links.route.frameError = (err) => this.fail(new PeerFailedError(`corrupt frame from ${describe(links.pred)} ${this.when}: ${err.message}`, links.pred.rank, 'corrupt', err));
      links.route.socketEnd = (side, why, failure) => {
        if (this.closing) return;
        const peer = side === 'recv' ? links.pred : links.succ;
        const what = failure === 'closed' ? 'closed the connection' : `reset the connection (${why})`;
        const err = new PeerFailedError(`${describe(peer)} ${what} ${this.when}`, peer.rank, failure);
        if (side === 'send' && failure === 'closed' && this.running) {
          // The successor finished this collective and closed (the end of a run), or died after the kernel
          // took everything it needed from us. What this rank still waits for comes from its predecessor, and a
          // write the successor can no longer take fails on its own (EPIPE/ECONNRESET): let the collective
          // finish, and break the group for the next one.
          this.successorGone ??= new PeerFailedError(`${describe(peer)} closed the connection at the end of ${this.running.name}`, peer.rank, 'closed');
          return;
        }
        this.fail(err);
      };
      links.route.unexpectedData = () =>
        this.fail(new PeerFailedError(`corrupt data from ${describe(links.succ)}: it sent bytes on the connection it only receives on`, links.succ.rank, 'corrupt'));
    }
  }

  /** Rendezvous with the other ranks and connect the ring. worldSize 1: returns at once, without sockets. */
  static async join(opts: GroupOptions): Promise<ProcessGroup> {
    const settings = validate(opts);
    if (opts.worldSize === 1) return new ProcessGroup(opts, settings);
    const started = performance.now();
    const deadline = started + opts.rendezvousTimeoutMs;
    const bind = opts.bindAddress ?? '0.0.0.0';
    const listener = await listen(0, bind, deadline);
    // The successor may connect as soon as it has the ring, before this rank has it: hold such connections.
    const acceptor = new Acceptor(listener);
    try {
      const dataPort = (listener.address() as { port: number }).port;
      const r: RendezvousOptions = {
        rank: opts.rank,
        worldSize: opts.worldSize,
        masterAddr: opts.masterAddr,
        masterPort: opts.masterPort,
        bindAddress: opts.bindAddress,
        runId: opts.runId,
        attempt: opts.attempt,
        settings,
        deadline,
        timeoutMs: opts.rendezvousTimeoutMs,
        log: opts.log,
      };
      const ring = opts.rank === 0 ? await serveRendezvous(r, dataPort) : await register(r, dataPort);
      const links = await connectRing(opts, settings, ring, acceptor, deadline);
      const group = new ProcessGroup(opts, settings, links);
      opts.log.info(
        { rank: opts.rank, worldSize: opts.worldSize, pred: links.pred.address, succ: links.succ.address, seconds: (performance.now() - started) / 1000 },
        `rank ${opts.rank} of ${opts.worldSize} joined the ring (receives from rank ${links.pred.rank}, sends to rank ${links.succ.rank})`,
      );
      return group;
    } finally {
      acceptor.close();
    }
  }

  /**
   * In-place sum over ranks; afterwards every rank holds bitwise-identical values (each chunk is reduced
   * once, in a fixed order, by its owner and then copied). `buf` must not be touched until this settles;
   * after a rejection its contents are unspecified.
   */
  allReduceSum(buf: Float32Array, opts: { timeoutMs?: number } = {}): Promise<CollectiveStats> {
    return this.collective('allReduceSum', opts.timeoutMs, (ctx, staging) => new AllReduceOp(ctx, buf, FrameKind.AllReduce, staging));
  }

  /**
   * Root passes the payload, others pass undefined; every rank returns the root's bytes (the root its own
   * array, which must not change until this settles).
   */
  async broadcast(data: Uint8Array | undefined, opts: { root?: number; timeoutMs?: number } = {}): Promise<Uint8Array> {
    const root = opts.root ?? 0;
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) throw new RangeError(`broadcast: root ${root} is not a rank of this group of ${this.worldSize}`);
    if ((this.rank === root) !== (data !== undefined)) {
      throw new TypeError(`broadcast: rank ${this.rank} ${data ? 'passed data but is not' : 'passed no data but is'} the root (rank ${root})`);
    }
    if (this.worldSize === 1) {
      await this.collective('broadcast', opts.timeoutMs);
      return data as Uint8Array;
    }
    let op: BroadcastOp | undefined;
    await this.collective('broadcast', opts.timeoutMs, (ctx) => (op = new BroadcastOp(ctx, data, root)));
    return (op as BroadcastOp).value;
  }

  /** Returns once every rank has entered the barrier. */
  async barrier(opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.collective('barrier', opts.timeoutMs, (ctx, staging) => new AllReduceOp(ctx, this.barrierBuf, FrameKind.Barrier, staging));
  }

  /**
   * Idempotent: destroys the ring's sockets. A collective still running rejects with GroupClosedError, as
   * does every later call. Peers see the connections close (PeerFailedError 'closed' in their next call).
   */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    const links = this.links;
    if (this.running) this.fail(new GroupClosedError(`the process group was closed during ${this.running.name}`));
    this.closing = true;
    this.broken ??= new GroupClosedError('the process group is closed');
    if (!links) return (this.closed = Promise.resolve());
    links.receiver.abort();
    const sockets = [links.sendSocket, links.recvSocket];
    this.closed = Promise.all(sockets.map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : (s.once('close', () => resolve()), s.destroy()))))).then(() => undefined);
    this.log.debug({ rank: this.rank }, 'process group closed');
    return this.closed;
  }

  private get window(): number {
    return Math.max(2, Math.ceil(SEND_AHEAD_BYTES / this.settings.segmentBytes));
  }

  private get when(): string {
    return this.running ? `during ${this.running.name}` : 'between collectives';
  }

  /** Runs collectives one after another (a call made while one runs waits its turn). */
  private collective(name: string, timeoutMs: number | undefined, make?: (ctx: OpContext, staging: Staging) => AllReduceOp | BroadcastOp): Promise<CollectiveStats> {
    const run = this.queue.then(() => this.run(name, timeoutMs, make));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private run(name: string, timeoutMs: number | undefined, make?: (ctx: OpContext, staging: Staging) => AllReduceOp | BroadcastOp): Promise<CollectiveStats> {
    if (this.closed) return Promise.reject(new GroupClosedError(`${name} on a closed process group`));
    if (this.broken) return Promise.reject(this.broken);
    const links = this.links;
    if (!links || !make) return Promise.resolve({ seconds: 0, bytesSent: 0, bytesReceived: 0 });
    const limitMs = timeoutMs ?? this.opts.collectiveTimeoutMs();
    if (!(limitMs > 0)) return Promise.reject(new RangeError(`${name}: timeout ${limitMs} ms is not a positive number`));
    return new Promise<CollectiveStats>((resolve, reject) => {
      const started = performance.now();
      const sent0 = links.sender.bytes;
      const recv0 = links.receiver.bytes;
      const ctx: OpContext = {
        rank: this.rank,
        worldSize: this.worldSize,
        sender: links.sender,
        settings: this.settings,
        window: this.window,
        fail: (err) => this.fail(new PeerFailedError(`sending to ${describe(links.succ)} failed during ${name}: ${err.message}`, links.succ.rank, 'reset', err)),
        corrupt: (err) => this.fail(new PeerFailedError(`corrupt frame from ${describe(links.pred)} during ${name}: ${err.message}`, links.pred.rank, 'corrupt', err)),
        finish: () => {
          const r = this.running;
          if (!r) return;
          clearTimeout(r.timer);
          this.running = undefined;
          resolve({ seconds: (performance.now() - started) / 1000, bytesSent: links.sender.bytes - sent0, bytesReceived: links.receiver.bytes - recv0 });
          if (this.successorGone) this.fail(this.successorGone);
        },
      };
      const op = make(ctx, this.staging as Staging);
      this.running = { name, op, reject, limitMs, started, recvBytesAtStart: recv0, timer: setTimeout(() => this.timedOut(), Math.min(limitMs, 2 ** 31 - 1)) };
      links.receiver.start(op as ReceiveOp);
      op.begin();
    });
  }

  private timedOut(): void {
    const r = this.running;
    const links = this.links;
    if (!r || !links) return;
    const limit = seconds(r.limitMs);
    if (links.receiver.busy) {
      const got = links.receiver.bytes - r.recvBytesAtStart;
      const message =
        got === 0
          ? `no data from ${describe(links.pred)} for ${limit} during ${r.name} (collective timeout)`
          : `${r.name} did not finish within ${limit} (collective timeout): ${describe(links.pred)} sent ${got} bytes, then nothing for ${seconds(performance.now() - links.receiver.lastReadAt)}`;
      this.fail(new PeerFailedError(message, links.pred.rank, 'timeout'));
    } else {
      this.fail(new PeerFailedError(`${describe(links.succ)} did not take our data for ${limit} during ${r.name} (collective timeout)`, links.succ.rank, 'timeout'));
    }
  }

  /** Breaks the group: rejects the running collective, destroys the sockets, remembers the error. */
  private fail(err: PeerFailedError | GroupClosedError): void {
    if (this.broken) return;
    this.broken = err;
    const r = this.running;
    this.running = undefined;
    const peer = err instanceof PeerFailedError ? { peer: err.peer, failure: err.cause } : {};
    if (r) {
      clearTimeout(r.timer);
      r.op.cancel();
      if (err instanceof PeerFailedError) this.log.error({ rank: this.rank, ...peer, collective: r.name, seconds: (performance.now() - r.started) / 1000 }, err.message);
      r.reject(err);
    } else if (err instanceof PeerFailedError && err.cause === 'closed') {
      // Normal at the end of a run: the peers finish and close. A crash shows up in the next call.
      this.log.info({ rank: this.rank, ...peer }, `${err.message}; the process group is closed`);
    } else {
      this.log.warn({ rank: this.rank, ...peer }, err.message);
    }
    if (this.links) {
      this.closing = true;
      this.links.receiver.abort();
      this.links.sendSocket.destroy();
      this.links.recvSocket.destroy();
    }
  }
}

function describe(p: PeerInfo): string {
  return `rank ${p.rank} (${p.address})`;
}

function validate(o: GroupOptions): WireSettings {
  const bad = (message: string, field: string): never => {
    throw new InvalidInputError(message, { field, hint: 'the launcher sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process' });
  };
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1 || o.worldSize > 65535) bad(`world size ${o.worldSize} is not an integer in 1..65535`, 'WORLD_SIZE');
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) bad(`rank ${o.rank} is not in 0..${o.worldSize - 1}`, 'RANK');
  if (o.worldSize > 1) {
    if (!o.masterAddr) bad('no master address', 'MASTER_ADDR');
    if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) bad(`master port ${o.masterPort} is not in 1..65535`, 'MASTER_PORT');
    if (!(o.rendezvousTimeoutMs > 0)) bad(`rendezvous timeout ${o.rendezvousTimeoutMs} ms is not positive`, 'rendezvousTimeoutMs');
  }
  if (o.compression !== 'none' && o.compression !== 'float16') bad(`compression ${String(o.compression)} is not none or float16`, 'compression');
  const segmentBytes = o.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!Number.isInteger(segmentBytes) || segmentBytes < 4 || segmentBytes % 4 !== 0 || segmentBytes > 1 << 30) {
    bad(`segmentBytes ${segmentBytes} is not a multiple of 4 in 4..2^30`, 'segmentBytes');
  }
  return { compression: o.compression, segmentBytes, checksums: o.checksums ?? true };
}

/** The data listener: holds connections that arrive before anyone asks for them. */
class Acceptor {
  private early: Socket[] = [];
  private handler?: (s: Socket) => void;
  readonly accepted: Socket[] = [];

  constructor(private readonly listener: Server) {
    listener.on('connection', (s: Socket) => {
      this.accepted.push(s);
      if (this.handler) this.handler(s);
      else this.early.push(s);
    });
  }

  onConnection(handler: (s: Socket) => void): void {
    this.handler = handler;
    for (const s of this.early.splice(0)) handler(s);
  }

  close(): void {
    this.listener.close();
    this.listener.removeAllListeners('connection');
  }
}

interface Hello {
  rank: number;
  runId: string;
  attempt: number;
}

/**
 * Forms the ring: connects to the predecessor's data port (the connection this rank receives on) and
 * accepts one connection from the successor (the one it sends on), each side checking the other's hello.
 */
async function connectRing(o: GroupOptions, settings: WireSettings, ring: Peer[], acceptor: Acceptor, deadline: number): Promise<Links> {
  const n = o.worldSize;
  const find = (rank: number): Peer => {
    const p = ring.find((q) => q.rank === rank);
    if (!p) throw new RendezvousRefusedError(`rank 0 sent a ring without rank ${rank}`, 'incomplete ring');
    return p;
  };
  const predPeer = find((o.rank + n - 1) % n);
  const succPeer = find((o.rank + 1) % n);
  const pred: PeerInfo = { rank: predPeer.rank, address: `${predPeer.host}:${predPeer.port}` };
  const succ: PeerInfo = { rank: succPeer.rank, address: `${succPeer.host}:${succPeer.port}` };
  const me: Hello = { rank: o.rank, runId: o.runId, attempt: o.attempt };
  const route: Route = { frameError: () => undefined, socketEnd: () => undefined, unexpectedData: () => undefined };
  const cleanup: Socket[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RendezvousTimeoutError(`the ring was not connected within ${seconds(o.rendezvousTimeoutMs)} of the rendezvous start: ${stage.join('; ')}`, [...waitingFor], `${o.masterAddr}:${o.masterPort}`)),
      Math.max(1, deadline - performance.now()),
    );
  });
  const waitingFor = new Set([pred.rank, succ.rank]);
  const stage: string[] = [];
  const progress = (): void => {
    stage.length = 0;
    if (waitingFor.has(pred.rank)) stage.push(`no accepted connection to rank ${pred.rank} at ${pred.address}`);
    if (waitingFor.has(succ.rank) && (pred.rank !== succ.rank || !waitingFor.has(pred.rank))) stage.push(`no connection from rank ${succ.rank}`);
  };
  progress();

  const toPred = (async (): Promise<{ socket: Socket; receiver: Receiver }> => {
    let delay = 50;
    for (;;) {
      const outcome = await dialPredecessor(predPeer, me, settings, route, cleanup);
      if ('socket' in outcome) {
        waitingFor.delete(pred.rank);
        progress();
        return outcome;
      }
      if ('refused' in outcome) throw new RendezvousRefusedError(`rank ${pred.rank} at ${pred.address} refused rank ${o.rank}'s ring connection: ${outcome.refused}`, outcome.refused);
      stage.push(`last error connecting to rank ${pred.rank}: ${outcome.error}`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 500);
    }
  })();

  const fromSucc = new Promise<Socket>((resolve) => {
    acceptor.onConnection((socket: Socket) => {
      socket.setNoDelay(true);
      const writer = new ControlWriter(socket);
      let accepted = false;
      readControl(
        socket,
        (f) => {
          if (accepted) {
            route.unexpectedData();
            return;
          }
          const hello = f.header.kind === FrameKind.Hello ? decodeJson<Partial<Hello>>(f.payload) : {};
          const why =
            hello.runId !== o.runId
              ? `it belongs to run ${JSON.stringify(hello.runId)}, not ${JSON.stringify(o.runId)}`
              : hello.attempt !== o.attempt
                ? `it is of attempt ${hello.attempt}, not ${o.attempt}`
                : hello.rank !== succ.rank
                  ? `it is rank ${hello.rank}, but rank ${o.rank}'s successor is rank ${succ.rank}`
                  : undefined;
          if (why) {
            o.log.warn({ rank: o.rank, peer: hello.rank, runId: hello.runId, attempt: hello.attempt, reason: why }, `ring: turned away a connection: ${why}`);
            writer.send(FrameKind.Answer, { refused: why } satisfies Answer);
            socket.end();
            return;
          }
          accepted = true;
          writer.send(FrameKind.Answer, { ok: true, ...me } satisfies Answer & Hello);
          waitingFor.delete(succ.rank);
          progress();
          resolve(socket);
        },
        (why, corrupt) => {
          if (!accepted) return;
          if (corrupt) route.unexpectedData();
          else route.socketEnd('send', why, why.startsWith('the connection') ? 'closed' : 'reset');
        },
      );
    });
  });

  try {
    const [{ socket: recvSocket, receiver }, sendSocket] = await Promise.race([Promise.all([toPred, fromSucc]), timeout]);
    for (const s of [recvSocket, sendSocket]) s.setKeepAlive(true, 10_000);
    // The accept side sent one control frame (seq 0): data frames continue from 1.
    const sender = new Sender(sendSocket, settings.checksums, 1);
    // Connections that were turned away, or arrived too late, go.
    for (const s of [...cleanup, ...acceptor.accepted]) if (s !== recvSocket && s !== sendSocket) s.destroy();
    return { sender, receiver, sendSocket, recvSocket, succ, pred, route };
  } catch (err) {
    for (const s of [...cleanup, ...acceptor.accepted]) s.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

type Dial = { socket: Socket; receiver: Receiver } | { refused: string } | { error: string };

/** One attempt to connect to the predecessor and have it accept this rank's hello. */
function dialPredecessor(pred: Peer, me: Hello, settings: WireSettings, route: Route, cleanup: Socket[]): Promise<Dial> {
  return new Promise((resolve) => {
    let settled = false;
    let handshaken = false;
    const receiver = new Receiver(settings.checksums, (err) => (handshaken ? route.frameError(err) : settle({ error: `bad answer: ${err.message}` })));
    const socket = connect({ host: pred.host, port: pred.port, noDelay: true, onread: receiver.onread });
    cleanup.push(socket);
    receiver.attach(socket);
    const settle = (d: Dial): void => {
      if (settled) return;
      settled = true;
      if (!('socket' in d)) socket.destroy();
      resolve(d);
    };
    let answer = new Uint8Array(0);
    const helloOp: ReceiveOp = {
      next: () => (handshaken || settled ? undefined : { kind: FrameKind.Answer, length: MAX_CONTROL_BYTES, exact: false }),
      target: (length) => (answer = new Uint8Array(length)),
      progress: () => undefined,
      done: (_h: FrameHeader) => {
        let a: Answer & Partial<Hello>;
        try {
          a = decodeJson<Answer & Partial<Hello>>(answer);
        } catch (err) {
          settle({ error: (err as Error).message });
          return;
        }
        if (a.refused) settle({ refused: a.refused });
        else if (a.ok && a.rank === pred.rank && a.runId === me.runId && a.attempt === me.attempt) {
          handshaken = true;
          settle({ socket, receiver });
        } else settle({ refused: `its answer ${JSON.stringify(a)} is not rank ${pred.rank} of this run and attempt` });
      },
    };
    receiver.start(helloOp);
    socket.once('connect', () => new ControlWriter(socket).send(FrameKind.Hello, me));
    socket.on('error', (err: NodeJS.ErrnoException) => (handshaken ? route.socketEnd('recv', err.code ?? err.message, err.code === 'ETIMEDOUT' ? 'timeout' : 'reset') : settle({ error: err.code ?? err.message })));
    socket.on('end', () => (handshaken ? route.socketEnd('recv', 'end', 'closed') : settle({ error: 'the connection was closed before the answer' })));
    socket.on('close', () => (handshaken ? route.socketEnd('recv', 'close', 'closed') : settle({ error: 'the connection was closed before the answer' })));
  });
}
