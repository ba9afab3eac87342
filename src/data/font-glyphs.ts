/**
 * notMNIST-style glyph images: the letters A-J and digits 0-9 from the system's font files,
 * white on black, 28x28 grey. Outlines come from opentype.js (the exact file, not whatever
 * fontconfig substitutes), are rasterised by librsvg through sharp, and placed three ways per
 * glyph: MNIST's convention (fit a 20x20 box, centre of mass at the centre), a smaller 16x16 box
 * shifted by up to 2 px (a fixed hash of font and glyph), and notMNIST's (fit 26x26, box centred).
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import opentype, { type Font } from 'opentype.js';
import sharp from 'sharp';
import { DataError } from './errors.ts';
import { type CacheOptions, cachedSet, inputsKey, OOD_SIDE, type OfflineSet } from './offline-sets.ts';

/** Where each default font family lives under the font root, and the Debian package that installs it. */
export const GLYPH_FONT_DIRS: readonly { dir: string; pkg: string }[] = [
  { dir: 'truetype/dejavu', pkg: 'fonts-dejavu-core fonts-dejavu-extra' },
  { dir: 'truetype/liberation2', pkg: 'fonts-liberation2' },
  { dir: 'truetype/freefont', pkg: 'fonts-freefont-ttf' },
  { dir: 'opentype/urw-base35', pkg: 'fonts-urw-base35' },
];
export const GLYPH_CHARS = 'ABCDEFGHIJ0123456789';

export interface FontGlyphOptions extends CacheOptions {
  /** Font root (default /usr/share/fonts); the folders of GLYPH_FONT_DIRS are read below it. */
  root?: string;
  /** Characters to render (default GLYPH_CHARS); a font lacking any of them is left out. */
  chars?: string;
}

interface Placement {
  box: number;
  /** Put the centre of mass (true) or the bounding box (false) at the image centre. */
  massCentre: boolean;
  shift: (fontIndex: number, charIndex: number) => [number, number];
}

const PLACEMENTS: readonly Placement[] = [
  { box: 20, massCentre: true, shift: () => [0, 0] },
  { box: 16, massCentre: true, shift: (f, c) => [(((f * 7 + c * 3) % 5) + 5) % 5 - 2, (((f * 3 + c * 11 + 1) % 5) + 5) % 5 - 2] },
  { box: 26, massCentre: false, shift: () => [0, 0] },
];

/** Cells are larger than the image so a pass never clips; the 28x28 window is cut from the middle. */
const CELL = 48;
const MARGIN = (CELL - OOD_SIDE) / 2;
const SHEET_COLS = 32;

function fontFiles(root: string): string[] {
  const files: string[] = [];
  for (const { dir } of GLYPH_FONT_DIRS) {
    const d = join(root, dir);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).sort()) if (/\.(ttf|otf)$/i.test(f)) files.push(join(d, f));
  }
  return files;
}

