// Decodes a PNG far enough to prove it is whole: signature, chunk CRCs, and
// the inflated image data has exactly the size its header announces.
import { inflateSync, crc32 } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function crc(buf) {
  if (crc32) return crc32(buf) >>> 0;
  let c = 0xffffffff;
  for (const b of buf) { c ^= b; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; }
  return (c ^ 0xffffffff) >>> 0;
}

export function decodePng(buf) {
  if (!buf.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG signature');
  let off = 8;
  let header = null;
  const idat = [];
  let sawEnd = false;
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    const want = buf.readUInt32BE(off + 8 + len);
    if (crc(buf.subarray(off + 4, off + 8 + len)) !== want) throw new Error(`bad CRC in ${type}`);
    if (type === 'IHDR') {
      header = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8], colorType: data[9], interlace: data[12] };
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') { sawEnd = true; break; }
    off += 12 + len;
  }
  if (!header || !sawEnd) throw new Error('missing IHDR or IEND');
  const raw = inflateSync(Buffer.concat(idat));
  if (header.interlace === 0) {
    const bpp = Math.ceil((header.depth * CHANNELS[header.colorType]) / 8);
    const expected = header.height * (1 + header.width * bpp);
    if (raw.length !== expected) throw new Error(`image data is ${raw.length} bytes, header says ${expected}`);
  }
  return header;
}
