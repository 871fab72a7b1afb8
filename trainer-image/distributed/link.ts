// One direction of the ring, or a rendezvous connection: frames in order over one TCP socket, each send
// numbered, each receive checked against the next expected number. Stream and frame failures become
// PeerFailedError naming the peer, so the trainer's exit says which process to look at.
import type { Socket } from 'node:net';
import { PeerFailedError } from './errors.js';
import { checkHeader, checkPayload, FrameError, frameHeader, HEADER_BYTES, StreamClosedError, StreamReader, type FrameKind } from './frames.js';

export class Link {
  private readonly reader: StreamReader;
  private readonly header = new Uint8Array(HEADER_BYTES);
  private sendSeq = 0;
  private recvSeq = 0;
  bytesSent = 0;
  bytesReceived = 0;

  constructor(
    readonly socket: Socket,
    /** The peer's rank and address, for messages. */
    public peer: { rank: number; address: string },
  ) {
    socket.setNoDelay(true);
    this.reader = new StreamReader(socket);
  }

  /** Why the connection is unusable, if it is. */
  get failure(): PeerFailedError | undefined {
    const err = this.reader.closed;
    return err && this.asPeerError(err, 'a collective');
  }

  /** Queues one frame; resolves when the socket has handed it to the kernel (the payload may be reused then). */
  send(kind: FrameKind, payload: Uint8Array): Promise<void> {
    const header = frameHeader(kind, this.sendSeq++, payload);
    this.bytesSent += HEADER_BYTES + payload.byteLength;
    return new Promise((resolve, reject) => {
      this.socket.cork();
      this.socket.write(header);
      this.socket.write(payload, (err) => (err ? reject(this.asPeerError(err, 'a send')) : resolve()));
      this.socket.uncork();
    });
  }

  /**
   * Receives the next frame, which must be of `kind`. With `into` the payload must fill it exactly and is
   * read straight into it; otherwise it may be up to `maxLength` bytes and is returned.
   */
  async receive(kind: FrameKind, into: Uint8Array | undefined, what: string, maxLength = 1 << 20): Promise<Uint8Array> {
    try {
      await this.reader.read(this.header);
      const { length, crc } = checkHeader(this.header, { kind, seq: this.recvSeq, ...(into ? { length: into.byteLength } : { maxLength }) });
      this.recvSeq += 1;
      const payload = into ?? new Uint8Array(length);
      await this.reader.read(payload);
      checkPayload(payload, crc);
      this.bytesReceived += HEADER_BYTES + length;
      return payload;
    } catch (err) {
      throw this.asPeerError(err as Error, what);
    }
  }

  /** Fails the pending and every later receive with `err` (a collective timeout, the group closing). */
  abort(err: Error): void {
    this.reader.abort(err);
    this.socket.destroy();
  }

  close(): void {
    this.socket.destroy();
  }

  private asPeerError(err: Error, what: string): PeerFailedError {
    if (err instanceof PeerFailedError) return err;
    const who = `rank ${this.peer.rank} (${this.peer.address})`;
    if (err instanceof FrameError) return new PeerFailedError(`corrupt frame from ${who} during ${what}: ${err.message}`, this.peer.rank, 'corrupt');
    if (err instanceof StreamClosedError) {
      return new PeerFailedError(`${who} ${err.reset ? `reset the connection (${err.message})` : 'closed the connection'} during ${what}`, this.peer.rank, err.reset ? 'reset' : 'closed');
    }
    return new PeerFailedError(`connection to ${who} failed during ${what}: ${err.message}`, this.peer.rank, 'reset');
  }
}
