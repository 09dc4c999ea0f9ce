/**
 * WebAssembly SIMD (f32x4) versions of the three dense-layer kernels in linear.ts, assembled here byte by
 * byte so the repo needs no toolchain or binary blob. They run on Float32Arrays that live in the module's
 * memory (see float-arena.ts) and compute the same sums as the JS kernels, four lanes at a time.
 * Each kernel takes byte pointers (y/dx/dw, the other two operands) and rows, inDim, outDim.
 */

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => vec([...new TextEncoder().encode(s)].map((b) => [b]));

// Instructions used by the kernels.
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (v: number) => [0x41, ...sleb(v)];
const ADD = [0x6a];
const MUL = [0x6c];
const LT_U = [0x49];
const loop = (body: number[]) => [0x03, 0x40, ...body, 0x0b];
const brIf = (depth: number) => [0x0d, ...uleb(depth)];
const f32Load = [0x2a, 0x02, 0x00];
const f32Store = [0x38, 0x02, 0x00];
const F32_ADD = [0x92];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128Load = [...simd(0x00), 0x04, 0x00];
const v128Store = [...simd(0x0b), 0x04, 0x00];
const SPLAT = simd(0x13);
const FADD = simd(0xe4);
const FMUL = simd(0xe6);
const lane = (l: number) => [...simd(0x1f), l];
/** x = x + step; continue the enclosing loop while x < limit. */
const next = (x: number, step: number[], limit: number[]) => [
  ...get(x),
  ...step,
  ...ADD,
  ...set(x),
  ...get(x),
  ...limit,
  ...LT_U,
  ...brIf(0),
];
/** Horizontal sum of a v128 local. */
const hsum = (v: number) => [
  ...get(v),
  ...lane(0),
  ...get(v),
  ...lane(1),
  ...F32_ADD,
  ...get(v),
  ...lane(2),
  ...F32_ADD,
  ...get(v),
  ...lane(3),
  ...F32_ADD,
];

// Parameters 0..5: out, a, b, rows, inDim, outDim (pointers in bytes, sizes in elements).
const [OUT, A, B, ROWS, IN, OUTD] = [0, 1, 2, 3, 4, 5];
// i32 locals 6..: t, o, i, rowBytes, p0..p3 (four row pointers), op (output row), ap (input row); v128 locals after.
const [T, O, I, ROWB, P0, P1, P2, P3, OP, AP] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const [V0, V1, V2, V3, X] = [16, 17, 18, 19, 20];
const LOCALS = [...uleb(2), ...uleb(10), 0x7f, ...uleb(5), 0x7b];
const FOUR = [V0, V1, V2, V3];

/** base + index·stride·4 (a byte address of element row `index`). */
const address = (base: number, index: number[], stride: number[]) => [
  ...get(base),
  ...index,
  ...stride,
  ...MUL,
  ...i32(4),
  ...MUL,
  ...ADD,
];
/** p0..p3 = base + (index + k)·rowBytes. */
const rowPointers = (base: number, index: number) => [
  ...get(base),
  ...get(index),
  ...get(ROWB),
  ...MUL,
  ...ADD,
  ...set(P0),
  ...[P1, P2, P3].flatMap((p, k) => [...get(P0 + k), ...get(ROWB), ...ADD, ...set(p)]),
];
/** Pushes acc + Σ_k v_k·load(p_k + i) for the four coefficient vectors (acc already on the stack). */
const addFourProducts = FOUR.flatMap((v, k) => [
  ...get(v),
  ...get(P0 + k),
  ...get(I),
  ...ADD,
  ...v128Load,
  ...FMUL,
  ...FADD,
]);
/** The innermost loop of the backward kernels: out[op + i] += Σ_k v_k·p_k[i], four lanes at a time. */
const accumulateRow = loop([
  ...get(OP),
  ...get(I),
  ...ADD,
  ...get(OP),
  ...get(I),
  ...ADD,
  ...v128Load,
  ...addFourProducts,
  ...v128Store,
  ...next(I, i32(16), get(ROWB)),
]);
const init = [...get(IN), ...i32(4), ...MUL, ...set(ROWB)];

