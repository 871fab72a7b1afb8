// The rendezvous, torchrun's static one: rank 0 listens on MASTER_ADDR:MASTER_PORT, every other process
// connects (retrying while rank 0's name does not resolve yet or nothing listens) and registers its rank,
// run, attempt and the address of its data listener. Once all WORLD_SIZE processes are in, rank 0 sends
// each of them the whole ring. A process of another run or attempt, a second process for a taken rank or
// one that disagrees on WORLD_SIZE is refused, and rank 0 goes on waiting for the right one.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../lib/telemetry/logger.js';
import { RendezvousRefusedError, RendezvousTimeoutError } from './errors.js';
import { FrameKind } from './frames.js';
import { Link } from './link.js';

export interface Peer {
  rank: number;
  host: string;
  port: number;
}

export interface Registration extends Peer {
  worldSize: number;
  runId: string;
  attempt: number;
}

export interface RendezvousOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  bindAddress?: string;
  runId: string;
  attempt: number;
  /** When the rendezvous must be complete (ms since the epoch), and that span in seconds for messages. */
  deadline: number;
  timeoutSeconds: number;
  log: Logger;
}

/** Rank 0's answer to a registration: the ring, or why it refused. */
interface Answer {
  ring?: Peer[];
  refused?: string;
}

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
const decode = <T>(b: Uint8Array): T => JSON.parse(new TextDecoder().decode(b)) as T;

/** A specific address to listen on and advertise, or undefined for "every interface". */
export function specificAddress(bindAddress: string | undefined): string | undefined {
  return bindAddress && bindAddress !== '0.0.0.0' && bindAddress !== '::' ? bindAddress : undefined;
}

/** Why rank 0 refuses a registration, or undefined to accept it. */
export function refusal(r: Registration, o: Pick<RendezvousOptions, 'worldSize' | 'runId' | 'attempt'>, taken: ReadonlySet<number>): string | undefined {
  if (r.runId !== o.runId) return `it belongs to run ${r.runId}, this gang to run ${o.runId}`;
  if (r.attempt !== o.attempt) return `it is of attempt ${r.attempt}, this gang is attempt ${o.attempt}`;
  if (r.worldSize !== o.worldSize) return `it expects WORLD_SIZE ${r.worldSize}, this gang has ${o.worldSize}`;
  if (!Number.isInteger(r.rank) || r.rank < 1 || r.rank >= o.worldSize) return `rank ${r.rank} is not in 1..${o.worldSize - 1}`;
  if (taken.has(r.rank)) return `rank ${r.rank} has already joined`;
  return undefined;
}

/** Rank 0: waits for every other rank and answers each with the ring. */
export async function hostRendezvous(o: RendezvousOptions, self: Peer): Promise<Peer[]> {
  const server: Server = createServer();
  const joined = new Map<number, { peer: Peer; link: Link }>();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.masterPort, specificAddress(o.bindAddress), () => resolve());
    });
    o.log.info({ port: o.masterPort, worldSize: o.worldSize }, `rendezvous: waiting for ${o.worldSize - 1} more processes on port ${o.masterPort}`);
    return await new Promise<Peer[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        const missing = Array.from({ length: o.worldSize - 1 }, (_, i) => i + 1).filter((r) => !joined.has(r));
        reject(new RendezvousTimeoutError(`rendezvous incomplete after ${o.timeoutSeconds} s: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${o.worldSize} never joined rank 0 at ${o.masterAddr}:${o.masterPort}`, missing));
      }, Math.max(0, o.deadline - Date.now()));
      server.on('connection', (socket: Socket) => {
        const link = new Link(socket, { rank: -1, address: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` });
        void link.receive(FrameKind.Register, undefined, 'the rendezvous', 4096).then(
          async (payload) => {
            const r = decode<Registration>(payload);
            link.peer = { rank: r.rank, address: `${r.host}:${r.port}` };
            const why = refusal(r, o, new Set(joined.keys()));
            if (why) {
              o.log.warn({ peerRank: r.rank, runId: r.runId, attempt: r.attempt, reason: why }, `rendezvous: refused a process: ${why}`);
              await link.send(FrameKind.Answer, encode({ refused: why } satisfies Answer)).catch(() => undefined);
              link.close();
              return;
            }
            joined.set(r.rank, { peer: { rank: r.rank, host: r.host, port: r.port }, link });
            // A process that goes away before the ring is complete gives its rank back.
            socket.once('close', () => {
              if (joined.get(r.rank)?.link === link && joined.size < o.worldSize - 1) joined.delete(r.rank);
            });
            o.log.info({ peerRank: r.rank, host: r.host, port: r.port }, `rendezvous: rank ${r.rank} joined (${joined.size + 1}/${o.worldSize})`);
            if (joined.size < o.worldSize - 1) return;
            clearTimeout(timer);
            const ring = [self, ...[...joined.values()].map((j) => j.peer)].sort((a, b) => a.rank - b.rank);
            await Promise.all([...joined.values()].map((j) => j.link.send(FrameKind.Answer, encode({ ring } satisfies Answer))));
            for (const j of joined.values()) j.link.close();
            resolve(ring);
          },
          (err: Error) => {
            o.log.warn({ peer: link.peer.address, err: err.message }, 'rendezvous: a connection failed before registering');
            link.close();
          },
        );
      });
    });
  } finally {
    for (const j of joined.values()) j.link.close();
    server.close();
  }
}

/** Ranks 1..W-1: registers with rank 0, retrying until the deadline, and returns the ring. */
export async function joinRendezvous(o: RendezvousOptions, port: number): Promise<Peer[]> {
  let lastError = 'no attempt made';
  while (Date.now() < o.deadline) {
    let socket: Socket | undefined;
    try {
      socket = await connectOnce(o.masterAddr, o.masterPort, o.deadline);
      const link = new Link(socket, { rank: 0, address: `${o.masterAddr}:${o.masterPort}` });
      const host = specificAddress(o.bindAddress) ?? socket.localAddress ?? '127.0.0.1';
      const registration: Registration = { rank: o.rank, worldSize: o.worldSize, runId: o.runId, attempt: o.attempt, host, port };
      await link.send(FrameKind.Register, encode(registration));
      const timer = setTimeout(() => link.abort(new Error('rank 0 did not answer before the deadline')), Math.max(1, o.deadline - Date.now()));
      const answer = decode<Answer>(await link.receive(FrameKind.Answer, undefined, 'the rendezvous', 1 << 20).finally(() => clearTimeout(timer)));
      link.close();
      if (answer.refused) throw new RendezvousRefusedError(`rank 0 at ${o.masterAddr}:${o.masterPort} refused rank ${o.rank}: ${answer.refused}`);
      if (answer.ring) return answer.ring;
      lastError = 'rank 0 answered without a ring';
    } catch (err) {
      if (err instanceof RendezvousRefusedError) throw err;
      lastError = (err as Error).message;
      socket?.destroy();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new RendezvousTimeoutError(`rank ${o.rank} got no ring from rank 0 at ${o.masterAddr}:${o.masterPort} within ${o.timeoutSeconds} s (last error: ${lastError})`, [0]);
}

function connectOnce(host: string, port: number, deadline: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out`));
    }, Math.max(1, Math.min(5000, deadline - Date.now())));
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
