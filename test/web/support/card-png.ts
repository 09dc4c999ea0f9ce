// Builds a small valid PNG (1x1, with real CRCs) carrying character-card JSON in tEXt chunks, the way
// Tavern front-ends write them: keyword "chara" (v2) or "ccv3" (v3), value = base64 of the UTF-8 JSON.
import { deflateSync } from 'node:zlib';

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function makeCardPng(cards: Record<string, unknown>): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const pixels = deflateSync(Buffer.from([0, 200, 120, 40]));
  const texts = Object.entries(cards).map(([keyword, json]) =>
    chunk('tEXt', Buffer.from(`${keyword}\0${Buffer.from(JSON.stringify(json)).toString('base64')}`, 'latin1')),
  );
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    ...texts,
    chunk('IDAT', pixels),
    chunk('IEND', new Uint8Array()),
  ]);
}
