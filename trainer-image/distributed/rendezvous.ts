// The rendezvous, torchrun's static one: rank 0 listens on MASTER_ADDR:MASTER_PORT; every rank (rank 0
// registers itself internally) first opens its data listener, then connects — retrying while rank 0's name
// does not resolve yet or nothing listens there — and registers its rank, world size, run, attempt and the
// address of its data listener. Rank 0 tells every registered rank who has joined so far (so a rank that
// times out can say who was missing); once all WORLD_SIZE ranks are in it sends each the whole ring.
// A process of another run or attempt, a second process for a taken rank or one that disagrees on the
// world size or wire settings is refused with the reason: it fails with RendezvousRefusedError, while
// rank 0 logs the refusal and goes on waiting for the right one.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { RendezvousRefusedError, RendezvousTimeoutError } from './errors.js';
import { decodeJson, encodeJson, FrameError, FrameKind, FrameParser, kindName, type Frame } from './frames.js';
import type { WireSettings } from './ring.js';
import type { GroupOptions } from './process-group.js';

export interface Peer {
  rank: number;
  host: string;
  port: number;
}

export interface Registration {
  rank: number;
  worldSize: number;
  runId: string;
  attempt: number;
  host: string;
  dataPort: number;
  settings: WireSettings;
}

export interface Answer {
  ring?: Peer[];
  refused?: string;
  /** A ring hello accepted. */
  ok?: boolean;
}

interface Status {
  joined: number[];
}

export interface RendezvousOptions extends Pick<GroupOptions, 'rank' | 'worldSize' | 'masterAddr' | 'masterPort' | 'bindAddress' | 'runId' | 'attempt' | 'log'> {
  settings: WireSettings;
  /** performance.now() by which the rendezvous must be complete. */
  deadline: number;
  /** The whole span, for messages. */
  timeoutMs: number;
}

/** A specific address to listen on and advertise, or undefined for "every interface". */
export function specificAddress(bindAddress: string | undefined): string | undefined {
  return bindAddress && bindAddress !== '0.0.0.0' && bindAddress !== '::' ? bindAddress : undefined;
}

/** An address as peers should dial it ("::ffff:10.0.0.5" -> "10.0.0.5"). */
export function dialable(address: string | undefined): string {
  if (!address) return '127.0.0.1';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function seconds(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function rankList(ranks: readonly number[]): string {
  return `rank${ranks.length === 1 ? '' : 's'} ${ranks.join(', ')}`;
}

/** Why rank 0 refuses a registration, or undefined to accept it. */
export function refusal(r: Partial<Registration>, o: Pick<RendezvousOptions, 'worldSize' | 'runId' | 'attempt' | 'settings'>, taken: ReadonlySet<number>): string | undefined {
  if (r.runId !== o.runId) return `it belongs to run ${JSON.stringify(r.runId)}, this gang to run ${JSON.stringify(o.runId)}`;
  if (r.attempt !== o.attempt) return `it is of attempt ${r.attempt}, this gang is attempt ${o.attempt}`;
  if (r.worldSize !== o.worldSize) return `it expects WORLD_SIZE ${r.worldSize}, this gang has ${o.worldSize}`;
  if (typeof r.rank !== 'number' || !Number.isInteger(r.rank) || r.rank < 1 || r.rank >= o.worldSize) return `rank ${r.rank} is not in 1..${o.worldSize - 1}`;
  if (taken.has(r.rank)) return `rank ${r.rank} has already joined (a duplicate process for one rank)`;
  if (typeof r.host !== 'string' || typeof r.dataPort !== 'number') return 'its registration has no data address';
  const s = r.settings;
  if (!s || s.compression !== o.settings.compression || s.segmentBytes !== o.settings.segmentBytes || s.checksums !== o.settings.checksums) {
    return `its wire settings ${JSON.stringify(s)} differ from rank 0's ${JSON.stringify(o.settings)}`;
  }
  return undefined;
}

/** Sends numbered control frames on one socket. */
export class ControlWriter {
  private seq = 0;
  constructor(private readonly socket: Socket) {}
  send(kind: number, value: unknown): void {
    if (!this.socket.destroyed) this.socket.write(encodeJson(kind, this.seq++, value));
  }
}

/** Feeds a socket's bytes to a FrameParser; `onFrame` gets each frame, `onEnd` a description of the failure. */
export function readControl(socket: Socket, onFrame: (f: Frame) => void, onEnd: (why: string, corrupt: boolean) => void): void {
  const parser = new FrameParser();
  let ended = false;
  const end = (why: string, corrupt: boolean): void => {
    if (ended) return;
    ended = true;
    onEnd(why, corrupt);
  };
  socket.on('data', (chunk: Buffer) => {
    if (ended) return;
    let frames: Frame[];
    try {
      frames = parser.push(chunk);
    } catch (err) {
      end((err as FrameError).message, true);
      return;
    }
    for (const f of frames) {
      if (ended) return;
      try {
        onFrame(f);
      } catch (err) {
        end((err as Error).message, true);
      }
    }
  });
  socket.on('error', (err: NodeJS.ErrnoException) => end(err.code ?? err.message, false));
  socket.on('end', () => end('the connection was closed', false));
  socket.on('close', () => end('the connection was closed', false));
}

export function listen(port: number, host: string, deadline: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const server = createServer({ noDelay: true });
      server.once('error', (err: NodeJS.ErrnoException) => {
        // A previous rank 0 of this pod may still hold the port for a moment.
        if (err.code === 'EADDRINUSE' && performance.now() + 250 < deadline) setTimeout(attempt, 250);
        else reject(err);
      });
      server.listen(port, host, () => resolve(server));
    };
    attempt();
  });
}