/** out[t][o] = a[t]·b[o] (a: x rows, b: W rows). Needs inDim and outDim multiples of 4. */
// biome-ignore format: one line per step reads better than one line per instruction
const forward = [
  ...init, ...i32(0), ...set(T),
  ...loop([
    ...address(A, get(T), get(IN)), ...set(AP),
    ...address(OUT, get(T), get(OUTD)), ...set(OP),
    ...i32(0), ...set(O),
    ...loop([
      ...rowPointers(B, O),
      ...FOUR.flatMap((v) => [0x43, 0, 0, 0, 0, ...SPLAT, ...set(v)]),
      ...i32(0), ...set(I),
      ...loop([
        ...get(AP), ...get(I), ...ADD, ...v128Load, ...set(X),
        ...FOUR.flatMap((v, k) => [...get(v), ...get(X), ...get(P0 + k), ...get(I), ...ADD, ...v128Load, ...FMUL, ...FADD, ...set(v)]),
        ...next(I, i32(16), get(ROWB)),
      ]),
      ...FOUR.flatMap((v, k) => [...get(OP), ...get(O), ...i32(k), ...ADD, ...i32(4), ...MUL, ...ADD, ...hsum(v), ...f32Store]),
      ...next(O, i32(4), get(OUTD)),
    ]),
    ...next(T, i32(1), get(ROWS)),
  ]),
  0x0b,
];

/** out[t][i] += Σ_o a[t][o]·b[o][i] (out: dx, a: dy, b: W). Needs inDim and outDim multiples of 4. */
// biome-ignore format: one line per step reads better than one line per instruction
const backwardInput = [
  ...init, ...i32(0), ...set(T),
  ...loop([
    ...address(OUT, get(T), get(IN)), ...set(OP),
    ...address(A, get(T), get(OUTD)), ...set(AP),
    ...i32(0), ...set(O),
    ...loop([
      ...rowPointers(B, O),
      // coefficient k is a[t][o + k]
      ...FOUR.flatMap((v, k) => [...get(AP), ...get(O), ...i32(k), ...ADD, ...i32(4), ...MUL, ...ADD, ...f32Load, ...SPLAT, ...set(v)]),
      ...i32(0), ...set(I),
      ...accumulateRow,
      ...next(O, i32(4), get(OUTD)),
    ]),
    ...next(T, i32(1), get(ROWS)),
  ]),
  0x0b,
];

/** out[o][i] += Σ_t a[t][o]·b[t][i] (out: dW, a: dy, b: x). Needs rows and inDim multiples of 4. */
// biome-ignore format: one line per step reads better than one line per instruction
const backwardWeight = [
  ...init, ...i32(0), ...set(O),
  ...loop([
    ...address(OUT, get(O), get(IN)), ...set(OP),
    ...i32(0), ...set(T),
    ...loop([
      ...rowPointers(B, T),
      // coefficient k is a[t + k][o]
      ...FOUR.flatMap((v, k) => [...address(A, [...get(T), ...i32(k), ...ADD], get(OUTD)), ...i32(4), ...get(O), ...MUL, ...ADD, ...f32Load, ...SPLAT, ...set(v)]),
      ...i32(0), ...set(I),
      ...accumulateRow,
      ...next(T, i32(4), get(ROWS)),
    ]),
    ...next(O, i32(1), get(OUTD)),
  ]),
  0x0b,
];

/** The module's bytes; it imports `env.memory` (initial pages given) and exports the three kernels. */
export function linearKernelsModule(pages: number): Uint8Array<ArrayBuffer> {
  const kernels: Array<[string, number[]]> = [
    ['forward', forward],
    ['backward_input', backwardInput],
    ['backward_weight', backwardWeight],
  ];
  const funcType = [0x60, ...vec(Array.from({ length: 6 }, () => [0x7f])), ...vec([])];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([funcType])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x01, ...uleb(pages), ...uleb(pages)]])),
    ...section(3, vec(kernels.map(() => [0x00]))),
    ...section(7, vec(kernels.map(([n], i) => [...name(n), 0x00, ...uleb(i)]))),
    ...section(
      10,
      vec(
        kernels.map(([, body]) => {
          const fn = [...LOCALS, ...body];
          return [...uleb(fn.length), ...fn];
        }),
      ),
    ),
  ];
  return Uint8Array.from(bytes);
}
