// The part of the DNS wire format (RFC 1035) the test cluster's DNS server needs: parse a query's header
// and question, and build an answer with A, CNAME and SOA records. Written out rather than taken from a
// package: it is a few dozen lines, and the server only ever answers single-question queries.

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const CLASS_IN = 1;
const HEADER_BYTES = 12;
/** The largest UDP answer a client that sent no EDNS option accepts; past it the client retries over TCP. */
export const UDP_MAX_BYTES = 512;

export interface DnsQuestion {
  id: number;
  /** Recursion desired, echoed in the answer as RFC 1035 asks. */
  rd: boolean;
  opcode: number;
  /** Lower case, without the trailing dot. */
  name: string;
  type: number;
  class: number;
  /** The question as it came (name in the client's letter case), copied into the answer. */
  questionBytes: Buffer;
}

export type DnsRecord =
  | { type: typeof TYPE.A; name: string; ttl: number; address: string }
  | { type: typeof TYPE.CNAME; name: string; ttl: number; target: string }
  | { type: typeof TYPE.SOA; name: string; ttl: number; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };

export class DnsFormatError extends Error {}

/** Reads a (possibly compressed) name at offset; returns it and the offset just past it in the message. */
function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  // A pointer may only point backwards, and a name has at most 127 labels: both bound malicious loops.
  for (let hops = 0; hops < 128; hops += 1) {
    const len = msg[pos];
    if (len === undefined) throw new DnsFormatError('name runs past the message');
    if (len === 0) return { name: labels.join('.'), end: end === -1 ? pos + 1 : end };
    if ((len & 0xc0) === 0xc0) {
      const low = msg[pos + 1];
      if (low === undefined) throw new DnsFormatError('truncated compression pointer');
      const target = ((len & 0x3f) << 8) | low;
      if (target >= pos) throw new DnsFormatError('forward compression pointer');
      if (end === -1) end = pos + 2;
      pos = target;
      continue;
    }
    if (len > 63) throw new DnsFormatError(`label length ${len}`);
    if (pos + 1 + len > msg.length) throw new DnsFormatError('label runs past the message');
    labels.push(msg.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new DnsFormatError('too many labels');
}

/** The header and first question of a query; throws DnsFormatError on anything malformed. */
export function parseQuery(msg: Buffer): DnsQuestion {
  if (msg.length < HEADER_BYTES) throw new DnsFormatError('shorter than a header');
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) throw new DnsFormatError('a response, not a query');
  if (msg.readUInt16BE(4) !== 1) throw new DnsFormatError('not exactly one question');
  const { name, end } = readName(msg, HEADER_BYTES);
  if (end + 4 > msg.length) throw new DnsFormatError('question runs past the message');
  return {
    id: msg.readUInt16BE(0),
    rd: (flags & 0x0100) !== 0,
    opcode: (flags >> 11) & 0x0f,
    name: name.toLowerCase(),
    type: msg.readUInt16BE(end),
    class: msg.readUInt16BE(end + 2),
    questionBytes: msg.subarray(HEADER_BYTES, end + 4),
  };
}

/** The id of a message too broken to parse, so that an error answer can still be matched by the client. */
export function messageId(msg: Buffer): number | undefined {
  return msg.length >= 2 ? msg.readUInt16BE(0) : undefined;
}

function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split('.').filter((l) => l.length > 0)) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length > 63) throw new Error(`DNS label too long: ${label}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function encodeRecord(record: DnsRecord, question: DnsQuestion): Buffer {
  // An owner that is the question's name points at it (offset 12), as servers commonly compress.
  const owner = record.name === question.name ? Buffer.from([0xc0, HEADER_BYTES]) : encodeName(record.name);
  let rdata: Buffer;
  switch (record.type) {
    case TYPE.A:
      rdata = Buffer.from(record.address.split('.').map(Number));
      break;
    case TYPE.CNAME:
      rdata = encodeName(record.target);
      break;
    case TYPE.SOA: {
      const numbers = Buffer.alloc(20);
      [record.serial, record.refresh, record.retry, record.expire, record.minimum].forEach((n, i) => numbers.writeUInt32BE(n, i * 4));
      rdata = Buffer.concat([encodeName(record.mname), encodeName(record.rname), numbers]);
      break;
    }
  }
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(record.type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(record.ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, fixed, rdata]);
}

function header(id: number, flags: number, counts: [number, number, number, number]): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES);
  buf.writeUInt16BE(id, 0);
  buf.writeUInt16BE(flags, 2);
  counts.forEach((n, i) => buf.writeUInt16BE(n, 4 + i * 2));
  return buf;
}

/**
 * An answer to `question`. Past maxBytes (UDP) the answer and authority records are dropped and TC is set,
 * so the client asks again over TCP, as RFC 1035 section 4.2.1 describes.
 */
export function encodeResponse(
  question: DnsQuestion,
  answer: { rcode: number; authoritative: boolean; answers: DnsRecord[]; authority: DnsRecord[] },
  maxBytes = 65_535,
): Buffer {
  // QR, opcode echoed, AA, RD echoed; RA stays 0: this server answers for its zone only.
  const flags = (rcode: number, tc: boolean): number =>
    0x8000 | (question.opcode << 11) | (answer.authoritative ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (question.rd ? 0x0100 : 0) | rcode;
  const answers = answer.answers.map((r) => encodeRecord(r, question));
  const authority = answer.authority.map((r) => encodeRecord(r, question));
  const full = Buffer.concat([
    header(question.id, flags(answer.rcode, false), [1, answers.length, authority.length, 0]),
    question.questionBytes,
    ...answers,
    ...authority,
  ]);
  if (full.length <= maxBytes) return full;
  return Buffer.concat([header(question.id, flags(answer.rcode, true), [1, 0, 0, 0]), question.questionBytes]);
}

/** An error answer (FORMERR, NOTIMP, ...), echoing the question when there was one that could be read. */
export function encodeError(id: number, rcode: number, question?: DnsQuestion): Buffer {
  if (question) return encodeResponse(question, { rcode, authoritative: false, answers: [], authority: [] });
  return header(id, 0x8000 | rcode, [0, 0, 0, 0]);
}

/** A query for `name`, as a resolver sends it: for tests that talk to the server directly (TCP, odd types). */
export function encodeQuery(id: number, name: string, type: number): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(CLASS_IN, 2);
  return Buffer.concat([header(id, 0x0100, [1, 0, 0, 0]), encodeName(name), tail]);
}

/** The rcode and A-record addresses of a response, for tests. */
export function decodeAnswer(msg: Buffer): { id: number; rcode: number; truncated: boolean; addresses: string[] } {
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let pos = HEADER_BYTES;
  for (let i = 0; i < qd; i += 1) pos = readName(msg, pos).end + 4;
  const addresses: string[] = [];
  for (let i = 0; i < an; i += 1) {
    pos = readName(msg, pos).end;
    const type = msg.readUInt16BE(pos);
    const length = msg.readUInt16BE(pos + 8);
    if (type === TYPE.A && length === 4) addresses.push([...msg.subarray(pos + 10, pos + 14)].join('.'));
    pos += 10 + length;
  }
  return { id: msg.readUInt16BE(0), rcode: flags & 0x0f, truncated: (flags & 0x0200) !== 0, addresses };
}