/**
 * Rank 0: accepts registrations until every rank is in, then sends each its ring, in which rank 0's own
 * host is the address that rank reached it at (unless bindAddress names one). Returns the ring.
 */
export async function serveRendezvous(o: RendezvousOptions, dataPort: number): Promise<Peer[]> {
  const bind = specificAddress(o.bindAddress);
  const server = await listen(o.masterPort, o.bindAddress ?? '0.0.0.0', o.deadline);
  const joined = new Map<number, { peer: Peer; socket: Socket; writer: ControlWriter }>();
  const sockets = new Set<Socket>();
  o.log.info({ rank: 0, port: o.masterPort, worldSize: o.worldSize }, `rendezvous: rank 0 waiting for ${o.worldSize - 1} more rank(s) on port ${o.masterPort}`);
  try {
    return await new Promise<Peer[]>((resolve, reject) => {
      const missing = (): number[] => Array.from({ length: o.worldSize }, (_, r) => r).filter((r) => r !== 0 && !joined.has(r));
      const timer = setTimeout(() => {
        const m = missing();
        reject(new RendezvousTimeoutError(`rendezvous at ${o.masterAddr}:${o.masterPort} timed out after ${seconds(o.timeoutMs)}: ${rankList(m)} of ${o.worldSize} never joined`, m, `${o.masterAddr}:${o.masterPort}`));
      }, Math.max(0, o.deadline - performance.now()));
      const status = (): void => {
        const s: Status = { joined: [0, ...joined.keys()].sort((a, b) => a - b) };
        for (const j of joined.values()) j.writer.send(FrameKind.Status, s);
      };
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        const writer = new ControlWriter(socket);
        const from = `${dialable(socket.remoteAddress)}:${socket.remotePort ?? '?'}`;
        let rank: number | undefined;
        readControl(
          socket,
          (f) => {
            if (f.header.kind !== FrameKind.Register || rank !== undefined) {
              o.log.warn({ rank: 0, from, kind: kindName(f.header.kind) }, `rendezvous: unexpected ${kindName(f.header.kind)} frame from ${from}; dropped the connection`);
              socket.destroy();
              return;
            }
            let r: Partial<Registration>;
            try {
              r = decodeJson<Partial<Registration>>(f.payload);
            } catch {
              socket.destroy();
              return;
            }
            const why = refusal(r, o, new Set(joined.keys()));
            if (why) {
              o.log.warn({ rank: 0, peer: r.rank, from, runId: r.runId, attempt: r.attempt, reason: why }, `rendezvous: refused a process from ${from}: ${why}`);
              writer.send(FrameKind.Answer, { refused: why } satisfies Answer);
              socket.end();
              return;
            }
            rank = r.rank as number;
            joined.set(rank, { peer: { rank, host: r.host as string, port: r.dataPort as number }, socket, writer });
            o.log.info({ rank: 0, peer: rank, from, joined: joined.size + 1, worldSize: o.worldSize }, `rendezvous: rank ${rank} joined from ${from} (${joined.size + 1}/${o.worldSize})`);
            if (joined.size < o.worldSize - 1) {
              status();
              return;
            }
            clearTimeout(timer);
            const others = [...joined.values()].map((j) => j.peer);
            for (const j of joined.values()) {
              const self: Peer = { rank: 0, host: bind ?? dialable(j.socket.localAddress), port: dataPort };
              const ring = [self, ...others].sort((a, b) => a.rank - b.rank);
              j.writer.send(FrameKind.Answer, { ring } satisfies Answer);
              j.socket.end();
            }
            resolve([{ rank: 0, host: bind ?? dialable(undefined), port: dataPort }, ...others].sort((a, b) => a.rank - b.rank));
          },
          (why) => {
            // A rank that leaves before the ring is complete gives its rank back.
            if (rank !== undefined && joined.get(rank)?.socket === socket && joined.size < o.worldSize - 1) {
              joined.delete(rank);
              o.log.warn({ rank: 0, peer: rank, from, reason: why }, `rendezvous: rank ${rank} left before the gang was complete (${why})`);
              status();
            }
          },
        );
      });
    });
  } finally {
    server.close();
    // Answered ranks were ended gracefully (their answer still flushes); anything else is dropped.
    for (const s of sockets) if (!s.writableEnded) s.destroy();
  }
}

const RETRYABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL']);

/**
 * Ranks 1..W-1: registers with rank 0 — retrying while rank 0's name does not resolve or nothing listens
 * yet, and when rank 0 drops the connection before answering — and returns the ring.
 */
export async function register(o: RendezvousOptions, dataPort: number): Promise<Peer[]> {
  const master = `${o.masterAddr}:${o.masterPort}`;
  let lastError = 'no connection attempt finished';
  let joined: number[] | undefined;
  let delay = 50;
  let lastLog = performance.now();
  const timedOut = (): RendezvousTimeoutError => {
    if (!joined) {
      return new RendezvousTimeoutError(`rank ${o.rank} could not register with rank 0 at ${master} within ${seconds(o.timeoutMs)} (last error: ${lastError}): rank 0 missing`, [0], master);
    }
    const missing = Array.from({ length: o.worldSize }, (_, r) => r).filter((r) => !(joined as number[]).includes(r) && r !== o.rank);
    return new RendezvousTimeoutError(
      `rendezvous at ${master} timed out after ${seconds(o.timeoutMs)}: ${missing.length ? `${rankList(missing)} of ${o.worldSize} never joined` : `rank 0 never sent the ring (${lastError})`}`,
      missing.length ? missing : [0],
      master,
    );
  };
  while (performance.now() < o.deadline) {
    const outcome = await registerOnce(o, dataPort, (j) => (joined = j));
    if ('ring' in outcome) return outcome.ring;
    if ('refused' in outcome) throw new RendezvousRefusedError(`rank 0 at ${master} refused rank ${o.rank} (run ${JSON.stringify(o.runId)}, attempt ${o.attempt}): ${outcome.refused}`, outcome.refused);
    lastError = outcome.error;
    if (outcome.connected) delay = 50;
    if (performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      o.log.info({ rank: o.rank, master, error: lastError }, `rendezvous: still waiting for rank 0 at ${master} (${lastError})`);
    }
    const wait = Math.min(delay, o.deadline - performance.now());
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    delay = Math.min(delay * 2, 1000);
  }
  throw timedOut();
}

type Outcome = { ring: Peer[] } | { refused: string } | { error: string; connected: boolean };

function registerOnce(o: RendezvousOptions, dataPort: number, onStatus: (joined: number[]) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const socket = connect({ host: o.masterAddr, port: o.masterPort, noDelay: true });
    const finish = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ error: connected ? 'rank 0 did not answer' : 'connect timed out', connected }), Math.max(1, o.deadline - performance.now()));
    socket.once('connect', () => {
      connected = true;
      const registration: Registration = {
        rank: o.rank,
        worldSize: o.worldSize,
        runId: o.runId,
        attempt: o.attempt,
        host: specificAddress(o.bindAddress) ?? dialable(socket.localAddress),
        dataPort,
        settings: o.settings,
      };
      new ControlWriter(socket).send(FrameKind.Register, registration);
    });
    readControl(
      socket,
      (f) => {
        if (f.header.kind === FrameKind.Status) {
          onStatus(decodeJson<Status>(f.payload).joined);
          return;
        }
        if (f.header.kind !== FrameKind.Answer) {
          finish({ error: `unexpected ${kindName(f.header.kind)} frame from rank 0`, connected });
          return;
        }
        const a = decodeJson<Answer>(f.payload);
        if (a.refused) finish({ refused: a.refused });
        else if (Array.isArray(a.ring) && a.ring.length === o.worldSize) finish({ ring: a.ring });
        else finish({ error: 'rank 0 answered without a valid ring', connected });
      },
      (why, corrupt) => {
        const code = why.split(':')[0] ?? why;
        if (!corrupt && !connected && !RETRYABLE.has(code)) o.log.warn({ rank: o.rank, error: why }, `rendezvous: connecting to ${o.masterAddr}:${o.masterPort} failed: ${why}`);
        finish({ error: connected ? `rank 0 closed the rendezvous connection before answering (${why})` : why, connected });
      },
    );
  });
}