interface Outline {
  d: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/**
 * The outlines of `chars` at 100 units per em, or null when the font lacks one of them or is a
 * symbol font: one whose glyph for a Latin letter is named otherwise (URW's Symbol maps 'A' to
 * 'Alpha', its Dingbats to 'a10').
 */
function outlines(font: Font, chars: string): Outline[] | null {
  const out: Outline[] = [];
  for (const ch of chars) {
    const g = font.charToGlyph(ch);
    if (g.index === 0) return null;
    if (/^[A-Za-z]$/.test(ch) && typeof g.name === 'string' && g.name !== '' && g.name !== ch) return null;
    const p = g.getPath(0, 0, 100);
    const b = p.getBoundingBox();
    if (!(b.x2 > b.x1 && b.y2 > b.y1)) return null;
    out.push({ d: p.toPathData(3), ...b });
  }
  return out;
}

interface Job {
  o: Outline;
  scale: number;
  /** Where the outline's bounding-box centre goes, in 28x28 image coordinates. */
  cx: number;
  cy: number;
}

/** Rasterise jobs on sheets of CELL x CELL cells; returns each cell as CELL*CELL coverage bytes. */
async function rasterise(jobs: Job[]): Promise<Uint8Array[]> {
  const cells: Uint8Array[] = [];
  for (let start = 0; start < jobs.length; start += SHEET_COLS * SHEET_COLS) {
    const part = jobs.slice(start, start + SHEET_COLS * SHEET_COLS);
    const rows = Math.ceil(part.length / SHEET_COLS);
    const paths = part.map((j, k) => {
      const ox = (k % SHEET_COLS) * CELL + MARGIN + j.cx - ((j.o.x1 + j.o.x2) / 2) * j.scale;
      const oy = Math.floor(k / SHEET_COLS) * CELL + MARGIN + j.cy - ((j.o.y1 + j.o.y2) / 2) * j.scale;
      return `<path transform="translate(${ox.toFixed(4)} ${oy.toFixed(4)}) scale(${j.scale.toFixed(6)})" d="${j.o.d}"/>`;
    });
    const w = SHEET_COLS * CELL;
    const h = rows * CELL;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><g fill="#fff">${paths.join('')}</g></svg>`;
    const raw = await sharp(Buffer.from(svg), { density: 72, limitInputPixels: false }).flatten({ background: '#000' }).extractChannel(0).raw().toBuffer();
    for (let k = 0; k < part.length; k++) {
      const cell = new Uint8Array(CELL * CELL);
      const x0 = (k % SHEET_COLS) * CELL;
      const y0 = Math.floor(k / SHEET_COLS) * CELL;
      for (let y = 0; y < CELL; y++) cell.set(raw.subarray((y0 + y) * w + x0, (y0 + y) * w + x0 + CELL), y * CELL);
      cells.push(cell);
    }
  }
  return cells;
}

/** Centre of mass of a cell, in 28x28 image coordinates (pixel i spans [i, i + 1)). */
function massCentre(cell: Uint8Array): [number, number] {
  let m = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < CELL; y++) {
    for (let x = 0; x < CELL; x++) {
      const v = cell[y * CELL + x]!;
      m += v;
      sx += v * (x + 0.5);
      sy += v * (y + 0.5);
    }
  }
  return m === 0 ? [OOD_SIDE / 2, OOD_SIDE / 2] : [sx / m - MARGIN, sy / m - MARGIN];
}

/**
 * Glyph images from the fonts under `root` (see GLYPH_FONT_DIRS): fonts x chars x 3 placements,
 * font-major, then glyph, then placement. Cached as .npz in the data folder.
 */
export async function buildFontGlyphs(opts: FontGlyphOptions = {}): Promise<OfflineSet> {
  const root = opts.root ?? '/usr/share/fonts';
  const chars = opts.chars ?? GLYPH_CHARS;
  const files = fontFiles(root);
  const packages = GLYPH_FONT_DIRS.flatMap((d) => d.pkg.split(' '));
  if (files.length === 0) {
    throw new DataError(`no font files under ${GLYPH_FONT_DIRS.map((d) => d.dir).join(', ')}: install the Debian packages ${packages.join(' ')} (apt-get install ${packages.join(' ')})`, root);
  }
  const key = await inputsKey({ v: 1, chars, placements: PLACEMENTS.map((p) => p.box), cell: CELL }, files);
  return cachedSet('font-glyphs', key, opts, async () => {
    const fonts: { label: string; outlines: Outline[] }[] = [];
    for (const f of files) {
      const buf = await readFile(f);
      let font: Font;
      try {
        font = opentype.parse(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer, { lowMemory: true });
      } catch {
        continue;
      }
      const o = outlines(font, chars);
      if (o !== null) fonts.push({ label: `${font.getEnglishName('fullName') ?? relative(root, f)} (${relative(root, f)})`, outlines: o });
    }
    if (fonts.length === 0) throw new DataError(`none of the ${files.length} font files has all of '${chars}'`, root);
    const jobs: Job[] = [];
    const where: { place: Placement; fi: number; ci: number }[] = [];
    fonts.forEach((font, fi) => {
      font.outlines.forEach((o, ci) => {
        for (const place of PLACEMENTS) {
          jobs.push({ o, scale: place.box / Math.max(o.x2 - o.x1, o.y2 - o.y1), cx: OOD_SIDE / 2, cy: OOD_SIDE / 2 });
          where.push({ place, fi, ci });
        }
      });
    });
    // first pass finds each centre of mass; the second places it (plus the placement's shift)
    const first = await rasterise(jobs);
    jobs.forEach((j, k) => {
      const { place, fi, ci } = where[k]!;
      const [mx, my] = place.massCentre ? massCentre(first[k]!) : [OOD_SIDE / 2, OOD_SIDE / 2];
      const [dx, dy] = place.shift(fi, ci);
      j.cx += OOD_SIDE / 2 - mx + dx;
      j.cy += OOD_SIDE / 2 - my + dy;
    });
    const cells = await rasterise(jobs);
    const images = new Uint8Array(cells.length * OOD_SIDE * OOD_SIDE);
    cells.forEach((cell, k) => {
      for (let y = 0; y < OOD_SIDE; y++) {
        images.set(cell.subarray((y + MARGIN) * CELL + MARGIN, (y + MARGIN) * CELL + MARGIN + OOD_SIDE), (k * OOD_SIDE + y) * OOD_SIDE);
      }
    });
    return {
      images,
      info: {
        name: 'font-glyphs',
        kind: 'real',
        description: `'${chars}' from ${fonts.length} fonts x ${PLACEMENTS.length} placements (20x20 box at the centre of mass as MNIST; 16x16 shifted up to 2 px; 26x26 box centred as notMNIST), white on black`,
        count: cells.length,
        packages,
        inputs: fonts.map((f) => f.label),
      },
    };
  });
}
